// Types for bench/lib.mjs, for test/bench.test.ts.
export const root: string;
export const portalloc: typeof import('../dist/index.js');
export const addon: { benchFloor(count: number, hold: boolean): { ns: number; ports: number[] } } | undefined;
export function openFds(): number;
export function checkPorts(ports: unknown, n: number): { count: number; distinct: boolean; duplicates: number };
export function netSequential(n: number): Promise<number[]>;
export function netAllAtOnce(n: number): Promise<number[]>;
export function oneThread<T>(fn: () => T): T;
export function twoThreads<T>(fn: () => T): T;
export interface Method {
  key: string;
  name: string;
  /** Whether the method promises distinct ports (the check enforces it). */
  distinct: boolean;
  slow?: boolean;
  pending?: boolean;
  before?: () => void;
  run(n: number): number[] | Promise<number[]>;
  timed?(n: number): unknown;
  once?(n: number): { ports: number[]; ms: number };
}
export function loadMethods(): Promise<Method[]>;
export function machine(): Record<string, unknown>;
export function median(values: number[]): number;
