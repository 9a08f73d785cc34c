/**
 * Ports for test runners, dev servers and checkouts (issue 13), with the real
 * tools: vitest and Playwright runs of the projects under
 * test/fixtures/runners/, several at once; the node:test and jest recipes;
 * named ports across processes; a vite dev server through `portalloc exec`.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { backendName, cli, freeRange, root } from './helpers';

const native = backendName === 'native';
const runners = path.join(root, 'test', 'fixtures', 'runners');
const dist = JSON.stringify(path.join(root, 'dist'));

interface Ran {
  status: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a command to its end without blocking this process's event loop (several run at once). */
function run(command: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}): Promise<Ran> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { cwd: options.cwd ?? root, env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.setEncoding('utf8').on('data', (chunk: string) => (stdout += chunk));
    child.stderr.setEncoding('utf8').on('data', (chunk: string) => (stderr += chunk));
    child.once('error', reject);
    child.once('close', (status) => resolve({ status, stdout, stderr }));
  });
}

/** A long-running child whose stdout lines can be waited for. */
class Running {
  readonly child: ChildProcess;
  readonly lines: string[] = [];
  stderr = '';
  #wake: (() => void)[] = [];

  constructor(command: string, args: string[], options: { cwd?: string; env?: NodeJS.ProcessEnv } = {}) {
    this.child = spawn(command, args, { cwd: options.cwd ?? root, env: { ...process.env, ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] });
    let buffer = '';
    this.child.stdout!.setEncoding('utf8').on('data', (chunk: string) => {
      buffer += chunk;
      const parts = buffer.split('\n');
      buffer = parts.pop()!;
      this.lines.push(...parts);
      for (const wake of this.#wake.splice(0)) wake();
    });
    this.child.stderr!.setEncoding('utf8').on('data', (chunk: string) => (this.stderr += chunk));
    this.child.once('exit', () => {
      for (const wake of this.#wake.splice(0)) wake();
    });
  }

  /** The first line matching `pattern`; fails when the child exits first. */
  async line(pattern: RegExp): Promise<RegExpExecArray> {
    for (;;) {
      for (const line of this.lines) {
        const match = pattern.exec(line);
        if (match) return match;
      }
      if (this.child.exitCode !== null || this.child.signalCode !== null) throw new Error(`exited without ${pattern}: ${this.lines.join('\n')}\n${this.stderr}`);
      await new Promise<void>((resolve) => this.#wake.push(resolve));
    }
  }

  async stop(): Promise<number | null> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return this.child.exitCode;
    const exited = new Promise<number | null>((resolve) => this.child.once('exit', (code) => resolve(code)));
    this.child.kill('SIGTERM');
    return exited;
  }
}

function scratch(name: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `portalloc-${name}-`));
}

