// Why get-port cannot return 10,000 ports in one process here. A probe that
// bench/run.mjs runs in a child and kills after a few seconds (see
// getPortLivelock below); each line it prints is JSON.
//  1. node:net listen(0) sets SO_REUSEADDR before bind, and the kernel then
//     searches only part of ip_local_port_range: count the distinct ports
//     30,000 sequential listen(0) calls are offered.
//  2. get-port locks every port it returns for 15-30 s and, when the kernel
//     offers a locked port, asks again. Once every port the kernel offers is
//     locked, that retry loop never ends and starves the event loop (no timer
//     fires again), so progress is written synchronously, every 100 ports.
import { spawnSync } from 'node:child_process';
import { writeSync } from 'node:fs';
import net from 'node:net';
import { fileURLToPath } from 'node:url';

/** Runs this probe for `seconds` and summarises what it printed. */
export function getPortLivelock(seconds = 6) {
  const child = spawnSync(process.execPath, [fileURLToPath(import.meta.url), '--probe'], { encoding: 'utf8', timeout: seconds * 1000 });
  const lines = child.stdout.trim().split('\n').filter(Boolean).map((line) => JSON.parse(line));
  const offered = lines.find((line) => 'listenZeroDistinct' in line);
  const progress = lines.filter((line) => 'returned' in line);
  const last = progress.at(-1) ?? { returned: 0, ms: 0 };
  return {
    ...offered,
    getPortReturned: last.returned,
    getPortLastProgressMs: last.ms,
    probeSeconds: seconds,
    // Killed by the timeout, seconds after the last progress: stuck.
    getPortStalled: child.signal !== null && seconds * 1000 - last.ms > 2000,
  };
}

if (process.argv.includes('--probe')) {
  const offered = new Set();
  for (let i = 0; i < 30000; i++) {
    const server = net.createServer();
    await new Promise((resolve) => server.listen(0, resolve));
    offered.add(server.address().port);
    await new Promise((resolve) => server.close(resolve));
  }
  const sorted = [...offered].sort((a, b) => a - b);
  const print = (object) => writeSync(1, JSON.stringify(object) + '\n');
  print({ listenZeroCalls: 30000, listenZeroDistinct: offered.size, listenZeroLowest: sorted[0], listenZeroHighest: sorted.at(-1) });
  const { default: getPort } = await import('get-port');
  const returned = new Set();
  for (;;) {
    returned.add(await getPort());
    if (returned.size % 100 === 0) print({ returned: returned.size, ms: Math.round(performance.now()) }); // since the child started
  }
}
