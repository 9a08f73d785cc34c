// Compatibility entry points against the originals, same process, alternating
// rounds, after a warm-up. Checks results before timing. Prints us/call
// medians and the ratio original / portalloc.
//   node bench/compat.mjs            (native backend)
//   PORTALLOC_BACKEND=js node bench/compat.mjs
import { createRequire } from 'node:module';
import net from 'node:net';
import os from 'node:os';
import originalGetPort, { clearLockedPorts as originalClear } from 'get-port';
import getPort, { backend, clearLockedPorts, isFree } from '../dist/index.mjs';
import portfinder from '../dist/compat/portfinder.mjs';
import { detect } from '../dist/compat/detect-port.mjs';

const require = createRequire(import.meta.url);
const originalPortfinder = require('portfinder');
const { detect: originalDetect } = require('detect-port');

const ROUNDS = 7;
const CALLS = Number(process.env.CALLS ?? 200);
const nextTurn = () => new Promise((resolve) => setImmediate(resolve));

function freeRange(size) {
  for (;;) {
    const from = 10000 + Math.floor(Math.random() * 9000);
    let ok = true;
    for (let p = from; p < from + size && ok; p++) ok = isFree(p);
    if (ok) return from;
  }
}

async function time(fn) {
  const start = process.hrtime.bigint();
  for (let i = 0; i < CALLS; i++) await fn();
  return Number(process.hrtime.bigint() - start) / 1000 / CALLS;
}

const median = (values) => values.sort((a, b) => a - b)[values.length >> 1];

async function compare(name, ours, theirs, check) {
  if (check) await check();
  await time(ours);
  await time(theirs);
  const a = [];
  const b = [];
  for (let round = 0; round < ROUNDS; round++) {
    a.push(await time(ours));
    b.push(await time(theirs));
  }
  const [mine, original] = [median(a), median(b)];
  console.log(`| ${name} | ${mine.toFixed(1)} | ${original.toFixed(1)} | ${(original / mine).toFixed(1)}x |`);
}

const port = freeRange(12);
const servers = [];
for (let p = port + 1; p <= port + 10; p++) {
  servers.push(await new Promise((resolve) => { const s = net.createServer().listen(p, () => resolve(s)); }));
}
// `port` is free, port+1 .. port+10 are busy, port+11 is free.

console.log(`backend ${backend}, node ${process.version}, ${os.cpus().length} cpus, ${os.release()}, ${CALLS} calls x ${ROUNDS} rounds`);
console.log('| call | portalloc us | original us | original / portalloc |');
console.log('| --- | --- | --- | --- |');
await compare('get-port: getPort()', () => getPort(), () => originalGetPort());
await compare(
  'get-port: getPort({ port }) free',
  async () => { clearLockedPorts(); await getPort({ port }); },
  async () => { originalClear(); await originalGetPort({ port }); },
  async () => {
    clearLockedPorts(); originalClear();
    if ((await getPort({ port })) !== port || (await originalGetPort({ port })) !== port) throw new Error('disagree');
  },
);
clearLockedPorts(); // get-port's locks hold `port` for 15-30 s, for portfinder and detect-port too
await compare(
  'portfinder: getPortPromise({ port }) past 10 busy',
  async () => { await portfinder.getPortPromise({ port: port + 1 }); await nextTurn(); },
  async () => { await originalPortfinder.getPortPromise({ port: port + 1 }); await nextTurn(); },
  async () => {
    const [a, b] = [await portfinder.getPortPromise({ port: port + 1 }), await originalPortfinder.getPortPromise({ port: port + 1 })];
    if (a !== port + 11 || b !== port + 11) throw new Error(`disagree ${a} ${b}`);
    await nextTurn();
  },
);
await compare(
  'detect-port: detect(port) free',
  async () => { await detect(port); await nextTurn(); },
  async () => { await originalDetect(port); await nextTurn(); },
  async () => {
    const [a, b] = [await detect(port), await originalDetect(port)];
    if (a !== port || b !== port) throw new Error(`disagree ${port} ${a} ${b}`);
    await nextTurn();
  },
);
for (const s of servers) s.close();
