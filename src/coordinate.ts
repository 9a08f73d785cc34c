/**
 * Cross-process coordination of plain allocations (see docs/handoff.md).
 *
 * A batch that hands out a port of a block of 32 ports claims the block for
 * this process by binding an abstract unix socket named after it; batches in
 * other processes skip blocks they cannot claim. Within this process, ports
 * handed out recently are not handed out again. Both last CLAIM_MS after the
 * last use, then a timer that never keeps the process alive lets them go.
 *
 * Nothing here may hurt the user: claims touch no TCP or UDP port, take at
 * most a small share of the fd limit, and step aside (the batch runs without
 * them) when fds run short or the range has no unclaimed free ports left.
 */
import fs from 'node:fs';
import type { BatchOutcome, BatchRequest } from './binding';

/**
 * How long a claim and an in-process "recently handed out" mark last, at least:
 * 20 s, or PORTALLOC_CLAIM_MS (1,000 to 3,600,000).
 */
export const CLAIM_MS = claimMs(process.env.PORTALLOC_CLAIM_MS);

function claimMs(text: string | undefined): number {
  const value = Number(text);
  return text !== undefined && Number.isInteger(value) && value >= 1000 && value <= 3_600_000 ? value : 20_000;
}
const BLOCK_SHIFT = 5;
const BLOCKS = 65536 >> BLOCK_SHIFT;
/**
 * In-process memory covers this many ports: past it, the marks are dropped,
 * so a loop of huge batches neither runs out of ports nor holds thousands of
 * rejected sockets while it looks for unmarked ones.
 */
const MAX_MARKS = 4096;

/** The native functions coordination uses. */
export interface ClaimBinding {
  release(hold: unknown): void;
}

/** A native batch outcome with the blocks it claimed. */
type Claimed = BatchOutcome & { claimBlocks?: number[]; claimHolds?: unknown[] };

interface Claim {
  hold: unknown;
  expires: number;
}

/** The soft RLIMIT_NOFILE, from /proc (Node has no getrlimit); 1024 where unknown. */
function openFileLimit(): number {
  try {
    const line = /^Max open files\s+(\d+|unlimited)/m.exec(fs.readFileSync('/proc/self/limits', 'utf8'));
    if (line) return line[1] === 'unlimited' ? 1 << 20 : Number(line[1]);
  } catch {
    // Not Linux: the usual default.
  }
  return 1024;
}

export class Coordinator {
  readonly #binding: ClaimBinding;
  /** Blocks this process claims, oldest use first (Map keeps insertion order). */
  readonly #owned = new Map<number, Claim>();
  readonly #ownedBits = new Uint8Array(BLOCKS / 8);
  /** Ports handed out recently by this process: two generations, and their union. */
  #current = new Uint8Array(65536 / 8);
  #previous = new Uint8Array(65536 / 8);
  #recent = new Uint8Array(65536 / 8);
  #rotated = Date.now();
  #expired = 0;
  #marks = 0;
  /** Where the next batch of a kind goes on from, so this process fills the blocks it claims. */
  readonly #next = new Map<string, number>();
  #timer: NodeJS.Timeout | undefined;
  /** At most this many claim sockets: a sixteenth of the fd limit, 16 to 2,048 (every block). */
  readonly cap: number;

  constructor(binding: ClaimBinding) {
    this.#binding = binding;
    this.cap = Math.max(16, Math.min(BLOCKS, Math.floor(openFileLimit() / 16)));
  }

  /** How many blocks this process claims now. */
  get claims(): number {
    return this.#owned.size;
  }

