/**
 * The core API: allocate, allocateAsync, reserve, reserveAsync, isFree. Every
 * call is one batch on the backend (backend.ts), planned by options.ts; the
 * ledger and the claims behind the backend keep callers apart
 * (docs/internals.md).
 */
import { backend, binding } from './backend';
import type { BatchOutcome, BatchRequest } from './binding';
import { giveWay, record, startOf } from './coordinate';
import { deniedError, exhaustedError, systemError, timeWaitRefusedError, type PortallocError } from './errors';
import { checkArguments, plan, sharedUnsupported, whereLooked, type AllocateOptions, type CheckOptions, type Plan, type ReserveOptions } from './options';

export { backend } from './backend';

/** The running backend's raw functions, for portalloc's own modules (not exported by the package). */
export const internalBinding = binding;

/** Ports held by bound, never-listening sockets, until released. */
export interface Reservation {
  /** The held ports, distinct. */
  readonly ports: readonly number[];
  /**
   * The held sockets, one per port in the order of `ports` (for protocol
   * `'both'`: the TCP sockets, then the UDP ones). Close-on-exec: pass them to
   * a child on purpose, as stdio entries.
   */
  readonly fds: readonly number[];
  /** Whether a consumer that sets SO_REUSEADDR may bind while the hold lasts. */
  readonly shared: boolean;
  /** Whether `release()` or `detach()` has run. */
  readonly released: boolean;
  /** Lets a SO_REUSEADDR consumer (Node's net) bind and listen while held; idempotent. */
  share(): void;
  /** Closes every held socket; idempotent. */
  release(): void;
  /**
   * Hands the sockets over: the reservation forgets them without closing them
   * (it is released, and neither `release()` nor garbage collection will close
   * them) and returns the fds, which the caller now owns, for instance for
   * `server.listen({ fd })` in this process. Native backend only.
   */
  detach(): number[];
  /** `using r = reserve(3)` releases at the end of the scope. */
  [Symbol.dispose](): void;
}

function releasedError(what: string): PortallocError {
  const error = new Error(`portalloc: ${what} on a released reservation: its ports are no longer held`) as PortallocError;
  error.code = 'ERR_RESERVATION_RELEASED';
  return error;
}

/** Marks the reservations this module made (spawnWithSockets takes no look-alikes). */
const RESERVATION = Symbol('portalloc.reservation');

/** Whether `value` is a Reservation that reserve() made. */
export function isReservation(value: unknown): value is Reservation {
  return typeof value === 'object' && value !== null && (value as { [RESERVATION]?: boolean })[RESERVATION] === true;
}

class Hold implements Reservation {
  readonly [RESERVATION] = true;
  readonly ports: readonly number[];
  readonly fds: readonly number[];
  #hold: unknown;
  #shared: boolean;
  #released = false;

  constructor(ports: number[], fds: number[], hold: unknown, shared: boolean) {
    this.ports = Object.freeze(ports);
    this.fds = Object.freeze(fds);
    this.#hold = hold;
    this.#shared = shared;
  }

  get shared(): boolean {
    return this.#shared;
  }

  get released(): boolean {
    return this.#released;
  }

