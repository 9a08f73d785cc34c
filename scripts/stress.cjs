#!/usr/bin/env node
// Stress: every API and every error path, OPS operations (default 100,000),
// seeded, for running under AddressSanitizer/UBSan or valgrind (see
// docs/hardening.md). Exits 1 on an undocumented error, a crash of a worker,
// or an fd left open at the end; prints a JSON summary.
//
//   OPS=100000 SEED=1 node scripts/stress.cjs
//
// Run it under a low fd limit (prlimit --nofile=1024:1024) so the EMFILE path
// of a batch runs too; the script adapts its large batch to the limit.
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { Worker, isMainThread, parentPort, workerData } = require('node:worker_threads');

const root = path.join(__dirname, '..');
// It counts fds around calls: coordination's claim sockets outlive a call by
// design (20 s, docs/handoff.md), so run uncoordinated unless told otherwise.
process.env.PORTALLOC_COORDINATE ??= '0';
const api = require(path.join(root, 'dist', 'index.js'));

const DOCUMENTED = new Set([
  'ERR_INVALID_ARG_TYPE',
  'ERR_INVALID_ARG_VALUE',
  'ERR_OUT_OF_RANGE',
  'ERR_PORTS_EXHAUSTED',
  'ERR_RESERVATION_RELEASED',
  'ERR_PORTALLOC_UNSUPPORTED',
  'EADDRNOTAVAIL',
  'EAFNOSUPPORT',
  'EMFILE',
  'ENFILE',
  'ENOTFOUND',
]);

