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
 * own sequential calls stay the originals'. Ports get-port locked are busy
 * for every drop-in.
 */
import dns from 'node:dns/promises';
import net from 'node:net';
import { getSystemErrorMap, inspect } from 'node:util';
import { threadId } from 'node:worker_threads';
import { allocate, backend, internalBinding } from '../allocate';
import { Claim, OLDEST_FIRST_MAX, TryPass } from '../binding';
import { CLAIM_MS } from '../coordinate';
import { config } from '../config';
import { deniedError, type PortallocError } from '../errors';
import { ephemeralRange, reservedPorts, zoneKnown } from '../options';
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
export async function tryPort(host: string, port: number, since: number, ipv6Only = false, mode: TryMode = FIRST): Promise<Tried> {
  if (!zoneKnown(host)) return { errno: EADDRNOTAVAIL, syscall: 'listen', port };
  // get-port's locks bind every drop-in: a port getPort() returned lately is nobody else's either.
  if (isLocked(port)) return { errno: EADDRINUSE, syscall: 'bind', port };
  const result = await internalBinding.tryPort(host, port, ipv6Only, coordinate ? mode.claim : Claim.None, since, mode.pass, lender);
  return { ...result, port };
}

/**
 * This thread's tag as a lender (bits 44-59 of a lent stamp, native/ledger.cc):
 * the main thread 0, a worker 1 to 65,535 (threadIds past that wrap, never to 0).
 */
export const lender = threadId === 0 ? 0 : ((threadId - 1) % 0xffff) + 1;

/** How a drop-in search tries its ports: the claim each try makes for other processes, and the ledger pass it takes. */
export interface TryMode {
  readonly claim: Claim;
  readonly pass: TryPass;
}

/**
 * A search's first mode: each port claimed, and taken if nobody in the
 * process has had it or this thread's drop-ins lent it (so sequential calls
 * answer as the original's do). A random try takes the strict pass and
 * claims by block instead (tryRandomPort).
 */
export const FIRST: TryMode = { claim: Claim.Port, pass: TryPass.Compat };

/**
 * The mode a search that found nothing in `mode` searches again in, or
 * undefined: first taking the ports this process handed out before the call
 * began, whoever had them (reuse, as allocate's second pass: this process's
 * own recent ports used the range up); then, when other processes' claims
 * stood in the way, without claims (giving way, as allocate does). The
 * originals would have found those ports free.
 */
export function fallback(mode: TryMode, refusals: Refusals): TryMode | undefined {
  if (mode.pass !== TryPass.Reuse) return { claim: mode.claim, pass: TryPass.Reuse };
  if (mode.claim !== Claim.None && refusals.claimed > 0) return { claim: Claim.None, pass: TryPass.Reuse };
  return undefined;
}

/**
 * The order a search in `mode` tries `ports` in: theirs, or, for the reuse
 * pass (a last resort), the ports handed out longest ago first (by the
 * ledger's handoff clock), so that it does not give a port another caller of
 * the process got a moment ago.
 */
export function inTryOrder(ports: readonly number[], mode: TryMode): readonly number[] {
  if (mode.pass !== TryPass.Reuse || ports.length < 2) return ports;
  const wanted = new Set(ports.filter((port) => isPortNumber(port) && port !== 0));
  let low = 65536;
  let high = 0;
  for (const port of wanted) [low, high] = [Math.min(low, port), Math.max(high, port)];
  // (A span of up to OLDEST_FIRST_MAX ports, as a batch's reuse pass.)
  if (wanted.size === 0 || high - low >= OLDEST_FIRST_MAX) return ports;
  const oldest = internalBinding.oldestFirst(low, high).filter((port) => wanted.has(port));
  return [...oldest, ...ports.filter((port) => !wanted.has(port))];
}

