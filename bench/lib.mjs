// The benchmark's building blocks: the methods compared, the checks each one
// passes before it is timed, and the machine it ran on. bench/run.mjs times
// them; test/bench.test.ts checks that they return what they claim.
import { execFileSync } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const require = createRequire(import.meta.url);
export const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');

/** portalloc as published: the built CommonJS entry in dist/. */
export const portalloc = require(path.join(root, 'dist/index.js'));
/** The benchmark-only floor addon (`benchFloor`: bench/floor/binding.gyp). */
export const addon = portalloc.backend === 'native' ? require('./floor/index.cjs') : undefined;

/**
 * Open file descriptors of this process, the allocate probe (native/probe.h)
 * closed first, coordination's claim sockets left out: they outlive a call by
 * design (docs/internals.md) and are bounded by their cap.
 */
export function openFds() {
  return require('../test/fixtures/fds.cjs').count();
}

/**
 * What a method returned, checked: the right count, every entry a port, and
 * how many repeat. `distinct` is false when any port came back twice.
 */
export function checkPorts(ports, n) {
  if (!Array.isArray(ports)) throw new Error(`expected an array of ports, got ${typeof ports}`);
  if (ports.length !== n) throw new Error(`expected ${n} ports, got ${ports.length}`);
  for (const port of ports) {
    if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`not a port: ${port}`);
  }
  const duplicates = n - new Set(ports).size;
  return { count: n, distinct: duplicates === 0, duplicates };
}

// node:net, the way an application without a library does it.
function listen(server, port = 0) {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, () => {
      server.off('error', reject);
      resolve(server.address().port);
    });
  });
}
const closeServer = (server) => new Promise((resolve) => server.close(resolve));

/** n times: createServer().listen(0), read the port, close, then the next. */
export async function netSequential(n) {
  const ports = [];
  for (let i = 0; i < n; i++) {
    const server = net.createServer();
    ports.push(await listen(server));
    await closeServer(server);
  }
  return ports;
}

/** n servers listening on port 0 at once, then all closed: distinct ports. */
export async function netAllAtOnce(n) {
  const servers = Array.from({ length: n }, () => net.createServer());
  try {
    return await Promise.all(servers.map((server) => listen(server)));
  } finally {
    await Promise.all(servers.map((server) => (server.listening ? closeServer(server) : undefined)));
  }
}

/** Runs fn with PORTALLOC_THREADS=1 (read by each call): one thread per batch. */
export const oneThread = (fn) => withThreads('1', fn);
/** Runs fn with PORTALLOC_THREADS=2: two threads for large batches even when both CPUs are busy. */
export const twoThreads = (fn) => withThreads('2', fn);

function withThreads(setting, fn) {
  const saved = process.env.PORTALLOC_THREADS;
  process.env.PORTALLOC_THREADS = setting;
  try {
    return fn();
  } finally {
    if (saved === undefined) delete process.env.PORTALLOC_THREADS;
    else process.env.PORTALLOC_THREADS = saved;
  }
}

/**
 * The methods a table row can time. Each `run(n)` resolves to the ports it
 * got; `timed(n)` is what tinybench times (the floor reports the nanoseconds
 * of its own C++ loop, so the JS call around it is not counted). `distinct`
 * says whether the method promises distinct ports; the check enforces it.
 */
