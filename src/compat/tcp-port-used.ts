/**
 * tcp-port-used 1.0.2, at `portalloc/tcp-port-used`: whether something
 * accepts TCP connections on a port, and waiting until that changes, with
 * tcp-port-used's functions, positional and object arguments, defaults,
 * results and error messages. "In use" means what it means there: a
 * connection to the host (default 127.0.0.1) is accepted. It hands no port
 * out, so the ledger has nothing to add: a port portalloc handed out, or
 * holds, is in use once something listens on it. See docs/compat.md.
 */
import { inspect } from 'node:util';
import { connectOnce } from './try-port';

/** The object form every function also takes. */
export interface TcpPortUsedOptions {
  port: number;
  /** The host to connect to (default '127.0.0.1'). */
  host?: string;
  /** waitForStatus: the state to wait for (true: in use, false: free). */
  inUse?: boolean;
  /** Milliseconds between checks: a positive integer, else the default (250). */
  retryTimeMs?: number;
  /** Milliseconds before rejecting with Error('timeout'): a positive integer, else the default (2000). */
  timeOutMs?: number;
}

const DEFAULT_HOST = '127.0.0.1';
const RETRY_MS = 250;
const TIMEOUT_MS = 2000;

/** tcp-port-used's test for an options object: a plain object, not an array, a date or a number. */
function isOptions(value: unknown): value is TcpPortUsedOptions {
  return Object.prototype.toString.call(value) === '[object Object]';
}

/** tcp-port-used's port test: a number (not a negative integer) up to 65535; anything else is "invalid port". */
function isPortValue(value: unknown): value is number {
  if (Object.prototype.toString.call(value) !== '[object Number]') return false;
  const port = Number(value);
  return !(Number.isInteger(port) && port < 0) && !(port > 65535);
}

function isPositiveInteger(value: unknown): value is number {
  return typeof value === 'number' && Number.isInteger(value) && value > 0;
}

/**
 * Resolves `true` when a TCP connection to `port` on `host` (default
 * 127.0.0.1) is accepted, `false` when it is refused (ECONNREFUSED); rejects
 * with any other connect error, and with `Error('invalid port: <port>')` for
 * a port that is not a number from 0 to 65535.
 *
 * @example
 * import { check } from 'portalloc/tcp-port-used';
 * if (await check(3000)) console.log('something listens on 3000');
 * await check({ port: 5432, host: 'db.internal' });
 */
export async function check(port: number | TcpPortUsedOptions, host?: string): Promise<boolean> {
  const options = isOptions(port) ? port : { port, host };
  if (!isPortValue(options.port)) throw new Error(`invalid port: ${inspect(options.port)}`);
  const result = await connectOnce(options.host ?? DEFAULT_HOST, options.port);
  if (result === true) return true;
  if (result !== false && result.code === 'ECONNREFUSED') return false;
  throw result;
}

/**
 * Resolves (with `undefined`) once `port` on `host` is in use (`inUse` true)
 * or free (`inUse` false), checking every `retryTimeMs` ms (250); rejects
 * with `Error('timeout')` after `timeOutMs` ms (2000), with
 * `Error('inUse must be a boolean')`, or with {@link check}'s errors.
 *
 * @example
 * import { waitForStatus } from 'portalloc/tcp-port-used';
 * await waitForStatus(3000, '127.0.0.1', true, 100, 5000);
 * await waitForStatus({ port: 3000, inUse: false, timeOutMs: 5000 });
 */
export function waitForStatus(port: number | TcpPortUsedOptions, host?: string, inUse?: boolean, retryTimeMs?: number, timeOutMs?: number): Promise<void> {
  const options = isOptions(port) ? port : { port, host, inUse, retryTimeMs, timeOutMs };
  if (typeof options.inUse !== 'boolean') return Promise.reject(new Error('inUse must be a boolean'));
  const wanted = options.inUse;
  const interval = isPositiveInteger(options.retryTimeMs) ? options.retryTimeMs : RETRY_MS;
  const timeout = isPositiveInteger(options.timeOutMs) ? options.timeOutMs : TIMEOUT_MS;
  return new Promise((resolve, reject) => {
    let done = false;
    let retry: NodeJS.Timeout | undefined;
    const finish = (error?: Error) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      clearTimeout(retry);
      if (error) reject(error);
      else resolve();
    };
    const timer = setTimeout(() => finish(new Error('timeout')), timeout);
    const attempt = () => {
      check(options.port, options.host).then(
        (used) => {
          if (used === wanted) finish();
          else if (!done) retry = setTimeout(attempt, interval);
        },
        (error: Error) => finish(error),
      );
    };
    attempt();
  });
}

