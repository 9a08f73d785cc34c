/**
 * The pure-JS backend's worker thread: the kernel work done with node:net and
 * node:dgram, whose calls are asynchronous. The main thread blocks on
 * Atomics.wait for the synchronous API (see js-backend.ts); held servers live
 * here until released. Every port goes through the process's ledger
 * (ledger.ts) exactly as in native/batch.cc: acquired before it is kept,
 * given or held when the batch is complete, dropped otherwise.
 */
import dgram from 'node:dgram';
import dns from 'node:dns/promises';
import net from 'node:net';
import os from 'node:os';
import { MessagePort, parentPort, workerData } from 'node:worker_threads';
import { CheckKind, OLDEST_FIRST_MAX, type BatchOutcome, type BatchRequest, type ProtocolBits } from './binding';
import { Ledger, Pass, type Prior } from './ledger';
import { lockPort, type PortLock } from './port-lock';

interface Held {
  fd: number;
  port: number;
  close(): Promise<void>;
}

export interface WorkerCall {
  id: number;
  op: 'allocate' | 'release' | 'detach' | 'checkFree' | 'lookup';
  args: unknown[];
}

const EADDRINUSE = 98;
const EACCES = 13;
const EPERM = 1;
const holds = new Map<number, { held: Held[]; ports: number[]; protocol: number; windowMs: number }>();
let nextHold = 1;
const { flag, syncPort, ledgerBuffer } = workerData as { flag: Int32Array; syncPort: MessagePort; ledgerBuffer: SharedArrayBuffer };
const ledger = new Ledger(ledgerBuffer);

function errnoOf(error: unknown): number {
  const errno = (error as NodeJS.ErrnoException).errno;
  return typeof errno === 'number' ? Math.abs(errno) : 5; // EIO when Node gives none
}

/** The fd under a net.Server or dgram.Socket (Unix; -1 where Node does not expose it). */
function fdOf(owner: net.Server | dgram.Socket): number {
  if (owner instanceof net.Server) return (owner as unknown as { _handle?: { fd?: number } })._handle?.fd ?? -1;
  // dgram keeps its handle under a symbol; its `_handle` getter is deprecated.
  const state = owner as unknown as Record<symbol, { handle?: { fd?: number } } | undefined>;
  for (const symbol of Object.getOwnPropertySymbols(owner)) {
    const fd = state[symbol]?.handle?.fd;
    if (typeof fd === 'number') return fd;
  }
  return -1;
}

function listenTcp(host: string, port: number): Promise<Held> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', (error) => reject(Object.assign(error, { syscall: (error as NodeJS.ErrnoException).syscall ?? 'listen' })));
    server.listen(host === '' ? { port } : { port, host }, () => {
      const address = server.address() as net.AddressInfo;
      resolve({ port: address.port, fd: fdOf(server), close: () => new Promise((done) => server.close(() => done())) });
    });
  });
}

function bindUdp(host: string, port: number): Promise<Held> {
  const type = host === '' || net.isIPv6(host) ? 'udp6' : 'udp4';
  return new Promise((resolve, reject) => {
    const socket = dgram.createSocket({ type, ipv6Only: false });
    socket.once('error', (error) => {
      // A dgram socket whose bind failed stays open: close it, or every busy port leaks an fd.
      socket.close();
      if (host === '' && type === 'udp6' && (error as NodeJS.ErrnoException).code === 'EAFNOSUPPORT') {
        bindUdp('0.0.0.0', port).then(resolve, reject);
        return;
      }
      reject(error);
    });
    socket.bind({ port, address: host === '' ? '::' : host, exclusive: true }, () => {
      resolve({ port: socket.address().port, fd: fdOf(socket), close: () => new Promise((done) => socket.close(() => done())) });
    });
  });
}

/** A socket per protocol on `port`; closed again if any fails. */
async function bindEach(request: BatchRequest, port: number): Promise<Held[]> {
  const first = request.protocol === 2 ? await bindUdp(request.host, port) : await listenTcp(request.host, port);
  if (request.protocol !== 3) return [first];
  try {
    return [first, await bindUdp(request.host, port)];
  } catch (error) {
    await first.close();
    throw error;
  }
}

