/**
 * get-port 7.x, as portalloc's default export: the same options, results,
 * locking and error messages, with one native check per candidate port
 * instead of one Node server per interface. See docs/compat.md.
 */
import type { ListenOptions } from 'node:net';
import { coded } from '../errors';
import { MAX_EXCLUDE_ITEMS } from '../options';
import { clearLocks, isLocked, lock } from './locks';
import { badPortError, begin, drop, isPassedOver, isPortNumber, lend, listenError, NO_PORTS, randomPort, resolveListenHost, tryPort } from './try-port';

/** get-port's options: its own and the rest of Node's `ListenOptions`. */
export type GetPortOptions = {
  /** A preferred port or an iterable of preferred ports, tried in order. */
  readonly port?: number | Iterable<number>;
  /** Ports that should not be returned, e.g. `portNumbers(3000, 3100)`. */
  readonly exclude?: Iterable<number>;
  /**
   * Lock the port for the life of the process (until `clearLockedPorts()`)
   * instead of 15-30 s. Reserved ports are locked by number, whatever `host`.
   * @default false
   */
  readonly reserve?: boolean;
  /**
   * The host the port must be free on, IPv4 or IPv6 (or a name, resolved as
   * Node's `listen()` does). Default: every local address.
   */
  readonly host?: string;
} & Omit<ListenOptions, 'port'>;

/** The name get-port's own types give its options. */
export type Options = GetPortOptions;

function checkExclude(exclude: unknown): Set<number> {
  if (!exclude) return new Set();
  if (typeof (exclude as Iterable<unknown>)[Symbol.iterator] !== 'function') {
    throw coded(new TypeError('The `exclude` option must be an iterable.'), 'ERR_INVALID_ARG_TYPE');
  }
  // One pass: a generator (portNumbers()) can be read once. get-port 7.2 reads it
  // twice, so there it excludes nothing; here it excludes its ports. At most
  // MAX_EXCLUDE_ITEMS: an endless iterable would otherwise fill the heap.
  const ports: unknown[] = [];
  for (const element of exclude as Iterable<unknown>) {
    if (ports.length === MAX_EXCLUDE_ITEMS) {
      throw coded(new RangeError(`The \`exclude\` option must have at most ${MAX_EXCLUDE_ITEMS} items.`), 'ERR_OUT_OF_RANGE');
    }
    ports.push(element);
  }
  for (const element of ports) {
    if (typeof element !== 'number') {
      throw coded(new TypeError('Each item in the `exclude` option must be a number corresponding to the port you want excluded.'), 'ERR_INVALID_ARG_TYPE');
    }
    if (!Number.isSafeInteger(element)) {
      throw coded(new TypeError(`Number ${element} in the exclude option is not a safe integer and can't be used`), 'ERR_OUT_OF_RANGE');
    }
  }
  return new Set(ports as number[]);
}

/**
 * Get an available TCP port number: the first preferred port that a Node
 * server could listen on (on every local address, or on `host`), else a
 * random free port. A returned port stays locked against later calls in this
 * process for 15-30 s (`reserve`: until `clearLockedPorts()`); calls running
 * at the same time never get the same port.
 *
 * Rejects (get-port's behaviour) when `host` does not resolve or is not an
 * address of this machine; busy (EADDRINUSE) and privileged (EACCES) ports
 * are skipped.
 *
 * @example
 * import getPort, { portNumbers } from 'portalloc';
 * console.log(await getPort()); //=> 51402
 * // 3000 if available, otherwise a random port:
 * const port = await getPort({ port: 3000 });
 * // the first free of 3000..3100, otherwise a random port:
 * const dev = await getPort({ port: portNumbers(3000, 3100) });
 */
