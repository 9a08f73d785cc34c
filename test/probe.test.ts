/**
 * The probe (native/probe.h): allocate checks TCP ports of the kernel's
 * ephemeral range with one socket, bind(0) steered to one port by
 * IP_LOCAL_PORT_RANGE, instead of a socket per port. What a user can observe:
 * it answers exactly as a real bind does, it needs no fd per port, its socket
 * closes when the event loop turns, nothing can connect to a probed port, and
 * calls running at the same time never share a port.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { allocate, isFree } from '../dist/index.js';
import { backendName, root } from './helpers';

vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

const native = backendName === 'native';
const dist = JSON.stringify(path.join(root, 'dist'));
const [ephemeralLow, ephemeralHigh] = fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number) as [number, number];

/**
 * 32 ports of the ephemeral range, free now for TCP and UDP, from one of the
 * parity bind(0) prefers: connect() takes its local ports from the other
 * half, so a client on this machine does not land on it meanwhile.
 */
function quietWindow(): number {
  for (;;) {
    const from = ephemeralLow + 1001 + 2 * Math.floor((Math.random() * (ephemeralHigh - ephemeralLow - 2000)) / 2);
    let free = true;
    for (let port = from; port < from + 32 && free; port++) free = isFree(port, { protocol: 'both' });
    if (free) return from;
  }
}

/**
 * A python3 process holding ports of the window in every state a bind can
 * meet, until its stdin closes. Odd offsets are busy for TCP, except +7 (UDP only).
 */
const BLOCKERS = `
import socket, sys
base = int(sys.argv[1])
keep = []
def tcp(family=socket.AF_INET):
    s = socket.socket(family, socket.SOCK_STREAM); keep.append(s); return s
a = tcp(); a.bind(('127.0.0.1', base + 1))                               # bound, never listening
b = tcp(socket.AF_INET6); b.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
b.bind(('::1', base + 3)); b.listen(1)                                   # listening, IPv6 only
c = tcp(); c.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); c.bind(('0.0.0.0', base + 5))
d = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); keep.append(d); d.bind(('0.0.0.0', base + 7))
server = tcp(); server.bind(('127.0.0.1', base + 11)); server.listen(8)
client = tcp(); client.bind(('127.0.0.1', base + 9)); client.connect(('127.0.0.1', base + 11))
keep.append(server.accept()[0])                                           # +9: a connection's local port
closer = socket.socket(socket.AF_INET, socket.SOCK_STREAM); closer.bind(('127.0.0.1', base + 13))
closer.connect(('127.0.0.1', base + 11)); peer = server.accept()[0]
closer.close(); peer.close()                                              # +13: TIME_WAIT (closed first)
print('ready', flush=True)
sys.stdin.read()
`;

