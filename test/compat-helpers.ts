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

  async closeAll(): Promise<void> {
    await Promise.all(this.open.splice(0).map(close));
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
 * 10000-19999 or 30000-32767: below the kernel's ephemeral range (bind(0) and
 * connect() never pick them) and away from 20000-29999, where the core suites
 * allocate whole ranges while these suites run.
 */
export function freeRange(size: number): [number, number] {
  for (let attempt = 0; attempt < 1000; attempt++) {
    const low = Math.random() < 0.78;
    const from = low ? 10000 + Math.floor(Math.random() * (10000 - size)) : 30000 + Math.floor(Math.random() * (2768 - size));
    let free = true;
    for (let port = from; port < from + size && free; port++) free = isFree(port);
    if (free) return [from, from + size - 1];
  }
  throw new Error(`no ${size} consecutive free ports found`);
}