  /**
   * The request with coordination added: the blocks this process owns, how many
   * new claims it may open, and its recent ports added to `exclude`.
   */
  prepare(request: BatchRequest, crossProcess: boolean, ascending = false): BatchRequest {
    this.#expire(Date.now());
    if (this.#marks > MAX_MARKS) this.#dropMarks(); // (batches still go on from the last port: the least recently used lie ahead)
    let exclude = this.#recent;
    if (request.exclude) {
      exclude = Uint8Array.from(request.exclude);
      for (let i = 0; i < exclude.length; i++) exclude[i]! |= this.#recent[i]!;
    }
    if (!crossProcess) return { ...request, exclude };
    // New allocations matter more than old ones: make room by letting the oldest go.
    const room = Math.min(this.cap, Math.max(16, Math.ceil(this.cap / 4)));
    if (this.cap - this.#owned.size < room) {
      for (const block of this.#owned.keys()) {
        if (this.cap - this.#owned.size >= room) break;
        this.#drop(block);
      }
    }
    const next = this.#next.get(kind(request));
    // One literal, one shape: this runs for every allocate(). (Keep in step with BatchRequest.)
    return {
      threads: request.threads,
      count: request.count,
      host: request.host,
      protocol: request.protocol,
      rangeFrom: request.rangeFrom,
      rangeTo: request.rangeTo,
      // 'random' order in a range: random once, then onwards.
      start: next !== undefined && request.rangeFrom !== 0 && !ascending ? next : request.start,
      ephemeralLow: request.ephemeralLow,
      ephemeralHigh: request.ephemeralHigh,
      kernelBudget: request.kernelBudget,
      exclude,
      hold: request.hold,
      shared: request.shared,
      coordinate: true,
      ownedBlocks: this.#ownedBits,
      claimBudget: this.cap - this.#owned.size,
      continueAt: next !== undefined && request.rangeFrom === 0 ? next : 0,
    };
  }

  /** Keeps what a successful batch claimed and marks its ports as recent. */
  record(outcome: BatchOutcome, request?: BatchRequest): void {
    const claimed = outcome as Claimed;
    const now = Date.now();
    const expires = now + CLAIM_MS;
    if (claimed.claimBlocks && claimed.claimHolds) {
      claimed.claimBlocks.forEach((block, i) => {
        this.#owned.set(block, { hold: claimed.claimHolds![i], expires });
        this.#ownedBits[block >> 3]! |= 1 << (block & 7);
      });
    }
    if (!('ports' in outcome)) return;
    if (request?.coordinate && outcome.ports.length > 0) {
      // The kernel's range goes on in the parity of bind(0)'s first port; a range port by port.
      const step = request.rangeFrom === 0 ? 2 : 1;
      this.#next.set(kind(request), outcome.ports[outcome.ports.length - 1]! + step);
    }
    this.#marks += outcome.ports.length;
    for (const port of outcome.ports) {
      this.#current[port >> 3]! |= 1 << (port & 7);
      this.#recent[port >> 3]! |= 1 << (port & 7);
      const block = port >> BLOCK_SHIFT;
      const claim = this.#owned.get(block);
      if (claim && claim.expires !== expires) {
        // Used again: it moves to the young end.
        this.#owned.delete(block);
        claim.expires = expires;
        this.#owned.set(block, claim);
      }
    }
    this.#schedule();
  }

  /** Whether this process remembers ports it handed out. */
  get remembersPorts(): boolean {
    return this.#marks > 0;
  }

  /** Forgets which ports this process handed out: the range ran out without them. */
  forgetPorts(): void {
    this.#next.clear();
    this.#dropMarks();
  }

  #dropMarks(): void {
    this.#current = new Uint8Array(65536 / 8);
    this.#previous = new Uint8Array(65536 / 8);
    this.#recent = new Uint8Array(65536 / 8);
    this.#marks = 0;
  }

  /** Lets every claim go: fds are short. */
  releaseAll(): void {
    for (const block of [...this.#owned.keys()]) this.#drop(block);
  }

  #drop(block: number): void {
    const claim = this.#owned.get(block);
    if (!claim) return;
    this.#owned.delete(block);
    this.#ownedBits[block >> 3]! &= ~(1 << (block & 7));
    this.#binding.release(claim.hold);
  }

  #expire(now: number): void {
    // At most every CLAIM_MS / 20: a single allocate() is a few microseconds,
    // and looking every time was a fifth of its JavaScript.
    if (now - this.#expired < CLAIM_MS / 20) return;
    this.#expired = now;
    for (const [block, claim] of this.#owned) {
      if (claim.expires > now) break; // oldest first: the rest are younger
      this.#drop(block);
    }
    if (now - this.#rotated >= CLAIM_MS) {
      // A mark lives one to two generations: at least CLAIM_MS.
      const twoGenerations = now - this.#rotated >= 2 * CLAIM_MS;
      this.#previous = twoGenerations ? new Uint8Array(65536 / 8) : this.#current;
      this.#current = new Uint8Array(65536 / 8);
      this.#recent = Uint8Array.from(this.#previous);
      this.#rotated = now;
      this.#marks = twoGenerations ? 0 : this.#marks;
    }
  }

  #schedule(): void {
    if (this.#timer) return;
    this.#timer = setTimeout(() => {
      this.#timer = undefined;
      this.#expire(Date.now());
      if (this.#owned.size > 0 || this.#recent.some((byte) => byte !== 0)) this.#schedule();
    }, CLAIM_MS / 4);
    this.#timer.unref();
  }
}

/** Batches that go on from one another: same host, protocol and range. */
function kind(request: BatchRequest): string {
  if (request.host === '' && request.rangeFrom === 0) return KERNEL_KINDS[request.protocol]!; // (most calls: no string to build)
  return `${request.host}|${request.protocol}|${request.rangeFrom}-${request.rangeTo}`;
}
const KERNEL_KINDS = ['', '|1|0-0', '|2|0-0', '|3|0-0'];

/**
 * Whether allocate() coordinates when `coordinate` is not given: yes, unless
 * PORTALLOC_COORDINATE=0 (for test suites that count fds around calls).
 */
export const COORDINATE_BY_DEFAULT = process.env.PORTALLOC_COORDINATE !== '0';

/** How a plain allocation hands its ports over: validated `reserve` and `coordinate` options. */
export interface HandoffMode {
  timeWait: boolean;
  /** undefined: the backend's default (on where it can be offered). */
  coordinate: boolean | undefined;
}

/** Reads the handoff options of allocate(); plan() has checked the option names. */
export function checkHandoff(options: unknown, typeError: (name: string, expected: string, value: unknown) => Error): HandoffMode {
  const given = (options ?? {}) as { reserve?: unknown; coordinate?: unknown };
  if (given.reserve !== undefined && given.reserve !== 'timewait') {
    if (typeof given.reserve !== 'string') throw typeError('options.reserve', "'timewait'", given.reserve);
    const error = new RangeError(`portalloc: options.reserve must be 'timewait'; got '${given.reserve}'`) as RangeError & { code: string };
    error.code = 'ERR_INVALID_ARG_VALUE';
    throw error;
  }
  if (given.coordinate !== undefined && typeof given.coordinate !== 'boolean') throw typeError('options.coordinate', 'a boolean', given.coordinate);
  return { timeWait: given.reserve === 'timewait', coordinate: given.coordinate };
}
