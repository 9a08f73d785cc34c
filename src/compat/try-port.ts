/**
 * The one way the drop-ins try a port: could a Node server listen on it now,
 * and may this caller have it? Node (libuv) sets SO_REUSEADDR on every TCP
 * socket on Unix, so a port in TIME_WAIT passes, as it does for get-port,
 * portfinder and detect-port. Natively it is one socket: SO_REUSEADDR + bind +
 * listen on one dual-stack [::] socket covers every local IPv4 and IPv6
 * address, where get-port listens once per interface.
 *
 * Unlike the originals, a try goes through the process's ledger first
 * (docs/internals.md): a port another caller in the process holds (shared
 * holds too, which Node's listen would pass), is trying now, or was given by
 * portalloc's own API is busy here, and so is one another process claims.
 * Ports the drop-ins themselves handed out are not: their answers to their
 * own sequential calls stay the originals'.
 */
import dns from 'node:dns/promises';
import net from 'node:net';
import { getSystemErrorMap, inspect } from 'node:util';
import { allocate, backend, internalBinding } from '../allocate';
import { CLAIM_MS } from '../coordinate';
import { config } from '../config';
import { zoneKnown } from '../options';
import { isLocked, lockedPorts } from './locks';

export const EADDRINUSE = 98;
export const EACCES = 13;
export const EPERM = 1;
export const EADDRNOTAVAIL = 99;
export const EINVAL = 22;

/** A port tried: errno 0 when it is the caller's (until lend or drop). */
export interface Tried {
  errno: number;
  syscall: string;
  port: number;
  prior?: bigint;
  fresh?: boolean;
}

/** Cross-process claims for the drop-ins' ports: with the native backend, unless turned off. */
const coordinate = backend === 'native' && config.coordinate;

/** What a drop-in call reads when it begins: the ports lent after this are not its to take. */
export function begin(): number {
  return internalBinding.ledgerClock();
}

/**
 * Tries `port` at `host` ('' for every local address) for a call that began
 * at `since` ({@link begin}): errno 0 when a Node server could listen there
 * now and nobody else in this process (or, with claims, in another portalloc
 * process) may have it; the port is then the caller's until it calls
 * {@link lend} (it hands the port out) or {@link drop}.
 */
export async function tryPort(host: string, port: number, since: number, ipv6Only = false): Promise<Tried> {
  if (!zoneKnown(host)) return { errno: EADDRNOTAVAIL, syscall: 'listen', port };
  const result = await internalBinding.tryPort(host, port, ipv6Only, coordinate, since);
  return { ...result, port };
}

/** The caller hands a tried port out: no other caller gets it while it is young. */
export function lend(tried: Tried): void {
  internalBinding.lend(tried.port, CLAIM_MS);
}

/** The caller does not want a tried port after all. */
export function drop(tried: Tried): void {
  if (tried.errno === 0) internalBinding.dropPort(tried.port, tried.prior ?? 0n, tried.fresh ?? false);
}

/** Whether a Node server could listen on `port` now, without taking it (waitUntilFree). */
export async function checkListen(host: string, port: number, ipv6Only = false): Promise<{ errno: number; syscall: string }> {
  if (!zoneKnown(host)) return { errno: EADDRNOTAVAIL, syscall: 'listen' };
  return internalBinding.checkListen(host, port, ipv6Only);
}

/** Whether an errno means "taken here, try the next port" (refused binds count: the originals skip them). */
export function isBusy(errno: number): boolean {
  return errno === EADDRINUSE || errno === EACCES || errno === EPERM;
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

/** No ports to exclude: randomPort's fast path. */
export const NO_PORTS: readonly number[] = Object.freeze([]);

/**
 * A random free port on `host` ('' for every address), never one of
 * `exclude` nor one get-port locked: portalloc's own allocate(1), whose port
 * no other caller gets while it is young. Synchronous on both backends'
 * native-speed path (a single getPort() is mostly this call).
 */
export function randomPort(host: string, exclude: Iterable<number>): number {
  // (No Set for the commonest call, NO_PORTS: one pick is almost always the answer.)
  let skip = exclude === NO_PORTS ? undefined : new Set(exclude);
  for (;;) {
    const [port] = host === '' && !skip?.size ? allocate(1) : allocate(1, { ...(host === '' ? {} : { host }), ...(skip?.size ? { exclude: skip } : {}) });
    if (!isLocked(port!)) return port!;
    // A port get-port locked (a preferred one, or reserved) that the ledger has
    // let go: skip every locked port at once, not one a call (there are few:
    // random ports are kept apart by the ledger, not locked).
    skip ??= new Set();
    skip.add(port!);
    for (const taken of lockedPorts()) skip.add(taken);
  }
}
