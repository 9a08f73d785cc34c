/**
 * The pure-JS backend: the same flat functions as the native addon, done by
 * node:net in a worker thread. The synchronous API blocks on Atomics.wait until
 * the worker answers (the main thread's event loop cannot run node:net calls
 * while it waits). Slower than native, and weaker where Node's sockets cannot
 * do what the kernel can (see docs/backends.md).
 */
import net from 'node:net';
import path from 'node:path';
import { MessageChannel, MessagePort, receiveMessageOnPort, Worker } from 'node:worker_threads';
import type { BatchOutcome, BatchRequest, Binding, Claim, Errno, PortTry, ProtocolBits, TryPass } from './binding';
import type { WorkerCall } from './js-worker';
import { processLedger, Pass } from './ledger';
import { lockPort, type PortLock } from './port-lock';

const EADDRINUSE = 98;
const EINVAL = 22;

/** A call to the worker that takes longer than this is a failure, not a hang. */
const SYNC_TIMEOUT_MS = 120_000;

interface Reply {
  id: number;
  value?: unknown;
  error?: unknown;
}

/** The token a JS hold is known by; collected tokens release their servers. */
interface JsHold {
  id: number;
}

export class JsBinding implements Binding {
  private worker?: Worker;
  private syncPort?: MessagePort;
  private readonly flag = new Int32Array(new SharedArrayBuffer(4));
  /** This process's ledger (ledger.ts), shared with the worker and every other thread. */
  private readonly ledger = processLedger();
  /** The ports and protocol of each hold this thread has open, by id. */
  private readonly open = new Map<number, { ports: readonly number[]; protocol: number }>();
  private nextCall = 1;
  private readonly pending = new Map<number, { resolve(value: unknown): void; reject(error: unknown): void }>();
  private readonly collected = new FinalizationRegistry<number>((id) => {
    this.open.delete(id);
    if (this.worker) this.post({ id: this.nextCall++, op: 'release', args: [id] });
  });

  private start(): Worker {
    if (this.worker) return this.worker;
    const { port1, port2 } = new MessageChannel();
    const worker = new Worker(path.join(__dirname, 'js-worker.js'), {
      workerData: { flag: this.flag, syncPort: port2, ledgerBuffer: this.ledger.buffer },
      transferList: [port2],
      stdout: false,
      stderr: false,
    });
    worker.on('message', (reply: Reply) => {
      const waiter = this.pending.get(reply.id);
      if (!waiter) return;
      this.pending.delete(reply.id);
      if (this.pending.size === 0) worker.unref();
      if ('error' in reply) waiter.reject(reply.error);
      else waiter.resolve(reply.value);
    });
    worker.on('error', (error) => {
      for (const waiter of this.pending.values()) waiter.reject(error);
      this.pending.clear();
    });
    worker.on('exit', () => {
      this.worker = undefined;
      this.syncPort = undefined;
    });
    // Neither the worker nor the port keeps the process alive (listeners ref them: unref after).
    worker.unref();
    port1.unref();
    this.worker = worker;
    this.syncPort = port1;
    return worker;
  }

  private post(call: WorkerCall): void {
    this.start().postMessage(call);
  }

  private callSync(op: WorkerCall['op'], ...args: unknown[]): unknown {
    this.start();
    const id = this.nextCall++;
    Atomics.store(this.flag, 0, 0);
    this.syncPort!.postMessage({ id, op, args } satisfies WorkerCall);
    // Wait for the flag, not for a wake-up: the worker's notify for the previous
    // call can arrive after that call already saw the flag set, and would wake
    // this wait before this call's answer exists.
    const deadline = Date.now() + SYNC_TIMEOUT_MS;
    while (Atomics.load(this.flag, 0) === 0) {
      const left = deadline - Date.now();
      if (left <= 0 || Atomics.wait(this.flag, 0, 0, left) === 'timed-out') {
        throw new Error(`portalloc: the JS backend's worker did not answer ${op} within ${SYNC_TIMEOUT_MS / 1000} s`);
      }
    }
    const message = receiveMessageOnPort(this.syncPort!);
    const reply = message?.message as Reply | undefined;
    if (!reply || reply.id !== id) throw new Error(`portalloc: the JS backend's worker gave no answer to ${op}`);
    if ('error' in reply) throw reply.error;
    return reply.value;
  }

