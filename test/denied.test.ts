/**
 * Refused binds are not busy ports. A user without CAP_NET_BIND_SERVICE asking
 * for ports below 1024, or a process in a sandbox that forbids bind(), must be
 * told so: ERR_PORTS_DENIED from the core (how many ports were refused, the
 * errno), one line from the CLI, and the drop-ins' own "no port found" errors
 * with that as their `cause`. Each case runs in a child process: as the
 * `nobody` user (when this runs as root), or under test/fixtures/nobind.c, a
 * seccomp filter under which every bind() fails with EPERM.
 */
import { spawnSync, type SpawnSyncOptions } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { cli, root } from './helpers';

vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

const fixture = path.join(root, 'test', 'fixtures', 'denied.cjs');
/** Run as nobody when root; a user that is not root already lacks the capability (unless granted: then skip). */
const unprivileged: SpawnSyncOptions = process.getuid?.() === 0 ? { uid: 65534, gid: 65534 } : {};
const firstUnprivileged = Number(fs.readFileSync('/proc/sys/net/ipv4/ip_unprivileged_port_start', 'utf8'));
const compiler = ['cc', 'gcc', 'clang'].find((tool) => spawnSync(tool, ['--version']).status === 0);

interface Seen {
  value?: unknown;
  name?: string;
  message?: string;
  code?: string;
  errno?: number;
  syscall?: string;
  refused?: number;
  cause?: Seen;
}

function run(command: string, args: string[], options: SpawnSyncOptions = {}) {
  return spawnSync(command, args, { cwd: os.tmpdir(), encoding: 'utf8', env: process.env, timeout: 60_000, ...options });
}

function report(command: string, args: string[], options?: SpawnSyncOptions): Record<string, Seen> {
  const result = run(command, args, options);
  if (result.status !== 0) throw new Error(`${args.join(' ')} failed (${result.status}): ${result.stderr}`);
  return JSON.parse(String(result.stdout)) as Record<string, Seen>;
}

describe.skipIf(firstUnprivileged < 1001)('privileged ports, as a user without CAP_NET_BIND_SERVICE', () => {
  let seen: Record<string, Seen>;
  beforeAll(() => {
    seen = report(process.execPath, [fixture, 'privileged'], unprivileged);
  });

  it('the core fails with ERR_PORTS_DENIED, counting the refused ports, with EACCES', () => {
    for (const call of ['allocate', 'reserve', 'allocateAsync']) {
      expect(seen[call], call).toMatchObject({ code: 'ERR_PORTS_DENIED', errno: -13, syscall: 'bind', refused: 1000 });
      expect(seen[call]!.message).toContain('refused 1000 binds with EACCES: ports below 1024 need root or CAP_NET_BIND_SERVICE');
    }
  });

  it('a range that reaches above the privileged ports still answers from there', () => {
    const [port] = seen.allocateAbove!.value as number[];
    expect(port).toBeGreaterThanOrEqual(firstUnprivileged);
    expect(port).toBeLessThanOrEqual(2000);
  });

  it("portfinder's and get-port-please's no-port errors keep their texts and name the refusal as cause", () => {
    expect(seen.portfinder).toMatchObject({ message: 'No open ports found in between 1 and 1000', code: 'ERR_PORTS_EXHAUSTED' });
    expect(seen.portfinder!.cause).toMatchObject({ code: 'ERR_PORTS_DENIED', errno: -13 });
    // portfinder goes on past stopPort to the first free port: every port below 1024 was refused.
    expect(seen.portfinder!.cause!.refused).toBe(firstUnprivileged - 1);
    expect(seen.getPortPlease).toMatchObject({ name: 'GetPortError', message: 'Unable to find an available port on any host (tried 1-1000)' });
    expect(seen.getPortPlease!.cause).toMatchObject({ code: 'ERR_PORTS_DENIED', errno: -13 });
    expect(seen.getPortPlease!.cause!.refused).toBeGreaterThan(900); // (get-port-please skips its unsafe ports untried)
  });

  it('get-port and detect-port skip refused ports to a random one, as the originals do', () => {
    for (const call of ['getPort', 'detectPort']) {
      expect(typeof seen[call]!.value, call).toBe('number');
      expect(seen[call]!.value as number).toBeGreaterThanOrEqual(firstUnprivileged);
    }
  });

  it('the CLI prints one line naming the cause, and exits 1', () => {
    const result = run(process.execPath, [cli, '--range', '1-1000'], unprivileged);
    expect(result.status).toBe(1);
    expect(result.stdout).toBe('');
    const lines = String(result.stderr).trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatch(/^portalloc: asked for 1 free port in range 1-1000, found 0: the kernel refused 1000 binds with EACCES: ports below 1024 need root or CAP_NET_BIND_SERVICE$/);
  });
});