describe.runIf(native)('the probe (native)', () => {
  let base = 0;
  let blockers: ChildProcess;

  beforeAll(async () => {
    base = quietWindow();
    blockers = spawn('python3', ['-c', BLOCKERS, String(base)], { stdio: ['pipe', 'pipe', 'inherit'] });
    await new Promise<void>((resolve, reject) => {
      blockers.stdout!.once('data', () => resolve());
      blockers.once('exit', (code) => reject(new Error(`blockers exited with ${code}`)));
    });
  });

  afterAll(() => {
    blockers?.stdin?.end();
  });

  for (const protocol of ['tcp', 'udp', 'both'] as const) {
    it(`answers as a real bind does, port by port (${protocol})`, () => {
      const window = Array.from({ length: 32 }, (_, i) => base + i);
      // isFree binds a socket of its own: the authority the probe must match.
      const free = window.filter((port) => isFree(port, { protocol }));
      const busy = window.filter((port) => !free.includes(port));
      const expected = { tcp: [1, 3, 5, 9, 11, 13], udp: [7], both: [1, 3, 5, 7, 9, 11, 13] }[protocol];
      expect(busy.map((port) => port - base)).toEqual(expected);
      const got = allocate(free.length, { range: [base, base + 31], order: 'ascending', protocol, coordinate: false });
      expect(got).toEqual(free);
      expect(() => allocate(free.length + 1, { range: [base, base + 31], protocol, coordinate: false })).toThrow(expect.objectContaining({ code: 'ERR_PORTS_EXHAUSTED' }));
    });
  }

  it('needs no fd per port: allocate(2000) succeeds under a limit of 32 fds, every port free', () => {
    const result = spawnSync('prlimit', ['--nofile=32:32', process.execPath, '-e', `
      const p = require(${dist});
      const ports = p.allocate(2000, { coordinate: false });
      let reserveError = null;
      try { p.reserve(2000); } catch (error) { reserveError = error.code; }
      console.log(JSON.stringify({ distinct: new Set(ports).size, inRange: ports.every((port) => port >= ${ephemeralLow} && port <= ${ephemeralHigh}), free: ports.every((port) => p.isFree(port)), reserveError }));`], { encoding: 'utf8' });
    expect(result.stderr).toBe('');
    expect(JSON.parse(result.stdout)).toEqual({ distinct: 2000, inRange: true, free: true, reserveError: 'EMFILE' });
  });

  it('keeps its socket open while the thread runs on, and closes it when the event loop turns', async () => {
    const result = spawnSync(process.execPath, ['-e', `
      const p = require(${dist}), fs = require('fs');
      const count = () => fs.readdirSync('/proc/self/fd').length;
      const before = count();
      p.allocate(5, { coordinate: false });
      const during = count();
      for (let i = 0; i < 100; i++) p.allocate(5, { coordinate: false });
      const loop = count();
      setImmediate(() => console.log(JSON.stringify({ during: during - before, loop: loop - before, after: count() - before })));`], { encoding: 'utf8' });
    expect(result.stderr).toBe('');
    expect(JSON.parse(result.stdout)).toEqual({ during: 1, loop: 1, after: 0 });
  });

  it('lets no connection complete to a port while it checks it', () => {
    // A client connects to one port over and over while this process probes that
    // port: each check listens for about a microsecond, and a socket filter drops
    // every packet meanwhile. Without it, some connects would complete.
    const port = quietWindow() + 2; // (bind(0)'s parity: the client's own local ports are of the other)
    const client = spawn('python3', ['-c', `
import socket, sys, time, json
port = int(sys.argv[1]); done = time.time() + 1.5; counts = {'connected': 0, 'refused': 0, 'timeout': 0}
while time.time() < done:
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM); s.settimeout(0.02)
    try:
        s.connect(('127.0.0.1', port)); counts['connected'] += 1
    except ConnectionRefusedError:
        counts['refused'] += 1
    except (socket.timeout, TimeoutError):
        counts['timeout'] += 1
    s.close()
print(json.dumps(counts))
`, String(port)], { stdio: ['ignore', 'pipe', 'inherit'] });
    let output = '';
    client.stdout!.on('data', (chunk: Buffer) => (output += chunk.toString()));
    const stop = Date.now() + 1600;
    let checks = 0;
    while (Date.now() < stop) {
      for (let i = 0; i < 200; i++) {
        allocate(1, { range: [port, port], coordinate: false });
        checks++;
      }
    }
    return new Promise<void>((resolve) => {
      client.once('exit', () => {
        const counts = JSON.parse(output) as { connected: number; refused: number; timeout: number };
        expect(checks).toBeGreaterThan(1000);
        expect(counts.refused).toBeGreaterThan(0);
        expect(counts.connected).toBe(0);
        resolve();
      });
    });
  });
});

