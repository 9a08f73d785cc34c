// portalloc's benchmark suite: `npm run bench` (full, under ten minutes) or
// `npm run bench -- --quick` (CI, under a minute). Runs against the built
// dist/ and build/ (run `npm run build` first).
//
// Sections (pick with --only=table,paired,scale,loop,memory,livelock):
//   table   every method for n = 1, 100, 1,000, 10,000: us/port, ports/s, x
//           faster than node:net, x the native floor
//   paired  the target ratios at n = 10,000, methods alternating in rounds
//   scale   per-port cost of reserve(n) and allocate(n), with and without
//           range, n = 100 ... 19,000, against the naive held floor
//   loop    event-loop delay while allocateAsync(10000) runs
//   memory  RSS and fds after 1,000,000 allocations in batches of 1,000
//           (a child process with --expose-gc)
//   livelock why get-port cannot hand out 10,000 ports in one process
// --strict exits 1 when a measured target is missed.
// Writes bench/results/<full|quick>.json and <full|quick>-scale.svg (or
// --out=PATH.json) and prints the tables and the targets.
import { execFileSync } from 'node:child_process';
import { mkdirSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Bench } from 'tinybench';
import { scaleChart } from './chart.mjs';
import { getPortLivelock } from './get-port-livelock.mjs';
import { evaluateTargets, formatTargets } from './targets.mjs';
import { addon, checkPorts, loadMethods, machine, median, oneThread, openFds, portalloc, root } from './lib.mjs';

const args = process.argv.slice(2);
const quick = args.includes('--quick');
const only = args.find((a) => a.startsWith('--only='))?.slice(7).split(',') ?? ['table', 'paired', 'scale', 'loop', 'memory', ...(quick ? [] : ['livelock'])];
const outArg = args.find((a) => a.startsWith('--out='))?.slice(6);
const outJson = path.resolve(outArg ?? path.join(root, 'bench/results', quick ? 'quick.json' : 'full.json'));
const outSvg = outJson.replace(/\.json$/, '') + '-scale.svg';

if (portalloc.backend !== 'native') {
  console.warn('portalloc is running its pure-JS backend: there is no native floor, and the figures are not the native ones.');
}

const started = Date.now();
const results = { quick, machine: machine(), table: [], scale: [], eventLoop: undefined, memory: undefined };

const log = (...line) => console.log(...line);
const round = (x, digits = 2) => (x === undefined || x === null || Number.isNaN(x) ? null : Number(x.toFixed(digits)));

/** tinybench settings for one timed point: fewer, longer samples as n grows. */
function settings(n, slow) {
  const expectedMs = (n * (slow ? 0.3 : 0.015)) || 0.01;
  if (quick) {
    return expectedMs > 500
      ? { time: 0, iterations: 1, warmup: false }
      : { time: 50, iterations: 3, warmup: true, warmupTime: 20, warmupIterations: 1 };
  }
  if (expectedMs > 1500) return { time: 0, iterations: 2, warmup: false };
  return { time: 400, iterations: 5, warmup: true, warmupTime: 100, warmupIterations: 2 };
}

/**
 * Checks a method's result, then times it with tinybench. Returns the row:
 * median us/port (p50 of the samples), ports/s, samples, and the check.
 */
