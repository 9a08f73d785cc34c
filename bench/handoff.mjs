#!/usr/bin/env node
// Handoff stress benchmark: K worker processes, each running L loops of M
// cycles of "get a port, wait a random 0-5 ms, listen on it (Node's
// net.Server, which sets SO_REUSEADDR), keep it 0-20 ms, close", counting
// EADDRINUSE at listen. Prints collisions per 10,000 handoffs for each way of
// getting a port. Correctness, not speed: figures are counts, not times.
//
//   node bench/handoff.mjs [--workers K] [--loops L] [--cycles M] [--range A-B] [--modes a,b] [--json file]
//
// Other processes that take ports (test suites, builds) add collisions nobody
// can prevent; for figures about the methods alone, run it in a network
// namespace of its own:  unshare -n sh -c 'ip link set lo up; node bench/handoff.mjs'
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const self = fileURLToPath(import.meta.url);

/** How each mode gets a port and listens on it. `listen(server, handle)` returns when listening. */
const MODES = {
  listen0: {
    label: 'net.listen(0), close, listen',
    kernelOnly: true,
    async get() {
      const server = net.createServer();
      await new Promise((resolve, reject) => server.once('error', reject).listen(0, resolve));
      const { port } = server.address();
      await new Promise((resolve) => server.close(resolve));
      return { port };
    },
  },
  'get-port': {
    label: 'get-port `getPort()`',
    async get(p, range) {
      const { default: getPort, portNumbers } = await import('get-port');
      return { port: await getPort(range ? { port: portNumbers(...range) } : undefined) };
    },
  },
  portfinder: {
    label: 'portfinder `getPortPromise()`',
    async get(p, range) {
      const { default: portfinder } = await import('portfinder');
      return { port: await portfinder.getPortPromise(range ? { port: range[0], stopPort: range[1] } : undefined) };
    },
  },
  'detect-port': {
    label: 'detect-port `detect()`',
    async get(p, range) {
      const { detect } = await import('detect-port');
      return { port: await detect(range ? range[0] : 0) };
    },
  },
  'dropin-get-port': {
    label: "portalloc's get-port drop-in `getPort()`",
    async get(p, range) {
      return { port: await p.getPort(range ? { port: p.portNumbers(...range) } : undefined) };
    },
  },
  plain: {
    label: 'portalloc `allocate(1, { coordinate: false })`',
    async get(p, range) {
      return { port: p.allocate(1, { coordinate: false, range })[0] };
    },
  },
  coordinated: {
    label: 'portalloc `allocate(1)` (coordinated, the default)',
    async get(p, range) {
      return { port: p.allocate(1, { range })[0] };
    },
  },
  shared: {
    label: 'portalloc `reserve(1, { shared: true })`, release after listen',
    async get(p, range) {
      const hold = p.reserve(1, { shared: true, range });
      return { port: hold.ports[0], after: () => hold.release() };
    },
  },
  fd: {
    label: 'portalloc `reserve(1)`, `listen({ fd })` (fd passing)',
    async get(p, range) {
      const hold = p.reserve(1, { range });
      // The server takes the socket over, as a child does after spawnWithSockets:
      // the hold stays referenced so its finalizer never closes Node's fd.
      kept.push(hold);
      return { port: hold.ports[0], fd: hold.fds[0] };
    },
  },
  timewait: {
    label: "portalloc `allocate(1, { reserve: 'timewait' })`",
    async get(p, range) {
      return { port: p.allocate(1, { reserve: 'timewait', range })[0] };
    },
  },
};
const kept = [];

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

