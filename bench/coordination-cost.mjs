#!/usr/bin/env node
// What coordination adds per allocate(): the same batch with and without it,
// alternating in one process after a warm-up; medians. Ratios are what count.
//
//   node bench/coordination-cost.mjs
import os from 'node:os';

const p = await import('../dist/index.mjs');
const median = (values) => [...values].sort((a, b) => a - b)[values.length >> 1];

function time(fn, calls) {
  const start = process.hrtime.bigint();
  for (let i = 0; i < calls; i++) fn();
  return Number(process.hrtime.bigint() - start) / 1e3 / calls; // us per call
}

const cases = [
  ['allocate(1)', (options) => p.allocate(1, options), 2000],
  ['allocate(100)', (options) => p.allocate(100, options), 200],
  ['allocate(10000)', (options) => p.allocate(10000, options), 3],
  ['allocate(100, { range: [20000, 29999] })', (options) => p.allocate(100, { range: [20000, 29999], ...options }), 200],
];
console.log(`${new Date().toISOString().slice(0, 10)}, Node ${process.version}, Linux ${os.release()}, ${os.cpus().length} x ${os.cpus()[0]?.model}\n`);
console.log('| call | plain, us/call | coordinated, us/call | ratio |');
console.log('| --- | ---: | ---: | ---: |');
for (const [name, fn, calls] of cases) {
  for (let i = 0; i < 3; i++) {
    time(() => fn({ coordinate: false }), calls);
    time(() => fn(undefined), calls);
  }
  const plain = [];
  const coordinated = [];
  for (let i = 0; i < 7; i++) {
    plain.push(time(() => fn({ coordinate: false }), calls));
    coordinated.push(time(() => fn(undefined), calls));
  }
  const [a, b] = [median(plain), median(coordinated)];
  console.log(`| \`${name}\` | ${a.toFixed(1)} | ${b.toFixed(1)} | ${(b / a).toFixed(2)} |`);
}
