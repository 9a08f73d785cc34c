// Writes the generated parts of docs/benchmarks.md from a run's JSON:
//   npm run bench:docs [-- bench/results/full.json] [--readme]
// Each generated block sits between <!-- bench:NAME --> and <!-- /bench:NAME -->
// markers; the prose around them is left alone. --readme prints the README's
// Benchmarks section instead.
import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { formatTargets } from './targets.mjs';

const root = path.join(path.dirname(fileURLToPath(import.meta.url)), '..');

const args = process.argv.slice(2);
const input = path.resolve(args.find((a) => !a.startsWith('--')) ?? path.join(root, 'bench/results/full.json'));
const results = JSON.parse(readFileSync(input, 'utf8'));
const docsFile = path.join(root, 'docs/benchmarks.md');
const chartName = path.basename(input).replace(/\.json$/, '-scale.svg');

const SIZES = [1, 100, 1000, 10000];
const fmt = (x) => (x === undefined || x === null ? '' : x >= 100 ? String(Math.round(x)) : x >= 10 ? x.toFixed(1) : x.toFixed(2));
const thousands = (n) => n.toLocaleString('en-US');

function machineLine() {
  const m = results.machine;
  return (
    `Measured ${m.date.slice(0, 16).replace('T', ' ')} UTC on ${m.cpu} (${m.memory}), ${m.platform}, Node ${m.node}, ` +
    `ephemeral range ${m.ephemeralRange}, fd limit ${m.fdLimit}, ${results.quick ? 'quick' : 'full'} run of ${results.seconds} s; ` +
    `load average ${m.loadAverageAtStart.join(' ')} at the start and ${m.loadAverageAtEnd.join(' ')} at the end ` +
    `(${m.loadAverageAtStart[0] > 1.5 ? 'a busy machine: absolute figures are noisy, compare the ratios' : 'a quiet machine'}).`
  );
}

/** Methods as rows, n as columns: median us per port; then ratios at 10,000. */
function comparisonTable() {
  const rows = results.table;
  const methods = [...new Map(rows.map((r) => [r.method, r.name])).entries()];
  const lines = [
    `| method | ${SIZES.map((n) => `n = ${thousands(n)}`).join(' | ')} | ports/s at 10,000 | x faster than net at 10,000 | x the floor at 10,000 |`,
    `| --- | ${SIZES.map(() => '---:').join(' | ')} | ---: | ---: | ---: |`,
  ];
  for (const [key, name] of methods) {
    const at = (n) => rows.find((r) => r.method === key && r.n === n);
    const cell = (n) => {
      const r = at(n);
      if (!r) return '';
      if (r.pending) return 'pending';
      if (r.error) return 'error';
      return fmt(r.usPerPort) + (r.duplicates > 0 ? ` (${thousands(r.duplicates)} repeats)` : '');
    };
    const big = at(10000);
    lines.push(
      `| ${name.replace(/\|/g, '\\|')} | ${SIZES.map(cell).join(' | ')} | ${big?.portsPerSecond ? thousands(big.portsPerSecond) : ''} | ${fmt(big?.fasterThanNet)} | ${fmt(big?.vsFloor)} |`,
    );
  }
  return lines.join('\n');
}

function scaleTable() {
  const rows = results.scale;
  const sizes = [...new Set(rows.map((r) => r.n))].sort((a, b) => a - b);
  const series = [...new Map(rows.map((r) => [r.method, r.name])).entries()];
  const lines = [`| method \\ n | ${sizes.map(thousands).join(' | ')} |`, `| --- | ${sizes.map(() => '---:').join(' | ')} |`];
  for (const [key, name] of series) {
    const cell = (n) => fmt(rows.find((r) => r.method === key && r.n === n)?.usPerPort);
    lines.push(`| ${name} | ${sizes.map(cell).join(' | ')} |`);
  }
  return lines.join('\n');
}

