/**
 * The pure-JS backend's worker thread: the kernel work done with node:net and
 * node:dgram, whose calls are asynchronous. The main thread blocks on
 * Atomics.wait for the synchronous API (see js-backend.ts); held servers live
 * here until released.
 */
import dgram from 'node:dgram';
import dns from 'node:dns/promises';
import net from 'node:net';
import os from 'node:os';
import { MessagePort, parentPort, workerData } from 'node:worker_threads';
import type { BatchOutcome, BatchRequest, ProtocolBits } from './binding';

interface Held {
  fd: number;
  close(): Promise<void>;
}

export interface WorkerCall {
  id: number;
  op: 'allocate' | 'release' | 'checkFree' | 'lookup';
  args: unknown[];
}

const EADDRINUSE = 98;
const EACCES = 13;
const holds = new Map<number, Held[]>();
let nextHold = 1;

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

function listenTcp(host: string, port: number): Promise<Held & { port: number }> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', (error) => reject(Object.assign(error, { syscall: (error as NodeJS.ErrnoException).syscall ?? 'listen' })));
    const options: net.ListenOptions = host === '' ? { port } : { port, host };
    server.listen(options, () => {
      const address = server.address() as net.AddressInfo;
      resolve({ port: address.port, fd: fdOf(server), close: () => new Promise((done) => server.close(() => done())) });
    });
  });
}

function bindUdp(host: string, port: number): Promise<Held & { port: number }> {
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

function open(protocol: 'tcp' | 'udp', host: string, port: number) {
  return protocol === 'tcp' ? listenTcp(host, port) : bindUdp(host, port);
}

async function allocate(request: BatchRequest): Promise<BatchOutcome> {
  const primary = request.protocol === 2 ? 'udp' : 'tcp';
  const both = request.protocol === 3;
  const excluded = (port: number) => request.exclude !== undefined && ((request.exclude[port >> 3]! >> (port & 7)) & 1) === 1;
  const ports: number[] = [];
  const kept: Held[] = [];
  const udpKept: Held[] = [];
  const rejects: Held[] = [];
  const closeAll = (list: Held[]) => Promise.all(list.splice(0).map((held) => held.close()));
  const scan = request.rangeFrom !== 0;
  const size = scan ? request.rangeTo - request.rangeFrom + 1 : 0;
  let tried = 0;
  try {
    while (ports.length < request.count) {
      let port = 0;
      if (scan) {
        if (tried === size) return { exhausted: true, found: ports.length };
        port = request.rangeFrom + ((request.start - request.rangeFrom + tried++) % size);
        if (excluded(port)) continue;
      }
      let held: Held & { port: number };
      try {
        held = await open(primary, request.host, port);
      } catch (error) {
        const errno = errnoOf(error);
        if (!scan && errno === EADDRINUSE) return { exhausted: true, found: ports.length };
        if (scan && (errno === EADDRINUSE || errno === EACCES)) continue;
        return { errno, syscall: (error as NodeJS.ErrnoException).syscall ?? 'listen', port };
      }
      if (excluded(held.port)) {
        rejects.push(held);
        continue;
      }
      if (both) {
        try {
          udpKept.push(await bindUdp(request.host, held.port));
        } catch (error) {
          const errno = errnoOf(error);
          rejects.push(held);
          if (errno === EADDRINUSE || errno === EACCES) continue;
          return { errno, syscall: 'bind', port: held.port };
        }
      }
      kept.push(held);
      ports.push(held.port);
    }
    if (!request.hold) return { ports };
    const all = [...kept, ...udpKept];
    kept.length = 0;
    udpKept.length = 0;
    const id = nextHold++;
    holds.set(id, all);
    return { ports, fds: all.map((held) => held.fd), hold: id };
  } finally {
    await Promise.all([closeAll(kept), closeAll(udpKept), closeAll(rejects)]);
  }
}

async function release(id: number): Promise<void> {
  const list = holds.get(id);
  holds.delete(id);
  if (list) await Promise.all(list.map((held) => held.close()));
}

async function checkFree(host: string, protocol: ProtocolBits, port: number) {
  for (const kind of ['tcp', 'udp'] as const) {
    if (!(protocol & (kind === 'tcp' ? 1 : 2))) continue;
    try {
      await (await open(kind, host, port)).close();
    } catch (error) {
      return { errno: errnoOf(error), syscall: (error as NodeJS.ErrnoException).syscall ?? 'listen' };
    }
  }
  return { errno: 0, syscall: 'listen' };
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

const operations = {
  allocate: (request: BatchRequest) => allocate(request),
  release: (id: number) => release(id),
  checkFree: (host: string, protocol: ProtocolBits, port: number) => checkFree(host, protocol, port),
  lookup: (host: string) => lookup(host),
};

const { flag, syncPort } = workerData as { flag: Int32Array; syncPort: MessagePort };

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