/**
 * Resolves once nothing accepts connections on `port` at `host` (default
 * 127.0.0.1); {@link waitForStatus}'s defaults and errors.
 *
 * @example
 * import { waitUntilFreeOnHost } from 'portalloc/tcp-port-used';
 * await waitUntilFreeOnHost(3000, '127.0.0.1', 100, 5000);
 */
export function waitUntilFreeOnHost(port: number | TcpPortUsedOptions, host?: string, retryTimeMs?: number, timeOutMs?: number): Promise<void> {
  return waitForStatus(isOptions(port) ? { ...port, inUse: false } : { port, host, inUse: false, retryTimeMs, timeOutMs });
}

/**
 * {@link waitUntilFreeOnHost} on 127.0.0.1 (an object's `host` is ignored, as in tcp-port-used).
 *
 * @example
 * import { waitUntilFree } from 'portalloc/tcp-port-used';
 * server.close();
 * await waitUntilFree(3000, 100, 5000);
 */
export function waitUntilFree(port: number | TcpPortUsedOptions, retryTimeMs?: number, timeOutMs?: number): Promise<void> {
  return waitForStatus(isOptions(port) ? { ...port, host: DEFAULT_HOST, inUse: false } : { port, host: DEFAULT_HOST, inUse: false, retryTimeMs, timeOutMs });
}

/**
 * Resolves once something accepts connections on `port` at `host` (default
 * 127.0.0.1); {@link waitForStatus}'s defaults and errors.
 *
 * @example
 * import { waitUntilUsedOnHost } from 'portalloc/tcp-port-used';
 * spawn('node', ['server.js']);
 * await waitUntilUsedOnHost(3000, '127.0.0.1', 100, 5000);
 */
export function waitUntilUsedOnHost(port: number | TcpPortUsedOptions, host?: string, retryTimeMs?: number, timeOutMs?: number): Promise<void> {
  return waitForStatus(isOptions(port) ? { ...port, inUse: true } : { port, host, inUse: true, retryTimeMs, timeOutMs });
}

/**
 * {@link waitUntilUsedOnHost} on 127.0.0.1 (an object's `host` is ignored, as in tcp-port-used).
 *
 * @example
 * import { waitUntilUsed } from 'portalloc/tcp-port-used';
 * await waitUntilUsed(3000, 100, 5000);
 */
export function waitUntilUsed(port: number | TcpPortUsedOptions, retryTimeMs?: number, timeOutMs?: number): Promise<void> {
  return waitForStatus(isOptions(port) ? { ...port, host: DEFAULT_HOST, inUse: true } : { port, host: DEFAULT_HOST, inUse: true, retryTimeMs, timeOutMs });
}

/** The module's shape, for its default export (tcp-port-used's CommonJS `module.exports`). */
export interface TcpPortUsed {
  check: typeof check;
  waitForStatus: typeof waitForStatus;
  waitUntilFreeOnHost: typeof waitUntilFreeOnHost;
  waitUntilFree: typeof waitUntilFree;
  waitUntilUsedOnHost: typeof waitUntilUsedOnHost;
  waitUntilUsed: typeof waitUntilUsed;
}

/**
 * `import tcpPortUsed from 'portalloc/tcp-port-used'`: the module itself, as tcp-port-used's CommonJS export.
 * @example
 * import tcpPortUsed from 'portalloc/tcp-port-used';
 * await tcpPortUsed.waitUntilUsed(3000);
 */
const tcpPortUsed: TcpPortUsed = exports;
export default tcpPortUsed;
