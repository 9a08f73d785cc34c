import fs from 'node:fs';
import net from 'node:net';
import { Worker } from 'node:worker_threads';
import { beforeAll, describe, expect, it } from 'vitest';
import { allocate, isFree, reserve, reserveAsync } from '../dist/index.js';
import { backendName, close, freeRange, isOpen, listen, openFds, pythonBind, root, runNode, tryListen, tryUdp } from './helpers';

const native = backendName === 'native';

/** Waits until check() is true or the time is up; returns the last answer. */
async function eventually(check: () => boolean | Promise<boolean>, ms = 3000): Promise<boolean> {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (await check()) return true;
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return check();
}

describe(`reserve (${backendName})`, () => {
  // The JS backend starts its worker thread (and its fds) on first use.
  beforeAll(() => void allocate(1));

  it('holds distinct ports with one open socket each until release', () => {
    const before = openFds();
    const hold = reserve(50);
    expect(new Set(hold.ports).size).toBe(50);
    expect(hold.fds).toHaveLength(50);
    expect(hold.fds.every(isOpen)).toBe(true);
    expect(openFds()).toBe(before + 50);
    hold.release();
    hold.release(); // idempotent
    expect(hold.released).toBe(true);
    expect(openFds()).toBe(before);
  });

  it('an exclusive hold refuses a Node server and a non-reuse bind; release frees the port', async () => {
    const hold = reserve(3);
    for (const port of hold.ports) expect(await tryListen(port)).toBe('EADDRINUSE');
    expect(pythonBind(hold.ports)).toEqual(['EADDRINUSE', 'EADDRINUSE', 'EADDRINUSE']);
    expect(hold.ports.map((port) => isFree(port))).toEqual([false, false, false]);
    hold.release();
    for (const port of hold.ports) expect(await tryListen(port)).toBe('ok');
  });

  it('a held port is never handed out again, in this process or another', () => {
    const [port] = allocate(1, { range: freeRange(10) });
    const hold = reserve(1, { range: [port!, port!] });
    try {
      expect(() => allocate(1, { range: [port!, port!] })).toThrow(expect.objectContaining({ code: 'ERR_PORTS_EXHAUSTED' }));
      expect(() => reserve(1, { range: [port!, port!] })).toThrow(expect.objectContaining({ code: 'ERR_PORTS_EXHAUSTED' }));
      const other = runNode(
        `const p = require('./dist'); try { p.reserve(1, { range: [${port}, ${port}] }); console.log('"taken"') } catch (e) { console.log(JSON.stringify(e.code)) }`,
      );
      expect(other).toBe('ERR_PORTS_EXHAUSTED');
      const many = runNode(`const p = require('./dist'); console.log(JSON.stringify(p.allocate(3000)))`) as number[];
      expect(many).not.toContain(port);
    } finally {
      hold.release();
    }
  });

  it.runIf(native)('a shared hold lets a Node server listen and serve while it lasts, and still refuses non-reuse binds', async () => {
    const hold = reserve(2, { shared: true });
    expect(hold.shared).toBe(true);
    const server = await listen(hold.ports[0]!);
    try {
      const reply = await new Promise<string>((resolve, reject) => {
        const socket = net.connect(hold.ports[0]!, '127.0.0.1');
        socket.setEncoding('utf8');
        socket.on('data', resolve).on('error', reject);
      });
      expect(reply).toBe('hello\n');
      expect(pythonBind([hold.ports[1]!])).toEqual(['EADDRINUSE']);
      expect(pythonBind([hold.ports[1]!], { reuse: true, listen: true })).toEqual(['ok']);
    } finally {
      hold.release();
      await close(server);
    }
  });

  it.runIf(native)('share() turns an exclusive hold into a shared one', async () => {
    const hold = reserve(1);
    expect(await tryListen(hold.ports[0]!)).toBe('EADDRINUSE');
    hold.share();
    hold.share(); // idempotent
    expect(await tryListen(hold.ports[0]!)).toBe('ok');
    hold.release();
    expect(() => hold.share()).toThrow(expect.objectContaining({ code: 'ERR_RESERVATION_RELEASED' }));
  });

  it.skipIf(native)('the JS backend refuses shared holds with a clear error', () => {
    const before = openFds();
    expect(() => reserve(1, { shared: true })).toThrow(expect.objectContaining({ code: 'ERR_PORTALLOC_UNSUPPORTED', message: expect.stringContaining('native backend') }));
    const hold = reserve(1);
    expect(() => hold.share()).toThrow(expect.objectContaining({ code: 'ERR_PORTALLOC_UNSUPPORTED' }));
    hold.release();
    expect(openFds()).toBe(before);
  });

  it('holds UDP ports against other UDP sockets', async () => {
    const hold = reserve(3, { protocol: 'udp' });
    for (const port of hold.ports) expect(await tryUdp(port)).toBe('EADDRINUSE');
    hold.release();
    for (const port of hold.ports) expect(await tryUdp(port)).toBe('ok');
  });

  it("'both' holds TCP and UDP: fds are the TCP sockets, then the UDP ones", async () => {
    const before = openFds();
    const hold = reserve(4, { protocol: 'both' });
    expect(hold.fds).toHaveLength(8);
    for (const port of hold.ports) {
      expect(await tryUdp(port)).toBe('EADDRINUSE');
      expect(await tryListen(port)).toBe('EADDRINUSE');
    }
    hold.release();
    expect(openFds()).toBe(before);
  });

  it('holds in a range and reserveAsync', async () => {
    const [from, to] = freeRange(40);
    const hold = await reserveAsync(20, { range: [from, to] });
    expect(new Set(hold.ports).size).toBe(20);
    expect(hold.ports.every((port) => port >= from && port <= to)).toBe(true);
    hold.release();
  });

  it('Symbol.dispose releases (using)', () => {
    const before = openFds();
    {
      const hold = reserve(2);
      try {
        expect(openFds()).toBe(before + 2);
      } finally {
        hold[Symbol.dispose]();
      }
    }
    expect(openFds()).toBe(before);
  });

  it('held sockets are close-on-exec', () => {
    const hold = reserve(2);
    try {
      for (const fd of hold.fds) {
        const flags = /flags:\s*(\d+)/.exec(fs.readFileSync(`/proc/self/fdinfo/${fd}`, 'utf8'))![1]!;
        expect(parseInt(flags, 8) & 0o2000000).toBe(0o2000000);
      }
    } finally {
      hold.release();
    }
  });

  it('a garbage-collected reservation closes its sockets', () => {
    const result = runNode(
      `const p = require('./dist');
       const fs = require('fs');
       const count = () => require('./test/fixtures/fds.cjs').count();
       p.reserve(1).release();
       const before = count();
       let ports = (() => p.reserve(20).ports)();
       const held = count();
       (async () => {
         for (let i = 0; i < 500 && count() > before; i++) { gc(); await new Promise((r) => setTimeout(r, 20)); }
         console.log(JSON.stringify({ before, held, after: count(), free: ports.every((port) => p.isFree(port)) }));
       })();`,
      [],
      ['--expose-gc'],
    ) as { before: number; held: number; after: number; free: boolean };
    expect(result.held).toBe(result.before + 20);
    expect(result.after).toBe(result.before);
    expect(result.free).toBe(true);
  });

  it('a worker thread that exits holding ports closes them', async () => {
    const before = openFds();
    const worker = new Worker(`const p = require(${JSON.stringify(root + '/dist')}); require('worker_threads').parentPort.postMessage(p.reserve(10).ports);`, { eval: true });
    const ports = await new Promise<number[]>((resolve, reject) => worker.once('message', resolve).once('error', reject));
    await new Promise((resolve) => worker.once('exit', resolve));
    expect(await eventually(() => ports.every((port) => isFree(port)))).toBe(true);
    expect(await eventually(() => openFds() <= before)).toBe(true);
  });

  it('a batch that cannot complete holds nothing afterwards', () => {
    const [from, to] = freeRange(2);
    const hold = reserve(1, { range: [from, from] });
    const before = openFds();
    expect(() => reserve(2, { range: [from, to] })).toThrow(
      expect.objectContaining({ code: 'ERR_PORTS_EXHAUSTED' }),
    );
    expect(openFds()).toBe(before);
    hold.release();
  });
});
