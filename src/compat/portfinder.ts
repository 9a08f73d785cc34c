/**
 * portfinder 1.x, at `portalloc/portfinder`: the same functions, settings and
 * error messages, scanning upward from the start port as portfinder does,
 * with one native check per port instead of one Node server per interface.
 * Unlike portfinder, calls running at the same time in one process never get
 * the same port. See docs/compat.md.
 */
import fs from 'node:fs';
import path from 'node:path';
import { coded } from '../errors';
import { OLDEST_FIRST_MAX, TryPass } from '../binding';
import { badPortError, begin, checkListen, drop, EADDRNOTAVAIL, EINVAL, fallback, FIRST, inTryOrder, isPassedOver, isPortNumber, lend, listenError, Refusals, resolveListenHost, tryPort, type Tried, type TryMode } from './try-port';

/** portfinder's options. */
export interface PortFinderOptions {
  /** The host the port must also be free on (besides every local address). */
  host?: string;
  /** Where the search started, for the error message (equals `port` when not given). */
  startPort?: number;
  /** The lowest port to try (takes precedence over `basePort`). */
  port?: number;
  /** The highest port to return (default `highestPort`). */
  stopPort?: number;
}

// The callback types portfinder declares (it calls back with `null` for no error).
export type PortfinderCallback = (err: Error, port: number) => void;
export type PortsCallback = (err: Error, ports: Array<number>) => void;
export type SocketfinderCallback = (err: Error, socket: string) => void;

export interface SocketFinderOptions {
  /** Mode of the socket's directory when it is created (default 0o755). */
  mod?: number;
  /** The socket path to try first (default `${basePath}.sock`). */
  path?: string;
}

/** The module's shape, for its default export (portfinder's CommonJS `module.exports`). */
export interface Portfinder {
  basePort: number;
  highestPort: number;
  basePath: string;
  setBasePort: typeof setBasePort;
  setHighestPort: typeof setHighestPort;
  setBasePath: typeof setBasePath;
  getPort: typeof getPort;
  getPortPromise: typeof getPortPromise;
  getPorts: typeof getPorts;
  getPortsPromise: typeof getPortsPromise;
  getSocket: typeof getSocket;
  getSocketPromise: typeof getSocketPromise;
  nextPort: typeof nextPort;
  nextSocket: typeof nextSocket;
}

/**
 * The lowest port any search starts from (8000). Assignable, as in portfinder.
 * @example
 * const portfinder = require('portalloc/portfinder');
 * portfinder.basePort = 3000; // or portfinder.setBasePort(3000)
 */
export let basePort = 8000;
/**
 * The highest port any search goes to (65535). Assignable, as in portfinder.
 * @example
 * const portfinder = require('portalloc/portfinder');
 * portfinder.highestPort = 3999;
 */
export let highestPort = 65535;
/**
 * The path a socket search starts from ('/tmp/portfinder'). Assignable, as in portfinder.
 * @example
 * const portfinder = require('portalloc/portfinder');
 * portfinder.basePath = '/tmp/my-app';
 */
export let basePath = '/tmp/portfinder';

/**
 * Sets the port searches start from.
 * @example
 * import portfinder from 'portalloc/portfinder';
 * portfinder.setBasePort(3000);
 */
export function setBasePort(port: number): void {
  basePort = port;
}

/**
 * Sets the highest port a search goes to.
 * @example
 * import portfinder from 'portalloc/portfinder';
 * portfinder.setHighestPort(3999);
 */
export function setHighestPort(port: number): void {
  highestPort = port;
}

/**
 * Sets the path socket searches start from.
 * @example
 * import portfinder from 'portalloc/portfinder';
 * portfinder.setBasePath('/tmp/my-app');
 */
export function setBasePath(socketPath: string): void {
  basePath = socketPath;
}

// The settings are exported `let`s: the CommonJS build reads and writes them as
// properties of the module (`exports.basePort`), so assigning `portfinder.basePort`
// works as it does in portfinder.

/**
 * The first port from `port` up that a Node server could listen on everywhere
 * (and on `host`), tried (try-port.ts). A search that finds none searches
 * again in its fallback modes (try-port.ts, fallback): portfinder itself
 * would find free the ports this process handed out or others claim.
 */
