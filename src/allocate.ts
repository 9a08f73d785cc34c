/**
 * The core API: allocate, allocateAsync, reserve, reserveAsync, isFree.
 */
import { loadNative, type BatchOutcome, type BatchRequest, type Binding } from './binding';
import { exhaustedError, rangeError, systemError, typeError, unsupportedError, type PortallocError } from './errors';
import { JsBinding } from './js-backend';
import { checkArguments, plan, whereLooked, type AllocateOptions, type CheckOptions, type Plan, type ReserveOptions } from './options';
import { checkHandoff, COORDINATE_BY_DEFAULT, Coordinator, type HandoffMode } from './coordinate';

const native = loadNative();
const binding: Binding = native ?? new JsBinding();

/** The running backend's raw functions, for portalloc's own modules (not exported by the package). */
export const internalBinding: Binding = binding;

/**
 * Which backend runs: `'native'` (the C++ addon: raw socket/bind/getsockname
 * in batches) or `'js'` (node:net in a worker thread, where the addon cannot
 * load or with `PORTALLOC_BACKEND=js`).
 *
 * @example
 * import { backend } from 'portalloc';
 * console.log(backend); // 'native'
 */
export const backend: 'native' | 'js' = native ? 'native' : 'js';

const coordinator = new Coordinator(binding);

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
  /** Whether `release()` has run. */
  readonly released: boolean;
  /** Lets a SO_REUSEADDR consumer (Node's net) bind and listen while held; idempotent. */
  share(): void;
  /** Closes every held socket; idempotent. */
  release(): void;
  /** `using r = reserve(3)` releases at the end of the scope. */
  [Symbol.dispose](): void;
}