/** The caller hands a tried port out: no other caller gets it while it is young. */
export function lend(tried: Tried): void {
  internalBinding.lend(tried.port, CLAIM_MS, lender);
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

/**
 * One TCP connection attempt to host:port, for the checks that ask "does
 * something listen there?" (tcp-port-used, waitForPort): resolves `true` when
 * it is accepted, else the connect error (ECONNREFUSED: nothing listens), or
 * `false` when nothing answered within `limit` ms. An accepted connection is
 * ended politely (FIN, its data drained), not reset, so the server sees a
 * client that hung up rather than an ECONNRESET (unless it keeps its side
 * open longer than the limit); it resolves once that connection is closed.
 */
export function connectOnce(host: string, port: number, limit = 0): Promise<true | false | NodeJS.ErrnoException> {
  return new Promise((resolve) => {
    let socket: net.Socket;
    try {
      socket = net.connect({ host, port });
    } catch (error) {
      resolve(error as NodeJS.ErrnoException); // a port Node refuses to connect to (ERR_SOCKET_BAD_PORT)
      return;
    }
    let connected = false;
    if (limit > 0) socket.setTimeout(limit, () => socket.destroy());
    socket.once('error', (error) => {
      if (!connected) resolve(error);
      socket.destroy();
    });
    socket.once('close', () => resolve(connected || false));
    socket.once('connect', () => {
      connected = true;
      socket.resume();
      socket.end();
      // Resolved once closed: nothing of the check is left behind when the caller goes on (a caller that
      // then blocks, say on a JS-backend release, must not hold the FIN back). A server that keeps its
      // side open longer than the limit (or 1 s) is reset.
      socket.setTimeout(limit || 1000, () => socket.destroy());
    });
  });
}

/** Whether an errno means "taken here, try the next port" (refused binds count: the originals skip them). */
export function isBusy(errno: number): boolean {
  return errno === EADDRINUSE || isRefused(errno);
}

/**
 * What get-port and portfinder pass over: EADDRINUSE and EACCES (a privileged
 * port). Any other error stops them, EPERM (a policy that forbids bind) included.
 */
export function isPassedOver(errno: number): boolean {
  return errno === EADDRINUSE || errno === EACCES;
}

/** Whether the kernel refused the bind itself (a privileged port, or a policy that forbids bind). */
export function isRefused(errno: number): boolean {
  return errno === EACCES || errno === EPERM;
}

/**
 * The binds one drop-in call was refused. The drop-ins skip refused ports as
 * their originals do, but when they find nothing, their "no port found"
 * error names this as its `cause` (ERR_PORTS_DENIED): privileges or a sandbox,
 * not busy ports.
 */
export class Refusals {
  count = 0;
  errno = 0;
  lowest = 65536;
  /** Ports found busy only for another process's claim (tryPort's EADDRINUSE with syscall 'claim'). */
  claimed = 0;

  /** Notes a try's errno (and syscall: 'claim' for another process's claim); returns it. */
  note(errno: number, port: number, syscall?: string): number {
    if (errno === EADDRINUSE && syscall === 'claim') this.claimed++;
    if (isRefused(errno)) {
      this.count++;
      this.errno = errno;
      this.lowest = Math.min(this.lowest, port);
    }
    return errno;
  }

  /** The ERR_PORTS_DENIED error for `asked` ports looked for `where`, or undefined when no bind was refused. */
  cause(asked: number, where: string): PortallocError | undefined {
    return this.count === 0 ? undefined : deniedError(asked, this.count, this.errno, where, this.lowest);
  }

  /** `error` (a drop-in's "no port found"), with the refusals as its cause when there were any. */
  explain<E extends Error>(error: E, asked: number, where: string): E {
    const cause = this.cause(asked, where);
    if (cause) Object.defineProperty(error, 'cause', { value: cause, configurable: true, writable: true });
    return error;
  }
}

/** Where the next random port search goes on from (this thread's; undefined: a random start). */
let nextRandom: number | undefined;

/** Tries in a row, all refused, after which a random search gives up: every bind is refused here. */
const REFUSED_IN_A_ROW = 64;

/**
 * A random port for a drop-in that falls back to one (detect-port,
 * get-port-please), tried and lent as their numbered ports are, so that a
 * later call asking for that port by number gets it back while it is free, as
 * with the originals (whose random port is a listen(0)). Candidates are the
 * kernel's ephemeral range from bind(0)'s parity (the other half is left to
 * connect()), then the other parity: the first search from a random port,
 * each later one on from where the last stopped; each port is claimed for
 * other processes by its block, as `allocate`'s are. Undefined when none is
 * free; a search whose first tries are all refused stops early (the
 * refusals say why).
 */
export async function tryRandomPort(host: string, since: number, refusals: Refusals, ipv6Only = false, mode: TryMode = FIRST): Promise<Tried | undefined> {
  // (Never a port lent to another caller, as a numbered try may take one: listen(0) would not give it;
  // a search's last resort reuses, as any.)
  const random: TryMode = { claim: mode.claim === Claim.None ? Claim.None : Claim.Block, pass: mode.pass === TryPass.Reuse ? TryPass.Reuse : TryPass.Strict };
  const [low, high] = ephemeralRange();
  const size = high - low + 1;
  const parity = (low + 1) % 2;
  // On from the last random port (as a batch of the kernel's range goes on), so that the blocks
  // these ports are claimed by fill up: one claim for 16 calls, not one a call.
  let start = nextRandom !== undefined && nextRandom >= low && nextRandom <= high ? nextRandom : low + Math.floor(Math.random() * size);
  if (start % 2 !== parity) start = start === high ? low + ((low % 2) ^ parity) : start + 1;
  const reserved = reservedPorts(); // (never bind(0)'s answer either)
  const refusedBefore = refusals.count; // (one Refusals may serve a call's several searches)
  let tries = 0;
  for (const wanted of [parity, 1 - parity]) {
    for (let offset = 0; offset < size; offset++) {
      const port = low + ((start - low + offset) % size);
      if (port % 2 !== wanted || port === 0 || (reserved && reserved[port >> 3]! & (1 << (port & 7)))) continue;
      const tried = await tryPort(host, port, since, ipv6Only, random);
      if (tried.errno === 0) {
        nextRandom = port + 2;
        return tried;
      }
      tries++;
      if (!isBusy(refusals.note(tried.errno, port, tried.syscall))) return tried;
      if (refusals.count - refusedBefore === tries && tries >= REFUSED_IN_A_ROW) return undefined;
    }
  }
  return undefined;
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