async function measure(method, n, bench = settings(n, method.slow)) {
  if (bench.once) {
    const { ports, ms } = method.once(n);
    const check = checkPorts(ports, n);
    if (method.distinct && !check.distinct) throw new Error(`${method.name} returned ${check.duplicates} repeated ports for n = ${n}`);
    const usPerPort = (ms * 1000) / n;
    return { method: method.key, name: method.name, n, usPerPort: round(usPerPort, 3), portsPerSecond: Math.round(1e6 / usPerPort), samples: 1, duplicates: check.duplicates, fdsLeaked: 0 };
  }
  method.before?.();
  const fdsBefore = openFds();
  const first = method.run(n);
  const isAsync = first instanceof Promise;
  const check = checkPorts(await first, n);
  if (method.distinct && !check.distinct) throw new Error(`${method.name} returned ${check.duplicates} repeated ports for n = ${n}`);
  const b = new Bench({ ...bench, throws: true });
  const timed = method.timed ? () => method.timed(n) : () => method.run(n);
  b.add(method.name, timed, { async: isAsync, beforeEach: method.before });
  await b.run();
  const result = b.tasks[0].result;
  const usPerPort = (result.latency.p50 * 1000) / n;
  // Held sockets are closed by release(); node:net's by close(): whatever
  // stays open here is a leak in the method, which the row records.
  await new Promise((resolve) => setImmediate(resolve));
  return {
    method: method.key,
    name: method.name,
    n,
    usPerPort: round(usPerPort, 3),
    portsPerSecond: Math.round(1e6 / usPerPort),
    samples: result.latency.samplesCount,
    rme: round(result.latency.rme, 1),
    duplicates: check.duplicates,
    fdsLeaked: openFds() - fdsBefore,
  };
}

function printRows(rows, columns) {
  console.table(rows.map((row) => Object.fromEntries(columns.map(([title, key, f]) => [title, f ? f(row[key], row) : row[key]]))));
}

// ---------------------------------------------------------------- table
async function tableSection(methods) {
  const sizes = [1, 100, 1000, 10000];
  for (const n of sizes) {
    log(`\n# n = ${n}`);
    const rows = [];
    for (const method of methods) {
      if (method.pending) {
        rows.push({ method: method.key, name: method.name, n, pending: true });
        continue;
      }
      // Quick: the slow competitors at 10,000 only where a target needs them.
      if (quick && method.slow && n === 10000 && method.key !== 'getPort') continue;
      if (method.key === 'getPortDropIn' && n > (quick ? 100 : 1000)) continue;
      try {
        rows.push(await measure(method, n));
      } catch (error) {
        rows.push({ method: method.key, name: method.name, n, error: String(error.message ?? error) });
      }
      const last = rows.at(-1);
      log(`  ${last.name}: ${last.usPerPort ?? last.error ?? 'pending'} us/port`);
    }
    const us = (key) => rows.find((r) => r.method === key)?.usPerPort;
    for (const row of rows) {
      if (!row.usPerPort) continue;
      row.fasterThanNet = us('netSequential') ? round(us('netSequential') / row.usPerPort) : null;
      row.vsFloor = us('floor') ? round(row.usPerPort / us('floor')) : null;
      row.vsFloorHeld = us('floorHeld') ? round(row.usPerPort / us('floorHeld')) : null;
    }
    results.table.push(...rows);
    printRows(rows, [
      ['task', 'name'],
      ['ports/s', 'portsPerSecond', (v) => v?.toLocaleString('en-US') ?? ''],
      ['us/port', 'usPerPort', (v, r) => v ?? (r.pending ? 'pending' : r.error ? 'error' : '')],
      ['x faster than net', 'fasterThanNet', (v) => v ?? ''],
      ['x floor', 'vsFloor', (v) => v ?? ''],
      ['x held floor', 'vsFloorHeld', (v) => v ?? ''],
      ['repeats', 'duplicates', (v, r) => (r.error ? r.error.slice(0, 40) : v ?? '')],
    ]);
  }
}

