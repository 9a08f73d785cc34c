/**
 * One owner for every port (docs/internals.md): each case where the promise
 * "no two callers get the same port" was found broken, as a user would see it,
 * on both backends where the mode exists, in the default (coordinated) mode.
 */
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { Worker } from 'node:worker_threads';
import { afterEach, describe, expect, it } from 'vitest';
import { allocate, allocateAsync, reserve, waitUntilFree, type Reservation } from '../dist/index.js';
import getPort from '../dist/index.js';
import portfinder from '../dist/compat/portfinder.js';
import { detect } from '../dist/compat/detect-port.js';
import { backendName, freeRange, root, tryListen } from './helpers';

const native = backendName === 'native';
const dist = JSON.stringify(`${root}/dist`);
const shared = (a: readonly number[], b: readonly number[]) => {
  const set = new Set(a);
  return b.filter((port) => set.has(port));
};

describe(`one owner for every port (${backendName})`, () => {
  const holds: Reservation[] = [];
  const children: ChildProcess[] = [];
  afterEach(() => {
    for (const hold of holds.splice(0)) hold.release();
    for (const child of children.splice(0)) child.kill();
  });

  it('two allocateAsync(2000) at the same time share no port', async () => {
    for (let round = 0; round < 3; round++) {
      const [a, b] = await Promise.all([allocateAsync(2000), allocateAsync(2000)]);
      expect(shared(a, b)).toEqual([]);
      expect(new Set([...a, ...b]).size).toBe(4000);
    }
  });

  it('allocate(3) then reserve(3) in one range: six different ports', () => {
    const range = freeRange(6);
    const given = allocate(3, { range });
    const hold = reserve(3, { range });
    holds.push(hold);
    expect(shared(given, hold.ports)).toEqual([]);
    expect(new Set([...given, ...hold.ports]).size).toBe(6);
  });

  it.runIf(native)("another process's reserve(1, { shared: true }) does not hold a port this process's live allocate(1) was given", async () => {
    const range = freeRange(2);
    // A: allocates one port of the two and stays alive.
    const a = spawn(process.execPath, ['-e', `console.log(require(${dist}).allocate(1, { range: [${range[0]}, ${range[1]}] })[0]); process.stdin.resume();`], { stdio: ['pipe', 'pipe', 'inherit'] });
    children.push(a);
    const port = Number(await new Promise<string>((resolve) => a.stdout!.once('data', (data: Buffer) => resolve(data.toString().trim()))));
    const hold = reserve(1, { range, shared: true });
    holds.push(hold);
    expect(hold.ports).not.toContain(port);
    // A's consumer can listen on its port; B's on its own.
    expect(await tryListen(port)).toBe('ok');
    expect(await tryListen(hold.ports[0]!)).toBe('ok');
  });

  it('the drop-ins and waitUntilFree never report a port this process holds as free', async () => {
    // Native: a shared hold, which Node's own listen (and so every original) passes; JS: an exclusive one.
    const hold = reserve(1, native ? { shared: true } : undefined);
    holds.push(hold);
    const port = hold.ports[0]!;
    expect(await getPort({ port })).not.toBe(port);
    expect(await portfinder.getPortPromise({ port, stopPort: port + 50 })).not.toBe(port);
    expect(await detect(port)).not.toBe(port);
    await expect(waitUntilFree(port, { timeout: 300, interval: 50 })).rejects.toMatchObject({ code: 'ETIMEDOUT' });
  });

  it('4 worker threads mixing allocate(1), allocateAsync(25) and reserve(50) never get the same port', async () => {
    const code = `
      const { parentPort } = require('node:worker_threads');
      const p = require(${dist});
      (async () => {
        const ports = [], holds = [];
        for (let i = 0; i < 20; i++) {
          ports.push(...p.allocate(1), ...(await p.allocateAsync(25)));
          const hold = p.reserve(50);
          holds.push(hold);
          ports.push(...hold.ports);
        }
        parentPort.postMessage(ports);
        parentPort.once('message', () => { for (const hold of holds) hold.release(); parentPort.postMessage('released'); });
      })();`;
    const workers = Array.from({ length: 4 }, () => new Worker(code, { eval: true, env: process.env }));
    try {
      const lists = await Promise.all(workers.map((worker) => new Promise<number[]>((resolve, reject) => worker.once('message', resolve).once('error', reject))));
      const all = lists.flat();
      expect(all).toHaveLength(4 * 20 * 76);
      expect(new Set(all).size).toBe(all.length);
      await Promise.all(workers.map((worker) => new Promise((resolve) => worker.once('message', resolve).postMessage('release'))));
    } finally {
      await Promise.all(workers.map((worker) => worker.terminate()));
    }
  });

  it("a worker thread's exit does not put its ports back into circulation", () => {
    // In a process of its own, so that its claims start from none.
    const range = freeRange(100);
    const workerCode = `require('node:worker_threads').parentPort.postMessage(require(${dist}).allocate(50, { range: [${range[0]}, ${range[1]}] }))`;
    const result = spawnSync(process.execPath, ['-e', `
      const { Worker } = require('node:worker_threads');
      const p = require(${dist}), fs = require('fs');
      const worker = new Worker(${JSON.stringify(workerCode)}, { eval: true });
      worker.once('message', (theirs) => worker.once('exit', () => {
        const names = fs.readFileSync('/proc/net/unix', 'utf8').split('\\n').map((line) => line.trim().split(/\\s+/)[7]);
        const claimed = theirs.filter((port) => names.includes('@portalloc/v2/port/' + port)).length;
        const mine = p.allocate(50, { range: [${range[0]}, ${range[1]}] });
        console.log(JSON.stringify({ theirs, mine, claimed }));
      }));`], { encoding: 'utf8', env: process.env });
    expect(result.stderr).toBe('');
    const { theirs, mine, claimed } = JSON.parse(result.stdout) as { theirs: number[]; mine: number[]; claimed: number };
    expect(shared(theirs, mine)).toEqual([]);
    // Native: its claims belong to the process, still bound after the worker is gone.
    expect(claimed).toBe(native ? 50 : 0);
  });

  it.runIf(native)('a process that allocates 14,000 ports and stays alive takes at most its share of claims; another keeps distinct results', () => {
    // Both processes in a network namespace of their own (claims live in the namespace), so this test process's claims do not count.
    const scenario = `
      const { spawn, spawnSync } = require('node:child_process');
      const a = spawn(process.execPath, ['-e', ${JSON.stringify(`const p = require(${dist}); const ports = p.allocate(14000); console.log(JSON.stringify({ claims: require(${JSON.stringify(`${root}/test/fixtures/fds.cjs`)}).claimFds(), first: ports.slice(0, 200) })); process.stdin.resume();`)}], { stdio: ['pipe', 'pipe', 'inherit'] });
      a.stdout.once('data', (data) => {
        const { claims, first } = JSON.parse(data);
        const b = spawnSync(process.execPath, ['-e', ${JSON.stringify(`const p = require(${dist}); console.log(JSON.stringify(Array.from({ length: 300 }, () => p.allocate(1)[0])));`)}], { encoding: 'utf8' });
        console.log(JSON.stringify({ claims, first, mine: JSON.parse(b.stdout) }));
        a.kill();
      });`;
    const isolated = spawnSync('unshare', ['-n', 'true']).status === 0;
    const result = isolated
      ? spawnSync('unshare', ['-n', 'sh', '-c', 'ip link set lo up && exec "$0" -e "$1"', process.execPath, scenario], { encoding: 'utf8', env: process.env })
      : spawnSync(process.execPath, ['-e', scenario], { encoding: 'utf8', env: process.env });
    expect(result.stderr).toBe('');
    const { claims, first, mine } = JSON.parse(result.stdout) as { claims: number; first: number[]; mine: number[] };
    // At most 512 of the ephemeral range's ~880 blocks: the rest stay for others.
    expect(claims).toBeGreaterThan(0);
    expect(claims).toBeLessThanOrEqual(512);
    expect(new Set(mine).size).toBe(300);
    // A's first ports are in blocks it claimed: never handed to B.
    expect(shared(first, mine)).toEqual([]);
  });

  it.runIf(native)('concurrent batches keep within the claim cap, and a reserve that fit before an allocate(300) still fits after it', () => {
    const result = spawnSync('prlimit', ['--nofile=512:512', process.execPath, '-e', `
      const p = require(${dist});
      const { claimFds } = require(${JSON.stringify(`${root}/test/fixtures/fds.cjs`)});
      const all = () => require('fs').readdirSync('/proc/self/fd').length;
      (async () => {
        await Promise.all(Array.from({ length: 8 }, () => p.allocateAsync(300, { range: [20000, 29999] })));
        const claims = claimFds();
        const room = 512 - all() - 8;
        const hold = p.reserve(room, { range: [20000, 29999] });
        const before = hold.ports.length;
        hold.release();
        p.allocate(300); // more claims, kept for 20 s
        const after = p.reserve(room, { range: [30000, 32000] }).ports.length;
        console.log(JSON.stringify({ claims, room, before, after }));
      })();`], { encoding: 'utf8' });
    expect(result.stderr).toBe('');
    const { claims, room, before, after } = JSON.parse(result.stdout) as { claims: number; room: number; before: number; after: number };
    expect(claims).toBeLessThanOrEqual(512 / 16);
    expect(before).toBe(room);
    expect(after).toBe(room);
  });

  // Cross-process claims are the native backend's (the JS backend has the in-process ledger only).
  it.runIf(native)("700 random drop-in ports and an allocate(200) in one process: another process's allocate(20000) gets none of them", () => {
    // (Each random drop-in port used to be claimed alone: past 512 such claims the rest, and every
    // batch of the kernel's range, went unclaimed.)
    const code = `
      const { execFileSync } = require('node:child_process');
      const { allocate } = require(${JSON.stringify(path.join(root, 'dist', 'index.js'))});
      const { detect } = require(${JSON.stringify(path.join(root, 'dist', 'compat', 'detect-port.js'))});
      (async () => {
        const mine = [];
        for (let i = 0; i < 700; i++) mine.push(await detect(0));
        mine.push(...allocate(200));
        const theirs = new Set(JSON.parse(execFileSync(process.execPath, ['-e', 'process.stdout.write(JSON.stringify(require(process.argv[1]).allocate(20000)))', ${JSON.stringify(path.join(root, 'dist', 'index.js'))}], { encoding: 'utf8' })));
        console.log(JSON.stringify(mine.filter((port) => theirs.has(port))));
      })();`;
    const isolate = spawnSync('unshare', ['-n', 'true']).status === 0;
    const result = isolate
      ? spawnSync('unshare', ['-n', 'sh', '-c', 'ip link set lo up && exec "$0" -e "$1"', process.execPath, code], { encoding: 'utf8', env: process.env })
      : spawnSync(process.execPath, ['-e', code], { encoding: 'utf8', env: process.env });
    expect(result.status, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual([]);
  });

  it.runIf(native)("portfinder's and get-port-please's drop-ins find a port another process's drop-ins only claim (nobody bound it), as the originals would", () => {
    const [low, high] = freeRange(10);
    const dist = (file: string) => JSON.stringify(path.join(root, 'dist', file));
    const code = `
      const { execFileSync } = require('node:child_process');
      const portfinder = require(${dist('compat/portfinder.js')});
      (async () => {
        // This process claims every port of the range (binding none), then another asks for one.
        await Promise.all(Array.from({ length: 10 }, () => portfinder.getPortPromise({ port: ${low}, stopPort: ${high} })));
        process.stdout.write(execFileSync(process.execPath, ['-e', \`
          const portfinder = require(${dist('compat/portfinder.js')});
          const please = require(${dist('compat/get-port-please.js')});
          (async () => {
            const found = async (get) => get().then((port) => port >= ${low} && port <= ${high}, (error) => error.message);
            console.log(JSON.stringify({
              portfinder: await found(() => portfinder.getPortPromise({ port: ${low}, stopPort: ${high} })),
              getPortPlease: await found(() => please.getPort({ port: ${low}, portRange: [${low}, ${high}], random: false })),
            }));
          })();\`], { encoding: 'utf8' }));
      })();`;
    const result = spawnSync(process.execPath, ['-e', code], { encoding: 'utf8', env: process.env });
    expect(result.status, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual({ portfinder: true, getPortPlease: true });
  });

  it.runIf(native)('8 processes handing off single ports from a 101-port range never collide (coordinated allocate and the get-port drop-in)', () => {
    const isolate = spawnSync('unshare', ['-n', 'true']).status === 0;
    const args = ['bench/handoff.mjs', '--workers', '8', '--loops', '4', '--cycles', '60', '--range', '23000-23100', '--modes', 'coordinated,dropin-get-port'];
    const result = isolate
      ? spawnSync('unshare', ['-n', 'sh', '-c', `ip link set lo up && exec "${process.execPath}" ${args.join(' ')}`], { cwd: root, encoding: 'utf8', env: process.env })
      : spawnSync(process.execPath, args, { cwd: root, encoding: 'utf8', env: process.env });
    expect(result.status, result.stderr).toBe(0);
    const rows = result.stdout.split('\n').filter((line) => line.startsWith('| portalloc'));
    expect(rows).toHaveLength(2);
    for (const row of rows) {
      const [, , handoffs, collisions] = row.split('|').map((cell) => cell.trim());
      expect(Number(handoffs), row).toBe(8 * 4 * 60);
      expect(Number(collisions), row).toBe(0);
    }
  });

  it('a worker thread reusing a used-up range gets the ports handed out longest ago, not those the main thread gave last', async () => {
    const range = freeRange(10);
    // Ascending: before the fix each thread reused from the range's start, whatever it had given last.
    const main = Array.from({ length: 13 }, () => allocate(1, { range, order: 'ascending' })[0]!);
    const worker = new Worker(
      `const { parentPort, workerData } = require('node:worker_threads');
       const { allocate } = require(workerData.dist);
       parentPort.postMessage(Array.from({ length: 5 }, () => allocate(1, { range: workerData.range, order: 'ascending' })[0]));`,
      { eval: true, workerData: { dist: path.join(root, 'dist', 'index.js'), range } },
    );
    const got = await new Promise<number[]>((resolve, reject) => worker.once('message', resolve).once('error', reject));
    // Main's 11th to 13th calls reused its first three ports; the oldest after those come next.
    expect(main.slice(10)).toEqual(main.slice(0, 3));
    expect(got).toEqual(main.slice(3, 8));
  });

  it("4 worker threads asking detect-port's drop-in for a random port 1,000 times each never get the same port", async () => {
    const code = `const { parentPort, workerData } = require('node:worker_threads');
      const { detect } = require(workerData);
      (async () => { const ports = []; for (let i = 0; i < 1000; i++) ports.push(await detect()); parentPort.postMessage(ports); })();`;
    const workers = Array.from({ length: 4 }, () => new Worker(code, { eval: true, workerData: path.join(root, 'dist', 'compat', 'detect-port.js') }));
    const ports = (await Promise.all(workers.map((worker) => new Promise<number[]>((resolve, reject) => worker.once('message', resolve).once('error', reject))))).flat();
    expect(ports).toHaveLength(4000);
    expect(ports.length - new Set(ports).size).toBe(0);
  });

  it.each([
    ['allocate(1)', 'allocate', '2'],
    ['the drop-ins (get-port, portfinder, detect-port)', 'getPort,portfinder,detect', '1'],
  ])('the main thread and 3 worker threads handing off single ports from a 101-port range never collide: %s', (_, methods, loops) => {
    const isolate = spawnSync('unshare', ['-n', 'true']).status === 0;
    const args = [path.join(root, 'test', 'fixtures', 'thread-handoff.cjs'), '4', loops, '200', isolate ? '23000-23100' : freeRange(101).join('-'), methods];
    const result = isolate
      ? spawnSync('unshare', ['-n', 'sh', '-c', `ip link set lo up && exec "${process.execPath}" ${args.map((arg) => `'${arg}'`).join(' ')}`], { encoding: 'utf8', env: process.env })
      : spawnSync(process.execPath, args, { encoding: 'utf8', env: process.env });
    expect(result.status, result.stderr).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual({ handoffs: 800 * Number(loops), inUse: 0 });
  });

  it('a port handed out stays out of this process for the window: allocate never returns it to a later call while free ports remain', () => {
    const range = freeRange(40);
    const first = allocate(20, { range });
    const second = allocate(20, { range });
    expect(shared(first, second)).toEqual([]);
    // The range is used up now: the next call reuses ports this process handed out before it began.
    const third = allocate(5, { range });
    expect(third.every((port) => first.includes(port) || second.includes(port))).toBe(true);
  });
});
