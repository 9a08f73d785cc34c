/**
 * Bookkeeping for the hardening suites: open fds, loading the built package on
 * a chosen backend, free ports proven free, and running node children.
 */
import { spawnSync, type SpawnSyncReturns } from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import path from 'node:path';
import { closeProbe } from './helpers';

export const root = path.resolve(__dirname, '..');
export const dist = path.join(root, 'dist');
export const cliPath = path.join(dist, 'cli.js');

/** What the built package's root entry exports (dist/index.js). */
export type Api = typeof import('../dist/index.js');
export type Backend = 'native' | 'js';

const load = createRequire(path.join(root, 'package.json'));

/**
 * A fresh copy of dist/ loaded with PORTALLOC_BACKEND set, so one process can
 * test both backends. The addon itself stays cached (one copy per process).
 */
export function loadApi(backend: Backend): Api {
  for (const key of Object.keys(load.cache)) {
    if (key.startsWith(dist + path.sep)) delete load.cache[key];
  }
  const saved = process.env.PORTALLOC_BACKEND;
  process.env.PORTALLOC_BACKEND = backend;
  try {
    const api = load(path.join(dist, 'index.js')) as Api;
    if (api.backend !== backend) throw new Error(`asked for the ${backend} backend, got ${api.backend}`);
    return api;
  } finally {
    if (saved === undefined) delete process.env.PORTALLOC_BACKEND;
    else process.env.PORTALLOC_BACKEND = saved;
  }
}

/**
 * Another entry point of the built package (dist/compat/<name>.js: 'portfinder', say),
 * sharing the copy of the core that the last loadApi() loaded, so it runs on that backend.
 */
export function loadEntry(name: string): Record<string, (...args: never[]) => unknown> {
  return load(path.join(dist, 'compat', `${name}.js`)) as Record<string, (...args: never[]) => unknown>;
}

/** The CLI module's exports (dist/cli.js), for in-process runs of main(argv). */
export function loadCli(): typeof import('../dist/cli.js') {
  return load(cliPath) as typeof import('../dist/cli.js');
}

/** The fds this process has open now (the allocate probe closed first: helpers.ts closeProbe). */
export function openFds(): string[] {
  closeProbe();
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  return (require('./fixtures/fds.cjs') as { openFds(): string[] }).openFds();
}

export function fdCount(): number {
  return openFds().length;
}

/** The fds of another process (root may read any). */
export function fdsOf(pid: number): string[] {
  return fs.readdirSync(`/proc/${pid}/fd`);
}

/** Socket fds (socket:[inode]) this process has open now. */
export function socketFds(pid: number | 'self' = 'self'): number {
  let count = 0;
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    try {
      if (fs.readlinkSync(`/proc/${pid}/fd/${fd}`).startsWith('socket:')) count++;
    } catch {
      // closed between readdir and readlink
    }
  }
  return count;
}

/** Whether a plain bind (no SO_REUSEADDR) succeeds on the port, for TCP on every address; proven by Node itself. */
export function bindsNow(port: number, host?: string): Promise<boolean> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(false));
    server.listen({ port, host, exclusive: true }, () => server.close(() => resolve(true)));
  });
}

/**
 * Runs `node -e script` (or a file) with extra env; the script's stdout is
 * returned parsed as JSON when it printed one JSON line last.
 */
export function runNode(args: string[], options: { env?: NodeJS.ProcessEnv; prefix?: string[]; timeout?: number } = {}): SpawnSyncReturns<string> {
  const [command, ...rest] = [...(options.prefix ?? []), process.execPath, ...args];
  return spawnSync(command!, rest, {
    cwd: root,
    env: { ...process.env, ...options.env },
    encoding: 'utf8',
    timeout: options.timeout ?? 60_000,
  });
}

export function lastJson<T>(stdout: string): T {
  const lines = stdout.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]!) as T;
}

/**
 * Where fault tests hold ports: outside the ephemeral range (bind(0) users elsewhere
 * do not take them meanwhile), one half per backend (the two backends' suites may run
 * at once). Fuzz and stress keep out of 10000-19999. Same as test/fixtures/fault-common.cjs.
 */
export function quietRange(backend: Backend): [number, number] {
  return backend === 'js' ? [15000, 19999] : [10000, 14999];
}

/** Backends to run a suite on: both, unless PORTALLOC_BACKEND pins one. */
export function backends(): Backend[] {
  const pinned = process.env.PORTALLOC_BACKEND;
  if (pinned === 'js' || pinned === 'native') return [pinned];
  return ['native', 'js'];
}
