/**
 * Handoff without races (issue 4): cross-process coordination of plain
 * allocations, shared holds handed to 200 children, TIME_WAIT reservations,
 * sockets passed to a child, and `portalloc exec`.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { allocate, allocateAsync, inheritedSockets, isFree, reserve, spawnWithSockets } from '../dist/index.js';
import { backendName, cli, freeRange, pythonBind, root, runCli, tryListen, openFds } from './helpers';

const native = backendName === 'native';
/**
 * The suites run with PORTALLOC_COORDINATE=0 (see vitest.config.mts); the
 * processes here that test coordination get the default back.
 */
const coordinated: NodeJS.ProcessEnv = { ...process.env, PORTALLOC_COORDINATE: '1' };
const dist = JSON.stringify(path.join(root, 'dist'));

/** A Node child running `code`, its stdout split into lines as they come. */
class Child {
  readonly process: ChildProcess;
  readonly lines: string[] = [];
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  #waiters: (() => void)[] = [];
  stderr = '';

  constructor(args: string[], env: NodeJS.ProcessEnv = {}, command = process.execPath) {
    this.process = spawn(command, args, { cwd: root, env: { ...coordinated, ...env }, stdio: ['pipe', 'pipe', 'pipe'] });
    let buffer = '';
    this.process.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      buffer += chunk;
      const parts = buffer.split('\n');
      buffer = parts.pop()!;
      this.lines.push(...parts);
      for (const wake of this.#waiters.splice(0)) wake();
    });
    this.process.stderr!.setEncoding('utf8').on('data', (chunk: string) => (this.stderr += chunk));
    this.exited = new Promise((resolve) => this.process.once('exit', (code, signal) => {
      for (const wake of this.#waiters.splice(0)) wake();
      resolve({ code, signal });
    }));
  }

  /** Resolves with the first line (from `from` on) that matches, or fails when the child exits first. */
  async line(match: (line: string) => boolean, from = 0): Promise<string> {
    for (;;) {
      const found = this.lines.slice(from).find(match);
      if (found !== undefined) return found;
      if (this.process.exitCode !== null || this.process.signalCode !== null) throw new Error(`child exited without the line: ${this.stderr}`);
      await new Promise<void>((resolve) => this.#waiters.push(resolve));
    }
  }

  json<T>(): Promise<T> {
    return this.line((line) => line.startsWith('{') || line.startsWith('[')).then((line) => JSON.parse(line) as T);
  }
}

/**
 * Starts `count` children running `body` at the same moment: each loads the
 * package, says ready, waits for "go", runs body (which prints JSON), then
 * stays alive until its stdin ends. Resolves with what each printed.
 */
async function atOnce<T>(count: number, body: string): Promise<T[]> {
  const script = `
    const p = require(${dist});
    process.stdin.setEncoding('utf8');
    let started = false;
    process.stdin.on('data', async () => {
      if (started) return;
      started = true;
      ${body}
    });
    process.stdin.on('end', () => process.exit(0));
    console.log('ready');`;
  const children = Array.from({ length: count }, () => new Child(['-e', script]));
  try {
    await Promise.all(children.map((child) => child.line((line) => line === 'ready')));
    for (const child of children) child.process.stdin!.write('go\n');
    return await Promise.all(children.map((child) => child.json<T>()));
  } finally {
    for (const child of children) child.process.stdin!.end();
    await Promise.all(children.map((child) => child.exited));
  }
}

/**
 * The line a server writes to a new connection. The client closes first, so the
 * TIME_WAIT it leaves is on its own port, not the server's.
 */
function reply(port: number, host = '127.0.0.1'): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const socket = net.connect(port, host);
    socket.setEncoding('utf8').on('data', (chunk: string) => {
      text += chunk;
      if (text.includes('\n')) socket.end(() => resolve(text.trim()));
    });
    socket.once('error', reject);
  });
}

/** The TCP states of sockets on `port`, from /proc/net/tcp{,6}: '06' is TIME_WAIT, '0A' LISTEN. */
function tcpStates(port: number): string[] {
  const hex = `:${port.toString(16).toUpperCase().padStart(4, '0')}`;
  const states: string[] = [];
  for (const file of ['/proc/net/tcp', '/proc/net/tcp6']) {
    for (const line of fs.readFileSync(file, 'utf8').split('\n').slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (fields[1]?.endsWith(hex)) states.push(fields[3]!);
    }
  }
  return states;
}

