import { spawnSync } from 'node:child_process';
import net from 'node:net';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { allocate, allocateAsync, backend, isFree } from '../dist/index.js';
import { backendName, close, freeRange, listen, openFds, pythonBind, root, tryListen, tryUdp } from './helpers';

// The JS backend starts its worker thread (and its fds) on first use.
beforeAll(() => void allocate(1));

const servers: net.Server[] = [];
afterEach(async () => {
  await Promise.all(servers.splice(0).map(close));
});

/** A port nothing uses, proved by a real listener, and the server left on it. */
async function busyPort(host?: string): Promise<number> {
  const server = await listen(0, host);
  servers.push(server);
  return (server.address() as net.AddressInfo).port;
}

const native = backendName === 'native';

describe(`allocate (${backendName})`, () => {
  it('runs the backend the environment asks for', () => {
    expect(backend).toBe(backendName);
  });

  it('returns distinct ports that a Node server can listen on', async () => {
    const ports = allocate(5);
    expect(ports).toHaveLength(5);
    expect(new Set(ports).size).toBe(5);
    for (const port of ports) {
      expect(Number.isInteger(port) && port > 0 && port < 65536).toBe(true);
      expect(await tryListen(port)).toBe('ok');
    }
  });

  // The JS backend counts a port in TIME_WAIT as free (docs/backends.md): a Node server, which sets
  // SO_REUSEADDR, listens there, a non-reuse bind would not. Each backend is held to its promise.
  it(`returns ports that ${native ? 'a non-reuse bind' : 'a SO_REUSEADDR listener'} takes on every address`, () => {
    const ports = allocate(20);
    expect(pythonBind(ports, { reuse: !native, listen: !native })).toEqual(ports.map(() => 'ok'));
  });

  it('keeps a batch of 5,000 distinct and closes every socket', () => {
    const before = openFds();
    const ports = allocate(5000);
    expect(new Set(ports).size).toBe(5000);
    expect(openFds()).toBe(before);
  });

  it('allocateAsync returns a distinct batch off the main thread', async () => {
    const before = openFds();
    const pending = allocateAsync(1000);
    expect(pending).toBeInstanceOf(Promise);
    const ports = await pending;
    expect(new Set(ports).size).toBe(1000);
    expect(openFds()).toBe(before);
  });

  it('picks explicit ports within a range, distinct, none busy', async () => {
    const busy = await busyPort();
    const from = Math.max(1024, busy - 20);
    const to = from + 40;
    const ports = allocate(10, { range: [from, to] });
    expect(new Set(ports).size).toBe(10);
    for (const port of ports) {
      expect(port).toBeGreaterThanOrEqual(from);
      expect(port).toBeLessThanOrEqual(to);
      expect(port).not.toBe(busy);
    }
  });

  it('order ascending returns the lowest free ports of the range', async () => {
    const busy = await busyPort();
    const free = [busy + 1, busy + 2].filter((port) => port < 65536);
    if (free.length < 2 || pythonBind(free).some((r) => r !== 'ok')) return; // neighbours taken by someone else
    expect(allocate(2, { range: [busy, busy + 2], order: 'ascending' })).toEqual(free);
  });

  it('random order starts anywhere in the range and wraps', () => {
    const starts = new Set<number>();
    const range = freeRange(200);
    for (let i = 0; i < 30; i++) starts.add(allocate(1, { range })[0]!);
    expect(starts.size).toBeGreaterThan(5);
  });

  it('skips excluded ports', () => {
    const [from, to] = freeRange(20);
    const exclude = new Set(Array.from({ length: 10 }, (_, i) => from + 2 * i));
    const ports = allocate(10, { range: [from, to], exclude, order: 'ascending' });
    expect(ports).toEqual(Array.from({ length: 10 }, (_, i) => from + 2 * i + 1));
    const unranged = allocate(200, { exclude: allocate(200) });
    expect(unranged).toHaveLength(200);
  });

  it.each([
    ['the default host', undefined],
    ['0.0.0.0', '0.0.0.0'],
    ['127.0.0.1', '127.0.0.1'],
    ['::', '::'],
  ])('sees a port busy when a server listens on %s', async (_name, host) => {
    const port = await busyPort(host);
    expect(isFree(port)).toBe(false);
    const before = openFds();
    expect(() => allocate(1, { range: [port, port] })).toThrow(expect.objectContaining({ code: 'ERR_PORTS_EXHAUSTED' }));
    expect(openFds()).toBe(before);
  });

  it('checks an explicit host only on that address', async () => {
    const port = await busyPort('127.0.0.1');
    expect(isFree(port, { host: '127.0.0.1' })).toBe(false);
    const [picked] = allocate(1, { host: '127.0.0.1' });
    expect(await tryListen(picked!, '127.0.0.1')).toBe('ok');
    const [named] = allocate(1, { host: 'localhost' });
    expect(await tryListen(named!, 'localhost')).toBe('ok');
  });

  it('allocates UDP ports that a UDP socket binds', async () => {
    const ports = allocate(10, { protocol: 'udp' });
    expect(new Set(ports).size).toBe(10);
    for (const port of ports) expect(await tryUdp(port)).toBe('ok');
  });

  it("'both' returns ports free for TCP and UDP alike", async () => {
    const ports = allocate(10, { protocol: 'both' });
    expect(new Set(ports).size).toBe(10);
    for (const port of ports) {
      expect(await tryUdp(port)).toBe('ok');
      expect(await tryListen(port)).toBe('ok');
    }
  });

  it("'both' skips a port that only UDP uses", async () => {
    const [port] = allocate(1, { protocol: 'both' }); // free for TCP too, whatever other suites do meanwhile
    const { createSocket } = await import('node:dgram');
    const socket = createSocket({ type: 'udp6', ipv6Only: false });
    await new Promise<void>((resolve) => socket.bind(port!, '::', resolve));
    try {
      expect(isFree(port!, { protocol: 'udp' })).toBe(false);
      expect(isFree(port!, { protocol: 'tcp' })).toBe(true);
      expect(() => allocate(1, { protocol: 'both', range: [port!, port!] })).toThrow(expect.objectContaining({ code: 'ERR_PORTS_EXHAUSTED' }));
    } finally {
      await close(socket);
    }
  });

  it('reports too few free ports with how many were asked and found', async () => {
    const busy = await busyPort();
    const before = openFds();
    let error: (Error & { code?: string; asked?: number; found?: number }) | undefined;
    try {
      allocate(3, { range: [busy, busy] });
    } catch (caught) {
      error = caught as typeof error;
    }
    expect(error?.code).toBe('ERR_PORTS_EXHAUSTED');
    expect(error?.asked).toBe(3);
    expect(error?.found).toBe(0);
    expect(error?.message).toMatch(/asked for 3 free ports in range \d+-\d+, found 0/);
    expect(openFds()).toBe(before);
  });

  it('fails on an address that is not local with EADDRNOTAVAIL, errno and syscall', async () => {
    const before = openFds();
    const expected = expect.objectContaining({ code: 'EADDRNOTAVAIL', errno: -99, syscall: expect.any(String), message: expect.stringContaining('192.0.2.1') });
    expect(() => allocate(3, { host: '192.0.2.1' })).toThrow(expected);
    await expect(allocateAsync(3, { host: '192.0.2.1' })).rejects.toThrow(expected);
    expect(() => isFree(8080, { host: '192.0.2.1' })).toThrow(expected);
    expect(openFds()).toBe(before);
  });

  it('reserve runs out of fds mid-batch with EMFILE and closes what it opened; allocate needs no fd per port', () => {
    // reserve holds a socket per port; allocate closes each as soon as it is checked.
    const result = spawnSync(
      'prlimit',
      ['--nofile=64:64', process.execPath, '-e', `
        const p = require('./dist'), fs = require('fs');
        const count = () => require('./test/fixtures/fds.cjs').count();
        p.allocate(1);
        const before = count(), errors = [];
        try { p.reserve(200); errors.push('none'); } catch (e) { errors.push([e.code, e.errno, e.syscall]); }
        const ports = p.allocate(200, { range: [20000, 29999] });
        console.log(JSON.stringify({ before, after: count(), errors, distinct: new Set(ports).size }));`],
      { cwd: root, encoding: 'utf8', env: process.env },
    );
    expect(result.stderr).toBe('');
    const { before, after, errors, distinct } = JSON.parse(result.stdout) as { before: number; after: number; errors: unknown[]; distinct: number };
    expect(after).toBe(before);
    expect(errors).toEqual([['EMFILE', -24, expect.stringMatching(/^(socket|listen|bind)$/)]]);
    expect(distinct).toBe(200);
  });

  it('fails on a host name that does not resolve with ENOTFOUND', () => {
    expect(() => allocate(1, { host: 'no-such-host.invalid' })).toThrow(expect.objectContaining({ code: 'ENOTFOUND', message: expect.stringContaining('no-such-host.invalid') }));
  });
});

describe(`isFree (${backendName})`, () => {
  it('is true for a port nothing uses and false once a server listens there', async () => {
    const [port] = allocate(1);
    expect(isFree(port!)).toBe(true);
    const server = await listen(port!);
    servers.push(server);
    expect(isFree(port!)).toBe(false);
    expect(isFree(port!, { protocol: 'udp' })).toBe(true);
  });
});