// ---------------------------------------------------------------- paired
// The target ratios at n = 10,000, measured in rounds: each round times every
// method once, one after another, and each ratio is the median of the
// per-round ratios. A burst of load from elsewhere then hits both sides of a
// ratio alike, where tinybench's blocks (all samples of one method, then the
// next) let it land on one side only.
async function pairedSection(methods) {
  const n = 10000;
  const rounds = quick ? 4 : 9;
  const byKey = Object.fromEntries(methods.map((m) => [m.key, m]));
  const keys = ['floor', 'floorHeld', 'floorProbe', 'allocate', 'allocateOneThread', 'allocateTwoThreads', 'reserveShared', 'reserveSharedOneThread', 'netSequential', 'getPort'].filter(
    (key) => byKey[key] && !byKey[key].pending,
  );
  const times = Object.fromEntries(keys.map((key) => [key, []]));
  for (const key of keys) await byKey[key].run(n); // warm up
  for (let round = 0; round < rounds; round++) {
    for (const key of keys) {
      const method = byKey[key];
      method.before?.();
      if (method.once) {
        times[key].push(method.once(n).ms);
        continue;
      }
      const start = process.hrtime.bigint();
      const ports = await method.run(n);
      times[key].push(Number(process.hrtime.bigint() - start) / 1e6);
      const check = checkPorts(ports, n);
      if (method.distinct && !check.distinct) throw new Error(`${method.name} repeated ${check.duplicates} ports`);
    }
  }
    const ratio = (a, b) => (times[a]?.length && times[b]?.length ? round(median(times[a].map((t, i) => t / times[b][i])), 3) : null);
  const us = Object.fromEntries(keys.map((key) => [key, round((median(times[key]) * 1000) / n, 3)]));
  results.paired = {
    n,
    rounds,
    usPerPort: us,
    ratios: {
      allocateVsFloor: ratio('allocate', 'floor'),
      allocateOneThreadVsFloor: ratio('allocateOneThread', 'floor'),
      allocateTwoThreadsVsFloor: ratio('allocateTwoThreads', 'floor'),
      allocateOneThreadVsProbeFloor: ratio('allocateOneThread', 'floorProbe'),
      reserveSharedVsFloorHeld: ratio('reserveShared', 'floorHeld'),
      reserveSharedOneThreadVsFloorHeld: ratio('reserveSharedOneThread', 'floorHeld'),
      netVsAllocate: ratio('netSequential', 'allocate'),
      netVsAllocateOneThread: ratio('netSequential', 'allocateOneThread'),
      netVsAllocateTwoThreads: ratio('netSequential', 'allocateTwoThreads'),
      getPortVsAllocate: ratio('getPort', 'allocate'),
      getPortVsAllocateTwoThreads: ratio('getPort', 'allocateTwoThreads'),
    },
  };
  // The single drop-in getPort() against get-port's, 200 calls each per round.
  if (byKey.getPortDropIn && !byKey.getPortDropIn.pending) {
    const calls = 200;
    const single = { getPortDropIn: [], getPort: [] };
    for (let round = 0; round < rounds; round++) {
      for (const key of Object.keys(single)) {
        byKey[key].before?.();
        const start = process.hrtime.bigint();
        const ports = await byKey[key].run(calls);
        single[key].push(Number(process.hrtime.bigint() - start) / 1e6);
        checkPorts(ports, calls);
      }
    }
    results.paired.single = {
      calls,
      usPerCall: Object.fromEntries(Object.entries(single).map(([key, t]) => [key, round((median(t) * 1000) / calls, 3)])),
      getPortVsDropIn: round(median(single.getPort.map((t, i) => t / single.getPortDropIn[i])), 3),
    };
  }
  log(`\n# paired: ${rounds} rounds at n = ${n}, methods alternating; us/port (median) and median per-round ratios`);
  for (const key of keys) log(`  ${byKey[key].name.padEnd(52)} ${String(us[key]).padStart(9)} us/port`);
  for (const [name, value] of Object.entries(results.paired.ratios)) log(`  ${name.padEnd(36)} ${value}`);
  const single = results.paired.single;
  if (single) {
    log(`  single getPort(), ${single.calls} calls a round: portalloc ${single.usPerCall.getPortDropIn} us, get-port ${single.usPerCall.getPort} us per call; get-port / portalloc ${single.getPortVsDropIn}`);
  }
}