class Hold implements Reservation {
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
    if (this.#released) {
      const error = new Error('portalloc: share() on a released reservation: its ports are no longer held') as PortallocError;
      error.code = 'ERR_RESERVATION_RELEASED';
      throw error;
    }
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

function sharedUnsupported(): PortallocError {
  return unsupportedError(
    'shared holds need the native backend: node:net cannot set SO_REUSEADDR on a socket after it is bound. ' +
      'Use an exclusive reserve(), or install portalloc where its addon loads.',
  );
}

/** Throws the error an unsuccessful outcome stands for. */
function settle(outcome: BatchOutcome, { request }: Plan): { ports: number[]; fds?: number[]; hold?: unknown } {
  if ('ports' in outcome) return outcome;
  if ('exhausted' in outcome) throw exhaustedError(request.count, outcome.found, whereLooked(request));
  const address = request.host === '' ? undefined : request.host;
  const hint = outcome.errno === 99 ? `${request.host} is not an address of this machine` : outcome.errno === 24 ? 'each port of a batch holds a socket until the batch is complete: ask for fewer ports or raise ulimit -n' : outcome.errno === 97 ? 'this process has no IPv6' : undefined;
  throw systemError(outcome.errno, outcome.syscall, { address, port: outcome.port, hint });
}

function planReserve(count: unknown, options: ReserveOptions | undefined): Plan {
  const planned = plan(count, options, binding, true);
  if (planned.request.shared && backend === 'js') throw sharedUnsupported();
  return planned;
}

function toReservation(outcome: BatchOutcome, planned: Plan): Reservation {
  const { ports, fds = [], hold } = settle(outcome, planned);
  return new Hold(ports, fds, hold, planned.request.shared);
}

/**
 * Returns `count` distinct ports, each of which could be bound when checked.
 * The native backend checks TCP ports of the kernel's ephemeral range with
 * one socket (native/probe.h: a bind steered to each port, then let go),
 * others with a socket per port held until the batch is complete; no port
 * appears twice, calls running at the same time in this process get
 * different ports, and every socket is closed before it returns (the
 * probe's when the event loop next turns). For ports held until you release
 * them, use {@link reserve}. With the native
 * backend, processes that allocate at the same time get disjoint ports and
 * this process does not return a port twice for at least 20 s (claims by
 * abstract unix sockets, one per block of 32 ports: see docs/handoff.md).
 *
 * @example
 * import { allocate } from 'portalloc';
 * const [http, grpc] = allocate(2);
 * const ports = allocate(1000, { range: [20000, 29999] });
 * // For a program you do not control: nothing else binds it for 60 s, a Node server can.
 * const [socks] = allocate(1, { reserve: 'timewait' });
 */
export function allocate(count: number, options?: AllocateOptions): number[] {
  const planned = count === 1 && options === undefined ? (single ??= plan(1, undefined, binding, false)) : plan(count, options, binding, false);
  const mode = checkHandoff(options, typeError);
  if (mode.timeWait) return settle(timeWaitBinding().timeWait!(timeWaitRequest(planned)), planned).ports;
  closeProbeSoon();
  const cross = crossProcess(mode);
  if (mode.coordinate === false || (mode.coordinate === undefined && !COORDINATE_BY_DEFAULT)) return settle(binding.allocate(planned.request), planned).ports;
  let request = coordinator.prepare(planned.request, cross, options?.order === 'ascending');
  let outcome = binding.allocate(request);
  for (let next; (next = giveWay(outcome, request, planned, cross, options)); ) outcome = binding.allocate((request = next));
  coordinator.record(outcome, request);
  return settle(outcome, planned).ports;
}

let probeOpen = false;
/** allocate(1)'s plan, made once: the commonest call, and one port never runs on two threads. */
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

/**
 * {@link allocate} off the main thread: the batch runs on libuv's thread pool.
 *
 * @example
 * import { allocateAsync } from 'portalloc';
 * const ports = await allocateAsync(10_000);
 */
export async function allocateAsync(count: number, options?: AllocateOptions): Promise<number[]> {
  const planned = plan(count, options, binding, false);
  const mode = checkHandoff(options, typeError);
  if (mode.timeWait) return settle(await timeWaitBinding().timeWaitAsync!(timeWaitRequest(planned)), planned).ports;
  const cross = crossProcess(mode);
  if (mode.coordinate === false || (mode.coordinate === undefined && !COORDINATE_BY_DEFAULT)) return settle(await binding.allocateAsync(planned.request), planned).ports;
  let request = coordinator.prepare(planned.request, cross, options?.order === 'ascending');
  let outcome = await binding.allocateAsync(request);
  for (let next; (next = giveWay(outcome, request, planned, cross, options)); ) outcome = await binding.allocateAsync((request = next));
  coordinator.record(outcome, request);
  return settle(outcome, planned).ports;
}

/** Whether a coordinated batch claims blocks across processes (native only). */
function crossProcess(mode: HandoffMode): boolean {
  if (mode.coordinate === true && backend === 'js') {
    throw unsupportedError(
      'options.coordinate: true needs the native backend: node:net cannot claim abstract unix socket names in a batch. ' +
        'Omit it (this process still never hands out a port twice within 20 s) or install portalloc where its addon loads.',
    );
  }
  return backend === 'native';
}

/**
 * After a coordinated batch that failed for want of ports or of fds,
 * coordination steps aside, one step at a time, and returns the batch to run
 * again (undefined: the outcome stands). Out of ports: first this process
 * forgets which ports it handed out (other processes' claims still count),
 * then the batch runs plain. Out of fds: every claim is let go, and the batch
 * runs plain.
 */
function giveWay(outcome: BatchOutcome, request: BatchRequest, planned: Plan, cross: boolean, options: AllocateOptions | undefined): BatchRequest | undefined {
  if (request === planned.request) return undefined; // plain already
  if ('exhausted' in outcome) {
    if (cross && coordinator.remembersPorts) {
      coordinator.forgetPorts();
      return coordinator.prepare(planned.request, cross, options?.order === 'ascending');
    }
    coordinator.forgetPorts();
    return planned.request;
  }
  if ('errno' in outcome && (outcome.errno === 24 || outcome.errno === 23)) {
    if (cross) coordinator.releaseAll();
    return planned.request;
  }
  return undefined;
}

function timeWaitBinding(): Binding {
  if (!binding.timeWait || !binding.timeWaitAsync) {
    throw unsupportedError(
      "reserve: 'timewait' needs the native backend: node:net sets SO_REUSEADDR before it binds, so its bind could land on a port " +
        'that another process holds shared or that is already in TIME_WAIT, and hand that out. Install portalloc where its addon loads.',
    );
  }
  return binding;
}

/** The batch for a TIME_WAIT reservation: TCP on a loopback address. */
function timeWaitRequest({ request }: Plan): BatchRequest {
  if (request.protocol !== 1) throw rangeError('options.protocol', "'tcp' with reserve: 'timewait' (TIME_WAIT is a TCP state)", ['udp', 'udp', 'both'][request.protocol - 1]);
  const host = request.host === '' ? '127.0.0.1' : request.host;
  if (!/^127\./.test(host) && host !== '::1') {
    throw rangeError('options.host', "a loopback address with reserve: 'timewait' (it connects to itself)", host);
  }
  return { ...request, host };
}

/**
 * Returns `count` distinct ports held by bound, never-listening sockets until
 * `release()`, garbage collection, or the end of the thread. Exclusive by
 * default: no other socket can bind them, a Node server neither, and no other
 * `reserve` or `allocate`, in this process or another, returns them.
 *
 * @example
 * import { reserve } from 'portalloc';
 * using hold = reserve(3, { shared: true });
 * server.listen(hold.ports[0]); // Node sets SO_REUSEADDR: binds while held
 */
export function reserve(count: number, options?: ReserveOptions): Reservation {
  const planned = planReserve(count, options);
  return toReservation(binding.allocate(planned.request), planned);
}

/**
 * {@link reserve} off the main thread.
 *
 * @example
 * import { reserveAsync } from 'portalloc';
 * const hold = await reserveAsync(5000, { shared: true });
 */
export async function reserveAsync(count: number, options?: ReserveOptions): Promise<Reservation> {
  const planned = planReserve(count, options);
  return toReservation(await binding.allocateAsync(planned.request), planned);
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
  const hint = errno === 99 ? `${checked.host} is not an address of this machine` : errno === 97 ? 'this process has no IPv6' : undefined;
  throw systemError(errno, syscall, { address: checked.host || undefined, port: checked.port, hint });
}