  private callAsync(op: WorkerCall['op'], ...args: unknown[]): Promise<unknown> {
    const worker = this.start();
    const id = this.nextCall++;
    worker.ref();
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      worker.postMessage({ id, op, args } satisfies WorkerCall);
    });
  }

  private wrap(outcome: BatchOutcome, request: BatchRequest): BatchOutcome {
    if ('ports' in outcome) this.ledger.delivered(outcome.ports, request.protocol);
    if ('hold' in outcome && typeof outcome.hold === 'number') {
      this.open.set(outcome.hold, { ports: outcome.ports, protocol: request.protocol });
      const token: JsHold = { id: outcome.hold };
      this.collected.register(token, token.id, token);
      return { ...outcome, hold: token };
    }
    return outcome;
  }

  // A batch begins when the call is made (its `since`, ledger.ts), not when the worker gets to it.
  allocate(request: BatchRequest): BatchOutcome {
    return this.wrap(this.callSync('allocate', { ...request, since: this.ledger.clock() }) as BatchOutcome, request);
  }

  async allocateAsync(request: BatchRequest): Promise<BatchOutcome> {
    return this.wrap((await this.callAsync('allocate', { ...request, since: this.ledger.clock() })) as BatchOutcome, request);
  }

  release(hold: unknown): void {
    this.end(hold as JsHold, 'release');
  }

  detach(hold: unknown): void {
    this.end(hold as JsHold, 'detach');
  }

  /** The worker closes (or forgets) the servers and gives the ports; handed out from now. */
  private end(token: JsHold, op: 'release' | 'detach'): void {
    this.collected.unregister(token);
    this.callSync(op, token.id);
    const hold = this.open.get(token.id);
    this.open.delete(token.id);
    if (hold) this.ledger.delivered(hold.ports, hold.protocol);
  }

  share(): number {
    return 95; // EOPNOTSUPP: the API layer refuses shared holds on this backend before asking
  }

  checkFree(host: string, protocol: ProtocolBits, port: number): Errno {
    return this.callSync('checkFree', host, protocol, port) as Errno;
  }

  checkListen(host: string, port: number, ipv6Only: boolean): Errno | Promise<Errno> {
    // (A hold of this backend is a listening server: the listen itself is refused.)
    return listenOnce(host, port, ipv6Only);
  }

  async tryPort(host: string, port: number, ipv6Only: boolean, _claim: Claim, since: number, pass: TryPass, lender: number): Promise<PortTry> {
    const prior = this.ledger.acquire(port, 1, pass as number as Pass, since, lender);
    if (prior === undefined) return { errno: EADDRINUSE, syscall: 'bind' };
    const result = await listenOnce(host, port, ipv6Only);
    if (result.errno !== 0) this.ledger.drop(port, 1, prior);
    return { ...result, prior: prior[0], fresh: false };
  }

  lend(port: number, windowMs: number, lender = 0): void {
    this.ledger.lend(port, windowMs, lender);
  }

  oldestFirst(low: number, high: number): number[] {
    return this.ledger.oldestFirst(low, high, 1);
  }

  ledgerClock(): number {
    return this.ledger.clock();
  }

  dropPort(port: number, prior: bigint): void {
    this.ledger.drop(port, 1, [prior, 0n]);
  }

  lookup(host: string): { addresses: string[] } | { eai: number; message: string; errno?: number } {
    return this.callSync('lookup', host) as { addresses: string[] } | { eai: number; message: string; errno?: number };
  }
}

/**
 * Whether a Node server could listen on `port` at `host` ('' for every local
 * address): one listen, closed again, under the port's lock (port-lock.ts; a
 * locked port is busy: a test's, or being checked).
 */
async function listenOnce(host: string, port: number, ipv6Only: boolean): Promise<Errno> {
  let lock: PortLock | undefined;
  try {
    lock = await lockPort(port);
  } catch (error) {
    return { errno: errnoOf(error), syscall: (error as NodeJS.ErrnoException).syscall ?? 'listen' };
  }
  if (!lock) return { errno: EADDRINUSE, syscall: 'listen' };
  try {
    return await listenUnlocked(host, port, ipv6Only);
  } finally {
    lock.unlock();
  }
}

function errnoOf(error: unknown): number {
  const errno = (error as NodeJS.ErrnoException).errno;
  return typeof errno === 'number' ? Math.abs(errno) : EINVAL;
}

function listenUnlocked(host: string, port: number, ipv6Only: boolean): Promise<Errno> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.unref();
    server.once('error', (error: NodeJS.ErrnoException) => {
      resolve({ errno: errnoOf(error), syscall: error.syscall ?? 'listen' });
    });
    server.listen(host === '' ? { port } : { port, host, ipv6Only }, () => server.close(() => resolve({ errno: 0, syscall: 'listen' })));
  });
}
