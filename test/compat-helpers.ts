/**
 * Helpers for the compatibility suites: busy ports on chosen hosts, ports in
 * TIME_WAIT, and Node processes that load the package by name (from a temp
 * dir whose node_modules/portalloc links to this checkout), as a user's
 * program would.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { isFree } from '../dist/index.js';
import { close, listen, root } from './helpers';

/** Servers a suite started; `closeAll()` in afterEach. */
export class Servers {
  private readonly open: net.Server[] = [];

  /** A Node server listening on port at host (default host when undefined). */
  async listen(port: number, host?: string): Promise<net.Server> {
    const server = await listen(port, host);
    this.open.push(server);
    return server;
  }

  /** Closes them, then lets a macrotask pass (Node finishes closing the listening sockets). */
  async closeAll(): Promise<void> {
    await Promise.all(this.open.splice(0).map(close));
    await new Promise((resolve) => setImmediate(resolve));
  }
}

/**
 * Leaves `port` with only a TIME_WAIT socket: a server on it accepts a
 * connection and closes its side first, then everything closes.
 */
export async function timeWait(port: number): Promise<void> {
  const server = await listen(port, '127.0.0.1');
  await new Promise<void>((resolve, reject) => {
    server.removeAllListeners('connection');
    server.once('connection', (socket) => socket.end());
    const client = net.connect({ port, host: '127.0.0.1' });
    client.once('error', reject);
    client.on('data', () => undefined);
    client.once('end', () => client.end());
    client.once('close', () => resolve());
  });
  await close(server);
}

/** A temp dir where `require('portalloc')` and `import 'portalloc'` resolve to this checkout. */
export function userProject(): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portalloc-user-'));
  fs.mkdirSync(path.join(dir, 'node_modules'));
  fs.symlinkSync(root, path.join(dir, 'node_modules', 'portalloc'), 'dir');
  return dir;
}

/** Runs a .cjs or .mjs program in `dir` with this backend; its JSON stdout. */
export function runProgram(dir: string, file: string, source: string, options: { uid?: number; gid?: number } = {}): unknown {
  fs.writeFileSync(path.join(dir, file), source);
  const result = spawnSync(process.execPath, [file], { cwd: dir, encoding: 'utf8', env: process.env, ...options });
  if (result.status !== 0) throw new Error(`${file} failed (${result.status}): ${result.stderr}`);
  return JSON.parse(result.stdout);
}

/**
 * `size` consecutive ports that are all free now, at a random place in
 * 10000-19999: below the kernel's ephemeral range (bind(0) and connect() never
 * pick them), away from 20000-32000 where the core suites pick theirs, and in
 * a slice of its own for each vitest worker, so that files running at the
 * same time never pick the same ports before either has bound them.
 */
export function freeRange(size: number): [number, number] {
  const slices = 8;
  const pool = Number(process.env.VITEST_POOL_ID ?? Math.floor(Math.random() * slices));
  const sliceSize = 10000 / slices;
  const low = 10000 + (Math.abs(pool) % slices) * sliceSize;
  for (let attempt = 0; attempt < 1000; attempt++) {
    const from = low + Math.floor(Math.random() * (sliceSize - size));
    let free = true;
    for (let port = from; port < from + size && free; port++) free = isFree(port);
    if (free) return [from, from + size - 1];
  }
  throw new Error(`no ${size} consecutive free ports found in ${low}-${low + sliceSize - 1}`);
}