/**
 * The ports a batch tries, in native/candidates.h's order: a range from its
 * start, wrapping; the kernel's range from a random port of bind(0)'s parity,
 * that parity first.
 */
function* candidates(request: BatchRequest): Generator<number> {
  const kernel = request.rangeFrom === 0;
  const low = kernel ? request.ephemeralLow : request.rangeFrom;
  const high = kernel ? request.ephemeralHigh : request.rangeTo;
  let start = request.start !== 0 ? request.start : kernel ? low + 1 + 2 * Math.floor((Math.random() * (high - low + 1)) / 2) : low;
  if (start < low || start > high) start = low;
  if (!kernel || high === low) {
    const size = high - low + 1;
    for (let i = 0; i < size; i++) yield low + ((start - low + i) % size);
    return;
  }
  for (const from of [start, start + 1 <= high ? start + 1 : start - 1]) {
    const first = low + ((from ^ low) & 1);
    const last = high - ((from ^ high) & 1);
    let port = from;
    for (let left = first > last ? 0 : (last - first) / 2 + 1; left > 0; left--) {
      yield port;
      port = port + 2 > last ? first : port + 2;
    }
  }
}

interface Kept {
  port: number;
  prior: Prior;
  held: Held[];
}

/** One pass over the candidates: each port acquired in the ledger, then bound (or skipped). */
async function pass(request: BatchRequest, mode: Pass, kept: Kept[], state: { refused: number; refusedErrno: number }): Promise<BatchOutcome | undefined> {
  const excluded = (port: number) => request.exclude !== undefined && ((request.exclude[port >> 3]! >> (port & 7)) & 1) === 1;
  // A range's reuse pass: the ports handed out longest ago first, whichever thread gave them (native/batch.cc, Reuse).
  const oldestFirst = mode === Pass.Reuse && request.rangeFrom !== 0 && request.rangeTo - request.rangeFrom + 1 <= OLDEST_FIRST_MAX;
  const order = oldestFirst ? ledger.oldestFirst(request.rangeFrom, request.rangeTo, request.protocol) : candidates(request);
  for (const port of order) {
    if (kept.length === request.count) return undefined;
    if (excluded(port)) continue;
    const prior = ledger.acquire(port, request.protocol, mode, request.since ?? 0);
    if (prior === undefined) continue;
    let lock: PortLock | undefined;
    try {
      // Locked: a test's port (its server may be about to listen), or another process checking it.
      lock = await lockPort(port);
      if (!lock) {
        ledger.drop(port, request.protocol, prior);
        continue;
      }
      const held = await bindEach(request, port);
      // allocate keeps nothing bound: the ledger keeps the port the batch's until it is given.
      if (request.check !== CheckKind.Hold) await Promise.all(held.splice(0).map((h) => h.close()));
      kept.push({ port, prior, held });
    } catch (error) {
      ledger.drop(port, request.protocol, prior);
      const errno = errnoOf(error);
      if (errno === EACCES || errno === EPERM) {
        state.refused++;
        state.refusedErrno = errno;
      }
      if (errno === EADDRINUSE || errno === EACCES || errno === EPERM) continue;
      return { errno, syscall: (error as NodeJS.ErrnoException).syscall ?? 'listen', port };
    } finally {
      // Unlocked before the batch returns: a fixture locks the port next (test-ports.ts).
      lock?.unlock();
    }
  }
  return kept.length === request.count ? undefined : { exhausted: true, found: kept.length, refused: state.refused, refusedErrno: state.refusedErrno };
}