function otherLines() {
  const out = [];
  const l = results.eventLoop;
  if (l) {
    out.push(
      `- **Event loop**: during ${l.runs} calls of \`allocateAsync(${thousands(l.n)})\` (${l.elapsedMs} ms) the main thread's delay ` +
        `(\`monitorEventLoopDelay\`, 1 ms resolution) was p50 ${l.p50Ms} ms, p99 ${l.p99Ms} ms, max ${l.maxMs} ms; ` +
        `idle for as long, the same loop showed p99 ${l.idleP99Ms} ms, max ${l.idleMaxMs} ms. ` +
        `The synchronous \`allocate(${thousands(l.n)})\` blocks the loop ${l.syncAllocateBlocksMs} ms per call.`,
    );
  }
  const m = results.memory;
  if (m) {
    for (const p of m.phases) {
      out.push(`- **Memory**: ${p.name} (${thousands(m.batches * m.size)} ports): RSS ${p.rssStartMb} -> ${p.rssEndMb} MB (${p.rssGrowthMb >= 0 ? '+' : ''}${p.rssGrowthMb} MB), JS heap ${p.heapStartMb} -> ${p.heapEndMb} MB, open fds ${p.fdsStart} -> ${p.fdsEnd}.`);
    }
  }
  const g = results.getPortLivelock;
  if (g) {
    out.push(
      `- **get-port in one process**: ${thousands(g.listenZeroCalls)} sequential \`net.listen(0)\` calls were offered only ${thousands(g.listenZeroDistinct)} distinct ports ` +
        `(${g.listenZeroLowest}-${g.listenZeroHighest}); get-port returned ${thousands(g.getPortReturned)} ports` +
        (g.getPortStalled ? ` and then none for the rest of a ${g.probeSeconds} s probe: its retry loop spun with every offered port locked, starving the event loop.` : '.'),
    );
  }
  return out.join('\n');
}

function pairedTable() {
  const p = results.paired;
  if (!p) return '_Not measured in this run._';
  const names = new Map(results.table.map((r) => [r.method, r.name]));
  const lines = [
    `${p.rounds} rounds at n = ${thousands(p.n)}, each timing every method once in turn; medians of the rounds.`,
    '',
    '| method | us/port |',
    '| --- | ---: |',
  ];
  for (const [key, us] of Object.entries(p.usPerPort)) lines.push(`| ${names.get(key) ?? key} | ${fmt(us)} |`);
  return lines.join('\n');
}

export function blocks() {
  return {
    machine: machineLine(),
    targets: formatTargets(results.targets),
    paired: pairedTable(),
    table: comparisonTable(),
    scale:
      `Median microseconds per port of one batch of n held together (reserve: until release, included; allocate: until it returns)` +
      (results.scaleRange ? `; the range runs use range [${results.scaleRange.join(', ')}]` : '') +
      `.\n\n${scaleTable()}\n\n![Per-port cost against n, log-log](../bench/results/${chartName})`,
    other: otherLines(),
  };
}

function readmeSection(b) {
  const pick = ['allocate', 'allocateOneThread', 'reserveShared', 'getPortDropIn', 'floor', 'floorHeld', 'floorProbe', 'netSequential', 'getPort', 'portfinder', 'detectPort', 'getPortPlease'];
  const rows = results.table;
  const names = new Map(rows.map((r) => [r.method, r.name]));
  const lines = ['| method | n = 1 | n = 1,000 | n = 10,000 |', '| --- | ---: | ---: | ---: |'];
  for (const key of pick) {
    if (!names.has(key)) continue;
    const cell = (n) => {
      const r = rows.find((x) => x.method === key && x.n === n);
      return !r ? '' : r.pending ? 'pending' : r.error ? 'error' : fmt(r.usPerPort);
    };
    lines.push(`| ${names.get(key)} | ${cell(1)} | ${cell(1000)} | ${cell(10000)} |`);
  }
  return [
    '## Benchmarks',
    '',
    'Microseconds per port (median; lower is better), all in one process. The floor is a C++ loop of the',
    'naive socket/bind/getsockname/close calls with no JavaScript at all; `allocate` goes below it because it',
    'checks ports with one socket instead of one per port (see `allocate` above). Details, targets, method',
    'and findings: [docs/benchmarks.md](docs/benchmarks.md).',
    '',
    lines.join('\n'),
    '',
    `![Per-port cost against n, log-log](bench/results/${chartName})`,
    '',
    machineLine(),
    '',
  ].join('\n');
}

const b = blocks();
if (args.includes('--readme')) {
  process.stdout.write(readmeSection(b));
} else {
  let text = readFileSync(docsFile, 'utf8');
  for (const [name, body] of Object.entries(b)) {
    const pattern = new RegExp(`(<!-- bench:${name} -->)[\\s\\S]*?(<!-- /bench:${name} -->)`);
    if (!pattern.test(text)) throw new Error(`docs/benchmarks.md has no <!-- bench:${name} --> block`);
    text = text.replace(pattern, `$1\n${body}\n$2`);
  }
  writeFileSync(docsFile, text);
  console.log(`updated ${path.relative(process.cwd(), docsFile)} from ${path.relative(process.cwd(), input)}`);
}
