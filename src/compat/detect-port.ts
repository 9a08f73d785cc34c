/**
 * detect-port 2.x, at `portalloc/detect-port`: `port` .. `port + 9`, then a
 * random port, with detect-port's arguments, errors and `waitPort`, and one
 * native check per port instead of five Node servers. Unlike detect-port,
 * calls running at the same time in one process never get the same port.
 * See docs/compat.md.
 */
import { coded } from '../errors';
import { begin, checkListen, fallback, FIRST, drop, EADDRNOTAVAIL, isPortNumber, lend, listenError, Refusals, resolveListenHost, tryPort, tryRandomPort } from './try-port';

export type DetectPortCallback = (err: Error | null, port?: number) => void;

/** detect-port's object argument. */
export interface PortConfig {
  port?: number | string;
  /** Check only this host (an IP address or a name); default: every local address. */
  hostname?: string | undefined;
  callback?: DetectPortCallback;
}

/**
 * The hostname given is not an address of this machine (EADDRNOTAVAIL, the
 * original error as `cause`).
 * @example
 * import { detect } from 'portalloc/detect-port';
 * await detect({ port: 3000, hostname: '192.0.2.1' }).catch((error) => error.code); //=> 'EADDRNOTAVAIL'
 */
export class IPAddressNotAvailableError extends Error {
  readonly code = 'EADDRNOTAVAIL';
  // (ES2022's ErrorOptions, spelled out: the declarations must not need ES2022's lib.)
  constructor(options?: { cause?: unknown }) {
    super('The IP address is not available on this machine', options);
    this.name = this.constructor.name;
    Error.captureStackTrace(this, this.constructor);
  }
}

/**
 * `waitPort` gave up: the port was still free after `retries` checks.
 * @example
 * import { waitPort } from 'portalloc/detect-port';
 * await waitPort(3000, { retries: 3 }).catch((error) => error.count); //=> 4
 */
export class WaitPortRetryError extends Error {
  readonly code = 'ERR_WAIT_PORT_RETRIES_EXCEEDED';
  retries: number;
  count: number;
  constructor(message: string, retries: number, count: number, options?: { cause?: unknown }) {
    super(message, options);
    this.name = this.constructor.name;
    this.retries = retries;
    this.count = count;
    Error.captureStackTrace(this, this.constructor);
  }
}

/** How `waitPort` polls. */
export interface WaitPortOptions {
  /** Milliseconds between checks (1000). */
  retryInterval?: number;
  /** Checks before giving up (Infinity). */
  retries?: number;
}

/** Whether a Node server could listen on `port` at `host` ('' for every local address). */
async function isFree(host: string, port: number): Promise<boolean> {
  if (!isPortNumber(port)) return false; // Node's listen() throws: detect-port moves on
  return (await checkListen(host, port)).errno === 0;
}

/** The first free port of first .. first+9 (or a random one), handed out (lent). */
async function findPort(first: number, hostname: string): Promise<number> {
  const since = begin();
  const refusals = new Refusals();
  const maxPort = Math.min(first + 10, 65535);
  let host = '';
  if (hostname) {
    try {
      host = await resolveListenHost(hostname);
    } catch (error) {
      // detect-port takes a name that does not resolve (ENOTFOUND) as "free here".
      if ((error as NodeJS.ErrnoException).code === 'ENOTFOUND' && first !== 0) return first;
      throw error;
    }
  }
  for (let port = first; port !== 0 && (port === first || port < maxPort); port++) {
    // Node's listen() throws for a bad port number: detect-port moves on.
    if (!isPortNumber(port)) continue;
    const tried = await tryPort(host, port, since);
    if (tried.errno === 0) {
      lend(tried);
      return port;
    }
    drop(tried);
    refusals.note(tried.errno, port, tried.syscall);
    if (hostname && tried.errno === EADDRNOTAVAIL) {
      throw new IPAddressNotAvailableError({ cause: listenError(tried.errno, 'listen', host, port) });
    }
  }
  // The random fallback: lent as the others are, so a later detect(thatPort) gets it back while it is free;
  // when it finds nothing, again in its fallback modes (try-port.ts).
  let tried = await tryRandomPort(host, since, refusals);
  for (let mode = fallback(FIRST, refusals); tried === undefined && mode; mode = fallback(mode, refusals)) tried = await tryRandomPort(host, since, refusals, false, mode);
  if (tried?.errno === 0) {
    lend(tried);
    return tried.port;
  }
  if (tried && hostname && tried.errno === EADDRNOTAVAIL) throw new IPAddressNotAvailableError({ cause: listenError(tried.errno, 'listen', host, 0) });
  if (tried) throw listenError(tried.errno, tried.syscall, host, 0);
  // detect-port's listen(0) would reject with the bind's error: EACCES or EPERM when refused.
  const where = `on ${hostname || 'every local address'}`;
  if (refusals.count > 0) throw refusals.explain(listenError(refusals.errno, 'listen', host, 0), 1, where);
  throw coded(Error(`No free port found ${where}`), 'ERR_PORTS_EXHAUSTED');
}

/**
 * Resolves with `port` if a Node server could listen on it on every local
 * address (or on `hostname`), else the first free of the next nine ports,
 * else a random free port. A string port is parsed (`'8080'`); no port means
 * a random one.
 *
 * @example
 * import detect from 'portalloc/detect-port';
 * const port = await detect(8080);
 * if (port !== 8080) console.log(`8080 is taken, try ${port}`);
 * detect({ port: 8080, hostname: '127.0.0.1' }, (err, port) => {});
 */
export function detectPort(port?: number | PortConfig | string): Promise<number>;
export function detectPort(callback: DetectPortCallback): void;
export function detectPort(port: number | PortConfig | string | undefined, callback: DetectPortCallback): void;
export function detectPort(port?: number | PortConfig | string | DetectPortCallback, callback?: DetectPortCallback): Promise<number> | void {
  let hostname: string | undefined = '';
  if (port && typeof port === 'object') {
    hostname = port.hostname;
    callback = port.callback;
    port = port.port;
  } else if (typeof port === 'function') {
    callback = port;
    port = undefined;
  }
  const first = parseInt(port as string) || 0;
  const found = findPort(first, hostname ?? '');
  if (typeof callback !== 'function') return found;
  const done = callback;
  found.then(
    (value) => done(null, value),
    (error: Error) => done(error),
  );
}

/**
 * `detectPort` under detect-port's other name.
 * @example
 * import { detect } from 'portalloc/detect-port';
 * const port = await detect(3000);
 */
export const detect: typeof detectPort = detectPort;

/**
 * Resolves `true` once `port` is in use (a Node server could no longer listen
 * on it), checking every `retryInterval` ms; rejects with
 * {@link WaitPortRetryError} after `retries` checks.
 *
 * @example
 * import { waitPort } from 'portalloc/detect-port';
 * await waitPort(3000, { retryInterval: 100, retries: 50 });
 */
export async function waitPort(port: number, options: WaitPortOptions = {}): Promise<boolean> {
  const { retryInterval = 1000, retries = Infinity } = options;
  for (let count = 1; ; count++) {
    if (count > retries) throw new WaitPortRetryError('retries exceeded', retries, count);
    if (!(await isFree('', port))) return true;
    await new Promise((resolve) => setTimeout(resolve, retryInterval));
  }
}

export default detectPort;
