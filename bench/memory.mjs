// Memory and fds over many batches: node --expose-gc bench/memory.mjs
//   [--batches=1000] [--size=1000] [--phases=allocate,reserve]
// Prints one JSON line. RSS is read after a forced GC at the start (after a
// warm-up of 10 batches) and at the end of each phase; fds from /proc/self/fd.
import { checkPorts, openFds, portalloc } from './lib.mjs';

const arg = (name, fallback) => process.argv.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3) ?? fallback;
const batches = Number(arg('batches', 1000));
const size = Number(arg('size', 1000));
const phases = arg('phases', 'allocate,reserve').split(',');
if (typeof globalThis.gc !== 'function') throw new Error('run with node --expose-gc');

const mb = (bytes) => Number((bytes / 2 ** 20).toFixed(1));
const settle = async () => {
  for (let i = 0; i < 3; i++) {
    globalThis.gc();
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
};

const work = {
  allocate: () => checkPorts(portalloc.allocate(size), size),
  // Held sockets are closed by release(); the finalizer only frees memory.
  reserve: () => {
    const hold = portalloc.reserve(size);
    hold.release();
    return checkPorts(hold.ports, size);
  },
};

const started = Date.now();
const result = { batches, size, ports: batches * size, phases: [] };
for (const name of phases) {
  for (let i = 0; i < 10; i++) work[name]();
  await settle();
  const start = { rss: process.memoryUsage().rss, heap: process.memoryUsage().heapUsed, fds: openFds() };
  for (let i = 0; i < batches; i++) {
    const check = work[name]();
    if (!check.distinct) throw new Error(`${name}(${size}) repeated ${check.duplicates} ports`);
  }
  await settle();
  const end = { rss: process.memoryUsage().rss, heap: process.memoryUsage().heapUsed, fds: openFds() };
  result.phases.push({
    name: `${name}(${size}) x ${batches}`,
    rssStartMb: mb(start.rss),
    rssEndMb: mb(end.rss),
    rssGrowthMb: mb(end.rss - start.rss),
    heapStartMb: mb(start.heap),
    heapEndMb: mb(end.heap),
    fdsStart: start.fds,
    fdsEnd: end.fds,
  });
}
result.seconds = Number(((Date.now() - started) / 1000).toFixed(1));
console.log(JSON.stringify(result));