function mulberry32(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

// The allocate probe (native/probe.h) closed first, as the next turn of the event loop would.
const closeProbe = () => process.env.PORTALLOC_BACKEND !== 'js' && require('node-gyp-build')(path.join(__dirname, '..')).closeProbe();
const fds = () => (closeProbe(), fs.readdirSync('/proc/self/fd').length);
const describeFds = () =>
  fs.readdirSync('/proc/self/fd').map((fd) => {
    try {
      return `${fd} ${fs.readlinkSync(`/proc/self/fd/${fd}`)}`;
    } catch {
      return fd; // the directory listing itself
    }
  });

/** The fd limit, to size a batch that must fail with EMFILE. */
function fdLimit() {
  const line = fs.readFileSync('/proc/self/limits', 'utf8').split('\n').find((l) => l.startsWith('Max open files'));
  const soft = Number(line?.split(/\s+/)[3]);
  return Number.isFinite(soft) ? soft : 1024;
}

/** The operations, each one call. A returned string names the outcome; a throw is checked against DOCUMENTED. */
function operations(random, state) {
  const pick = (list) => list[Math.floor(random() * list.length)];
  const int = (low, high) => low + Math.floor(random() * (high - low + 1));
  const protocol = () => pick(['tcp', 'udp', 'both']);
  const range = () => {
    const from = int(20000, 29000); // 10000-19999 is the fault tests'
    return [from, from + int(0, 500)];
  };
  const keep = (hold) => {
    state.holds.push(hold);
    while (state.holds.length > 40) {
      const old = state.holds.splice(int(0, state.holds.length - 1), 1)[0];
      if (random() < 0.8) old.release(); // else dropped for the garbage collector
    }
  };
  const bad = [
    () => api.allocate(0),
    () => api.allocate(-1),
    () => api.allocate(1.5),
    () => api.allocate('3'),
    () => api.allocate(70000),
    () => api.allocate(1, 'x'),
    () => api.allocate(1, { nope: 1 }),
    () => api.allocate(1, { protocol: 'sctp' }),
    () => api.allocate(1, { range: [5, 1] }),
    () => api.allocate(1, { range: [0, 70000] }),
    () => api.allocate(1, { range: 'a' }),
    () => api.allocate(1, { order: 'down' }),
    () => api.allocate(1, { exclude: 5 }),
    () => api.allocate(1, { exclude: [1e6] }),
    () => api.allocate(1, { host: 5 }),
    () => api.allocate(1, { host: '' }),
    () => api.reserve(1, { shared: 'y' }),
    () => api.isFree(0),
    () => api.isFree(1, { protocol: 7 }),
    () => api.isFree(1, { bogus: true }),
  ];
  return {
    allocate: () => api.allocate(int(1, 40), { protocol: protocol() }).length,
    'allocate range': () => api.allocate(int(1, 40), { protocol: protocol(), range: range(), order: pick(['random', 'ascending']) }).length,
    'allocate exclude': () => api.allocate(int(1, 20), { exclude: Array.from({ length: int(0, 50) }, () => int(1, 65535)) }).length,
    'allocate host': () => api.allocate(int(1, 10), { host: pick(['127.0.0.1', '::1', '0.0.0.0', '::', 'localhost']) }).length,
    allocateAsync: () => api.allocateAsync(int(1, 40), { protocol: protocol() }).then((ports) => ports.length),
    reserve: () => {
      const hold = api.reserve(int(1, 20), { protocol: protocol(), shared: random() < 0.5 });
      if (random() < 0.3) hold.share();
      keep(hold);
      return hold.ports.length;
    },
    reserveAsync: () =>
      api.reserveAsync(int(1, 20), { range: random() < 0.5 ? range() : undefined }).then((hold) => {
        keep(hold);
        return hold.ports.length;
      }),
    release: () => {
      const hold = state.holds.pop();
      if (!hold) return 'none';
      hold.release();
      hold.release();
      return 'released';
    },
    'share released': () => {
      const hold = api.reserve(1);
      hold[Symbol.dispose]();
      return hold.share();
    },
    isFree: () => api.isFree(int(1, 65535), { protocol: protocol() }),
    'isFree host': () => api.isFree(int(1024, 65535), { host: pick(['127.0.0.1', '::1']) }),
    'bad input': () => pick(bad)(),
    'bad input async': () => pick([() => api.allocateAsync(0), () => api.reserveAsync(1, { range: [9, 1] })])(),
    'not local': () => pick([() => api.allocate(2, { host: '192.0.2.1' }), () => api.isFree(20000, { host: '192.0.2.1' }), () => api.reserveAsync(2, { host: '192.0.2.1' })])(),
    exhausted: () => {
      const hold = state.block;
      return api.allocate(1, { range: [hold.ports[0], hold.ports[hold.ports.length - 1]], protocol: pick(['tcp', 'both']) });
    },
    emfile: () => (state.tooMany ? api.allocate(state.tooMany, { protocol: pick(['tcp', 'udp', 'both']) }) : 'skipped'),
    'emfile async': () => (state.tooMany ? api.reserveAsync(state.tooMany) : 'skipped'),
    'raw binding': () => {
      // The native layer's own guards: malformed requests that TypeScript never sends.
      const raw = state.raw;
      if (!raw) return 'js backend';
      // Requests as binding.ts packs them (the addon's own field table), each with one field wrong.
      const f = raw.fields;
      const packed = (change = {}) => {
        const fields = new Uint32Array(f.length);
        Object.assign(fields, { [f.count]: 1, [f.protocol]: 1, [f.ephemeralLow]: 32768, [f.ephemeralHigh]: 60999, [f.threads]: 1, [f.windowMs]: 20000 });
        for (const [name, value] of Object.entries(change)) fields[f[name]] = value;
        return fields;
      };
      const call = pick([
        () => raw.allocate(),
        () => raw.allocate(5),
        () => raw.allocate({}),
        () => raw.allocate(new Uint32Array(3), '', undefined),
        () => raw.allocate(packed({ protocol: 9 }), '', undefined),
        () => raw.allocate(packed({ check: 7 }), '', undefined),
        () => raw.allocate(packed({ rangeFrom: 9, rangeTo: 1 }), '', undefined),
        () => raw.allocate(packed({ count: 0 }), '', undefined),
        () => raw.allocate(packed(), 'not an ip', undefined),
        () => raw.allocate(packed(), '', new Uint8Array(7)),
        () => raw.allocateAsync(packed({ ephemeralLow: 0 }), '', undefined),
        () => raw.release(),
        () => raw.release({}),
        () => raw.share(42),
        () => raw.checkFree(),
        () => raw.checkFree('::', 1),
        () => raw.checkFree('bad host', 1, 80),
        () => raw.lookup(),
        () => raw.lookup(5),
      ]);
      try {
        call();
      } catch (error) {
        if (!(error instanceof Error)) throw new Error('raw binding threw a non-Error');
        return 'guarded';
      }
      throw new Error('raw binding accepted a malformed call');
    },
  };
}

/** Weights: how often each operation runs per 1,000. */
const WEIGHTS = {
  allocate: 150,
  'allocate range': 100,
  'allocate exclude': 40,
  'allocate host': 40,
  allocateAsync: 100,
  reserve: 100,
  reserveAsync: 60,
  release: 50,
  'share released': 20,
  isFree: 100,
  'isFree host': 30,
  'bad input': 100,
  'bad input async': 20,
  'not local': 20,
  exhausted: 20,
  emfile: 4,
  'emfile async': 2,
  'raw binding': 44,
};

async function run(ops, seed, id) {
  const random = mulberry32(seed);
  const nodeGypBuild = require('node-gyp-build');
  const state = {
    holds: [],
    // A batch one fd too large for the limit; skipped where the limit is high (the batch would be slow).
    tooMany: fdLimit() <= 4096 ? fdLimit() + 50 : 0,
    raw: api.backend === 'native' ? nodeGypBuild(root) : undefined,
    block: undefined,
  };
  for (let attempt = 0; !state.block; attempt++) {
    const from = 30000 + Math.floor(random() * 2000) * 8 + id * 4;
    try {
      state.block = api.reserve(4, { range: [from, from + 3], order: 'ascending' }); // a range with no free port
    } catch (error) {
      if ((error.code !== 'ERR_PORTS_EXHAUSTED' && error.code !== 'EMFILE') || attempt > 50) throw error;
      // EMFILE: another thread's batch one fd too large holds every fd for a moment.
      if (error.code === 'EMFILE') await new Promise((resolve) => setTimeout(resolve, 10));
    }
  }
  const table = operations(random, state);
  // STRESS_ONLY=allocate,isFree runs only those operations (to narrow a failure down).
  const only = process.env.STRESS_ONLY ? new Set(process.env.STRESS_ONLY.split(',')) : undefined;
  const names = Object.keys(WEIGHTS).filter((name) => !only || only.has(name));
  const total = names.reduce((sum, name) => sum + WEIGHTS[name], 0);
  const counts = {};
  const errors = {};
  const undocumented = [];
  const pending = [];
  const note = (name, error) => {
    const code = error && error.code;
    errors[code ?? String(error)] = (errors[code ?? String(error)] ?? 0) + 1;
    if (!DOCUMENTED.has(code)) undocumented.push(`${name}: ${error && error.stack}`);
  };
  for (let i = 0; i < ops; i++) {
    let roll = random() * total;
    let name = names[0];
    for (const candidate of names) {
      roll -= WEIGHTS[candidate];
      if (roll < 0) {
        name = candidate;
        break;
      }
    }
    counts[name] = (counts[name] ?? 0) + 1;
    try {
      const result = table[name]();
      if (result && typeof result.then === 'function') pending.push(result.catch((error) => note(name, error)));
    } catch (error) {
      note(name, error);
    }
    if (pending.length >= 16) await Promise.all(pending.splice(0));
  }
  await Promise.all(pending.splice(0));
  try {
    for (const hold of state.holds.splice(0)) hold.release();
    state.block.release();
  } catch (error) {
    note('release at the end', error);
  }
  return { counts, errors, undocumented: undocumented.slice(0, 20), undocumentedCount: undocumented.length };
}

/** A worker thread that runs a share of the stress and exits holding ports, some batches still in flight. */
function workerMain() {
  run(workerData.ops, workerData.seed, workerData.id).then((summary) => {
    let held = 0;
    try {
      held = api.reserve(5).ports.length; // never released: the thread's end must close it
    } catch (error) {
      if (error.code !== 'EMFILE') throw error;
    }
    api.reserveAsync(50).catch(() => {}); // may still run when the thread ends; may hit EMFILE
    parentPort.postMessage({ summary, held });
    if (workerData.id % 2 === 0) process.exit(0);
  });
}

async function main() {
  const ops = Number(process.env.OPS ?? 100_000);
  const seed = Number(process.env.SEED ?? 1);
  const workers = Number(process.env.WORKERS ?? 4);
  api.isFree(10000);
  // Node opens what process.stdout/stderr need lazily (a Worker touches them): open them before counting.
  void process.stdout, process.stderr;
  if (typeof globalThis.gc === 'function') globalThis.gc();
  const before = fds();
  const beforeList = describeFds();
  const started = process.hrtime.bigint();
  const workerOps = Math.floor(ops / 10);
  const threads = Array.from({ length: workers }, (_, id) =>
    new Promise((resolve, reject) => {
      const worker = new Worker(__filename, { workerData: { ops: Math.floor(workerOps / Math.max(1, workers)), seed: seed * 1000 + id + 1, id: id + 1 } });
      let summary;
      worker.on('message', (message) => (summary = message.summary));
      worker.on('error', reject);
      worker.on('exit', (code) => (code === 0 && summary ? resolve(summary) : reject(new Error(`worker ${id} exited ${code}`))));
    }),
  );
  const mine = await run(ops - (workers > 0 ? workerOps : 0), seed, 0);
  const theirs = await Promise.all(threads);
  // Dropped holds close when collected: collect, let finalizers run, then count.
  let after = fds();
  for (let i = 0; i < 100 && after !== before; i++) {
    if (typeof globalThis.gc === 'function') globalThis.gc();
    await new Promise((resolve) => setTimeout(resolve, 20));
    after = fds();
  }
  const merge = (key) => [mine, ...theirs].reduce((all, s) => {
    for (const [k, v] of Object.entries(s[key])) all[k] = (all[k] ?? 0) + v;
    return all;
  }, {});
  const counts = merge('counts');
  const summary = {
    backend: api.backend,
    addon: api.backend === 'native' ? require('node-gyp-build').resolve(root) : null,
    ops: Object.values(counts).reduce((a, b) => a + b, 0),
    seed,
    workers,
    seconds: Number(process.hrtime.bigint() - started) / 1e9,
    fds: { before, after },
    counts,
    errors: merge('errors'),
    undocumented: [mine, ...theirs].flatMap((s) => s.undocumented),
  };
  console.log(JSON.stringify(summary, null, 2));
  const leaked = after !== before;
  if (leaked) console.error(`stress: ${after - before} fds left open: ${describeFds().filter((fd) => !beforeList.includes(fd)).join(', ')}`);
  if (summary.undocumented.length > 0) console.error('stress: undocumented errors (see above)');
  process.exitCode = leaked || summary.undocumented.length > 0 ? 1 : 0;
}

if (isMainThread) main();
else workerMain();
