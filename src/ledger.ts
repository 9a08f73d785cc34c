/**
 * The pure-JS backend's ledger: the same stamps and the same rule as
 * native/ledger.h (read that first), but for holds (given for the window, not
 * held: js-worker.ts says why), on a SharedArrayBuffer that every thread
 * of the process shares. The first thread that loads portalloc makes it and
 * publishes it as worker environment data, so worker threads started after
 * that find it (docs/internals.md: a worker started before portalloc was
 * loaded by its parent keeps a ledger of its own), and the backend's own
 * worker gets it with its workerData.
 */
import { getEnvironmentData, setEnvironmentData } from 'node:worker_threads';

const KEY = 'portalloc:ledger:v2'; // (v2: lent stamps carry their lender; another copy's v1 ledger stays apart)
/** The stamps (8 bytes a port, TCP then UDP), then the tick each was handed out at and the clock (4 bytes each). */
const BYTES = 2 * 65536 * 8 + (2 * 65536 + 1) * 4;
const CLOCK = 2 * 65536;
/** Given, not delivered yet: reusable by nobody. */
const PENDING = 0xffffffff;
const FLIGHT = 1n << 63n;
const HELD = 1n << 62n;
const LENT = 1n << 61n;
/** A lent port's lender (bits 44-59: its thread, native/ledger.cc); below them the deadline (ms). */
const LENDER_SHIFT = 44n;
const LENDER = 0xffffn << LENDER_SHIFT;
const DEADLINE = (1n << LENDER_SHIFT) - 1n;

/** Which stamps an acquire may take over (native/ledger.h, Pass). */
export const enum Pass {
  Strict = 0,
  Reuse = 1,
  Compat = 2,
}

/** Milliseconds of the monotonic clock, shared by every thread (CLOCK_MONOTONIC). */
export function nowMs(): bigint {
  return process.hrtime.bigint() / 1_000_000n;
}

export class Ledger {
  readonly #stamps: BigUint64Array;
  /** For given and lent ports: the handoff clock's tick when they were; [CLOCK]: the clock (native/ledger.h, Clock). */
  readonly #handedAt: Uint32Array;

  constructor(buffer: SharedArrayBuffer) {
    this.#stamps = new BigUint64Array(buffer, 0, 2 * 65536);
    this.#handedAt = new Uint32Array(buffer, 2 * 65536 * 8, 2 * 65536 + 1);
  }

  get buffer(): SharedArrayBuffer {
    return this.#stamps.buffer as SharedArrayBuffer;
  }

  /**
   * Takes `port` for the caller, for each protocol of `protocol` (1 TCP, 2 UDP,
   * 3 both); the stamps it replaced (for drop), or undefined when another caller
   * has it. A pass other than Strict takes only a port handed out before the
   * caller began (`since`: clock() when the call was made): Reuse, one given
   * or lent; Compat, one lent.
   */
  acquire(port: number, protocol: number, pass: Pass, since = 0, lender = 0): Prior | undefined {
    const prior: Prior = [0n, 0n];
    for (const i of [0, 1]) {
      if (!(protocol & (i + 1))) continue;
      const taken = this.#acquireOne(i * 65536 + port, pass, since, lender);
      if (taken === undefined) {
        if (i === 1 && protocol & 1) Atomics.store(this.#stamps, port, prior[0]);
        return undefined;
      }
      prior[i] = taken;
    }
    return prior;
  }

  #acquireOne(index: number, pass: Pass, since: number, lender: number): bigint | undefined {
    let seen = Atomics.load(this.#stamps, index);
    const now = nowMs();
    while (this.#takeable(index, seen, pass, now, since, lender)) {
      const found = Atomics.compareExchange(this.#stamps, index, seen, FLIGHT);
      if (found === seen) return seen;
      seen = found;
    }
    return undefined;
  }

  #takeable(index: number, stamp: bigint, pass: Pass, now: bigint, since: number, lender: number): boolean {
    if (stamp === 0n) return true;
    if ((stamp & (FLIGHT | HELD)) !== 0n) return false;
    if ((stamp & DEADLINE) <= now) return true;
    if (pass === Pass.Strict || Atomics.load(this.#handedAt, index) > since) return false; // (handed out after the caller began)
    // Compat: lent by a drop-in of the caller's own thread (an original's memory is its module's).
    return pass === Pass.Reuse || ((stamp & LENT) !== 0n && (stamp & LENDER) >> LENDER_SHIFT === BigInt(lender & 0xffff));
  }

  drop(port: number, protocol: number, prior: Prior): void {
    this.#each(port, protocol, (index, i) => Atomics.store(this.#stamps, index, prior[i]!));
  }

  /** The handoff clock: it ticks once per batch delivered, per lend, per release. */
  clock(): number {
    return Atomics.load(this.#handedAt, CLOCK);
  }

  tick(): number {
    return Atomics.add(this.#handedAt, CLOCK, 1) + 1;
  }

  /** Handed out: out of every path for windowMs, and reusable by nobody until delivered. */
  give(port: number, protocol: number, windowMs: number): void {
    const deadline = (nowMs() + BigInt(windowMs)) & DEADLINE;
    this.#each(port, protocol, (index) => {
      Atomics.store(this.#handedAt, index, PENDING);
      Atomics.store(this.#stamps, index, deadline);
    });
  }

  /** The batch's result reached its caller: callers that begin from now on may reuse these ports. */
  delivered(ports: readonly number[], protocol: number): void {
    const tick = this.tick();
    for (const port of ports) this.#each(port, protocol, (index) => Atomics.store(this.#handedAt, index, tick));
  }

  /** A drop-in of thread `lender` hands a TCP port out: as give, but marked lent (by that thread). */
  lend(port: number, windowMs: number, lender = 0): void {
    Atomics.store(this.#handedAt, port, this.tick());
    Atomics.store(this.#stamps, port, ((nowMs() + BigInt(windowMs)) & DEADLINE) | (BigInt(lender & 0xffff) << LENDER_SHIFT) | LENT);
  }

  /**
   * The ports of [low, high], the one handed out longest ago first, by the
   * handoff clock (native/ledger.h, OldestFirst): the order of a range's reuse pass.
   */
  oldestFirst(low: number, high: number, protocol: number): number[] {
    const ticks = new Float64Array(high - low + 1);
    for (let port = low; port <= high; port++) {
      let tick = 0;
      this.#each(port, protocol, (index) => (tick = Math.max(tick, Atomics.load(this.#handedAt, index))));
      ticks[port - low] = tick;
    }
    return Array.from({ length: high - low + 1 }, (_, i) => low + i).sort((a, b) => ticks[a - low]! - ticks[b - low]! || a - b);
  }

  #each(port: number, protocol: number, f: (index: number, i: number) => void): void {
    if (protocol & 1) f(port, 0);
    if (protocol & 2) f(65536 + port, 1);
  }
}

/** The stamps an acquire replaced: [TCP, UDP]. */
export type Prior = [bigint, bigint];

/** This process's ledger: the one published by the thread that loaded portalloc first, or a new one. */
export function processLedger(): Ledger {
  let buffer = getEnvironmentData(KEY) as SharedArrayBuffer | undefined;
  if (!(buffer instanceof SharedArrayBuffer) || buffer.byteLength !== BYTES) {
    buffer = new SharedArrayBuffer(BYTES);
    setEnvironmentData(KEY, buffer);
  }
  return new Ledger(buffer);
}
