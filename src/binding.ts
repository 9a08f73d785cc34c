/**
 * The backend's typed interface: the native addon's flat functions, or the
 * pure-JS backend that imitates them. TypeScript validates every value before
 * it gets here; the backend only does the kernel work. The backend is chosen
 * in one place: backend.ts.
 */
import path from 'node:path';

/** 1 TCP, 2 UDP, 3 both: a bit per protocol. */
export type ProtocolBits = 1 | 2 | 3;

/** How tryPort claims a port for other processes (native/api.h): not, alone, or by its block. */
export const enum Claim {
  None = 0,
  Port = 1,
  Block = 2,
}

/** The ledger passes a drop-in's try may take (native/ledger.h, Pass). */
export const enum TryPass {
  /** Only ports nobody in the process has had: a random port. */
  Strict = 0,
  /** Also ports given or lent before the call began, by anyone in the process: a search's last resort. */
  Reuse = 1,
  /** Also ports this thread's drop-ins lent before the call began: a numbered port, answered as the original would. */
  Compat = 2,
}

/** Ranges of up to this many ports are reused the oldest handed out first (native/batch.h, kOldestFirstMax). */
export const OLDEST_FIRST_MAX = 4096;

/** How a batch checks each port (native/batch.h, Check). */
export const enum CheckKind {
  /** Free now: the probe, or a socket bound and closed (allocate). */
  Free = 0,
  /** Bound and held until released (reserve). */
  Hold = 1,
  /** Left in TIME_WAIT on loopback (allocate with reserve: 'timewait'). */
  TimeWait = 2,
}

/** One batch, as the backend takes it. */
export interface BatchRequest {
  count: number;
  /** An IP literal (an IPv6 one may carry a zone), or '' for every local address (one dual-stack socket on [::]). */
  host: string;
  protocol: ProtocolBits;
  check: CheckKind;
  /** 0, 0: the kernel's ephemeral range. */
  rangeFrom: number;
  rangeTo: number;
  /** The first port tried (0 in the kernel's range: a random one). */
  start: number;
  /** ip_local_port_range. */
  ephemeralLow: number;
  ephemeralHigh: number;
  /** Two threads for a large batch: 0 when a CPU is free, 1 never, 2 whenever two are usable (native). */
  threads: 0 | 1 | 2;
  /** A bitmap of 65,536 bits: ports never to hand out. */
  exclude?: Uint8Array;
  /** Holds: SO_REUSEADDR on each socket after its bind (native). */
  shared: boolean;
  /** Cross-process claims (native/claims.h). */
  coordinate: boolean;
  /** A socket per port instead of the probe (PORTALLOC_PROBE=0). */
  probeOff: boolean;
  /** How long a port handed out stays out of every path of this process (CLAIM_MS). */
  windowMs: number;
  /** JS backend: the ledger's clock when the call was made (the native addon reads it itself). */
  since?: number;
}

/** What a batch gave: ports (and, when held, the sockets), a system error, or too few ports. */
export type BatchOutcome =
  | { ports: number[]; fds?: number[]; hold?: unknown }
  | { errno: number; syscall: string; port: number }
  | { exhausted: true; found: number; refused: number; refusedErrno: number };

/** A system call's result: errno 0 on success. */
export interface Errno {
  errno: number;
  syscall: string;
}

/** A drop-in's check of one port: on errno 0 the port is the caller's (in flight) until lend or dropPort. */
export interface PortTry extends Errno {
  prior?: bigint;
  fresh?: boolean;
}