// ---------------------------------------------------------------- scale
async function scaleSection(methods) {
  const sizes = quick ? [100, 1000, 10000, 19000] : [100, 300, 1000, 3000, 6000, 10000, 12000, 14000, 16000, 19000];
  const byKey = Object.fromEntries(methods.map((m) => [m.key, m]));
  const range = [2000, 31999];
  const series = [
    byKey.floorHeld && { ...byKey.floorHeld, key: 'floorHeld', name: 'floor: bind(0) loop, batch held' },
    { ...byKey.reserve, name: 'reserve(n)' },
    {
      key: 'reserveRange',
      name: 'reserve(n, { range })',
      distinct: true,
      run: (n) => {
        const hold = portalloc.reserve(n, { range });
        hold.release();
        return hold.ports;
      },
    },
    {
      key: 'reserveOneThread',
      name: 'reserve(n), one thread',
      distinct: true,
      run: (n) => oneThread(() => byKey.reserve.run(n)),
    },
    { ...byKey.allocate, name: 'allocate(n)' },
    { key: 'allocateRange', name: 'allocate(n, { range })', distinct: true, run: (n) => portalloc.allocate(n, { range }) },
  ].filter(Boolean);
  results.scaleRange = range;
  log(`\n# scale: per-port cost against n (held ports), fd limit ${results.machine.fdLimit}, range runs in [${range}]`);
  for (const n of sizes) {
    for (const method of series) {
      // The naive loop past ~14,000 held ports costs seconds per batch (the
      // kernel's bind(0) cliff): one sample there, none in the quick run.
      const cliff = method.key === 'floorHeld' && n > 14000;
      if (cliff && quick) continue;
      const bench = cliff
        ? { once: true }
        : quick
          ? { time: 0, iterations: 3, warmup: true, warmupTime: 0, warmupIterations: 1 }
          : { time: 0, iterations: n >= 6000 ? 5 : 9, warmup: true, warmupTime: 0, warmupIterations: 2 };
      try {
        const row = await measure(method, n, bench);
        results.scale.push(row);
        log(`  n = ${String(n).padStart(5)}  ${method.name.padEnd(36)} ${row.usPerPort.toFixed(2).padStart(8)} us/port`);
      } catch (error) {
        results.scale.push({ method: method.key, name: method.name, n, error: String(error.message ?? error) });
        log(`  n = ${n} ${method.name}: ${error.message}`);
      }
    }
  }
}

// ---------------------------------------------------------------- loop
async function loopSection() {
  const n = 10000;
  const runs = quick ? 5 : 20;
  await portalloc.allocateAsync(n); // warm up
  const histogram = monitorEventLoopDelay({ resolution: 1 });
  histogram.enable();
  const startedAt = process.hrtime.bigint();
  for (let i = 0; i < runs; i++) checkPorts(await portalloc.allocateAsync(n), n);
  const elapsedMs = Number(process.hrtime.bigint() - startedAt) / 1e6;
  histogram.disable();
  // The loop's delay with nothing to do, as long: what the machine adds.
  const idle = monitorEventLoopDelay({ resolution: 1 });
  idle.enable();
  await new Promise((resolve) => setTimeout(resolve, elapsedMs));
  idle.disable();
  // The same batches with the synchronous call, for contrast: it blocks.
  const syncStart = process.hrtime.bigint();
  for (let i = 0; i < runs; i++) portalloc.allocate(n);
  const syncBlockMs = Number(process.hrtime.bigint() - syncStart) / 1e6 / runs;
  const ms = (ns) => round(ns / 1e6, 2);
  results.eventLoop = {
    n,
    runs,
    elapsedMs: round(elapsedMs, 1),
    p50Ms: ms(histogram.percentile(50)),
    p99Ms: ms(histogram.percentile(99)),
    maxMs: ms(histogram.max),
    meanMs: ms(histogram.mean),
    resolutionMs: 1,
    syncAllocateBlocksMs: round(syncBlockMs, 1),
    idleP99Ms: ms(idle.percentile(99)),
    idleMaxMs: ms(idle.max),
  };
  log(`\n# event loop during ${runs} x allocateAsync(${n}) (${results.eventLoop.elapsedMs} ms):`);
  log(`  delay p50 ${results.eventLoop.p50Ms} ms, p99 ${results.eventLoop.p99Ms} ms, max ${results.eventLoop.maxMs} ms (monitorEventLoopDelay, resolution 1 ms)`);
  log(`  idle for as long: p99 ${results.eventLoop.idleP99Ms} ms, max ${results.eventLoop.idleMaxMs} ms (what the machine adds)`);
  log(`  for contrast, allocate(${n}) blocks the loop ${results.eventLoop.syncAllocateBlocksMs} ms per call`);
}