describe(`test runners (${backendName})`, () => {
  it('three vitest runs at once (forks x4, threads x4, forks x2): every test gets held ports its servers listen on', async () => {
    const project = path.join(runners, 'vitest');
    const vitest = path.join(root, 'node_modules', 'vitest', 'vitest.mjs');
    const out = scratch('vitest');
    try {
      const runs = [['forks', 4], ['threads', 4], ['forks', 2]].map(([pool, workers], i) => {
        const report = path.join(out, `run-${i}.json`);
        const args = [vitest, 'run', '--config', 'vitest.config.mjs', '--pool', String(pool), '--maxWorkers', String(workers), '--reporter', 'json', '--outputFile', report];
        return run(process.execPath, args, { cwd: project }).then((ran) => ({ ran, report }));
      });
      for (const { ran, report } of await Promise.all(runs)) {
        const result = JSON.parse(fs.readFileSync(report, 'utf8')) as {
          numPassedTests: number;
          numFailedTests: number;
          testResults: { assertionResults: { title: string; status: string; failureMessages: string[] }[] }[];
        };
        const failures = result.testResults.flatMap((file) => file.assertionResults.filter((test) => test.status !== 'passed').map((test) => `${test.title}: ${test.failureMessages.join(' ').slice(0, 600)}`));
        expect(ran.status, ran.stdout + ran.stderr + failures.join('\n')).toBe(0);
        expect(result).toMatchObject({ numPassedTests: 80, numFailedTests: 0 });
        expect(ran.stdout + ran.stderr).not.toContain('EADDRINUSE');
      }
    } finally {
      fs.rmSync(out, { recursive: true, force: true });
    }
  });

  it("a test's port, before its server listens: another process's allocate, isFree and drop-ins keep off it, and the server then listens", async () => {
    const [low] = freeRange(1);
    const code = `
      const { TestPorts } = require(${JSON.stringify(path.join(root, 'dist', 'test-ports.js'))});
      const net = require('node:net');
      const held = new TestPorts();
      setInterval(() => {}, 1000); // alive until stopped
      held.take(1, { range: [${low}, ${low}] }).then(([port]) => {
        console.log('port ' + port);
        process.once('SIGUSR2', () => {
          const server = net.createServer().listen(port, () => console.log('listening'));
          server.once('error', (error) => console.log('error ' + error.code));
        });
      });`;
    const test = new Running(process.execPath, ['-e', code]);
    try {
      expect(Number((await test.line(/^port (\d+)$/))[1])).toBe(low);
      const other = await run(process.execPath, ['-e', `
        const { allocate, isFree, getPort } = require(${dist});
        (async () => {
          let given;
          try { given = allocate(1, { range: [${low}, ${low}] }); } catch (error) { given = error.code; }
          const dropIn = (await getPort({ port: ${low} })) === ${low};
          console.log(JSON.stringify({ given, free: isFree(${low}), dropIn }));
        })();`]);
      // (The drop-in falls back to another port, as get-port does for a busy one.)
      expect(JSON.parse(other.stdout), other.stderr).toEqual({ given: 'ERR_PORTS_EXHAUSTED', free: false, dropIn: false });
      test.child.kill('SIGUSR2');
      await test.line(/^(listening|error \w+)$/);
      expect(test.lines).toContain('listening');
    } finally {
      await test.stop();
    }
  });

  it.runIf(!native)('off Linux (no abstract unix names, emulated): the JS backend allocates, checks, and gives a test its ports, without locks', async () => {
    const ran = await run(process.execPath, ['-r', path.join(root, 'test', 'fixtures', 'no-abstract-names.cjs'), '-e', `
      const { allocate, isFree, getPort, namedPort } = require(${dist});
      const { TestPorts } = require(${JSON.stringify(path.join(root, 'dist', 'test-ports.js'))});
      (async () => {
        const ports = allocate(3);
        const held = new TestPorts();
        const taken = await held.take(2);
        held.release();
        const named = await namedPort('web');
        console.log(JSON.stringify({ platform: process.platform, ports: ports.length, free: typeof isFree(ports[0]), getPort: typeof (await getPort()), taken: taken.length, named: typeof named }));
      })();`]);
    expect(ran.stderr).toBe('');
    expect(JSON.parse(ran.stdout)).toEqual({ platform: 'darwin', ports: 3, free: 'boolean', getPort: 'number', taken: 2, named: 'number' });
    // exec's holds are shared, which this backend cannot make: said first, not a failed name.
    const exec = await run(process.execPath, ['-r', path.join(root, 'test', 'fixtures', 'no-abstract-names.cjs'), cli, 'exec', '--name', 'web', '--', 'true']);
    expect(exec.status).toBe(1);
    expect(exec.stderr).toMatch(/^portalloc: shared holds need the native backend[^\n]*\n$/);
  });

  it('two Playwright runs at once with 4 workers (API tests, no browser): test- and worker-scoped ports', async () => {
    const project = path.join(runners, 'playwright');
    const playwright = path.join(root, 'node_modules', '@playwright', 'test', 'cli.js');
    const out = scratch('playwright');
    try {
      const runs = [0, 1].map((i) => run(process.execPath, [playwright, 'test', '--config', 'playwright.config.mjs', '--output', path.join(out, String(i))], { cwd: project }));
      for (const ran of await Promise.all(runs)) {
        expect(ran.status, ran.stderr).toBe(0);
        const stats = (JSON.parse(ran.stdout) as { stats: Record<string, number> }).stats;
        expect(stats).toMatchObject({ expected: 24, unexpected: 0, flaky: 0, skipped: 0 });
      }
    } finally {
      fs.rmSync(out, { recursive: true, force: true });
    }
  });

  it.runIf(native)("Playwright's webServer on a named port (the recipe): the main process and every worker agree on the server's port", async () => {
    const project = path.join(runners, 'playwright-webserver');
    const playwright = path.join(root, 'node_modules', '@playwright', 'test', 'cli.js');
    const ran = await run(process.execPath, [playwright, 'test', '--config', 'playwright.config.mjs'], { cwd: project });
    expect(ran.status, ran.stderr).toBe(0);
    expect((JSON.parse(ran.stdout) as { stats: Record<string, number> }).stats).toMatchObject({ expected: 4, unexpected: 0, flaky: 0 });
  });

  it('the node:test recipe and the jest recipe (its hooks run by node:test): held ports from the first hook to the last', async () => {
    const ran = await run(process.execPath, ['--test', 'node-test.run.mjs', 'jest-recipe.run.cjs'], { cwd: runners });
    if (!native) {
      // The recipes make shared holds, which the JS backend cannot (the fixtures can: test-ports.ts).
      expect(ran.status).toBe(1);
      expect(ran.stdout).toContain('ERR_PORTALLOC_UNSUPPORTED');
      return;
    }
    expect(ran.status, ran.stdout + ran.stderr).toBe(0);
    expect(ran.stdout).toMatch(/^# pass 2$/m);
  });

  it('importing portalloc loads neither vitest nor Playwright', () => {
    const code = `require(${dist}); import(${JSON.stringify(path.join(root, 'dist', 'index.mjs'))}).then(() => {
      console.log(JSON.stringify(Object.keys(require.cache).filter((file) => /node_modules[\\\\/](vitest|@vitest|@playwright|playwright)/.test(file))));
    });`;
    const ran = spawnSync(process.execPath, ['-e', code], { encoding: 'utf8' });
    expect(ran.stderr).toBe('');
    expect(JSON.parse(ran.stdout)).toEqual([]);
  });
});

describe(`named ports (${backendName})`, () => {
  const one = path.join(runners, 'named', 'one');
  const two = path.join(runners, 'named', 'two');
  const portOf = (name: string, cwd: string, extra: string[] = []) => {
    const ran = spawnSync(process.execPath, [cli, '--name', name, ...extra], { cwd, encoding: 'utf8' });
    if (ran.status !== 0) throw new Error(`portalloc --name ${name} failed: ${ran.stderr}`);
    return Number(ran.stdout.trim());
  };
  const apiPortOf = (name: string, project: string) => {
    const ran = spawnSync(process.execPath, ['-e', `require(${dist}).namedPort(${JSON.stringify(name)}, { project: ${JSON.stringify(project)} }).then((port) => console.log(port))`], { encoding: 'utf8' });
    if (ran.status !== 0) throw new Error(`namedPort failed: ${ran.stderr}`);
    return Number(ran.stdout.trim());
  };

  it('the same port for the same name and project in every process; another project or name gets another, outside the kernel range', () => {
    const web = portOf('web', one);
    expect(portOf('web', one)).toBe(web);
    expect(portOf('web', path.join(one, 'sub'))).toBe(web); // the project is found from the working directory up
    expect(portOf('web', root, ['--project', one])).toBe(web);
    expect(apiPortOf('web', one)).toBe(web);
    expect(portOf('api', one)).not.toBe(web);
    expect(portOf('web', two)).not.toBe(web);
    const [low, high] = fs.readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    for (const port of [web, portOf('api', one), portOf('web', two)]) expect(port < low! || port > high!).toBe(true);
  });

  it('the packages of a monorepo share its names: a package and its workspace root are one project; two checkouts of it are two', () => {
    const checkouts = fs.mkdtempSync(path.join(os.tmpdir(), 'portalloc-monorepo-'));
    try {
      for (const checkout of ['a', 'b']) {
        const web = path.join(checkouts, checkout, 'packages', 'web');
        fs.mkdirSync(web, { recursive: true });
        fs.mkdirSync(path.join(checkouts, checkout, '.git'));
        fs.writeFileSync(path.join(checkouts, checkout, 'package.json'), JSON.stringify({ name: 'mono', private: true, workspaces: ['packages/*'] }));
        fs.writeFileSync(path.join(web, 'package.json'), JSON.stringify({ name: 'web' }));
      }
      const atRoot = portOf('web', path.join(checkouts, 'a'));
      expect(portOf('web', path.join(checkouts, 'a', 'packages', 'web'))).toBe(atRoot);
      expect(portOf('web', path.join(checkouts, 'b', 'packages', 'web'))).not.toBe(atRoot);
    } finally {
      fs.rmSync(checkouts, { recursive: true, force: true });
    }
  });

  it('a busy port is skipped: the next one of the name, the same in every process', async () => {
    const web = portOf('busy-web', one);
    const blocker = new Running(process.execPath, ['-e', `require('net').createServer().listen(${web}, () => console.log('listening'))`]);
    try {
      await blocker.line(/^listening$/);
      const next = portOf('busy-web', one);
      expect(next).not.toBe(web);
      expect(apiPortOf('busy-web', one)).toBe(next);
    } finally {
      await blocker.stop();
    }
    expect(portOf('busy-web', one)).toBe(web);
  });

  // exec needs the native backend; the named-port lookups run with this suite's backend.
  it("while 'exec --name' runs, everyone gets the owner's port (not the next free one); a second owner is refused; then the name is free again", async () => {
    const web = portOf('owned-web', one);
    // The name's first port is busy when the owner starts, so the owner runs on the next one...
    const blocker = new Running(process.execPath, ['-e', `require('net').createServer().listen(${web}, () => console.log('listening'))`]);
    await blocker.line(/^listening$/);
    const server = `require('net').createServer((s) => s.end('owner ' + process.env.PORT)).listen(process.env.PORT, () => console.log('serving ' + process.env.PORT))`;
    const owner = new Running(process.execPath, [cli, 'exec', '--name', 'owned-web', '--', process.execPath, '-e', server], { cwd: one, env: { PORTALLOC_BACKEND: 'native' } });
    try {
      const ownerPort = Number((await owner.line(/^serving (\d+)$/))[1]);
      expect(ownerPort).not.toBe(web);
      // ...and once that first port is free again, everyone still gets the owner's.
      await blocker.stop();
      expect(portOf('owned-web', one)).toBe(ownerPort);
      expect(apiPortOf('owned-web', one)).toBe(ownerPort);
      expect(portOf('owned-web', two)).not.toBe(ownerPort); // another checkout's name is its own
      const second = spawnSync(process.execPath, [cli, 'exec', '--name', 'owned-web', '--', 'true'], { cwd: one, encoding: 'utf8', env: { ...process.env, PORTALLOC_BACKEND: 'native' } });
      expect(second.status).toBe(1);
      expect(second.stderr).toBe(`portalloc: the name 'owned-web' is owned by another running 'portalloc exec --name' (port ${ownerPort}) in ${fs.realpathSync(one)}\n`);
    } finally {
      await blocker.stop();
      await owner.stop();
    }
    expect(portOf('owned-web', one)).toBe(web);
  });

  it.runIf(native)("'exec --name' restarted keeps its port", async () => {
    const web = portOf('restart-web', one);
    for (let run = 0; run < 2; run++) {
      const ran = spawnSync(process.execPath, [cli, 'exec', '--name', 'restart-web', '--', process.execPath, '-e', 'console.log(process.env.PORT)'], { cwd: one, encoding: 'utf8' });
      expect(ran.status, ran.stderr).toBe(0);
      expect(Number(ran.stdout.trim())).toBe(web);
    }
  });
});

describe(`portalloc exec: placeholders and --name mistakes (${backendName})`, () => {
  it.runIf(native)('replaces {port}, {port:I} and {ports} in the arguments with the held ports, as in PORT and PORTS', () => {
    const ran = spawnSync(process.execPath, [cli, 'exec', '-n', '2', '--', process.execPath, '-e', 'console.log(JSON.stringify([process.argv.slice(1), process.env.PORTS]))', '{port}', '--at={port:1}', '{ports}', '{other}'], { encoding: 'utf8' });
    expect(ran.status, ran.stderr).toBe(0);
    const [args, ports] = JSON.parse(ran.stdout) as [string[], string];
    const [a, b] = ports.split(',');
    expect(args).toEqual([a, `--at=${b}`, `${a},${b}`, '{other}']);
  });

  it('a placeholder past the ports, --project without --name, --name with --fds: exit 2, one line, nothing run', () => {
    const cases: [string[], string][] = [
      [['--', 'echo', '{port:1}'], "portalloc: exec: {port:1} names port 1, but there is 1 port (-n 2 holds 2)\n"],
      [['--project', '.', '--', 'echo'], 'portalloc: exec: --project goes with --name: portalloc exec --name web --project . -- npm run dev\n'],
      [['--name', 'web', '--fds', '--', 'echo'], 'portalloc: exec: --name and --fds do not go together (a named port may be in TIME_WAIT, which no held socket can cover)\n'],
    ];
    for (const [args, stderr] of cases) {
      const ran = spawnSync(process.execPath, [cli, 'exec', ...args], { encoding: 'utf8' });
      expect(ran.status).toBe(2);
      expect(ran.stdout).toBe('');
      expect(ran.stderr).toBe(stderr);
    }
  });
});

describe.runIf(native)('portalloc exec with a real dev server', () => {
  it('vite --port {port} in a scratch project answers on the port --print prints', async () => {
    const project = scratch('vite');
    fs.writeFileSync(path.join(project, 'index.html'), '<!doctype html><title>portalloc scratch</title><p>served by vite</p>\n');
    const vite = path.join(root, 'node_modules', 'vite', 'bin', 'vite.js');
    const dev = new Running(process.execPath, [cli, 'exec', '--print', '--', process.execPath, vite, '--port', '{port}', '--strictPort', '--clearScreen', 'false'], { cwd: project });
    try {
      const port = Number((await dev.line(/^http:\/\/localhost:(\d+)$/))[1]);
      const response = await fetch(`http://localhost:${port}/`);
      expect(response.status).toBe(200);
      expect(await response.text()).toContain('served by vite');
      // vite itself says where it listens: the same port.
      expect(dev.lines.join('\n').replace(/\x1b\[[0-9;]*m/g, '')).toMatch(new RegExp(`localhost:${port}/`));
    } finally {
      await dev.stop();
      fs.rmSync(project, { recursive: true, force: true });
    }
  });
});
