/**
 * The benchmark's own parts return what they claim: the native floor
 * (benchFloor, benchmark only) and the checks bench/ runs before timing, and
 * the two-thread path that large batches take (native only: the JS backend
 * has no floor and no threads). No timing here: figures belong to
 * `npm run bench`.
 */
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { allocate, backend, isFree, reserve } from '../dist/index.js';
import { openFds } from './helpers';

const root = path.join(__dirname, '..');
const native = backend === 'native';

type Floor = { benchFloor(count: number, hold: boolean, probe?: boolean): { ns: number; ports: number[] } };
// eslint-disable-next-line @typescript-eslint/no-require-imports
const addon = native ? (require('../bench/floor/index.cjs') as Floor) : undefined;

/** Every `step`-th port of a list, for checks that cost a syscall each. */
const sample = (ports: readonly number[], count = 200) => ports.filter((_, i) => i % Math.ceil(ports.length / count) === 0);

const threads = process.env.PORTALLOC_THREADS;
afterEach(() => {
  if (threads === undefined) delete process.env.PORTALLOC_THREADS;
  else process.env.PORTALLOC_THREADS = threads;
});

describe('bench helpers', () => {
  it('checkPorts counts repeats and refuses a wrong count or a non-port', async () => {
    const { checkPorts } = await import('../bench/lib.mjs');
    expect(checkPorts([3000, 3001, 3000], 3)).toEqual({ count: 3, distinct: false, duplicates: 1 });
    expect(checkPorts([3000, 3001], 2)).toEqual({ count: 2, distinct: true, duplicates: 0 });
    expect(() => checkPorts([3000], 2)).toThrow(/expected 2 ports, got 1/);
    expect(() => checkPorts([0, 70000], 2)).toThrow(/not a port/);
  });

  it('every method the suite times returns the ports it claims, and closes them', async () => {
    const { checkPorts, loadMethods } = await import('../bench/lib.mjs');
    allocate(1); // the JS backend opens its worker's fds on first use
    const before = openFds();
    for (const method of await loadMethods()) {
      if (method.pending) continue;
      const ports = await method.run(20);
      const check = checkPorts(ports, 20);
      if (method.distinct) expect(check, method.name).toMatchObject({ distinct: true });
    }
    expect(openFds()).toBe(before);
  });
});

describe.runIf(native)('benchFloor (benchmark only)', () => {
  it('closes each socket at once: n ports, fds back to the start', () => {
    const before = openFds();
    const { ns, ports } = addon!.benchFloor(500, false);
    expect(ports).toHaveLength(500);
    expect(ports.every((port) => port > 0 && port < 65536)).toBe(true);
    expect(ns).toBeGreaterThan(0);
    expect(openFds()).toBe(before);
  });

  it('holds the batch: n distinct ports, all closed again when it returns', () => {
    const before = openFds();
    const { ports } = addon!.benchFloor(2000, true);
    expect(new Set(ports).size).toBe(2000);
    expect(openFds()).toBe(before);
  });

  it("runs allocate's probe loop: n distinct ports, each bindable, fds back to the start", () => {
    const before = openFds();
    const { ns, ports } = addon!.benchFloor(1000, false, true);
    expect(new Set(ports).size).toBe(1000);
    expect(ns).toBeGreaterThan(0);
    expect(sample(ports).every((port) => isFree(port))).toBe(true);
    expect(openFds()).toBe(before);
  });

  it('refuses bad arguments with a TypeError', () => {
    expect(() => (addon as unknown as { benchFloor(a: unknown, b: unknown): void }).benchFloor('10', true)).toThrow(TypeError);
  });
});

// PORTALLOC_THREADS=2 takes the two-thread path even on a busy machine
// (by default it is taken only when a second CPU is free at the time).
describe.runIf(native)('large batches on two threads', () => {
  for (const setting of ['1', '2']) {
    // Every socket of the batch is closed when it returns (the fd count),
    // which is what frees the ports. (Whether each is still free a moment
    // later is not asked here: other processes on a shared machine take
    // ephemeral ports too.)
    it(`allocate(6000), PORTALLOC_THREADS=${setting}: distinct, every socket closed when it returns`, () => {
      process.env.PORTALLOC_THREADS = setting;
      const before = openFds();
      const ports = allocate(6000);
      expect(new Set(ports).size).toBe(6000);
      expect(openFds()).toBe(before);
    });

    it(`reserve(6000), PORTALLOC_THREADS=${setting}: every port held until release`, () => {
      process.env.PORTALLOC_THREADS = setting;
      const before = openFds();
      const hold = reserve(6000, { shared: true });
      try {
        expect(new Set(hold.ports).size).toBe(6000);
        expect(hold.fds).toHaveLength(6000);
        expect(openFds()).toBe(before + 6000);
        expect(sample(hold.ports).filter((port) => isFree(port))).toEqual([]);
      } finally {
        hold.release();
      }
      expect(openFds()).toBe(before);
    });
  }

  it('honours exclude across both threads', () => {
    process.env.PORTALLOC_THREADS = '2';
    const excluded = allocate(3000);
    const ports = allocate(8000, { exclude: excluded });
    expect(new Set(ports).size).toBe(8000);
    const set = new Set(excluded);
    expect(ports.filter((port) => set.has(port))).toEqual([]);
  });

  it('holds 19,000 ports past the bind(0) cliff, distinct, and closes them all', () => {
    process.env.PORTALLOC_THREADS = '2';
    const before = openFds();
    const hold = reserve(19000);
    expect(new Set(hold.ports).size).toBe(19000);
    hold.release();
    expect(openFds()).toBe(before);
  });
});