/** The claims bound now, by kind: block numbers and single ports (docs/internals.md). */
function claimed(kind: 'block' | 'port'): Set<number> {
  const found = new Set<number>();
  for (const line of fs.readFileSync('/proc/net/unix', 'utf8').split('\n')) {
    const match = /@portalloc\/v2\/(block|port)\/(\d+)$/.exec(line.trim());
    if (match && match[1] === kind) found.add(Number(match[2]));
  }
  return found;
}

/** Open fds other than coordination's claim sockets, which outlive a call by design (the probe closed first). */
const fdsBesidesClaims = openFds;

/** How many sockets other than unix sockets (the holds, here) a process has open. */
function inetSockets(pid: number): number {
  const unix = new Set(fs.readFileSync('/proc/net/unix', 'utf8').split('\n').map((line) => line.trim().split(/\s+/)[6]));
  let count = 0;
  for (const fd of fs.readdirSync(`/proc/${pid}/fd`)) {
    try {
      const match = /^socket:\[(\d+)\]$/.exec(fs.readlinkSync(`/proc/${pid}/fd/${fd}`));
      if (match && !unix.has(match[1])) count++;
    } catch {
      // closed meanwhile
    }
  }
  return count;
}

describe(`cross-process coordination of plain allocations (${backendName})`, () => {
  it.runIf(native)('4 processes allocating 500 plain ports each from one shared range at once get disjoint ports', async () => {
    const [from, to] = freeRange(4000);
    const batches = await atOnce<number[]>(4, `console.log(JSON.stringify(p.allocate(500, { range: [${from}, ${to}] })));`);
    const all = batches.flat();
    expect(all).toHaveLength(2000);
    expect(new Set(all).size).toBe(2000);
    expect(all.every((port) => port >= from && port <= to)).toBe(true);
  });

  it.runIf(native)('4 processes allocating 500 ports each from the kernel range at once, sync and async, get disjoint ports', async () => {
    const batches = await atOnce<number[]>(4, `
      const ports = process.pid % 2 ? p.allocate(500) : await p.allocateAsync(500);
      console.log(JSON.stringify(ports));`);
    const all = batches.flat();
    expect(new Set(all).size).toBe(2000);
  });

  it.runIf(native)('claims are abstract unix sockets, one per port in a small range, one per block of 32 in the kernel\'s range, that block no TCP or UDP consumer', async () => {
    const [from, to] = freeRange(200);
    const ports = allocate(100, { range: [from, to], coordinate: true });
    const single = claimed('port');
    for (const port of ports) expect(single.has(port)).toBe(true);
    const large = allocate(100, { coordinate: true });
    const blocks = claimed('block');
    for (const port of large) expect(blocks.has(port >> 5)).toBe(true);
    expect(pythonBind(large.slice(0, 5))).toEqual(large.slice(0, 5).map(() => 'ok'));
    expect(pythonBind(ports)).toEqual(ports.map(() => 'ok'));
    expect(pythonBind(ports.slice(0, 5), { type: 'udp' })).toEqual(ports.slice(0, 5).map(() => 'ok'));
    expect(await tryListen(ports[0]!)).toBe('ok');
    // Another process skips the claimed ports: 100 of the range's 200 are left to it.
    const other = JSON.parse(spawnSync(process.execPath, ['-e', `console.log(JSON.stringify(require(${dist}).allocate(10, { range: [${from}, ${to}] })))`], { encoding: 'utf8', env: coordinated }).stdout) as number[];
    expect(other.filter((port) => ports.includes(port))).toEqual([]);
  });

  it('a process does not hand a port out twice while young, and gives way when the range runs out', () => {
    const [from, to] = freeRange(3);
    const result = spawnSync(process.execPath, ['-e', `
      const p = require(${dist});
      const seen = p.allocate(300).concat(...Array.from({ length: 200 }, () => p.allocate(1)));
      const first = p.allocate(3, { range: [${from}, ${to}] });
      const again = p.allocate(3, { range: [${from}, ${to}] });
      console.log(JSON.stringify({ distinct: new Set(seen).size, first: first.sort(), again: again.sort() }));`], { encoding: 'utf8', env: coordinated });
    expect(result.stderr).toBe('');
    const { distinct, first, again } = JSON.parse(result.stdout) as { distinct: number; first: number[]; again: number[] };
    expect(distinct).toBe(500);
    // The whole range was handed out just now: rather than fail, the range is offered again.
    expect(again).toEqual(first);
  });

  it.runIf(native)('keeps at most a sixteenth of the fd limit in claims and closes them after PORTALLOC_CLAIM_MS', () => {
    const result = spawnSync('prlimit', ['--nofile=512:512', process.execPath, '-e', `
      const p = require(${dist}), fs = require('fs');
      const probe = require('node-gyp-build')(${JSON.stringify(root)});
      const count = () => (probe.closeProbe(), fs.readdirSync('/proc/self/fd').length); // (claims counted: this test counts them)
      const before = count();
      for (let i = 0; i < 5; i++) p.allocate(300);
      const held = count() - before;
      setTimeout(() => console.log(JSON.stringify({ held, after: count() - before })), 2500);`], {
      cwd: root, encoding: 'utf8', env: { ...coordinated, PORTALLOC_CLAIM_MS: '1000' },
    });
    expect(result.stderr).toBe('');
    const { held, after } = JSON.parse(result.stdout) as { held: number; after: number };
    expect(held).toBeGreaterThan(0);
    expect(held).toBeLessThanOrEqual(512 / 16);
    expect(after).toBe(0);
  });

  it.runIf(native)('gives way under fd pressure: a reservation that fits without claims succeeds, with no claim left', () => {
    const result = spawnSync('prlimit', ['--nofile=256:256', process.execPath, '-e', `
      const p = require(${dist}), fs = require('fs');
      const count = () => fs.readdirSync('/proc/self/fd').length; // (every fd: claims included)
      p.allocate(300); // claims kept for 20 s
      const before = count();
      const want = 256 - before - 2; // room for the reservation, none for the claims it would add
      const hold = p.reserve(want, { range: [20000, 29999] });
      console.log(JSON.stringify({ want, got: new Set(hold.ports).size, extra: count() - before - want }));`], { cwd: root, encoding: 'utf8', env: coordinated });
    expect(result.stderr).toBe('');
    const { want, got, extra } = JSON.parse(result.stdout) as { want: number; got: number; extra: number };
    expect(got).toBe(want);
    // The claims of allocate(300) were let go to make room: at most the probe's sockets remain.
    expect(extra).toBeLessThanOrEqual(0);
  });

  it.runIf(!native)('the JS backend refuses coordinate: true with ERR_PORTALLOC_UNSUPPORTED', async () => {
    expect(() => allocate(1, { coordinate: true })).toThrow(expect.objectContaining({ code: 'ERR_PORTALLOC_UNSUPPORTED' }));
    await expect(allocateAsync(1, { coordinate: true })).rejects.toThrow(expect.objectContaining({ code: 'ERR_PORTALLOC_UNSUPPORTED' }));
  });

  it('validates coordinate and reserve', () => {
    expect(() => allocate(1, { coordinate: 'yes' as never })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE', message: expect.stringContaining('options.coordinate') }));
    expect(() => allocate(1, { reserve: 'forever' as never })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE', message: expect.stringContaining("'forever'") }));
    expect(() => reserve(1, { coordinate: false } as never)).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_VALUE', message: expect.stringContaining("'coordinate'") }));
  });
});

describe(`shared holds as the handoff (${backendName})`, () => {
  // 50000-59999: away from the ranges other suites pick (fault tests 10000-19999, freeRange 20000-32000).
  it('8 processes reserving 1,000 ports each from one 10,000-port range at once: no port twice', async () => {
    const batches = await atOnce<number[]>(8, `console.log(JSON.stringify(p.reserve(1000, { range: [50000, 59999] }).ports));`);
    const all = batches.flat();
    expect(all).toHaveLength(8000);
    expect(new Set(all).size).toBe(8000);
    expect(all.every((port) => port >= 50000 && port <= 59999)).toBe(true);
  });

  it.runIf(native)('a parent reserves 200 ports shared, 200 Node children listen on them, the parent releases: nothing fails', async () => {
    const before = fdsBesidesClaims();
    // Below the kernel's range, so suites running meanwhile (whose bind(0) with
    // SO_REUSEADDR could land on a shared hold) do not meet these ports.
    const hold = reserve(200, { shared: true, range: freeRange(200) });
    const server = `
      const port = Number(process.argv[1]);
      require('net').createServer((s) => s.write(port + '\\n')).listen(port, () => console.log('listening'))
        .on('error', (e) => { console.log('failed ' + e.code); process.exit(1); });
      process.stdin.resume().on('end', () => process.exit(0));`;
    const children: Child[] = [];
    try {
      // At most 20 starting at once on a 2-core machine; all stay up until the end.
      for (let i = 0; i < hold.ports.length; i += 20) {
        const wave = hold.ports.slice(i, i + 20).map((port) => new Child(['-e', server, String(port)]));
        children.push(...wave);
        const said = await Promise.all(wave.map((child) => child.line((line) => line === 'listening' || line.startsWith('failed'))));
        expect(said.every((line) => line === 'listening')).toBe(true);
      }
      // Non-reuse binders are still refused while the hold stands.
      expect(pythonBind(hold.ports.slice(0, 3))).toEqual(['EADDRINUSE', 'EADDRINUSE', 'EADDRINUSE']);
      const withChildren = fdsBesidesClaims(); // the hold, and each child's stdio pipes
      hold.release();
      expect(fdsBesidesClaims()).toBe(withChildren - 200);
      const replies = await Promise.all(hold.ports.map((port) => reply(port)));
      expect(replies).toEqual(hold.ports.map(String));
    } finally {
      hold.release();
      for (const child of children) child.process.stdin!.end();
      const exits = await Promise.all(children.map((child) => child.exited));
      expect(exits.every((exit) => exit.code === 0)).toBe(true);
    }
    await new Promise((resolve) => setTimeout(resolve, 50)); // the pipes close after 'exit'
    expect(fdsBesidesClaims()).toBe(before);
  });
});

describe(`TIME_WAIT reservation (${backendName})`, () => {
  it.runIf(native)('bind(0) never returns reserved ports in 20,000 binds, non-reuse binds are refused, a Node server listens', () => {
    const fixture = path.join(root, 'test', 'fixtures', 'timewait.cjs');
    // A network namespace of its own where the machine allows one (unshare -rn), so
    // its 20,000 binds do not take ports from suites running meanwhile; else here.
    let run = spawnSync('unshare', ['-rn', 'sh', '-c', 'ip link set lo up && exec "$0" "$@"', process.execPath, fixture, 'isolated'], { encoding: 'utf8' });
    if (run.status !== 0 || run.stdout === '') run = spawnSync(process.execPath, [fixture], { encoding: 'utf8' });
    expect(run.stderr).toBe('');
    const seen = JSON.parse(run.stdout) as Record<string, unknown>;
    expect({ ...seen, isolated: undefined }).toEqual({
      isolated: undefined,
      distinct: 1000,
      fdsLeft: 0, // no socket stays open
      timeWait: true,
      hits: 0,
      binds: 20000,
      isFree: [false, false, false, false, false],
      nonReuse: ['EADDRINUSE', 'EADDRINUSE', 'EADDRINUSE', 'EADDRINUSE', 'EADDRINUSE'],
      node: ['ok', 'ok'], // [::] and 127.0.0.1, SO_REUSEADDR
    });
  });

  it.runIf(native)('works in a range and asynchronously', async () => {
    const [from, to] = freeRange(20);
    const ports = await allocateAsync(5, { reserve: 'timewait', range: [from, to] });
    expect(ports.every((port) => port >= from && port <= to)).toBe(true);
    for (const port of ports) expect(tcpStates(port)).toContain('06');
    expect(allocate(15, { range: [from, to], coordinate: false }).filter((port) => ports.includes(port))).toEqual([]);
  });

  it('refuses what TIME_WAIT cannot do', () => {
    const unsupported = expect.objectContaining({ code: native ? 'ERR_OUT_OF_RANGE' : 'ERR_PORTALLOC_UNSUPPORTED' });
    if (!native) {
      expect(() => allocate(1, { reserve: 'timewait' })).toThrow(expect.objectContaining({ code: 'ERR_PORTALLOC_UNSUPPORTED', message: expect.stringContaining('native backend') }));
      return;
    }
    expect(() => allocate(1, { reserve: 'timewait', host: '0.0.0.0' })).toThrow(unsupported);
    expect(() => allocate(1, { reserve: 'timewait', protocol: 'udp' })).toThrow(expect.objectContaining({ code: 'ERR_OUT_OF_RANGE', message: expect.stringContaining('options.protocol') }));
  });

  it.runIf(native)('portalloc --timewait prints ports that stay busy after it exits', async () => {
    const { status, stdout, stderr } = runCli(['--timewait', '3']);
    expect(stderr).toBe('');
    expect(status).toBe(0);
    const ports = stdout.trim().split('\n').map(Number);
    expect(new Set(ports).size).toBe(3);
    expect(ports.map((port) => isFree(port))).toEqual([false, false, false]);
    expect(await tryListen(ports[0]!)).toBe('ok');
  });
});

describe(`passing the bound sockets to a child (${backendName})`, () => {
  const childScript = `
    const p = require(${dist});
    const pid = process.env.LISTEN_PID === String(process.pid);
    const names = p.inheritedSockets({ unsetEnvironment: false }).map((s) => s.name);
    p.listenInherited((socket) => socket.write(names[socket.localPort === Number(process.argv[1]) ? 0 : 1] + '\\n')).then((servers) => {
      console.log(JSON.stringify({ pid, left: process.env.LISTEN_FDS ?? null, ports: servers.map((s) => s.address().port) }));
    });
    process.stdin.resume().on('end', () => process.exit(0));`;

  it.runIf(native)("the child's servers accept connections on the passed sockets; the parent keeps no copy", async () => {
    const before = fdsBesidesClaims();
    const hold = reserve(2, { range: freeRange(20) });
    const child = spawnWithSockets(hold, process.execPath, ['-e', childScript, String(hold.ports[0])], { stdio: 'pipe', names: ['http', 'admin'] });
    expect(hold.released).toBe(true);
    expect(fdsBesidesClaims()).toBe(before + 3); // the child's stdio pipes, not the sockets
    let out = '';
    child.stdout!.setEncoding('utf8').on('data', (chunk: string) => (out += chunk));
    try {
      while (!out.includes('\n')) await new Promise((resolve) => setTimeout(resolve, 20));
      expect(JSON.parse(out)).toEqual({ pid: true, left: null, ports: hold.ports });
      expect(await reply(hold.ports[0]!)).toBe('http');
      expect(await reply(hold.ports[1]!, '::1')).toBe('admin');
    } finally {
      child.stdin!.end();
      await new Promise((resolve) => child.once('exit', resolve));
    }
    expect(fdsBesidesClaims()).toBe(before);
    expect(pythonBind(hold.ports)).toEqual(['ok', 'ok']); // gone with the child
  });

  it('refuses a released reservation, and the JS backend', () => {
    if (!native) {
      const hold = reserve(1);
      expect(() => spawnWithSockets(hold, 'true')).toThrow(expect.objectContaining({ code: 'ERR_PORTALLOC_UNSUPPORTED' }));
      hold.release();
      return;
    }
    const hold = reserve(1);
    hold.release();
    expect(() => spawnWithSockets(hold, 'true')).toThrow(expect.objectContaining({ code: 'ERR_RESERVATION_RELEASED' }));
    expect(() => spawnWithSockets(reserve(1), 'true', [], { names: ['a:b'] })).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
  });

  it('reads LISTEN_FDS as sd_listen_fds does: its own pid only, a capped count, open sockets only', () => {
    const read = (env: NodeJS.ProcessEnv) => {
      const result = spawnSync(process.execPath, ['-e', `
        process.env.LISTEN_PID = process.env.LISTEN_PID === 'self' ? String(process.pid) : process.env.LISTEN_PID;
        try { console.log(JSON.stringify(require(${JSON.stringify(`${root}/dist`)}).inheritedSockets())); }
        catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); }`], { encoding: 'utf8', env: { ...process.env, ...env } });
      return JSON.parse(result.stdout) as unknown;
    };
    expect(read({ LISTEN_FDS: '2', LISTEN_PID: '1' })).toEqual([]); // another process's
    expect(read({ LISTEN_FDS: '2' })).toEqual([]); // no LISTEN_PID: not ours either
    // (Before: an array of a billion entries, toward OOM; the test's timeout would catch a hang.)
    expect(read({ LISTEN_FDS: '1000000000', LISTEN_PID: 'self' })).toEqual({ code: 'ERR_INHERITED_SOCKETS', message: expect.stringContaining('LISTEN_FDS=1000000000') });
    // Node's own fds sit at 3..: not sockets handed over.
    expect(read({ LISTEN_FDS: '5', LISTEN_PID: 'self' })).toEqual({ code: 'ERR_INHERITED_SOCKETS', message: expect.stringMatching(/fd \d+ is not an open socket/) });
  });

  it.runIf(native)('spawnWithSockets takes only a reservation from reserve(): a look-alike is a TypeError before anything is spawned', () => {
    const fake = { fds: [], ports: [], released: false };
    expect(() => spawnWithSockets(fake as never, 'true')).toThrow(expect.objectContaining({ code: 'ERR_INVALID_ARG_TYPE' }));
  });
});

describe(`portalloc exec (${backendName})`, () => {
  const server = `
    const net = require('net');
    const env = process.env;
    const ports = env.PORTS.split(',').map(Number);
    const servers = ports.map((port) => net.createServer((s) => s.write('port ' + port + '\\n')).listen(port));
    let listening = 0;
    for (const s of servers) s.on('listening', () => { if (++listening === ports.length) console.log(JSON.stringify({ PORT: env.PORT, PORTS: env.PORTS, PORT_0: env.PORT_0, PORT_1: env.PORT_1 })); });
    process.on('SIGUSR2', () => { for (const s of servers) s.close(); console.log('closed'); });
    setInterval(() => {}, 1000);`;

  it.runIf(native)('runs a real Node server on $PORT, releases the holds once it listens, forwards signals, exits with its status', async () => {
    // Below the kernel's range: other programs' bind(0)s cannot take the ports between the checks.
    const [from, to] = freeRange(20);
    const child = new Child([cli, 'exec', '-n', '2', '--range', `${from}-${to}`, '--', process.execPath, '-e', server]);
    try {
      const env = await child.json<Record<string, string>>();
      const ports = env.PORTS!.split(',').map(Number);
      expect(env).toEqual({ PORT: String(ports[0]), PORTS: `${ports[0]},${ports[1]}`, PORT_0: String(ports[0]), PORT_1: String(ports[1]) });
      expect(await reply(ports[0]!)).toBe(`port ${ports[0]}`);
      expect(await reply(ports[1]!)).toBe(`port ${ports[1]}`);
      // portalloc polls /proc/net/tcp: once it has seen both listen, it closes its two holds.
      const holds = () => inetSockets(child.process.pid!);
      const deadline = Date.now() + 5000;
      while (holds() !== 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
      expect(holds()).toBe(0);
      // Signals reach the command, which runs on; once its servers close, nothing holds the ports.
      child.process.kill('SIGUSR2');
      await child.line((line) => line === 'closed');
      expect(pythonBind(ports)).toEqual(['ok', 'ok']);
      child.process.kill('SIGTERM');
      // The command dies of it; exec then dies of the same signal, as if the command had run alone.
      expect(await child.exited).toEqual({ code: null, signal: 'SIGTERM' });
    } finally {
      child.process.kill('SIGKILL');
    }
  });

  it.runIf(native)('with --fds the command gets the sockets themselves', async () => {
    const script = `require(${dist}).listenInherited((s) => s.write('fd ' + process.env.PORT + '\\n')).then(() => console.log(JSON.stringify({ port: process.env.PORT })));
      process.stdin.resume().on('end', () => process.exit(5));`;
    const child = new Child([cli, 'exec', '--fds', '--', process.execPath, '-e', script]);
    const { port } = await child.json<{ port: string }>();
    expect(await reply(Number(port))).toBe(`fd ${port}`);
    child.process.stdin!.end();
    expect(await child.exited).toEqual({ code: 5, signal: null });
  });

  it('exits with the command status, 127 for a missing command, 2 for a usage error', () => {
    const status = (args: string[]) => spawnSync(process.execPath, [cli, 'exec', ...args], { encoding: 'utf8' });
    if (!native) {
      const result = status(['--', process.execPath, '-e', 'process.exit(7)']);
      expect(result.status).toBe(1);
      expect(result.stderr).toMatch(/^portalloc: .*native backend.*\n$/);
      return;
    }
    expect(status(['--', process.execPath, '-e', 'process.exit(7)']).status).toBe(7);
    const missing = status(['--', 'portalloc-no-such-command']);
    expect(missing.status).toBe(127);
    expect(missing.stderr).toBe('portalloc: exec: portalloc-no-such-command: command not found\n');
    const usage = status([]);
    expect(usage.status).toBe(2);
    expect(usage.stderr.trim().split('\n')).toHaveLength(1);
    expect(status(['-n', 'x', '--', 'true']).status).toBe(2);
  });
});