async function findPort(options: PortFinderOptions, since: number, mode: TryMode = FIRST): Promise<Tried> {
  const port = Number(options.port) || Number(options.startPort) || Number(basePort);
  const stopPort = Number(options.stopPort) || Number(highestPort);
  let startPort = options.startPort;
  if (!startPort) {
    startPort = port;
    if (startPort < 0) throw coded(Error(`Provided options.port(${port}) is less than 0, which are cannot be bound.`), 'ERR_OUT_OF_RANGE');
    if (stopPort < startPort) throw coded(Error(`Provided options.stopPort(${stopPort}) is less than options.port(${startPort})`), 'ERR_OUT_OF_RANGE');
  }
  const host = options.host ? await resolveListenHost(options.host) : '';
  const refusals = new Refusals();
  const where = (to: number) => `in range ${port}-${to}${options.host ? ` on ${options.host}` : ''}`;
  let from = port;
  const last = Math.min(stopPort, highestPort);
  if (mode.pass === TryPass.Reuse && isPortNumber(port) && port >= 1 && port <= last && last - port < OLDEST_FIRST_MAX) {
    // The last resort: the wanted ports handed out longest ago first (try-port.ts, inTryOrder); then
    // on past them as before, for the error portfinder gives. (A wider span goes in order, below.)
    for (const candidate of inTryOrder(Array.from({ length: last - port + 1 }, (_, i) => port + i), mode)) {
      const tried = await tryFree(candidate, host, options.host, since, refusals, mode);
      if (tried) return tried;
    }
    from = last + 1;
  }
  for (let candidate = from; candidate <= highestPort; candidate++) {
    if (!isPortNumber(candidate)) throw badPortError(candidate);
    const tried = await tryFree(candidate, host, options.host, since, refusals, mode);
    if (!tried) continue;
    if (candidate <= stopPort) return tried;
    drop(tried);
    const next = fallback(mode, refusals);
    if (next) return findPort(options, since, next);
    throw refusals.explain(coded(Error(`No open ports found in between ${startPort} and ${stopPort}`), 'ERR_PORTS_EXHAUSTED'), 1, where(candidate));
  }
  const next = fallback(mode, refusals);
  if (next) return findPort(options, since, next);
  throw refusals.explain(coded(Error('No open ports available'), 'ERR_PORTS_EXHAUSTED'), 1, where(highestPort));
}

/** portfinder checks every local address and the user's host; busy and privileged ports mean "next", other errors stop it. */
async function tryFree(port: number, host: string, wantedHost: string | undefined, since: number, refusals: Refusals, mode: TryMode): Promise<Tried | undefined> {
  const tried = await tryPort('', port, since, false, mode);
  if (refusals.note(tried.errno, port, tried.syscall) !== 0) {
    if (isPassedOver(tried.errno)) return undefined;
    throw listenError(tried.errno, tried.syscall, '', port);
  }
  if (host === '') return tried;
  let result;
  try {
    result = await checkListen(host, port);
  } catch (error) {
    drop(tried);
    throw error;
  }
  const { errno, syscall } = result;
  if (errno === 0) return tried;
  drop(tried);
  refusals.note(errno, port);
  if (errno === EADDRNOTAVAIL || errno === EINVAL) {
    throw coded(Error(`Provided host ${wantedHost} could NOT be bound. Please provide a different host address or hostname`), 'EADDRNOTAVAIL');
  }
  if (isPassedOver(errno)) return undefined;
  throw listenError(errno, syscall, host, port);
}

/** Hands tried ports out (lent) and settles a promise or calls back (error first), as portfinder does. */
function deliver<T>(work: Promise<T>, tried: (value: T) => Tried[], result: (value: T) => unknown, callback?: (err: Error, value: never) => void): Promise<never> | undefined {
  const delivered = work.then((value) => {
    for (const port of tried(value)) lend(port);
    return result(value);
  }) as Promise<never>;
  if (!callback) return delivered;
  delivered.then(
    (value) => callback(null as unknown as Error, value),
    (error: Error) => callback(error, undefined as never),
  );
  return undefined;
}

/**
 * Responds with the first port from `options.port` (or `startPort`, or
 * `basePort`, 8000) upward that is free on every local address (and on
 * `host`). A Promise when no callback is given.
 *
 * @example
 * import portfinder from 'portalloc/portfinder';
 * const port = await portfinder.getPortPromise({ port: 3000, stopPort: 3333 });
 * portfinder.getPort((err, port) => { if (!err) server.listen(port); });
 */
export function getPort(options?: PortFinderOptions): Promise<number>;
export function getPort(callback: PortfinderCallback): void;
export function getPort(options: PortFinderOptions | undefined, callback: PortfinderCallback): void;
export function getPort(options?: PortFinderOptions | PortfinderCallback, callback?: PortfinderCallback): Promise<number> | void {
  if (typeof options === 'function') {
    callback = options;
    options = {};
  }
  return deliver(findPort({ ...(options ?? {}) }, begin()), (tried) => [tried], (tried) => tried.port, callback);
}

/**
 * {@link getPort} as a Promise.
 * @example
 * import { getPortPromise } from 'portalloc/portfinder';
 * const port = await getPortPromise();
 */
export function getPortPromise(options?: PortFinderOptions): Promise<number> {
  return getPort(options);
}

/**
 * `count` ports, each the first free one above the previous. As in portfinder,
 * every call after the first goes on from the first call's start and stop
 * (portfinder's getPorts reuses the options object its first getPort filled
 * in), so running past `stopPort` fails with "No open ports found in between
 * <start> and <stop>". A failure carries the ports tried so far (still the
 * caller's, see {@link getPorts}) as `found`.
 */