export interface Binding {
  allocate(request: BatchRequest): BatchOutcome;
  allocateAsync(request: BatchRequest): Promise<BatchOutcome>;
  /** Closes a hold's sockets and gives its ports; idempotent. */
  release(hold: unknown): void;
  /** Forgets a hold's sockets without closing them: the caller owns the fds now. */
  detach(hold: unknown): void;
  /** SO_REUSEADDR on every held socket: 0, or the errno of the failure. */
  share(hold: unknown): number;
  /** A bind without SO_REUSEADDR: errno 0 when the port could be bound now. */
  checkFree(host: string, protocol: ProtocolBits, port: number): Errno;
  /** Could a Node server listen (SO_REUSEADDR + bind + listen)? A port this process holds is busy. */
  checkListen(host: string, port: number, ipv6Only: boolean): Errno | Promise<Errno>;
  /**
   * checkListen for handing the port out (native/api.h, tryPort), with the
   * port claimed for other processes as `claim` says; `since`: ledgerClock()
   * when the caller began; `pass`, the ledger pass (native/api.h); `lender`:
   * the calling thread's threadId.
   */
  tryPort(host: string, port: number, ipv6Only: boolean, claim: Claim, since: number, pass: TryPass, lender: number): PortTry | Promise<PortTry>;
  /** A drop-in of thread `lender` (its threadId) hands the port out: lent for windowMs; only that thread's drop-ins may answer with it again. */
  lend(port: number, windowMs: number, lender?: number): void;
  /** The ledger's handoff clock (native/ledger.h, Clock). */
  ledgerClock(): number;
  /** The TCP ports of [low, high], handed out longest ago first (native/ledger.h, OldestFirst). */
  oldestFirst(low: number, high: number): number[];
  /** A drop-in does not want the port it tried after all. */
  dropPort(port: number, prior: bigint, fresh: boolean): void;
  /** getaddrinfo, blocking. */
  lookup(host: string): { addresses: string[] } | { eai: number; message: string; errno?: number };
  /** Native only: closes the sockets synchronous batches check with (native/probe.h). */
  closeProbe?(): void;
  /** Native only: cross-process claims (native/claims.h): close them all; how many are open. */
  releaseClaims?(): void;
  claimCount?(): number;
  /** Native only: the ports another process's sockets are bound to (pidfd_getfd). */
  socketPorts?(pid: number, fds: number[]): { fd: number; port: number; protocol: 'tcp' | 'udp' }[];
}

/** The field table the addon exports (native/api.cc, Fields): where each field of a request goes. */
type Fields = Record<'count' | 'protocol' | 'check' | 'rangeFrom' | 'rangeTo' | 'start' | 'ephemeralLow' | 'ephemeralHigh' | 'threads' | 'flags' | 'windowMs' | 'length' | 'shared' | 'coordinate' | 'probeOff', number>;

type Packed = [fields: Uint32Array, host: string, exclude: Uint8Array | undefined];
type Raw = BatchOutcome | number[] | number;
type Addon = Omit<Binding, 'allocate' | 'allocateAsync'> & {
  fields: Fields;
  allocate(...request: Packed): Raw;
  allocateAsync(...request: Packed): Promise<Raw>;
};

/** A batch's outcome: the addon gives the ports alone (one: the port) when that is all there is. */
function outcome(result: Raw): BatchOutcome {
  if (typeof result === 'number') return { ports: [result] };
  return Array.isArray(result) ? { ports: result } : result;
}

/**
 * The addon behind the Binding interface. A request crosses as one reused
 * Uint32Array laid out by the addon's own field table: one crossing reads
 * every number, where a dozen property reads cost more than the kernel's work
 * for a single port.
 */
function wrap(addon: Addon): Binding {
  const f = addon.fields;
  const fields = new Uint32Array(f.length);
  const pack = (r: BatchRequest): Packed => {
    fields[f.count] = r.count;
    fields[f.protocol] = r.protocol;
    fields[f.check] = r.check;
    fields[f.rangeFrom] = r.rangeFrom;
    fields[f.rangeTo] = r.rangeTo;
    fields[f.start] = r.start;
    fields[f.ephemeralLow] = r.ephemeralLow;
    fields[f.ephemeralHigh] = r.ephemeralHigh;
    fields[f.threads] = r.threads;
    fields[f.flags] = (r.shared ? f.shared : 0) | (r.coordinate ? f.coordinate : 0) | (r.probeOff ? f.probeOff : 0);
    fields[f.windowMs] = r.windowMs;
    return [fields, r.host, r.exclude];
  };
  return {
    allocate: (request) => outcome(addon.allocate(...pack(request))),
    allocateAsync: (request) => addon.allocateAsync(...pack(request)).then(outcome),
    release: addon.release,
    detach: addon.detach,
    share: addon.share,
    checkFree: addon.checkFree,
    checkListen: addon.checkListen,
    tryPort: addon.tryPort,
    lend: addon.lend,
    ledgerClock: addon.ledgerClock,
    oldestFirst: addon.oldestFirst,
    dropPort: addon.dropPort,
    lookup: addon.lookup,
    closeProbe: addon.closeProbe,
    releaseClaims: addon.releaseClaims,
    claimCount: addon.claimCount,
    socketPorts: addon.socketPorts,
  };
}

/** The package's root, where node-gyp-build looks for prebuilds/ and build/. */
export const packageRoot = path.join(__dirname, '..');

/** Loads the addon with node-gyp-build (a prebuild first, then a local build); throws when it cannot. */
export function loadAddon(): Binding {
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  const nodeGypBuild = require('node-gyp-build') as (root: string) => Addon;
  return wrap(nodeGypBuild(packageRoot));
}