  share(): void {
    if (this.#released) throw releasedError('share()');
    if (this.#shared) return;
    if (backend === 'js') throw sharedUnsupported();
    const errno = binding.share(this.#hold);
    if (errno !== 0) throw systemError(errno, 'setsockopt', { hint: 'SO_REUSEADDR on a held socket' });
    this.#shared = true;
  }

  release(): void {
    if (this.#released) return;
    this.#released = true;
    binding.release(this.#hold);
    this.#hold = undefined;
  }

  detach(): number[] {
    if (this.#released) throw releasedError('detach()');
    if (backend === 'js') {
      const error = new Error('portalloc: detach() needs the native backend: the JS backend holds ports with node:net servers in a worker thread') as PortallocError;
      error.code = 'ERR_PORTALLOC_UNSUPPORTED';
      throw error;
    }
    this.#released = true;
    binding.detach(this.#hold);
    this.#hold = undefined;
    return [...this.fds];
  }

  [Symbol.dispose](): void {
    this.release();
  }

  get [Symbol.toStringTag](): string {
    return 'Reservation';
  }

  [Symbol.for('nodejs.util.inspect.custom')](_depth: number, options: object, inspect: (value: unknown, options: object) => string): string {
    const { ports, fds, shared, released } = this;
    return `Reservation ${inspect({ ports, fds, shared, released }, options)}`;
  }
}

const EADDRNOTAVAIL = 99;
const EMFILE = 24;
const EAFNOSUPPORT = 97;
const ENOSPC = 28;

/** Throws the error an unsuccessful outcome stands for. */
function settle(outcome: BatchOutcome, { request }: Plan): { ports: number[]; fds?: number[]; hold?: unknown } {
  if ('ports' in outcome) return outcome;
  if ('exhausted' in outcome) {
    if (outcome.found === 0 && outcome.refused > 0) throw deniedError(request.count, outcome.refused, outcome.refusedErrno, whereLooked(request), request.rangeFrom || request.ephemeralLow);
    throw exhaustedError(request.count, outcome.found, whereLooked(request));
  }
  if (outcome.errno === ENOSPC && outcome.syscall === 'timewait') throw timeWaitRefusedError(outcome.port);
  const address = request.host === '' ? undefined : request.host;
  const hints: Record<number, string> = {
    [EADDRNOTAVAIL]: `${request.host} is not an address of this machine`,
    [EMFILE]: 'a reservation holds a socket per port: ask for fewer ports or raise ulimit -n',
    [EAFNOSUPPORT]: 'this process has no IPv6',
  };
  throw systemError(outcome.errno, outcome.syscall, { address, port: outcome.port, hint: hints[outcome.errno] });
}

/** The request with where coordinated batches go on from. */
function prepared(planned: Plan): BatchRequest {
  const start = startOf(planned.request, planned.ascending);
  return start === planned.request.start ? planned.request : { ...planned.request, start };
}

/** Runs a planned batch on this thread, giving way as coordinate.ts says. */
function run(planned: Plan): { ports: number[]; fds?: number[]; hold?: unknown } {
  let request = prepared(planned);
  let outcome = binding.allocate(request);
  for (let attempt = 0, instead; (instead = giveWay(outcome, request, attempt)); attempt++) outcome = binding.allocate((request = instead));
  record(request, outcome);
  closeProbeSoon();
  return settle(outcome, planned);
}

/** {@link run} off the main thread. */
async function runAsync(planned: Plan): Promise<{ ports: number[]; fds?: number[]; hold?: unknown }> {
  let request = prepared(planned);
  let outcome = await binding.allocateAsync(request);
  for (let attempt = 0, instead; (instead = giveWay(outcome, request, attempt)); attempt++) outcome = await binding.allocateAsync((request = instead));
  record(request, outcome);
  return settle(outcome, planned);
}

let probeOpen = false;
/** allocate(1)'s plan, made once: the commonest call. */
let single: Plan | undefined;

/**
 * Synchronous batches check TCP ports with one socket (native/probe.h)
 * instead of one per port; it stays open while the thread runs on (a loop of
 * calls opens it once) and closes when the event loop next turns.
 */
function closeProbeSoon(): void {
  if (probeOpen || !binding.closeProbe) return;
  probeOpen = true;
  setImmediate(() => {
    probeOpen = false;
    binding.closeProbe!();
  }).unref();
}

function toReservation(result: { ports: number[]; fds?: number[]; hold?: unknown }, planned: Plan): Reservation {
  return new Hold(result.ports, result.fds ?? [], result.hold, planned.request.shared);
}

/**
 * Returns `count` distinct ports, each of which could be bound when checked
 * (the native backend checks TCP ports of the kernel's range with one socket,
 * native/probe.h; others with a socket per port), and closes every socket
 * before it returns. No two callers get the same port: calls at the same time
 * on any thread of this process never do, and a port returned stays out of
 * every later call of this process for 20 s (`PORTALLOC_CLAIM_MS`), unless
 * its range has no other free port left (then the ports handed out before the
 * call began are reused, never one held or in flight); with the native
 * backend, processes that allocate at the same time get disjoint ports
 * (claims by abstract unix sockets: docs/internals.md; in a range of under
 * 512 ports that other processes use too, a process over its share reuses
 * its own ports 25 ms after handing them out). For ports held until
 * you release them, use {@link reserve}.
 *
 * @example
 * import { allocate } from 'portalloc';
 * const [http, grpc] = allocate(2);
 * const ports = allocate(1000, { range: [20000, 29999] });
 * // For a program you do not control: nothing else binds it for 60 s, a Node server can.
 * const [socks] = allocate(1, { reserve: 'timewait' });
 */
export function allocate(count: number, options?: AllocateOptions): number[] {
  const planned = count === 1 && options === undefined ? (single ??= plan(1, undefined, binding, 'allocate', backend)) : plan(count, options, binding, 'allocate', backend);
  return run(planned).ports;
}

/**
 * {@link allocate} off the main thread: the batch runs on libuv's thread pool.
 *
 * @example
 * import { allocateAsync } from 'portalloc';
 * const ports = await allocateAsync(10_000);
 */
export async function allocateAsync(count: number, options?: AllocateOptions): Promise<number[]> {
  return (await runAsync(plan(count, options, binding, 'allocate', backend))).ports;
}

/**
 * Returns `count` distinct ports held by bound, never-listening sockets until
 * `release()`, garbage collection, or the end of the thread. Exclusive by
 * default: no other socket can bind them, a Node server neither. Like
 * `allocate`, it never returns a port another caller of this process holds,
 * nor one another process claims, nor (while the range has other free ports)
 * one another caller was given within the window.
 *
 * @example
 * import { reserve } from 'portalloc';
 * using hold = reserve(3, { shared: true });
 * server.listen(hold.ports[0]); // Node sets SO_REUSEADDR: binds while held
 */
export function reserve(count: number, options?: ReserveOptions): Reservation {
  const planned = plan(count, options, binding, 'reserve', backend);
  return toReservation(run(planned), planned);
}

/**
 * {@link reserve} off the main thread.
 *
 * @example
 * import { reserveAsync } from 'portalloc';
 * const hold = await reserveAsync(5000, { shared: true });
 */
export async function reserveAsync(count: number, options?: ReserveOptions): Promise<Reservation> {
  const planned = plan(count, options, binding, 'reserve', backend);
  return toReservation(await runAsync(planned), planned);
}

/**
 * Whether `port` could be bound now: a bind without SO_REUSEADDR succeeds on
 * the host (default: every local address, IPv4 and IPv6). Ports held by a
 * `reserve`, in use, or in TIME_WAIT are not free; privileged ports are not
 * free for an unprivileged process.
 *
 * @example
 * import { isFree } from 'portalloc';
 * if (!isFree(8080)) console.log('8080 is taken');
 */
export function isFree(port: number, options?: CheckOptions): boolean {
  const checked = checkArguments(port, options, binding);
  const { errno, syscall } = binding.checkFree(checked.host, checked.protocol, checked.port);
  if (errno === 0) return true;
  if (errno === 98 || errno === 13) return false;
  const hint = errno === EADDRNOTAVAIL ? `${checked.host} is not an address of this machine` : errno === EAFNOSUPPORT ? 'this process has no IPv6' : undefined;
  throw systemError(errno, syscall, { address: checked.host || undefined, port: checked.port, hint });
}