export async function getPort(options?: GetPortOptions): Promise<number> {
  if (options === undefined) return anyPort(''); // the commonest call, without a wait
  const since = begin();
  const exclude = checkExclude(options.exclude);
  const { reserve = false, host: wantedHost, ipv6Only = false } = options;
  const preferred: Iterable<unknown> = options.port ? (typeof options.port === 'number' ? [options.port] : options.port) : [];
  const host = wantedHost ? await resolveListenHost(wantedHost) : '';
  for (const port of preferred) {
    if (port === 0) break; // 0: any port, as get-port's own fallback
    if (exclude.has(port as number)) continue;
    if (!isPortNumber(port)) throw badPortError(port);
    if (isLocked(port)) continue;
    const tried = await tryPort(host, port, since, ipv6Only);
    if (tried.errno === 0 && !isLocked(port)) {
      lend(tried);
      lock(port, Boolean(reserve));
      return port;
    }
    drop(tried);
    if (tried.errno !== 0 && !isPassedOver(tried.errno)) throw listenError(tried.errno, tried.syscall, wantedHost ? host : '', port);
  }
  return anyPort(host, exclude, Boolean(reserve));
}

/**
 * A random port: portalloc's own allocate, so no other caller, get-port
 * included, gets it while it is young (the ledger's window stands in for
 * get-port's 15-30 s lock); `reserve` locks it for the process, as get-port does.
 */
function anyPort(host: string, exclude: Iterable<number> = NO_PORTS, reserve = false): number {
  let port: number;
  try {
    port = randomPort(host, exclude);
  } catch (error) {
    throw randomPortError(error, host);
  }
  if (reserve) lock(port, true);
  return port;
}

/** get-port's error for a failed random pick. */
function randomPortError(error: unknown, host: string): unknown {
  const { code, errno, syscall } = error as NodeJS.ErrnoException;
  if (code === 'ERR_PORTS_EXHAUSTED') return Object.assign(new Error('No available ports found'), { code });
  // Every bind refused (privileges, a sandbox): get-port's message, the reason as its cause.
  if (code === 'ERR_PORTS_DENIED') return Object.assign(new Error('No available ports found', { cause: error }), { code: 'ERR_PORTS_EXHAUSTED' });
  if (typeof errno === 'number') return listenError(-errno, syscall === 'bind' ? 'listen' : (syscall ?? 'listen'), host, 0);
  return error;
}

/**
 * Port numbers from `from` to `to`, inclusive, lazily, for `port` or `exclude`.
 * Throws get-port's TypeError or RangeError (1024-65535, `from` <= `to`).
 *
 * @example
 * import getPort, { portNumbers } from 'portalloc';
 * const port = await getPort({ port: portNumbers(3000, 3100) });
 */
export function portNumbers(from: number, to: number): Iterable<number> {
  if (!Number.isInteger(from) || !Number.isInteger(to)) {
    throw coded(new TypeError('`from` and `to` must be integer numbers'), 'ERR_INVALID_ARG_TYPE');
  }
  if (from < 1024 || from > 65535) {
    throw coded(new RangeError("'from' must be between 1024 and 65535"), 'ERR_OUT_OF_RANGE');
  }
  if (to < 1024 || to > 65535) {
    throw coded(new RangeError("'to' must be between 1024 and 65535"), 'ERR_OUT_OF_RANGE');
  }
  if (from > to) {
    throw coded(new RangeError('`to` must be greater than or equal to `from`'), 'ERR_OUT_OF_RANGE');
  }
  return (function* () {
    for (let port = from; port <= to; port++) yield port;
  })();
}

/**
 * Forget the locked ports, reserved ones included, so results no longer depend
 * on earlier calls (and are no longer protected from in-process races with them).
 *
 * @example
 * import getPort, { clearLockedPorts } from 'portalloc';
 * const port = [3000, 3001, 3002];
 * await getPort({ port }); //=> 3000
 * await getPort({ port }); //=> 3001
 * clearLockedPorts();
 * await getPort({ port }); //=> 3000
 */
export function clearLockedPorts(): void {
  clearLocks();
}

export default getPort;
