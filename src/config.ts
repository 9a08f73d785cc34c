/**
 * Every PORTALLOC_* variable, read once when portalloc loads, on the
 * JavaScript thread, and validated here. Nothing else reads them: the addon
 * never calls getenv (it is not thread-safe against Node's process.env
 * writes), it gets these values with each request.
 */
import type { PortallocError } from './errors';

export interface Config {
  /** PORTALLOC_BACKEND: `'native'` (fail if the addon cannot load), `'js'`, or undefined (native, else JS). */
  readonly backend: 'native' | 'js' | undefined;
  /** PORTALLOC_COORDINATE=0: no cross-process claims unless `coordinate: true` is asked. */
  readonly coordinate: boolean;
  /** PORTALLOC_CLAIM_MS (1,000 to 3,600,000; default 20,000): how long a port handed out stays out. */
  readonly claimMs: number;
  /** PORTALLOC_PROBE=0: check ports with a socket each instead of the probe (native/probe.h). */
  readonly probe: boolean;
  /** PORTALLOC_THREADS: 0 (two threads when a CPU is free), 1 (never), 2 (whenever two CPUs are usable). */
  readonly threads: 0 | 1 | 2;
}

/** A PORTALLOC_* variable with a value portalloc cannot use. */
export function configError(name: string, value: string, expected: string): PortallocError {
  const error = new Error(`portalloc: ${name} must be ${expected}; got '${value}'`) as PortallocError;
  error.code = 'ERR_PORTALLOC_CONFIG';
  return error;
}

function choice<T extends string>(env: NodeJS.ProcessEnv, name: string, values: readonly T[]): T | undefined {
  const value = env[name];
  if (value === undefined || value === '') return undefined;
  if (!(values as readonly string[]).includes(value)) throw configError(name, value, values.map((v) => `'${v}'`).join(' or '));
  return value as T;
}

function integer(env: NodeJS.ProcessEnv, name: string, min: number, max: number, fallback: number): number {
  const value = env[name];
  if (value === undefined || value === '') return fallback;
  const number = Number(value);
  if (!/^\d+$/.test(value) || number < min || number > max) throw configError(name, value, `a whole number from ${min} to ${max}`);
  return number;
}

/** Reads and validates the variables; throws ERR_PORTALLOC_CONFIG naming the variable and the value. */
export function readConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const threads = choice(env, 'PORTALLOC_THREADS', ['0', '1', '2'] as const);
  return {
    backend: choice(env, 'PORTALLOC_BACKEND', ['native', 'js'] as const),
    coordinate: choice(env, 'PORTALLOC_COORDINATE', ['0', '1'] as const) !== '0',
    claimMs: integer(env, 'PORTALLOC_CLAIM_MS', 1000, 3_600_000, 20_000),
    probe: choice(env, 'PORTALLOC_PROBE', ['0', '1'] as const) !== '0',
    threads: threads === undefined ? 0 : (Number(threads) as 0 | 1 | 2),
  };
}

/** This process's configuration, read when portalloc loads. */
export const config: Config = readConfig();