async function findPorts(count: number, options: PortFinderOptions): Promise<Tried[]> {
  const ports: Tried[] = [];
  const since = begin();
  const startPort = options.startPort || Number(options.port) || Number(basePort);
  const stopPort = Number(options.stopPort) || Number(highestPort);
  try {
    for (let index = 0; index < count; index++) {
      const last = ports[ports.length - 1];
      ports.push(await findPort(last ? { ...options, port: last.port + 1, startPort, stopPort } : options, since));
    }
  } catch (error) {
    throw Object.assign(error as Error, { found: ports });
  }
  return ports;
}

/**
 * Responds with `count` ports, each the first free one above the previous.
 *
 * @example
 * import portfinder from 'portalloc/portfinder';
 * const [http, ws] = await portfinder.getPortsPromise(2, { port: 3000 });
 */
export function getPorts(count: number, options?: PortFinderOptions): Promise<number[]>;
export function getPorts(count: number, callback: PortsCallback): void;
export function getPorts(count: number, options: PortFinderOptions | undefined, callback: PortsCallback): void;
export function getPorts(count: number, options?: PortFinderOptions | PortsCallback, callback?: PortsCallback): Promise<number[]> | void {
  if (typeof options === 'function') {
    callback = options;
    options = {};
  }
  const found = findPorts(count, { ...(options ?? {}) });
  const partial = (error: Error & { found?: Tried[] }): Tried[] => {
    const tried = error.found ?? [];
    delete error.found;
    return tried;
  };
  if (!callback) {
    return deliver(
      found.catch((error) => {
        for (const tried of partial(error)) drop(tried);
        throw error;
      }),
      (tried) => tried,
      (tried) => tried.map((t) => t.port),
    );
  }
  const done = callback;
  found.then(
    (tried) => {
      for (const port of tried) lend(port);
      done(null as unknown as Error, tried.map((t) => t.port));
    },
    (error: Error) => {
      // portfinder calls back with the ports found before the failure, then undefined: they are handed out.
      const tried = partial(error);
      for (const port of tried) lend(port);
      done(error, [...tried.map((t) => t.port), undefined as unknown as number]);
    },
  );
}

/**
 * {@link getPorts} as a Promise.
 * @example
 * import { getPortsPromise } from 'portalloc/portfinder';
 * const ports = await getPortsPromise(3);
 */
export function getPortsPromise(count: number, options?: PortFinderOptions): Promise<number[]> {
  return getPorts(count, options);
}

/**
 * The next port in sequence: `port + 1`.
 * @example
 * import { nextPort } from 'portalloc/portfinder';
 * nextPort(8000); //=> 8001
 */
export function nextPort(port: number): number {
  return port + 1;
}

/**
 * The next socket path in sequence: `/tmp/portfinder.sock` -> `/tmp/portfinder1.sock`.
 * @example
 * import { nextSocket } from 'portalloc/portfinder';
 * nextSocket('/tmp/app1.sock'); //=> '/tmp/app2.sock'
 */
export function nextSocket(socketPath: string): string {
  const dir = path.dirname(socketPath);
  const name = path.basename(socketPath, '.sock');
  const match = name.match(/^([a-zA-z]+)(\d*)$/i)!;
  const index = (parseInt(match[2]!) || 0) + 1;
  return path.join(dir, `${match[1]}${index}.sock`);
}

async function findSocket(options: SocketFinderOptions): Promise<string> {
  const mode = options.mod || 0o755;
  let socketPath = options.path || `${basePath}.sock`;
  const dir = path.dirname(socketPath);
  const stats = await fs.promises.stat(dir).catch(() => undefined);
  if (!stats?.isDirectory()) await fs.promises.mkdir(dir, { mode, recursive: true });
  for (;;) {
    try {
      await fs.promises.stat(socketPath);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ENOENT') return socketPath;
      throw error;
    }
    socketPath = nextSocket(socketPath);
  }
}

/**
 * Responds with a Unix socket path that does not exist yet, from
 * `${basePath}.sock` on, creating its directory if needed.
 *
 * @example
 * import portfinder from 'portalloc/portfinder';
 * const socketPath = await portfinder.getSocketPromise({ path: '/tmp/app.sock' });
 */
export function getSocket(options?: SocketFinderOptions): Promise<string>;
export function getSocket(callback: SocketfinderCallback): void;
export function getSocket(options: SocketFinderOptions | undefined, callback: SocketfinderCallback): void;
export function getSocket(options?: SocketFinderOptions | SocketfinderCallback, callback?: SocketfinderCallback): Promise<string> | void {
  if (typeof options === 'function') {
    callback = options;
    options = {};
  }
  return deliver(findSocket({ ...(options ?? {}) }), () => [], (path) => path, callback);
}

/**
 * {@link getSocket} as a Promise.
 * @example
 * import { getSocketPromise } from 'portalloc/portfinder';
 * const socketPath = await getSocketPromise();
 */
export function getSocketPromise(options?: SocketFinderOptions): Promise<string> {
  return getSocket(options);
}

/** `import portfinder from 'portalloc/portfinder'`: the module itself, as portfinder's CommonJS export. */
const portfinder: Portfinder = exports;
export default portfinder;