async function worker(mode, loops, cycles, range) {
  const p = await import('../dist/index.mjs');
  const { get } = MODES[mode];
  const counts = { handoffs: 0, collisions: 0, other: {} };
  const loop = async () => {
    for (let i = 0; i < cycles; i++) {
      let got;
      try {
        got = await get(p, range);
      } catch (error) {
        // No port at all: not a collision, but not a handoff either.
        const code = `get: ${error.code ?? error.message.slice(0, 40)}`;
        counts.other[code] = (counts.other[code] ?? 0) + 1;
        continue;
      }
      await sleep(Math.random() * 5);
      const server = net.createServer((socket) => socket.destroy());
      const error = await new Promise((resolve) => {
        server.once('error', resolve);
        server.listen(got.fd === undefined ? { port: got.port } : { fd: got.fd }, () => resolve(undefined));
      });
      got.after?.();
      counts.handoffs++;
      if (error) {
        if (error.code === 'EADDRINUSE') counts.collisions++;
        else counts.other[error.code] = (counts.other[error.code] ?? 0) + 1;
        continue;
      }
      await sleep(Math.random() * 20);
      await new Promise((resolve) => server.close(resolve));
    }
  };
  await Promise.all(Array.from({ length: loops }, loop));
  process.stdout.write(JSON.stringify(counts) + '\n');
  process.exit(0); // holds taken over by servers are not closed again
}

function runWorker(mode, loops, cycles, range) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [self, '--worker', mode, '--loops', String(loops), '--cycles', String(cycles), ...(range ? ['--range', range.join('-')] : [])], { stdio: ['ignore', 'pipe', 'inherit'] });
    let out = '';
    child.stdout.setEncoding('utf8').on('data', (chunk) => (out += chunk));
    child.once('exit', (code) => (code === 0 ? resolve(JSON.parse(out)) : reject(new Error(`${mode}: worker exited ${code}`))));
  });
}

async function main() {
  const { values } = parseArgs({
    options: {
      worker: { type: 'string' },
      workers: { type: 'string', default: '6' },
      loops: { type: 'string', default: '4' },
      cycles: { type: 'string', default: '420' },
      modes: { type: 'string' },
      json: { type: 'string' },
      range: { type: 'string' },
    },
  });
  const loops = Number(values.loops);
  const cycles = Number(values.cycles);
  const range = values.range ? values.range.split('-').map(Number) : undefined;
  if (values.worker) return worker(values.worker, loops, cycles, range);
  const workers = Number(values.workers);
  const modes = values.modes ? values.modes.split(',').map((m) => m.trim()) : Object.keys(MODES);
  const rows = [];
  for (const mode of modes) {
    if (!MODES[mode]) throw new Error(`unknown mode ${mode}; known: ${Object.keys(MODES).join(', ')}`);
    if (range && MODES[mode].kernelOnly) continue;
    const results = await Promise.all(Array.from({ length: workers }, () => runWorker(mode, loops, cycles, range)));
    const handoffs = results.reduce((sum, r) => sum + r.handoffs, 0);
    const collisions = results.reduce((sum, r) => sum + r.collisions, 0);
    const other = {};
    for (const r of results) for (const [code, n] of Object.entries(r.other)) other[code] = (other[code] ?? 0) + n;
    const row = { mode, label: MODES[mode].label, handoffs, collisions, per10k: (collisions / handoffs) * 10_000, other };
    rows.push(row);
    process.stderr.write(`${MODES[mode].label}: ${collisions} EADDRINUSE in ${handoffs} handoffs\n`);
  }
  const machine = {
    date: new Date().toISOString().slice(0, 10),
    node: process.version,
    kernel: os.release(),
    cpus: `${os.cpus().length} x ${os.cpus()[0]?.model ?? 'unknown'}`,
    workers,
    loops,
    cycles,
    range: range ? range.join('-') : "the kernel's (port 0)",
    isolated: fs.readFileSync('/proc/net/tcp', 'utf8').split('\n').length <= 3,
  };
  if (values.json) fs.writeFileSync(values.json, JSON.stringify({ machine, rows }, null, 2) + '\n');
  const lines = [
    `| way of getting the port | handoffs | EADDRINUSE | per 10,000 |`,
    `| --- | ---: | ---: | ---: |`,
    ...rows.map((r) => `| ${r.label} | ${r.handoffs} | ${r.collisions} | ${r.handoffs ? r.per10k.toFixed(1) : '-'}${Object.keys(r.other).length ? ` (other: ${JSON.stringify(r.other)})` : ''} |`),
  ];
  console.log(`${machine.date}, Node ${machine.node}, Linux ${machine.kernel}, ${machine.cpus}; ${workers} processes x ${loops} concurrent loops x ${cycles} cycles per mode; range ${machine.range}\n`);
  console.log(lines.join('\n'));
}

await main();
