// Issue 5's targets, evaluated from one run's results (bench/run.mjs).
const find = (rows, method, n) => rows?.find((row) => row.method === method && row.n === n && row.usPerPort);
const fixed = (x, digits = 2) => (x === undefined ? undefined : Number(x.toFixed(digits)));

/** Each target with its measured value and whether it is met (null: not measured). */
export function evaluateTargets(results) {
  const table = results.table;
  const ratio = (a, b) => (a && b ? fixed(a.usPerPort / b.usPerPort) : undefined);
  const targets = [];
  const add = (measure, target, value, met, detail) => targets.push({ measure, target, value: value ?? null, met: value === undefined ? null : met(value), detail: detail ?? '' });

  const paired = results.paired;
  if (paired) {
    // Methods alternating in rounds; each ratio the median of per-round ratios.
    const r = paired.ratios;
    const us = paired.usPerPort;
    const also = (label, value) => (value ? `; ${label} ${value}x` : '');
    add('allocate(10000) per port vs the native floor', 'at most 1.25x', r.allocateVsFloor ?? undefined, (v) => v <= 1.25,
      `${us.allocate} vs ${us.floor} us/port${also('one thread', r.allocateOneThreadVsFloor)}${also('two threads', r.allocateTwoThreadsVsFloor)}${also('one thread vs the C++ probe loop', r.allocateOneThreadVsProbeFloor)}`);
    add('reserve(10000, { shared: true }) per port vs the held floor', 'at most 1.25x', r.reserveSharedVsFloorHeld ?? undefined, (v) => v <= 1.25,
      `${us.reserveShared} vs ${us.floorHeld} us/port${also('one thread', r.reserveSharedOneThreadVsFloorHeld)}`);
    add('allocate(10000) vs sequential net.listen(0), both warm', 'at least 2x faster', r.netVsAllocate ?? undefined, (v) => v >= 2,
      `${us.netSequential} vs ${us.allocate} us/port${also('one thread', r.netVsAllocateOneThread)}${also('two threads', r.netVsAllocateTwoThreads)}`);
    add('allocate(10000) vs get-port called 10,000 times', 'at least 15x faster', r.getPortVsAllocate ?? undefined, (v) => v >= 15,
      `${us.getPort} vs ${us.allocate} us/port${also('two threads', r.getPortVsAllocateTwoThreads)}`);
  } else {
    const allocate = find(table, 'allocate', 10000);
    const floor = find(table, 'floor', 10000);
    add('allocate(10000) per port vs the native floor', 'at most 1.25x', ratio(allocate, floor), (v) => v <= 1.25,
      allocate && floor ? `${allocate.usPerPort} vs ${floor.usPerPort} us/port` : undefined);
    const shared = find(table, 'reserveShared', 10000);
    const held = find(table, 'floorHeld', 10000);
    add('reserve(10000, { shared: true }) per port vs the held floor', 'at most 1.25x', ratio(shared, held), (v) => v <= 1.25,
      shared && held ? `${shared.usPerPort} vs ${held.usPerPort} us/port` : undefined);
    const net = find(table, 'netSequential', 10000);
    add('allocate(10000) vs sequential net.listen(0), both warm', 'at least 2x faster', ratio(net, allocate), (v) => v >= 2,
      net && allocate ? `${net.usPerPort} vs ${allocate.usPerPort} us/port` : undefined);
    const getPort = find(table, 'getPort', 10000);
    add('allocate(10000) vs get-port called 10,000 times', 'at least 15x faster', ratio(getPort, allocate), (v) => v >= 15,
      getPort && allocate ? `${getPort.usPerPort} vs ${allocate.usPerPort} us/port` : undefined);
  }

  const dropIn = find(table, 'getPortDropIn', 1);
  const theirs = find(table, 'getPort', 1);
  const pending = table?.some((row) => row.method === 'getPortDropIn' && row.pending);
  const single = results.paired?.single;
  if (single) {
    add("single drop-in getPort() vs get-port's getPort()", 'at least 8x faster', single.getPortVsDropIn, (v) => v >= 8,
      `${single.usPerCall.getPort} vs ${single.usPerCall.getPortDropIn} us/call (paired, ${single.calls} calls a round)`);
  } else {
    add("single drop-in getPort() vs get-port's getPort()", 'at least 8x faster', ratio(theirs, dropIn), (v) => v >= 8,
      dropIn && theirs ? `${theirs.usPerPort} vs ${dropIn.usPerPort} us/call` : pending ? 'pending: portalloc has no getPort() in this build' : undefined);
  }

  const r19 = find(results.scale, 'reserve', 19000);
  const r1 = find(results.scale, 'reserve', 1000);
  add('per-port cost of reserve(19000) vs reserve(1000)', 'at most 2x', ratio(r19, r1), (v) => v <= 2,
    r19 && r1 ? `${r19.usPerPort} vs ${r1.usPerPort} us/port` : undefined);

  const loop = results.eventLoop;
  add('event-loop delay p99 during allocateAsync(10000)', 'under 10 ms', loop?.p99Ms, (v) => v < 10,
    loop ? `p50 ${loop.p50Ms} ms, max ${loop.maxMs} ms over ${loop.runs} calls` : undefined);

  const memory = results.memory?.phases?.find((p) => p.name.startsWith('allocate'));
  const fdsBack = results.memory?.phases?.every((p) => p.fdsEnd === p.fdsStart);
  add('RSS growth after 1,000,000 allocations (batches of 1,000)', 'under 10 MB, open fds back to the start', memory?.rssGrowthMb,
    (v) => v < 10 && fdsBack, memory ? `fds ${memory.fdsStart} -> ${memory.fdsEnd}` : undefined);
  return targets;
}

/** The targets as a markdown table. */
export function formatTargets(targets) {
  const lines = ['| measure | target | measured | met | |', '| --- | --- | --- | --- | --- |'];
  for (const t of targets) {
    const value = t.value === null ? '-' : t.measure.startsWith('event') ? `${t.value} ms` : t.measure.startsWith('RSS') ? `${t.value} MB` : `${t.value}x`;
    const met = t.met === null ? (t.detail.startsWith('pending') ? 'pending' : 'not measured') : t.met ? 'yes' : '**no**';
    lines.push(`| ${t.measure} | ${t.target} | ${value} | ${met} | ${t.detail} |`);
  }
  return lines.join('\n');
}