async function allocate(request: BatchRequest): Promise<BatchOutcome> {
  const kept: Kept[] = [];
  const state = { refused: 0, refusedErrno: 0 };
  const closeAll = (list: Held[]) => Promise.all(list.map((held) => held.close()));
  let outcome = await pass(request, Pass.Strict, kept, state);
  // Too few ports nobody here had in the window: those this process gave out before, too.
  if (outcome && 'exhausted' in outcome) {
    // (The second pass meets the same refused ports again: count ports, the most one pass met.)
    const refused = state.refused;
    state.refused = 0;
    outcome = await pass(request, Pass.Reuse, kept, state);
    if (outcome && 'exhausted' in outcome) outcome.refused = Math.max(refused, outcome.refused);
  }
  if (outcome) {
    await closeAll(kept.flatMap((k) => k.held));
    for (const { port, prior } of kept) ledger.drop(port, request.protocol, prior);
    return outcome;
  }
  const ports = kept.map((k) => k.port);
  // Held ports too are only given, for the window: a hold here is a listening
  // server, which the kernel itself refuses to every check, and a stamp that
  // lapses by itself needs nobody alive to clear it when the thread that held
  // it ends (a terminated worker runs no code).
  for (const port of ports) ledger.give(port, request.protocol, request.windowMs);
  if (request.check !== CheckKind.Hold) {
    await closeAll(kept.flatMap((k) => k.held));
    return { ports };
  }
  // For 'both': the TCP sockets, then the UDP ones, as the native backend orders them.
  const all = [...kept.map((k) => k.held[0]!), ...kept.flatMap((k) => k.held.slice(1))];
  const id = nextHold++;
  holds.set(id, { held: all, ports, protocol: request.protocol, windowMs: request.windowMs });
  return { ports, fds: all.map((held) => held.fd), hold: id };
}

/** Ends a hold: its servers close (or, detaching, stay open for whoever has their fds), its ports are given. */
async function end(id: number, close: boolean): Promise<void> {
  const hold = holds.get(id);
  holds.delete(id);
  if (!hold) return;
  if (close) await Promise.all(hold.held.map((held) => held.close()));
  for (const port of hold.ports) ledger.give(port, hold.protocol, hold.windowMs);
}

async function checkFree(host: string, protocol: ProtocolBits, port: number) {
  let lock: PortLock | undefined;
  try {
    // A locked port is a test's, or being checked: busy, and not to be bound under its owner.
    lock = await lockPort(port);
    if (!lock) return { errno: EADDRINUSE, syscall: 'listen' };
    for (const kind of [1, 2] as const) {
      if (protocol & kind) await (await (kind === 1 ? listenTcp(host, port) : bindUdp(host, port))).close();
    }
    return { errno: 0, syscall: 'listen' };
  } catch (error) {
    return { errno: errnoOf(error), syscall: (error as NodeJS.ErrnoException).syscall ?? 'listen' };
  } finally {
    lock?.unlock();
  }
}

async function lookup(host: string) {
  try {
    const results = await dns.lookup(host, { all: true });
    return { addresses: results.map((result) => result.address) };
  } catch (error) {
    // A system error (EMFILE, say) keeps its errno: it is not a name that does not resolve.
    const code = (error as NodeJS.ErrnoException).code ?? '';
    const errno = (os.constants.errno as Record<string, number | undefined>)[code];
    return errno === undefined ? { eai: -2, message: (error as Error).message } : { eai: -11, message: (error as Error).message, errno };
  }
}

const operations: Record<WorkerCall['op'], (...args: never[]) => Promise<unknown>> = {
  allocate: (request: BatchRequest) => allocate(request),
  release: (id: number) => end(id, true),
  detach: (id: number) => end(id, false),
  checkFree: (host: string, protocol: ProtocolBits, port: number) => checkFree(host, protocol, port),
  lookup: (host: string) => lookup(host),
};

async function answer(call: WorkerCall): Promise<{ id: number; value?: unknown; error?: unknown }> {
  try {
    const operation = operations[call.op] as (...args: unknown[]) => Promise<unknown>;
    return { id: call.id, value: await operation(...call.args) };
  } catch (error) {
    return { id: call.id, error };
  }
}

// Synchronous calls: the reply goes on syncPort, then the flag wakes the waiting main thread.
syncPort.on('message', async (call: WorkerCall) => {
  syncPort.postMessage(await answer(call));
  Atomics.store(flag, 0, 1);
  Atomics.notify(flag, 0);
});
// Asynchronous calls: replies by id.
parentPort!.on('message', async (call: WorkerCall) => {
  parentPort!.postMessage(await answer(call));
});