describe.runIf(native)('calls at the same time in one process (probed ports are not held)', () => {
  // Each scenario in a child of its own, so coordination starts fresh, as in
  // the reviewer's reproduction: two allocateAsync at once, a synchronous
  // allocate while one runs, and a reserve beside an allocate. Bound sockets
  // made the kernel refuse a port to the second batch; the probe must too.
  const overlaps = (code: string, env: NodeJS.ProcessEnv = {}) => {
    const result = spawnSync(process.execPath, ['-e', `
      const p = require(${dist});
      const shared = (a, b) => { const s = new Set(a); return b.filter((port) => s.has(port)).length; };
      (async () => { const rounds = []; for (let r = 0; r < 4; r++) rounds.push(await (${code})(p, shared)); console.log(JSON.stringify(rounds)); })();`],
    { encoding: 'utf8', env: { ...process.env, ...env } });
    expect(result.stderr).toBe('');
    return JSON.parse(result.stdout) as number[];
  };
  const twoAsync = (options: string) => `async (p, shared) => { const [a, b] = await Promise.all([p.allocateAsync(3000, ${options}), p.allocateAsync(3000, ${options})]); return shared(a, b); }`;

  it('two allocateAsync(3000) at once share no port, coordinated or not, on one thread or two', () => {
    for (const threads of ['1', '2']) {
      expect(overlaps(twoAsync('undefined'), { PORTALLOC_THREADS: threads })).toEqual([0, 0, 0, 0]);
      expect(overlaps(twoAsync('{ coordinate: false }'), { PORTALLOC_THREADS: threads })).toEqual([0, 0, 0, 0]);
    }
  });

  it('a synchronous allocate while an allocateAsync runs shares no port with it', () => {
    const code = `async (p, shared) => { const a = p.allocateAsync(3000, { coordinate: false }); const b = p.allocate(3000, { coordinate: false }); return shared(await a, b); }`;
    expect(overlaps(code, { PORTALLOC_THREADS: '1' })).toEqual([0, 0, 0, 0]);
  });

  it('allocateAsync(1), UDP batches and a socket-per-port range share no port with batches beside them', () => {
    // (Ports closed at a batch's end, not only probed ones, stay off-limits to the batches running meanwhile.)
    const one = `async (p, shared) => { let n = 0; for (let i = 0; i < 10; i++) { const [a, b] = await Promise.all([p.allocateAsync(1, { coordinate: false }), p.allocateAsync(6000, { coordinate: false })]); n += shared(a, b); } return n; }`;
    expect(overlaps(one)).toEqual([0, 0, 0, 0]);
    const udp = `async (p, shared) => { const [a, b] = await Promise.all([p.allocateAsync(3000, { protocol: 'udp', coordinate: false }), p.allocateAsync(3000, { protocol: 'udp', coordinate: false })]); return shared(a, b); }`;
    expect(overlaps(udp)).toEqual([0, 0, 0, 0]);
    const ascending = `async (p, shared) => { const [a, hold] = await Promise.all([p.allocateAsync(3000, { range: [40000, 47999], order: 'ascending', coordinate: false }), p.reserveAsync(3000, { range: [40000, 47999], order: 'ascending' })]); hold.release(); return shared(a, hold.ports); }`;
    expect(overlaps(ascending)).toEqual([0, 0, 0, 0]);
  });

  it('ports kept off-limits for a batch still outstanding do not pile up for batches that begin later', () => {
    // An allocateAsync waits for the event loop while two large synchronous batches run: the second may reuse the first's ports.
    const code = `async (p) => { const pending = p.allocateAsync(1); try { p.allocate(15000, { coordinate: false }); p.allocate(15000, { coordinate: false }); return 0; } catch (error) { return error.code; } finally { await pending; } }`;
    expect(overlaps(code)).toEqual([0, 0, 0, 0]);
  });

  it('a reserveAsync beside an allocateAsync holds none of the ports allocate returns', () => {
    const code = `async (p, shared) => { const [a, hold] = await Promise.all([p.allocateAsync(3000, { coordinate: false }), p.reserveAsync(3000)]); hold.release(); return shared(a, hold.ports); }`;
    expect(overlaps(code)).toEqual([0, 0, 0, 0]);
  });
});

describe.runIf(native)('PORTALLOC_PROBE=0: a socket per port, as on kernels without IP_LOCAL_PORT_RANGE', () => {
  it('allocate still returns distinct free ports, needs no fd per port, and leaves none open', () => {
    const result = spawnSync('prlimit', ['--nofile=256:256', process.execPath, '-e', `
      const p = require(${dist}), fs = require('fs');
      const count = () => fs.readdirSync('/proc/self/fd').length;
      const before = count();
      const small = p.allocate(100, { coordinate: false });
      const split = p.allocate(20, { protocol: 'both', coordinate: false });
      const during = count();
      const many = new Set(p.allocate(400, { coordinate: false })).size;
      console.log(JSON.stringify({ distinct: new Set(small).size, both: new Set(split).size, free: small.every((port) => p.isFree(port)), many, fds: during - before, after: count() - before }));`], { encoding: 'utf8', env: { ...process.env, PORTALLOC_PROBE: '0' } });
    expect(result.stderr).toBe('');
    expect(JSON.parse(result.stdout)).toEqual({ distinct: 100, both: 20, free: true, many: 400, fds: 0, after: 0 });
  });

  it('a large batch on two threads returns distinct ports', () => {
    const result = spawnSync(process.execPath, ['-e', `
      const p = require(${dist});
      const ports = p.allocate(6000, { coordinate: false });
      console.log(JSON.stringify({ distinct: new Set(ports).size }));`], { encoding: 'utf8', env: { ...process.env, PORTALLOC_PROBE: '0', PORTALLOC_THREADS: '2' } });
    expect(result.stderr).toBe('');
    expect(JSON.parse(result.stdout)).toEqual({ distinct: 6000 });
  });
});
