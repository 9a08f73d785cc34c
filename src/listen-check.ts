/**
 * The check the compatibility APIs make: could a Node server listen on this
 * port now? Node (libuv) sets SO_REUSEADDR on every TCP socket on Unix, so a
 * port in TIME_WAIT passes, as it does for get-port, portfinder and
 * detect-port. Natively it is one socket: SO_REUSEADDR + bind + listen on one
 * dual-stack [::] socket covers every local IPv4 and IPv6 address, where
 * get-port listens once per interface. The JS backend listens once with
 * node:net on the same default host, which is also dual-stack.
 */
import dns from 'node:dns/promises';
import net from 'node:net';
import { getSystemErrorMap, inspect } from 'node:util';
import { allocate, backend, internalBinding } from './allocate';
import { claim, isTaken, takenPorts } from './locks';

export const EADDRINUSE = 98;
export const EACCES = 13;
export const EADDRNOTAVAIL = 99;
export const EINVAL = 22;

/** The addon's checkListen, when the addon loaded. */
const nativeCheck = internalBinding.checkListen?.bind(internalBinding);

/** What one check found: errno 0 when a Node server could listen now. */
export interface CheckResult {
  errno: number;
  syscall: string;
}

function checkWithNode(host: string, port: number, ipv6Only: boolean): Promise<CheckResult> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.unref();
    server.once('error', (error: NodeJS.ErrnoException) => {
      resolve({ errno: typeof error.errno === 'number' ? Math.abs(error.errno) : EINVAL, syscall: error.syscall ?? 'listen' });
    });
    const options: net.ListenOptions = host === '' ? { port } : { port, host, ipv6Only };
    server.listen(options, () => server.close(() => resolve({ errno: 0, syscall: 'listen' })));
  });
}

/**
 * Whether a Node server could listen on `port` at `host` ('' for every local
 * address, as Node's default host) now. `host` must be an IP literal.
 * Synchronous with the addon, so a caller that locks right after never
 * interleaves with another call; the JS backend's answer is asynchronous.
 */
export function checkListen(host: string, port: number, ipv6Only = false): CheckResult | Promise<CheckResult> {
  if (nativeCheck) return nativeCheck(host, port, ipv6Only);
  return checkWithNode(host, port, ipv6Only);
}

/** Whether an errno means "taken here, try the next port". */
export function isBusy(errno: number): boolean {
  return errno === EADDRINUSE || errno === EACCES;
}

/** The IP literal Node's listen() would bind for a host name: dns.lookup's first answer. */
export async function resolveListenHost(host: string): Promise<string> {
  if (net.isIP(host) !== 0) return host;
  const { address } = await dns.lookup(host);
  return address;
}

/**
 * The error Node's listen() gives, same message and properties:
 * `listen EADDRNOTAVAIL: address not available 192.0.2.1:3000`.
 */
export function listenError(errno: number, syscall: string, address: string, port: number): NodeJS.ErrnoException {
  const [code, description] = getSystemErrorMap().get(-errno) ?? [`E${errno}`, 'unknown error'];
  if (syscall === 'bind') syscall = 'listen'; // Node names a failed bind within listen() 'listen'
  const where = address === '' ? `:::${port}` : `${address}:${port}`;
  const error = new Error(`${syscall} ${code}: ${description} ${where}`) as NodeJS.ErrnoException & { address: string; port: number };
  error.code = code;
  error.errno = -errno;
  error.syscall = syscall;
  error.address = address === '' ? '::' : address;
  error.port = port;
  return error;
}

/** Whether Node's listen() would accept this value as a port. */
export function isPortNumber(port: unknown): port is number {
  return typeof port === 'number' && Number.isInteger(port) && port >= 0 && port <= 65535;
}

/** Node's own RangeError for a bad port (ERR_SOCKET_BAD_PORT). */
export function badPortError(port: unknown): RangeError {
  const received = typeof port === 'number' || typeof port === 'string' ? `type ${typeof port} (${inspect(port)})` : inspect(port, { depth: 0 });
  const error = new RangeError(`options.port should be >= 0 and < 65536. Received ${received}.`) as RangeError & { code: string };
  error.code = 'ERR_SOCKET_BAD_PORT';
  return error;
}

/**
 * A random free port from the kernel, on `host` ('' for every address), never
 * one of `exclude` nor one another call of this process has taken (the kernel
 * may well return a port it just gave: then it asks again). The port comes
 * back claimed (see locks.ts): the caller's own await for this function's
 * promise would otherwise leave a gap in which a concurrent call could pick
 * the same port. The caller turns the claim into a lock, or drops it later.
 * Native: the port itself, at once (a single getPort() is mostly this call,
 * and an async function around it costs a tenth of it); JS: a promise.
 */
export function randomPort(host: string, exclude: Iterable<number>): number | Promise<number> {
  if (backend === 'js') return randomListenPort(host, new Set(exclude));
  // (No Set for the commonest call, NO_PORTS: one native pick is almost always the answer.)
  let skip = exclude === NO_PORTS ? undefined : new Set(exclude);
  for (;;) {
    // The core's pick: one native call.
    const [port] = host === '' && !skip?.size ? allocate(1) : allocate(1, { ...(host === '' ? {} : { host }), ...(skip?.size ? { exclude: skip } : {}) });
    if (!isTaken(port!)) {
      claim(port!);
      return port!;
    }
    // The scan came round to ports this process locked (its coordination forgets
    // past 4,096 ports; locks last 15-30 s): skip all of them at once, not one a call.
    skip ??= new Set();
    skip.add(port!);
    for (const taken of takenPorts()) skip.add(taken);
  }
}

/** No ports to exclude: randomPort's fast path. */
export const NO_PORTS: readonly number[] = Object.freeze([]);

/** randomPort on the JS backend: a Node server on port 0 (a round trip to its worker costs more). */
async function randomListenPort(host: string, skip: Set<number>): Promise<number> {
  for (;;) {
    const port = await listenAnyPort(host);
    if (!isTaken(port) && !skip.has(port)) {
      claim(port);
      return port;
    }
  }
}

/** The port the kernel gives a Node server listening on port 0 at `host`, once it has closed. */
function listenAnyPort(host: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.unref();
    server.once('error', (error: NodeJS.ErrnoException) => {
      const errno = typeof error.errno === 'number' ? Math.abs(error.errno) : EINVAL;
      reject(listenError(errno, error.syscall ?? 'listen', host, 0));
    });
    server.listen(host === '' ? { port: 0 } : { port: 0, host }, () => {
      const { port } = server.address() as net.AddressInfo;
      server.close(() => resolve(port));
    });
  });
}
