/**
 * The backend's typed interface: the native addon's flat functions, or the
 * pure-JS backend that imitates them. TypeScript validates every value before
 * it gets here; the backend only does the kernel work.
 */
import path from 'node:path';

/** 1 TCP, 2 UDP, 3 both: a bit per protocol. */
export type ProtocolBits = 1 | 2 | 3;

/** One batch, as the backend takes it. */
export interface BatchRequest {
  count: number;
  /** An IP literal, or '' for every local address (one dual-stack socket on [::]). */
  host: string;
  protocol: ProtocolBits;
  /** 0, 0: the kernel chooses (bind to port 0). */
  rangeFrom: number;
  rangeTo: number;
  /** The first port tried within the range. */
  start: number;
  /** ip_local_port_range, where bind(0) draws from. */
  ephemeralLow: number;
  ephemeralHigh: number;
  /** How many bind(0)s a batch makes before it scans the ephemeral range itself. */
  kernelBudget: number;
  /**
   * Whether a large batch of kernel-chosen ports may run on two threads (the
   * native backend): 0 when a second CPU is free at the time, 2 whenever the
   * process may use two CPUs, 1 never. Absent: 1.
   */
  threads?: 0 | 1 | 2;
  /** A bitmap of 65,536 bits: ports never to hand out. */
  exclude?: Uint8Array;
  hold: boolean;
  shared: boolean;
  /** Cross-process coordination (native only, see coordinate.ts): skip blocks other processes claim. */
  coordinate?: boolean;
  /** A bitmap of 2,048 bits: the blocks of 32 ports this process claims already. */
  ownedBlocks?: Uint8Array;
  /** How many new block claims (one fd each) the batch may open. */
  claimBudget?: number;
  /** Kernel's range: scan on from this port instead of asking bind(0). */
  continueAt?: number;
}

/** What a batch gave: ports (and, when held, the sockets), a system error, or too few ports. */
export type BatchOutcome =
  | { ports: number[]; fds?: number[]; hold?: unknown }
  | { errno: number; syscall: string; port: number }
  | { exhausted: true; found: number };

export interface Binding {
  allocate(request: BatchRequest): BatchOutcome;
  allocateAsync(request: BatchRequest): Promise<BatchOutcome>;
  /**
   * Native only: closes the sockets with which synchronous batches check ports
   * (native/probe.h); the next batch opens them again.
   */
  closeProbe?(): void;
  /** Closes every socket of a hold; idempotent. */
  release(hold: unknown): void;
  /** SO_REUSEADDR on every held socket: 0, or the errno of the failure. */
  share(hold: unknown): number;
  /** A bind without SO_REUSEADDR: errno 0 when the port could be bound now. */
  checkFree(host: string, protocol: ProtocolBits, port: number): { errno: number; syscall: string };
  /** getaddrinfo, blocking. */
  lookup(host: string): { addresses: string[] } | { eai: number; message: string; errno?: number };
  /** Native only: puts ports into TIME_WAIT on loopback (see timewait.cc). */
  timeWait?(request: BatchRequest): BatchOutcome;
  timeWaitAsync?(request: BatchRequest): Promise<BatchOutcome>;
  /** Native only: SO_REUSEADDR + bind + listen, as a Node server would: errno 0 when it could listen now. */
  checkListen?(host: string, port: number, ipv6Only: boolean): { errno: number; syscall: string };
  /** Native only: the ports another process's sockets are bound to (pidfd_getfd). */
  socketPorts?(pid: number, fds: number[]): { fd: number; port: number; protocol: 'tcp' | 'udp' }[];
}

/** The addon as it loads: a batch goes in as packed fields (native/convert.cc). */
type Packed = [fields: Uint32Array, host: string, exclude: Uint8Array | undefined, ownedBlocks: Uint8Array | undefined];
type Addon = Omit<Binding, 'allocate' | 'allocateAsync' | 'timeWait' | 'timeWaitAsync'> & {
  allocate(...request: Packed): BatchOutcome | number[] | number;
  allocateAsync(...request: Packed): Promise<BatchOutcome | number[] | number>;
  timeWait(...request: Packed): BatchOutcome | number[] | number;
  timeWaitAsync(...request: Packed): Promise<BatchOutcome | number[] | number>;
};

/**
 * A request as the addon reads it: its numbers in one Uint32Array, in the
 * order of convert.cc's Field. One crossing reads them all, where a dozen
 * property reads cost more than the kernel's work for a single port.
 */
function pack(request: BatchRequest): Packed {
  // One array for every call: the addon copies the fields out before it returns.
  const fields = packed;
  fields[0] = request.count;
  fields[1] = request.protocol;
  fields[2] = request.rangeFrom;
  fields[3] = request.rangeTo;
  fields[4] = request.start;
  fields[5] = request.ephemeralLow;
  fields[6] = request.ephemeralHigh;
  fields[7] = request.kernelBudget;
  fields[8] = request.threads ?? 1;
  fields[9] = (request.hold ? 1 : 0) | (request.shared ? 2 : 0) | (request.coordinate ? 4 : 0);
  fields[10] = request.claimBudget ?? 0;
  fields[11] = request.continueAt ?? 0;
  return [fields, request.host, request.exclude, request.ownedBlocks];
}
const packed = new Uint32Array(12);

/** A batch's outcome: the addon gives the ports alone (one: the port) when that is all there is. */
function outcome(result: BatchOutcome | number[] | number): BatchOutcome {
  if (typeof result === 'number') return { ports: [result] };
  return Array.isArray(result) ? { ports: result } : result;
}

/** The addon behind the Binding interface. */
function wrap(addon: Addon): Binding {
  return {
    allocate: (request) => outcome(addon.allocate(...pack(request))),
    allocateAsync: (request) => addon.allocateAsync(...pack(request)).then(outcome),
    timeWait: (request) => outcome(addon.timeWait(...pack(request))),
    timeWaitAsync: (request) => addon.timeWaitAsync(...pack(request)).then(outcome),
    closeProbe: addon.closeProbe,
    release: addon.release,
    share: addon.share,
    checkFree: addon.checkFree,
    lookup: addon.lookup,
    checkListen: addon.checkListen,
    socketPorts: addon.socketPorts,
  };
}

/** The package's root, where node-gyp-build looks for prebuilds/ and build/. */
export const packageRoot = path.join(__dirname, '..');

/**
 * Loads the addon with node-gyp-build (a prebuild first, then a local build).
 * PORTALLOC_BACKEND=js skips it; PORTALLOC_BACKEND=native makes a failure fatal.
 */
export function loadNative(): Binding | undefined {
  const wanted = process.env.PORTALLOC_BACKEND;
  if (wanted === 'js') return undefined;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const nodeGypBuild = require('node-gyp-build') as (root: string) => Addon;
    return wrap(nodeGypBuild(packageRoot));
  } catch (error) {
    if (wanted === 'native') throw error;
    const reason = error instanceof Error ? error.message.split('\n')[0] : String(error);
    process.emitWarning(`the native addon could not load (${reason}); using the slower pure-JS backend. Set PORTALLOC_BACKEND=js to silence this.`, {
      type: 'PortallocWarning',
      code: 'PORTALLOC_NO_NATIVE',
    });
    return undefined;
  }
}
