/**
 * The pure-JS backend's ledger: the same stamps and the same rule as
 * native/ledger.h (read that first), on a SharedArrayBuffer that every thread
 * of the process shares. The first thread that loads portalloc makes it and
 * publishes it as worker environment data, so worker threads started after
 * that find it (docs/internals.md: a worker started before portalloc was
 * loaded by its parent keeps a ledger of its own), and the backend's own
 * worker gets it with its workerData.
 */
import { getEnvironmentData, setEnvironmentData } from 'node:worker_threads';

const KEY = 'portalloc:ledger:v1';
/** The stamps (8 bytes a port), then each lent port's lend count and the count itself (4 bytes each). */
const BYTES = 65536 * 8 + 65537 * 4;
const CLOCK = 65536;
const FLIGHT = 1n << 63n;
const HELD = 1n << 62n;
const LENT = 1n << 61n;
const DEADLINE = LENT - 1n;

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
  /** For lent ports: the lend count at their lend; [CLOCK]: the count (native/ledger.h, LendClock). */
  readonly #lentAt: Uint32Array;

  constructor(buffer: SharedArrayBuffer) {
    this.#stamps = new BigUint64Array(buffer, 0, 65536);
    this.#lentAt = new Uint32Array(buffer, 65536 * 8, 65537);
  }

  get buffer(): SharedArrayBuffer {
    return this.#stamps.buffer as SharedArrayBuffer;
  }

  /**
   * Takes `port` for the caller; the stamp it replaced (for drop), or undefined
   * when another caller has it. Pass.Compat takes a lent port only if it was
   * lent before the caller began (`since`, a lendClock() value).
   */
  acquire(port: number, pass: Pass, since = 0): bigint | undefined {
    let seen = Atomics.load(this.#stamps, port);
    const now = nowMs();
    while (this.#takeable(port, seen, pass, now, since)) {
      const found = Atomics.compareExchange(this.#stamps, port, seen, FLIGHT);
      if (found === seen) return seen;
      seen = found;
    }
    return undefined;
  }

  #takeable(port: number, stamp: bigint, pass: Pass, now: bigint, since: number): boolean {
    if (stamp === 0n) return true;
    if ((stamp & (FLIGHT | HELD)) !== 0n) return false;
    if ((stamp & DEADLINE) <= now) return true;
    if (pass === Pass.Reuse) return true;
    return pass === Pass.Compat && (stamp & LENT) !== 0n && Atomics.load(this.#lentAt, port) <= since;
  }

  drop(port: number, prior: bigint): void {
    Atomics.store(this.#stamps, port, prior);
  }

  give(port: number, windowMs: number): void {
    Atomics.store(this.#stamps, port, (nowMs() + BigInt(windowMs)) & DEADLINE);
  }

  /** A drop-in hands the port out: as give, but drop-in calls that begin later may take it. */
  lend(port: number, windowMs: number): void {
    Atomics.store(this.#lentAt, port, Atomics.add(this.#lentAt, CLOCK, 1) + 1);
    Atomics.store(this.#stamps, port, ((nowMs() + BigInt(windowMs)) & DEADLINE) | LENT);
  }

  lendClock(): number {
    return Atomics.load(this.#lentAt, CLOCK);
  }

  hold(port: number): void {
    Atomics.store(this.#stamps, port, HELD);
  }

  unhold(port: number, windowMs: number): void {
    Atomics.compareExchange(this.#stamps, port, HELD, (nowMs() + BigInt(windowMs)) & DEADLINE);
  }

  held(port: number): boolean {
    return Atomics.load(this.#stamps, port) === HELD;
  }
}

/** This process's ledger: the one published by the thread that loaded portalloc first, or a new one. */
export function processLedger(): Ledger {
  let buffer = getEnvironmentData(KEY) as SharedArrayBuffer | undefined;
  if (!(buffer instanceof SharedArrayBuffer) || buffer.byteLength !== BYTES) {
    buffer = new SharedArrayBuffer(BYTES);
    setEnvironmentData(KEY, buffer);
  }
  return new Ledger(buffer);
}