export async function loadMethods() {
  const getPortModule = await import('get-port');
  const portfinder = require('portfinder');
  const { detectPort } = await import('detect-port');
  const { getRandomPort } = await import('get-port-please');
  const { allocate, allocateAsync, reserve, getPort } = portalloc;

  const methods = [];
  if (addon?.benchFloor) {
    // A floor's time is benchFloor's own nanoseconds, not the JS call around it;
    // `once` checks and times one call at once.
    const floor = (key, name, distinct, args, once) => ({
      key,
      name,
      distinct,
      run: (n) => addon.benchFloor(n, ...args).ports,
      timed: (n) => ({ overriddenDuration: addon.benchFloor(n, ...args).ns / 1e6 }),
      ...(once && {
        once: (n) => {
          const { ns, ports } = addon.benchFloor(n, ...args);
          return { ports, ms: ns / 1e6 };
        },
      }),
    });
    methods.push(
      floor('floor', 'floor: C++ loop, close each', false, [false], true),
      // (once: past the bind(0) cliff a batch takes tens of seconds)
      floor('floorHeld', 'floor: C++ loop, batch held', true, [true], true),
      // allocate's own kernel work (native/probe.h) on one thread, no JavaScript.
      floor('floorProbe', 'floor: C++ probe loop', true, [false, true], false),
    );
  }
  methods.push(
    { key: 'allocate', name: 'portalloc allocate(n)', distinct: true, run: (n) => allocate(n) },
    // PORTALLOC_THREADS=1: every batch on the calling thread, as the floor runs.
    { key: 'allocateOneThread', name: 'portalloc allocate(n), one thread', distinct: true, run: (n) => oneThread(() => allocate(n)) },
    { key: 'allocateTwoThreads', name: 'portalloc allocate(n), two threads', distinct: true, run: (n) => twoThreads(() => allocate(n)) },
    { key: 'allocateAsync', name: 'portalloc allocateAsync(n)', distinct: true, run: (n) => allocateAsync(n) },
    {
      key: 'reserve',
      name: 'portalloc reserve(n) + release',
      distinct: true,
      run: (n) => {
        const hold = reserve(n);
        hold.release();
        return hold.ports;
      },
    },
  );
  if (portalloc.backend === 'native') {
    const reserveShared = (n) => {
      const hold = reserve(n, { shared: true });
      hold.release();
      return hold.ports;
    };
    methods.push(
      { key: 'reserveShared', name: 'portalloc reserve(n, shared) + release', distinct: true, run: reserveShared },
      {
        key: 'reserveSharedOneThread',
        name: 'portalloc reserve(n, shared) + release, one thread',
        distinct: true,
        run: (n) => oneThread(() => reserveShared(n)),
      },
    );
  }
  // The drop-in getPort() is a separate entry point; time it where it exists.
  methods.push({
    key: 'getPortDropIn',
    name: 'portalloc getPort() x n',
    distinct: false,
    pending: typeof getPort !== 'function',
    // Like get-port's, the drop-in may lock what it returned: clear it as
    // for get-port, so both start each chunk of 1,000 alike.
    before: () => portalloc.clearLockedPorts?.(),
    run: async (n) => {
      const ports = [];
      for (let i = 0; i < n; i++) {
        if (i % 1000 === 0) portalloc.clearLockedPorts?.();
        ports.push(await getPort());
      }
      return ports;
    },
  });
  methods.push(
    { key: 'netSequential', name: 'node:net listen(0) x n, sequential', distinct: false, run: netSequential },
    { key: 'netAllAtOnce', name: 'node:net listen(0) x n, all at once', distinct: true, slow: true, run: netAllAtOnce },
    {
      key: 'getPort',
      name: 'get-port getPort() x n',
      // get-port locks each port it returns for 15-30 s and asks again when
      // the kernel offers a locked one. Node's listen(0) only ever offers
      // ~7,000 ports here (SO_REUSEADDR before bind: the kernel searches the
      // lower half of the range), so past ~7,000 locked ports get-port spins
      // forever (bench/get-port-livelock.mjs). So: calls in chunks of 1,000,
      // its locks cleared before each chunk as in a fresh process; repeats
      // across chunks are counted, not refused.
      distinct: false,
      slow: true,
      before: () => getPortModule.clearLockedPorts(),
      run: async (n) => {
        const ports = [];
        for (let i = 0; i < n; i++) {
          if (i % 1000 === 0) getPortModule.clearLockedPorts();
          ports.push(await getPortModule.default());
        }
        return ports;
      },
    },
    {
      key: 'portfinder',
      name: 'portfinder getPortsPromise(n)',
      distinct: true,
      slow: true,
      run: (n) => portfinder.getPortsPromise(n),
    },
    {
      key: 'detectPort',
      name: 'detect-port detectPort(0) x n',
      distinct: false,
      slow: true,
      run: async (n) => {
        const ports = [];
        for (let i = 0; i < n; i++) ports.push(await detectPort(0));
        return ports;
      },
    },
    {
      key: 'getPortPlease',
      name: 'get-port-please getRandomPort() x n',
      distinct: false,
      slow: true,
      run: async (n) => {
        const ports = [];
        for (let i = 0; i < n; i++) ports.push(await getRandomPort());
        return ports;
      },
    },
  );
  return methods;
}

/** Date, Node, kernel, CPU and load: what a published figure needs beside it. */
export function machine() {
  const cpus = os.cpus();
  let range = '';
  try {
    range = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().replace(/\s+/, '-');
  } catch {
    // not Linux
  }
  let fdLimit = '';
  try {
    fdLimit = execFileSync('sh', ['-c', 'ulimit -n'], { encoding: 'utf8' }).trim();
  } catch {
    // no shell
  }
  return {
    date: new Date().toISOString(),
    node: process.version,
    platform: `${os.type()} ${os.release()} ${os.arch()}`,
    cpu: `${cpus[0]?.model ?? 'unknown'} x ${cpus.length}`,
    memory: `${Math.round(os.totalmem() / 2 ** 30)} GiB`,
    ephemeralRange: range,
    fdLimit,
    backend: portalloc.backend,
    loadAverageAtStart: os.loadavg().map((x) => Number(x.toFixed(2))),
  };
}

export function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}