// ---------------------------------------------------------------- memory
function memorySection() {
  const output = execFileSync(process.execPath, ['--expose-gc', path.join(root, 'bench/memory.mjs'), '--batches=1000', '--size=1000', quick ? '--phases=allocate' : '--phases=allocate,reserve'], {
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    timeout: 5 * 60 * 1000,
  });
  results.memory = JSON.parse(output.trim().split('\n').at(-1));
  const m = results.memory;
  log(`\n# memory: ${m.ports.toLocaleString('en-US')} ports in batches of ${m.size.toLocaleString('en-US')} (${m.seconds} s)`);
  for (const phase of m.phases) {
    log(`  ${phase.name}: RSS ${phase.rssStartMb} -> ${phase.rssEndMb} MB (growth ${phase.rssGrowthMb} MB), heap ${phase.heapStartMb} -> ${phase.heapEndMb} MB, fds ${phase.fdsStart} -> ${phase.fdsEnd}`);
  }
}

// ---------------------------------------------------------------- get-port
function livelockSection() {
  results.getPortLivelock = getPortLivelock(quick ? 4 : 6);
  const l = results.getPortLivelock;
  log(`\n# get-port in one process: node:net listen(0) offered ${l.listenZeroDistinct} distinct ports (${l.listenZeroLowest}-${l.listenZeroHighest}) in ${l.listenZeroCalls} calls;`);
  log(`  get-port returned ${l.getPortReturned} ports, ${l.getPortStalled ? `then no more for ${l.probeSeconds * 1000 - l.getPortLastProgressMs} ms (stuck: every port offered is locked)` : 'and was still going'}`);
}

const methods = await loadMethods();
if (only.includes('table')) await tableSection(methods);
if (only.includes('paired')) await pairedSection(methods);
if (only.includes('scale')) await scaleSection(methods);
if (only.includes('loop')) await loopSection();
if (only.includes('memory')) memorySection();
if (only.includes('livelock')) livelockSection();

results.machine.loadAverageAtEnd = os.loadavg().map((x) => Number(x.toFixed(2)));
results.seconds = round((Date.now() - started) / 1000, 1);
results.targets = evaluateTargets(results);
log('\n# targets (issue 5)');
log(formatTargets(results.targets));
log(`\n${results.machine.node}, ${results.machine.platform}, ${results.machine.cpu}; load ${results.machine.loadAverageAtStart.join(' ')} -> ${results.machine.loadAverageAtEnd.join(' ')}; ${results.seconds} s`);

mkdirSync(path.dirname(outJson), { recursive: true });
writeFileSync(outJson, JSON.stringify(results, null, 2) + '\n');
if (results.scale.length > 0) writeFileSync(outSvg, scaleChart(results));
log(`wrote ${path.relative(process.cwd(), outJson)}${results.scale.length > 0 ? ` and ${path.relative(process.cwd(), outSvg)}` : ''}`);
if (addon === undefined) log('(no native floor: the addon did not load)');
// --strict: exit 1 when a measured target is missed (timing on a shared
// machine is noisy, so CI runs without it).
if (args.includes('--strict') && results.targets.some((t) => t.met === false)) process.exitCode = 1;
