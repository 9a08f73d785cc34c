/**
 * Faults: what the kernel or the runtime does to a caller, not what the
 * caller gets wrong. Each one must end in a clear, coded error (or a clean
 * recovery) with no fd left open and no port still held. Most run in a child
 * process (test/fixtures/fault-*.cjs) so a limit, a namespace or an exit
 * cannot touch the test runner.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { backends, bindsNow, fdCount, lastJson, loadApi, quietRange, root, runNode, type Api } from './harden-support';

// Child processes and real sockets on a shared 2-core machine: generous limits (time is never asserted).
vi.setConfig({ testTimeout: 60_000, hookTimeout: 240_000 });

const fixtures = path.join(root, 'test', 'fixtures');
const fixture = (name: string) => path.join(fixtures, name);

/** Whether this process may make network namespaces (root, unshare present). */
const canUnshare = spawnSync('unshare', ['-n', 'true']).status === 0;
const hasPrlimit = spawnSync('prlimit', ['--version']).status === 0;
const compiler = ['cc', 'gcc', 'clang'].find((tool) => spawnSync(tool, ['--version']).status === 0);

/** Runs a command in a fresh network namespace with loopback up; `setup` are extra sh lines (sysctls). */
function inNamespace(setup: string[], command: string[], env: NodeJS.ProcessEnv) {
  const script = ['ip link set lo up', ...setup, 'exec "$@"'].join(' && ');
  return spawnSync('unshare', ['-n', 'sh', '-c', script, 'sh', ...command], {
    cwd: root,
    env: { ...process.env, ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
}

/** Ten consecutive ports this process holds (an ascending reserve of a quiet range): none free to anyone else. */
function heldBlock(api: Api): { from: number; to: number; release(): void } {
  const [low, high] = quietRange(api.backend);
  for (let attempt = 0; attempt < 20; attempt++) {
    const from = low + Math.floor(Math.random() * (high - low - 9));
    try {
      const hold = api.reserve(10, { range: [from, from + 9], order: 'ascending' });
      return { from, to: from + 9, release: () => hold.release() };
    } catch (error) {
      if ((error as { code?: string }).code !== 'ERR_PORTS_EXHAUSTED') throw error;
    }
  }
  throw new Error(`no ten free consecutive ports in ${low}-${high}`);
}

for (const backend of backends()) {
  const env = { PORTALLOC_BACKEND: backend };

  describe(`faults on the ${backend} backend`, () => {
    it.skipIf(!hasPrlimit)('fd exhaustion mid-batch (RLIMIT_NOFILE 64): EMFILE for every API, nothing left open, then recovers', () => {
      const result = runNode([fixture('fault-emfile.cjs')], { env, prefix: ['prlimit', '--nofile=64:64'] });
      expect(result.status, result.stderr).toBe(0);
      const report = lastJson<{ before: number; after: number; recovered: number; lookupWhenFull: { code: string; message: string } | null; results: { name: string; code: string | null; syscall: string; message: string; distinct?: number; after: number }[] }>(result.stdout);
      expect(report.results).toHaveLength(8);
      // allocate needs no socket per port on either backend; every reserve does.
      const probing = ['allocate', 'allocate udp', 'allocate both', 'allocate range', 'allocateAsync'];
      for (const row of report.results) {
        if (probing.includes(row.name)) {
          expect(row.code, `${row.name}: ${row.message}`).toBeNull();
          expect(row.distinct, row.name).toBe(500);
          expect(row.after, `${row.name} left fds open`).toBe(report.before);
          continue;
        }
        expect(row.code, row.name).toBe('EMFILE');
        expect(['socket', 'bind', 'listen']).toContain(row.syscall);
        expect(row.message).toMatch(/EMFILE.*ulimit -n/);
        expect(row.after, `${row.name} left fds open`).toBe(report.before);
      }
      // Out of fds, a host name cannot resolve: native says EMFILE; Node's dns (the JS backend) says ENOTFOUND.
      expect(report.lookupWhenFull?.code).toBe(backend === 'native' ? 'EMFILE' : 'ENOTFOUND');
      expect(report.lookupWhenFull?.message).toContain('localhost');
      expect(report.recovered).toBe(10);
      expect(report.after).toBe(report.before);
    });

    describe('a range with no free port', () => {
      let api: Api;
      beforeAll(() => {
        api = loadApi(backend);
        api.isFree(10000); // the JS backend's worker starts before fds are counted
      });

      it('ERR_PORTS_EXHAUSTED with asked, found and the range in the message; fds unchanged', async () => {
        const block = heldBlock(api);
        try {
          const before = fdCount();
          const calls: (() => unknown)[] = [
            () => api.allocate(1, { range: [block.from, block.to] }),
            () => api.reserve(3, { range: [block.from, block.to], order: 'ascending' }),
            () => api.allocateAsync(1, { range: [block.from, block.to], protocol: 'both' }),
            () => api.reserveAsync(2, { range: [block.from, block.to] }),
          ];
          for (const call of calls) {
            const error = await Promise.resolve()
              .then(call)
              .then(
                () => undefined,
                (e: unknown) => e as Error & { code: string; asked: number; found: number },
              );
            expect(error?.code).toBe('ERR_PORTS_EXHAUSTED');
            expect(error?.found).toBe(0);
            expect(error?.message).toContain(`in range ${block.from}-${block.to}`);
            expect(fdCount()).toBe(before);
          }
          // TCP and UDP port spaces are separate: the TCP holds leave UDP free.
          expect(api.allocate(10, { range: [block.from, block.to], protocol: 'udp' })).toHaveLength(10);
        } finally {
          block.release();
        }
      });

      it('busy UDP ports: ERR_PORTS_EXHAUSTED and isFree false, every failed bind closed', () => {
        let hold: ReturnType<Api['reserve']> | undefined;
        const [low, high] = quietRange(backend);
        for (let attempt = 0; !hold && attempt < 20; attempt++) {
          const from = low + Math.floor(Math.random() * (high - low - 4));
          try {
            hold = api.reserve(5, { protocol: 'udp', range: [from, from + 4], order: 'ascending' });
          } catch (error) {
            if ((error as { code?: string }).code !== 'ERR_PORTS_EXHAUSTED') throw error;
          }
        }
        const [from, to] = [hold!.ports[0]!, hold!.ports[4]!];
        try {
          const before = fdCount();
          for (let i = 0; i < 10; i++) {
            expect(() => api.allocate(1, { protocol: 'udp', range: [from, to] })).toThrow(expect.objectContaining({ code: 'ERR_PORTS_EXHAUSTED' }));
            expect(() => api.allocate(1, { protocol: 'both', range: [from, to] })).toThrow(expect.objectContaining({ code: 'ERR_PORTS_EXHAUSTED' }));
            expect(api.isFree(from + (i % 5), { protocol: 'udp' })).toBe(false);
          }
          expect(fdCount()).toBe(before);
        } finally {
          hold!.release();
        }
      });

      it('counts what it found when the range holds fewer free ports than asked', () => {
        const block = heldBlock(api);
        block.release();
        const before = fdCount();
        let error: (Error & { code?: string; asked?: number; found?: number }) | undefined;
        try {
          api.allocate(10, { range: [block.from, block.to], exclude: [block.from, block.to] });
        } catch (e) {
          error = e as typeof error;
        }
        expect(error?.code).toBe('ERR_PORTS_EXHAUSTED');
        expect(error?.asked).toBe(10);
        expect(error?.found).toBeLessThanOrEqual(8);
        expect(error?.message).toMatch(/asked for 10 free ports in range \d+-\d+, found \d/);
        expect(fdCount()).toBe(before);
      });
    });

    it.skipIf(!canUnshare)("the kernel's whole ephemeral range taken (a namespace with a 10-port range)", () => {
      const script = `
        const api = require('./dist/index.js');
        const out = {};
        const grab = (name, call) => { try { out[name] = call(); } catch (e) { out[name] = { code: e.code, found: e.found, message: e.message }; } };
        grab('tcp', () => api.allocate(11));
        grab('udp', () => api.allocate(11, { protocol: 'udp' }));
        const hold = api.reserve(10);
        grab('held', () => api.allocate(1));
        hold.release();
        grab('after', () => api.allocate(10).sort((a, b) => a - b));
        console.log(JSON.stringify(out));`;
      const result = inNamespace(['sysctl -q -w net.ipv4.ip_local_port_range="40000 40009"'], [process.execPath, '-e', script], env);
      expect(result.status, result.stderr).toBe(0);
      const out = lastJson<Record<string, { code: string; found: number; message: string } | number[]>>(result.stdout);
      expect(out.tcp).toMatchObject({ code: 'ERR_PORTS_EXHAUSTED', found: 10 });
      expect((out.tcp as { message: string }).message).toContain("in the kernel's ephemeral range 40000-40009");
      expect(out.udp).toMatchObject({ code: 'ERR_PORTS_EXHAUSTED', found: 10 });
      expect(out.held).toMatchObject({ code: 'ERR_PORTS_EXHAUSTED', found: 0 });
      expect(out.after).toEqual([40000, 40001, 40002, 40003, 40004, 40005, 40006, 40007, 40008, 40009]);
    });

    it.skipIf(!canUnshare)('ports of ip_local_reserved_ports are never handed out: every batch kind, a range, named ports, and the drop-ins\' random ports', () => {
      const script = `
        const api = require('./dist/index.js');
        const { detect } = require('./dist/compat/detect-port.js');
        const reserved = (port) => port >= 40100 && port <= 40199;
        (async () => {
          const out = { named: await api.namedPort('web', { range: [40100, 40200] }), detect: 0 }; // 40200 alone is not reserved
          for (let i = 0; i < 100; i++) if (reserved(await detect(0))) out.detect++;
          out.tcp = api.allocate(850).filter(reserved).length;
          const hold = api.reserve(850);
          out.reserve = hold.ports.filter(reserved).length;
          hold.release();
          out.udp = api.allocate(850, { protocol: "udp" }).filter(reserved).length;
          out.both = api.allocate(850, { protocol: "both" }).filter(reserved).length;
          out.range = api.allocate(100, { range: [40050, 40249] }).filter(reserved).length;
          try { api.allocate(1, { range: [40150, 40150] }); out.one = 'given'; } catch (error) { out.one = error.code; }
          console.log(JSON.stringify(out));
        })();`;
      // (A 1,000-port range: the batches above go round it, so a reserved port left in would be met.)
      const result = inNamespace(['sysctl -q -w net.ipv4.ip_local_port_range="40000 40999"', 'sysctl -q -w net.ipv4.ip_local_reserved_ports=40100-40199'], [process.execPath, '-e', script], env);
      expect(result.status, result.stderr).toBe(0);
      expect(lastJson(result.stdout)).toEqual({ detect: 0, tcp: 0, reserve: 0, udp: 0, both: 0, range: 0, one: 'ERR_PORTS_EXHAUSTED', named: 40200 });
    });

    describe('no IPv6 for the process: the default dual-stack path falls back to IPv4', () => {
      interface Report {
        before: number;
        after: number;
        ok: Record<string, unknown>;
        errors: Record<string, { code: string; message: string }>;
        holdBlocksIpv4: string[] | null;
      }
      const expectFallback = (report: Report, v6error: string) => {
        for (const name of ['allocate', 'allocate udp', 'allocate both', 'allocate range', 'allocateAsync', 'allocate 127.0.0.1', 'reserve']) {
          expect(report.ok[name], `${name}: ${JSON.stringify(report.errors[name])}`).toBeInstanceOf(Array);
        }
        expect(report.ok.isFree).toBe(true);
        expect(report.ok['isFree both']).toBe(true);
        // The hold is on IPv4's every-address: a Node server on 127.0.0.1 cannot take the port.
        expect(report.holdBlocksIpv4).toEqual(['EADDRINUSE', 'EADDRINUSE']);
        expect(report.errors['allocate ::1']?.code).toBe(v6error);
        expect(report.errors['allocate ::1']?.message).toContain('::1');
        expect(report.errors['isFree ::1']?.code).toBe(v6error);
        expect(report.errors['allocate ::1']?.message).toContain(v6error === 'EAFNOSUPPORT' ? 'this process has no IPv6' : 'not an address of this machine');
        expect(report.after).toBe(report.before);
      };

      it.skipIf(!canUnshare)('IPv6 disabled by sysctl in a network namespace (::1 does not exist): EADDRNOTAVAIL for ::1 only', () => {
        const sysctls = ['all', 'default', 'lo'].map((scope) => `sysctl -q -w net.ipv6.conf.${scope}.disable_ipv6=1`);
        const result = inNamespace(sysctls, [process.execPath, fixture('fault-ipv6.cjs')], env);
        expect(result.status, result.stderr).toBe(0);
        expectFallback(lastJson<Report>(result.stdout), 'EADDRNOTAVAIL');
      });

      describe.skipIf(!compiler)('socket(AF_INET6) fails with EAFNOSUPPORT (a kernel booted with ipv6.disable=1)', () => {
        let shim: string;
        beforeAll(() => {
          const directory = fs.mkdtempSync(path.join(os.tmpdir(), 'portalloc-noipv6-'));
          shim = path.join(directory, 'noipv6.so');
          const built = spawnSync(compiler!, ['-shared', '-fPIC', '-O2', '-o', shim, fixture('noipv6.c'), '-ldl'], { encoding: 'utf8' });
          if (built.status !== 0) throw new Error(`building the shim failed: ${built.stderr}`);
        });
        afterAll(() => {
          if (shim) fs.rmSync(path.dirname(shim), { recursive: true, force: true });
        });

        it('every API works on IPv4; ::1 gets EAFNOSUPPORT', () => {
          const result = runNode([fixture('fault-ipv6.cjs')], { env: { ...env, LD_PRELOAD: shim } });
          expect(result.status, result.stderr).toBe(0);
          expectFallback(lastJson<Report>(result.stdout), 'EAFNOSUPPORT');
        });
      });
    });

    it('a Reservation garbage-collected without release(): sockets closed, ports free again', () => {
      for (const protocol of ['tcp', 'both']) {
        const result = runNode(['--expose-gc', fixture('fault-gc.cjs')], { env: { ...env, PROTOCOL: protocol } });
        expect(result.status, result.stderr).toBe(0);
        const report = lastJson<{ ports: number[]; before: number; held: number; busy: boolean[]; after: number; free: boolean[] }>(result.stdout);
        expect(report.held).toBe(report.before + (protocol === 'both' ? 6 : 3));
        expect(report.busy).toEqual([true, true, true]); // held while referenced
        expect(report.after).toBe(report.before);
        expect(report.free).toEqual([true, true, true]);
      }
    });

    for (const how of ['return', 'exit', 'terminate', 'inflight']) {
      const what = {
        return: 'its script ends',
        exit: 'it calls process.exit()',
        terminate: 'the main thread terminates it',
        inflight: 'it exits while async batches still run on the thread pool',
      }[how];
      it(`a worker thread holding ports ends (${what}): no crash, ports free, fds back`, () => {
        const result = runNode([fixture('fault-worker.cjs')], { env: { ...env, HOW: how } });
        expect(result.status, result.stderr).toBe(0);
        expect(result.stderr).toBe('');
        const report = lastJson<{ ports: number[]; exclusive: number; before: number; during: number; busy: boolean[]; after: number; free: boolean[] }>(result.stdout);
        expect(report.during).toBeGreaterThan(report.before);
        expect(report.busy).toEqual(Array(report.exclusive).fill(true));
        expect(report.after).toBe(report.before);
        expect(report.free).toEqual(report.ports.map(() => true));
      });
    }

    for (const how of ['holds', 'inflight']) {
      it(`process.exit() with ${how === 'holds' ? 'holds' : 'holds and async batches in flight'}: a clean exit, and a second process finds the ports free`, async () => {
        const result = runNode([fixture('fault-exit.cjs')], { env: { ...env, HOW: how } });
        expect(result.status, result.stderr).toBe(0);
        expect(result.signal).toBeNull();
        expect(result.stderr).toBe('');
        const { ports } = JSON.parse(result.stdout.split('\n')[0]!) as { ports: number[] };
        expect(ports.length).toBeGreaterThanOrEqual(5);
        const proof = runNode(['-e', `const api = require('./dist/index.js'); console.log(JSON.stringify(${JSON.stringify(ports)}.map((port) => api.isFree(port))))`], { env });
        expect(proof.status, proof.stderr).toBe(0);
        expect(lastJson<boolean[]>(proof.stdout)).toEqual(ports.map(() => true));
        for (const port of ports) expect(await bindsNow(port)).toBe(true);
      });
    }
  });
}
