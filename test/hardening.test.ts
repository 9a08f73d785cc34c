/**
 * Faults found by the outside sweep (issue 11), as a user would meet them:
 * each test failed before its fix. Bad inputs are rows of bad-input.test.ts.
 */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { allocate } from '../dist/index.js';
import getPort from '../dist/index.js';
import { backendName, cli, freeRange, root } from './helpers';

const native = backendName === 'native';
const dist = JSON.stringify(`${root}/dist`);

describe(`hardening (${backendName})`, () => {
  it('worker threads allocating while the main thread writes process.env: no crash (the addon never reads the environment)', () => {
    const worker = `const p = require(${dist}); const end = Date.now() + 1500; let n = 0; while (Date.now() < end) { p.allocate(1); n++; } require('node:worker_threads').parentPort.postMessage(n);`;
    const result = spawnSync(process.execPath, ['-e', `
      const { Worker } = require('node:worker_threads');
      const code = ${JSON.stringify(worker)};
      const workers = [new Worker(code, { eval: true }), new Worker(code, { eval: true })];
      let i = 0;
      const writer = setInterval(() => { process.env['PORTALLOC_TEST_' + (i++ % 500)] = String(i); }, 5);
      Promise.all(workers.map((w) => new Promise((resolve) => w.once('message', resolve)))).then((counts) => {
        clearInterval(writer);
        console.log(JSON.stringify(counts));
      });`], { encoding: 'utf8', env: process.env });
    expect(result.signal).toBeNull();
    expect(result.status, result.stderr).toBe(0);
    const counts = JSON.parse(result.stdout) as number[];
    expect(counts.every((n) => n > 0)).toBe(true);
  });

  it.runIf(native)('a held socket served in this process: detach() hands the fd over, and neither release nor GC closes it under the server', async () => {
    const result = spawnSync(process.execPath, ['--expose-gc', '-e', `
      const p = require(${dist}), net = require('net');
      let hold = p.reserve(1);
      const port = hold.ports[0];
      const [fd] = hold.detach();
      const server = net.createServer((s) => s.end('ok')).listen({ fd }, async () => {
        hold.release(); // a no-op now: the reservation is released
        hold = undefined;
        for (let i = 0; i < 10; i++) { gc(); await new Promise((r) => setTimeout(r, 10)); }
        net.connect(port, '127.0.0.1').on('data', (d) => { console.log(JSON.stringify({ reply: String(d), released: true })); server.close(); });
      });`], { encoding: 'utf8', env: process.env, timeout: 30_000 });
    expect(result.status, result.stderr).toBe(0); // (before: libuv's assertion, exit 134)
    expect(JSON.parse(result.stdout)).toEqual({ reply: 'ok', released: true });
  });

  it.runIf(native)('TIME_WAIT reservation excluding the whole ephemeral range: fails at once, and puts no port into TIME_WAIT', () => {
    if (spawnSync('unshare', ['-n', 'true']).status !== 0) return; // counts TIME_WAIT sockets: needs a namespace of its own
    const result = spawnSync('unshare', ['-n', 'sh', '-c', 'ip link set lo up && exec "$0" -e "$1"', process.execPath, `
      const p = require(${dist}), fs = require('fs');
      const [low, high] = fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\\s+/).map(Number);
      const exclude = Array.from({ length: high - low + 1 }, (_, i) => low + i);
      const timeWaits = () => fs.readFileSync('/proc/net/tcp', 'utf8').split('\\n').filter((l) => l.trim().split(/\\s+/)[3] === '06').length;
      let code = null;
      try { p.allocate(1, { reserve: 'timewait', exclude }); } catch (e) { code = e.code; }
      console.log(JSON.stringify({ code, timeWaits: timeWaits() }));`], { encoding: 'utf8', env: process.env });
    expect(result.stderr).toBe('');
    // (Before: 158 s with the event loop blocked, 22,432 TIME_WAIT sockets, then this error.)
    expect(JSON.parse(result.stdout)).toEqual({ code: 'ERR_PORTS_EXHAUSTED', timeWaits: 0 });
  });

  it.runIf(native)("TIME_WAIT the kernel did not keep (tcp_max_tw_buckets reached) is an error, not a port handed out as reserved", () => {
    if (spawnSync('unshare', ['-n', 'true']).status !== 0) return; // needs a network namespace of its own
    const result = spawnSync('unshare', ['-n', 'sh', '-c', `ip link set lo up && sysctl -qw net.ipv4.tcp_max_tw_buckets=2 && exec "$0" -e "$1"`, process.execPath, `
      const p = require(${dist});
      try { p.allocate(20, { reserve: 'timewait' }); console.log(JSON.stringify({ code: null })); }
      catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); }`], { encoding: 'utf8', env: process.env });
    expect(result.stderr).toBe('');
    expect(JSON.parse(result.stdout)).toEqual({ code: 'ERR_TIMEWAIT_REFUSED', message: expect.stringContaining('tcp_max_tw_buckets') });
  });

  it('a PORTALLOC_* variable with a wrong value is an error naming it; the CLI prints one line, no stack trace', () => {
    for (const [name, value] of [['PORTALLOC_BACKEND', 'banana'], ['PORTALLOC_CLAIM_MS', '5'], ['PORTALLOC_PROBE', 'off'], ['PORTALLOC_THREADS', '9']]) {
      const api = spawnSync(process.execPath, ['-e', `try { require(${dist}); } catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message })); }`], { encoding: 'utf8', env: { ...process.env, [name]: value } });
      expect(JSON.parse(api.stdout)).toEqual({ code: 'ERR_PORTALLOC_CONFIG', message: expect.stringContaining(`${name} must be`) });
      expect(JSON.parse(api.stdout).message).toContain(`'${value}'`);
      const run = spawnSync(process.execPath, [cli, '3'], { encoding: 'utf8', env: { ...process.env, [name]: value } });
      expect(run.status).toBe(2);
      expect(run.stderr.trim().split('\n')).toEqual([expect.stringMatching(new RegExp(`^portalloc: ${name} must be .*'${value}'`))]);
    }
  });

  it('getPort with an endless exclude fails with a RangeError instead of filling the heap', async () => {
    const endless = (function* () {
      for (;;) yield 3000;
    })();
    await expect(getPort({ exclude: endless })).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE' });
  });

  it.runIf(native)('portalloc exec: a SIGINT sent to its process group (a terminal Ctrl-C) reaches the command once, as does one sent to exec', async () => {
    // The command prints each signal it gets with its sender (sigwaitinfo: si_pid), one at a time.
    const command = [
      'import signal, sys',
      'wanted = {signal.SIGINT, signal.SIGTERM}',
      'signal.pthread_sigmask(signal.SIG_BLOCK, wanted)',
      'print("ready", flush=True)',
      'while True:',
      '    info = signal.sigwaitinfo(wanted)',
      '    print(signal.Signals(info.si_signo).name, info.si_pid, flush=True)',
      '    if info.si_signo == signal.SIGTERM: sys.exit(0)',
    ].join('\n');
    // detached: exec leads a process group of its own, as a shell's job does.
    const exec = spawn(process.execPath, [cli, 'exec', '--', 'python3', '-c', command], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    const lines: string[] = [];
    let wake = () => {};
    let stdout = '';
    exec.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      stdout += chunk;
      const parts = stdout.split('\n');
      stdout = parts.pop()!;
      lines.push(...parts);
      wake();
    });
    const exited = new Promise<number | null>((resolve) => exec.once('exit', (code) => (wake(), resolve(code))));
    const lineCount = async (count: number) => {
      while (lines.length < count) {
        if (exec.exitCode !== null) throw new Error(`exec exited after ${lines.join('|')}`);
        await new Promise<void>((resolve) => (wake = resolve));
      }
    };
    try {
      await lineCount(1);
      process.kill(-exec.pid!, 'SIGINT'); // the group: exec, and (before the fix) the command itself
      await lineCount(2);
      exec.kill('SIGINT'); // exec alone
      await lineCount(3);
      exec.kill('SIGTERM');
      expect(await exited).toBe(0);
      // Every signal came once, by way of exec: none straight from this process to the command.
      expect(lines).toEqual(['ready', `SIGINT ${exec.pid}`, `SIGINT ${exec.pid}`, `SIGTERM ${exec.pid}`]);
    } finally {
      try {
        process.kill(-exec.pid!, 'SIGKILL');
      } catch {
        // gone
      }
    }
  });

  it.runIf(native)('portalloc exec whose command dies of a signal dies of the same signal (so that a shell stops its loop on Ctrl-C)', async () => {
    const exec = spawn(process.execPath, [cli, 'exec', '--', process.execPath, '-e', 'console.log("ready"); setInterval(() => {}, 1000)'], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    try {
      await new Promise<void>((resolve, reject) => {
        exec.stdout!.once('data', () => resolve());
        exec.once('exit', () => reject(new Error('exec exited first')));
      });
      const ended = new Promise<[number | null, NodeJS.Signals | null]>((resolve) => exec.once('exit', (code, signal) => resolve([code, signal])));
      exec.kill('SIGINT'); // forwarded once: the command has no handler and dies of it
      expect(await ended).toEqual([null, 'SIGINT']);
    } finally {
      try {
        process.kill(-exec.pid!, 'SIGKILL');
      } catch {
        // gone
      }
    }
  });

  // script(1) runs exec on a terminal of its own (a pty), as a person at a terminal does.
  const hasScript = spawnSync('script', ['--version']).status === 0 && spawnSync('python3', ['--version']).status === 0;
  it.runIf(native && hasScript)('portalloc exec in a terminal: the command shares it (opens /dev/tty), gets the terminal\'s Ctrl-C once, from the terminal, and SIGTERM by way of exec', async () => {
    const command = [
      'import os, signal, sys',
      'wanted = {signal.SIGINT, signal.SIGTERM}',
      'signal.pthread_sigmask(signal.SIG_BLOCK, wanted)',
      'tty = open("/dev/tty", "w")',
      'print("ready", os.getppid(), flush=True)',
      'while True:',
      '    info = signal.sigwaitinfo(wanted)',
      '    print(signal.Signals(info.si_signo).name, info.si_pid, flush=True)',
      '    if info.si_signo == signal.SIGTERM: sys.exit(0)',
    ].join('\n');
    const file = path.join(os.tmpdir(), `portalloc-tty-${process.pid}.py`);
    fs.writeFileSync(file, command);
    // `exec`: script's shell ($SHELL, dash on some machines) would otherwise wait as exec's parent
    // in the terminal's foreground group, and die of the Ctrl-C itself.
    const line = 'exec ' + [process.execPath, cli, 'exec', '--', 'python3', file].map((word) => `'${word}'`).join(' ');
    const script = spawn('script', ['-qfec', line, '/dev/null'], { stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    let wake = () => {};
    script.stdout!.setEncoding('utf8').on('data', (chunk: string) => ((output += chunk), wake()));
    const ended = new Promise<number | null>((resolve) => script.once('exit', (code) => (wake(), resolve(code))));
    const seen = async (pattern: RegExp) => {
      while (!pattern.test(output)) {
        if (script.exitCode !== null) throw new Error(`script exited: ${output}`);
        await new Promise<void>((resolve) => (wake = resolve));
      }
      return pattern.exec(output)!;
    };
    try {
      const execPid = Number((await seen(/ready (\d+)/))[1]);
      script.stdin!.write('\x03'); // Ctrl-C on the terminal
      await seen(/SIGINT \d+/);
      process.kill(execPid, 'SIGTERM');
      await seen(/SIGTERM \d+/);
      expect(await ended).toBe(0);
      // (The terminal echoes the Ctrl-C as ^C, maybe on the command's line.)
      const signals = [...output.matchAll(/(SIG[A-Z]+) (\d+)/g)].map((match) => match[0]);
      // From the terminal (si_pid 0), once; SIGTERM from exec.
      expect(signals).toEqual(['SIGINT 0', `SIGTERM ${execPid}`]);
    } finally {
      script.kill('SIGKILL');
      fs.rmSync(file, { force: true });
    }
  });

  it.runIf(native)('portalloc exec killed with its process group (SIGKILL, as Playwright stops a webServer): the command, in a group of its own, dies too', async () => {
    const exec = spawn(process.execPath, [cli, 'exec', '--', process.execPath, '-e', 'console.log(process.pid); setInterval(() => {}, 1000)'], { detached: true, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    const pid = await new Promise<number>((resolve, reject) => {
      exec.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
        stdout += chunk;
        if (stdout.includes('\n')) resolve(Number(stdout.trim()));
      });
      exec.once('exit', () => reject(new Error('exec exited first')));
    });
    const alive = () => {
      try {
        return !fs.readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.startsWith('Z');
      } catch {
        return false;
      }
    };
    try {
      expect(alive()).toBe(true);
      process.kill(-exec.pid!, 'SIGKILL');
      // The command's end is the observable: wait for it (the test's timeout bounds the wait).
      while (alive()) await new Promise((resolve) => setTimeout(resolve, 20));
      expect(alive()).toBe(false);
    } finally {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {
        // gone, as it should be
      }
    }
  });
});