describe.skipIf(!compiler)('a sandbox that forbids bind() (a seccomp filter: EPERM)', () => {
  let nobind: string;
  let seen: Record<string, Seen>;
  beforeAll(() => {
    const directory = fs.mkdtempSync(path.join(os.tmpdir(), 'portalloc-nobind-'));
    nobind = path.join(directory, 'nobind');
    const built = run(compiler!, ['-O2', '-o', nobind, path.join(root, 'test', 'fixtures', 'nobind.c')]);
    if (built.status !== 0) throw new Error(`building nobind failed: ${built.stderr}`);
    // The filter really refuses: a plain Node listen fails with EPERM under it.
    const probe = run(nobind, [process.execPath, '-e', "require('net').createServer().listen(0).on('error', (e) => { console.log(e.code); process.exit(0); })"]);
    expect(String(probe.stdout).trim()).toBe('EPERM');
    seen = report(nobind, [process.execPath, fixture, 'sandbox']);
  });
  afterAll(() => {
    if (nobind) fs.rmSync(path.dirname(nobind), { recursive: true, force: true });
  });

  it('the core fails with ERR_PORTS_DENIED and EPERM, and says a policy forbids bind()', () => {
    expect(seen.allocate).toMatchObject({ code: 'ERR_PORTS_DENIED', errno: -1, syscall: 'bind', refused: 100 });
    expect(seen.allocate!.message).toContain('refused 100 binds with EPERM: a sandbox or security policy');
  });

  it('get-port-please and get-port fail with their own texts, the refusal as cause', () => {
    expect(seen.getRandomPort).toMatchObject({ name: 'GetPortError', message: 'Unable to find a random port on any host', code: 'ERR_PORTS_EXHAUSTED' });
    expect(seen.getRandomPort!.cause).toMatchObject({ code: 'ERR_PORTS_DENIED', errno: -1 });
    expect(seen.getPort).toMatchObject({ message: 'No available ports found', code: 'ERR_PORTS_EXHAUSTED' });
    expect(seen.getPort!.cause).toMatchObject({ code: 'ERR_PORTS_DENIED', errno: -1 });
  });

  it("detect-port rejects with listen's EPERM, as its listen(0) would, the refusal as cause", () => {
    expect(seen.detectPort).toMatchObject({ code: 'EPERM', message: 'listen EPERM: operation not permitted :::0' });
    expect(seen.detectPort!.cause).toMatchObject({ code: 'ERR_PORTS_DENIED', errno: -1 });
  });

  it('get-port and portfinder stop at an EPERM with it, as theirs do (they pass over EACCES only)', () => {
    expect(seen.getPortPreferred).toMatchObject({ code: 'EPERM', syscall: 'listen' });
    expect(seen.portfinder).toMatchObject({ code: 'EPERM', message: 'listen EPERM: operation not permitted :::20000' });
  });

  it('the CLI prints one line naming the cause, and exits 1', () => {
    const result = run(nobind, [process.execPath, cli, '--range', '20000-20099']);
    expect(result.status).toBe(1);
    const lines = String(result.stderr).trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toContain('the kernel refused 100 binds with EPERM: a sandbox or security policy (seccomp, landlock, a container profile) forbids bind()');
  });
});
