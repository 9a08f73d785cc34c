/**
 * waitForPort and waitUntilFree: poll until a server listens on a port, or
 * until a server could listen on it again (what tcp-port-used is used for).
 */
import { rangeError, typeError, type PortallocError } from './errors';
import { checkListen, connectOnce, isBusy, listenError, resolveListenHost } from './compat/try-port';
import { checkHost, checkKeys, checkPort } from './options';

/** How {@link waitForPort} and {@link waitUntilFree} poll. */
export interface WaitOptions {
  /**
   * waitForPort: where to connect (default: loopback, 127.0.0.1 then ::1).
   * waitUntilFree: where a server must be able to listen (default: every local address).
   */
  readonly host?: string;
  /** Milliseconds before the wait rejects with code 'ETIMEDOUT' (default 10000; `Infinity` waits forever). */
  readonly timeout?: number;
  /** Milliseconds between checks (default 100). */
  readonly interval?: number;
}

const WAIT_KEYS = new Set(['host', 'timeout', 'interval']);

function checkWaitOptions(port: unknown, options: unknown): { port: number; host?: string; timeout: number; interval: number } {
  const checked = checkPort('port', port, 1);
  const { host, timeout = 10_000, interval = 100 } = checkKeys(options, WAIT_KEYS) as WaitOptions;
  checkHost(host);
  if (typeof timeout !== 'number') throw typeError('options.timeout', 'a number of milliseconds (>= 0, or Infinity)', timeout);
  if (Number.isNaN(timeout) || timeout < 0) throw rangeError('options.timeout', 'a number of milliseconds (>= 0, or Infinity)', timeout);
  if (typeof interval !== 'number') throw typeError('options.interval', 'a number of milliseconds (> 0)', interval);
  if (!Number.isFinite(interval) || interval <= 0) throw rangeError('options.interval', 'a finite number of milliseconds (> 0)', interval);
  return { port: checked, ...(host === undefined ? {} : { host }), timeout, interval };
}

/**
 * Whether a TCP connection to host:port is accepted within `limit` ms
 * (try-port.ts, connectOnce); a failure other than "nothing listens" (a host
 * name that does not resolve, a network that cannot be reached) is kept in
 * `seen.error`, for the timeout's message.
 */
async function accepts(host: string, port: number, limit: number, seen: { error?: NodeJS.ErrnoException }): Promise<boolean> {
  const result = await connectOnce(host, port, limit);
  if (result instanceof Error && result.code !== 'ECONNREFUSED') seen.error = result;
  return result === true;
}

/** Polls `test` until it is true, or rejects with code 'ETIMEDOUT' once `timeout` ms have passed. */
async function poll(test: () => Promise<boolean>, timeout: number, interval: number, timedOut: () => PortallocError): Promise<void> {
  const deadline = Date.now() + timeout;
  for (;;) {
    if (await test()) return;
    const left = deadline - Date.now();
    if (left <= 0) throw timedOut();
    await new Promise((resolve) => setTimeout(resolve, Math.min(interval, left)));
  }
}

function timeoutError(message: string, port: number, timeout: number, host: string | undefined, cause?: NodeJS.ErrnoException): PortallocError {
  const last = cause ? ` (the last try: ${cause.code ?? cause.message}${cause.code === 'ENOTFOUND' ? `, ${host} does not resolve` : ''})` : '';
  const error = new Error(`portalloc: ${message} within ${timeout} ms${last}`, cause ? { cause } : undefined) as PortallocError & { timeout: number };
  error.code = 'ETIMEDOUT';
  error.port = port;
  if (host !== undefined) error.address = host;
  error.timeout = timeout;
  return error;
}

/**
 * Resolves once a server accepts TCP connections on `port` (at `host`, or on
 * loopback: 127.0.0.1 or ::1). Rejects with `code: 'ETIMEDOUT'` after
 * `timeout` ms (default 10 s). A bound socket that does not listen (a
 * `reserve`) is not listening.
 *
 * @example
 * import { waitForPort } from 'portalloc';
 * spawn('node', ['server.js', '--port', String(port)]);
 * await waitForPort(port, { timeout: 5000 });
 */
export async function waitForPort(port: number, options?: WaitOptions): Promise<void> {
  const { port: checked, host, timeout, interval } = checkWaitOptions(port, options);
  const hosts = host === undefined ? ['127.0.0.1', '::1'] : [host];
  const limit = Math.max(interval, 1000);
  // (A host name that does not resolve yet is waited for: a container's name, say, resolves once it starts.)
  const seen: { error?: NodeJS.ErrnoException } = {};
  await poll(
    async () => {
      seen.error = undefined;
      for (const candidate of hosts) if (await accepts(candidate, checked, limit, seen)) return true;
      return false;
    },
    timeout,
    interval,
    () => timeoutError(`nothing listened on ${host ?? 'loopback'} port ${checked}`, checked, timeout, host, seen.error),
  );
}

/**
 * Resolves once a Node server could listen on `port` again (on every local
 * address, or on `host`): the server that had it closed. A port in TIME_WAIT
 * counts as free, as it does for Node. Rejects with `code: 'ETIMEDOUT'` after
 * `timeout` ms (default 10 s), and with the system error when `host` is not
 * an address of this machine.
 *
 * @example
 * import { waitUntilFree } from 'portalloc';
 * child.kill();
 * await waitUntilFree(3000, { timeout: 5000 });
 */
export async function waitUntilFree(port: number, options?: WaitOptions): Promise<void> {
  const { port: checked, host, timeout, interval } = checkWaitOptions(port, options);
  const address = host === undefined ? '' : await resolveListenHost(host);
  await poll(
    async () => {
      const { errno, syscall } = await checkListen(address, checked);
      if (errno !== 0 && !isBusy(errno)) throw listenError(errno, syscall, address, checked);
      return errno === 0;
    },
    timeout,
    interval,
    () => timeoutError(`port ${checked} was still in use${host === undefined ? '' : ` on ${host}`}`, checked, timeout, host),
  );
}
