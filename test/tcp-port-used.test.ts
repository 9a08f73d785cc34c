/**
 * portalloc/tcp-port-used: "in use" means a TCP connection is accepted, on
 * 127.0.0.1 unless a host is given; every function takes tcp-port-used's
 * positional arguments and its options object, and fails with its texts.
 */
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import tcpPortUsed, { check, waitForStatus, waitUntilFree, waitUntilFreeOnHost, waitUntilUsed, waitUntilUsedOnHost } from '../dist/compat/tcp-port-used.js';
import { reserve } from '../dist/index.js';
import { freeRange, Servers } from './compat-helpers';
import { backendName, close, listen } from './helpers';

const servers = new Servers();
afterEach(() => servers.closeAll());

/** The rejection's message, or 'resolved: <value>'. */
const outcome = (promise: Promise<unknown>) =>
  promise.then(
    (value) => `resolved: ${String(value)}`,
    (error: Error) => error.message,
  );

describe(`tcp-port-used compatibility (${backendName})`, () => {
  it('exports its six functions by name and as the default object', () => {
    expect(Object.keys(tcpPortUsed).sort()).toEqual(expect.arrayContaining(['check', 'waitForStatus', 'waitUntilFree', 'waitUntilFreeOnHost', 'waitUntilUsed', 'waitUntilUsedOnHost']));
    expect(tcpPortUsed.check).toBe(check);
  });

  it('check: true while a server listens on 127.0.0.1, false once nothing does, in either argument form', async () => {
    const [port] = freeRange(1);
    const server = await listen(port, '127.0.0.1');
    expect(await check(port)).toBe(true);
    expect(await check(port, '127.0.0.1')).toBe(true);
    expect(await check({ port })).toBe(true);
    expect(await check({ port, host: '127.0.0.1' })).toBe(true);
    await close(server);
    expect(await check(port)).toBe(false);
    expect(await check({ port, host: '127.0.0.1' })).toBe(false);
  });

  it('check looks at one host: a server on ::1 only is not in use on 127.0.0.1', async () => {
    const [port] = freeRange(1);
    await servers.listen(port, '::1');
    expect(await check(port)).toBe(false);
    expect(await check(port, '::1')).toBe(true);
  });

  it('check: a port held by reserve() is not in use natively (bound, not listening); the JS backend holds by listening', async () => {
    const hold = reserve(1);
    try {
      expect(await check(hold.ports[0]!)).toBe(backendName === 'js');
    } finally {
      hold.release();
    }
  });

  it("check rejects a bad port with tcp-port-used's text, and other connect errors as they are", async () => {
    expect(await outcome(check(-20, '127.0.0.1'))).toBe('invalid port: -20');
    expect(await outcome(check({ port: -1 } as never))).toBe('invalid port: -1');
    expect(await outcome(check('hello' as never))).toBe("invalid port: 'hello'");
    expect(await outcome(check({} as never))).toBe('invalid port: undefined');
    expect(await outcome((check as () => Promise<boolean>)())).toBe('invalid port: undefined');
    expect(await outcome(check(65536))).toBe('invalid port: 65536');
    await expect(check(80, 'no-such-host.invalid')).rejects.toMatchObject({ code: 'ENOTFOUND' });
  });

  it('check ends its connection politely: the server sees the client hang up, not a reset', async () => {
    const [port] = freeRange(1);
    let seen!: Promise<string>;
    const server = net.createServer((socket) => {
      seen = new Promise((resolve) => {
        socket.on('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? 'error'));
        socket.on('end', () => {
          socket.end();
          resolve('end');
        });
      });
    });
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    try {
      expect(await check(port)).toBe(true);
      await new Promise((resolve) => setImmediate(resolve));
      expect(await seen).toBe('end');
    } finally {
      await close(server);
    }
  });

  it('waitUntilUsed and waitUntilUsedOnHost resolve (with undefined) once a server listens', async () => {
    const [port] = freeRange(2);
    const used = waitUntilUsed(port, 20, 30_000);
    const usedOnHost = waitUntilUsedOnHost({ port: port + 1, host: '::1', retryTimeMs: 20, timeOutMs: 30_000 });
    await servers.listen(port, '127.0.0.1');
    await servers.listen(port + 1, '::1');
    expect(await used).toBeUndefined();
    expect(await usedOnHost).toBeUndefined();
  });

  it('waitUntilFree and waitUntilFreeOnHost resolve once the server has closed', async () => {
    const [port] = freeRange(1);
    const server = await listen(port, '127.0.0.1');
    const free = waitUntilFree({ port, retryTimeMs: 20, timeOutMs: 30_000 });
    const freeOnHost = waitUntilFreeOnHost(port, '127.0.0.1', 20, 30_000);
    expect(await check(port)).toBe(true);
    await close(server);
    expect(await free).toBeUndefined();
    expect(await freeOnHost).toBeUndefined();
  });

  it("waitUntilUsed and waitUntilFree ignore an object's host: they look at 127.0.0.1, as tcp-port-used's do", async () => {
    const [port] = freeRange(1);
    await servers.listen(port, '::1');
    expect(await outcome(waitUntilUsed({ port, host: '::1', retryTimeMs: 10, timeOutMs: 200 }))).toBe('timeout');
    expect(await outcome(waitUntilFree({ port, host: '::1', retryTimeMs: 10, timeOutMs: 30_000 }))).toBe('resolved: undefined');
    expect(await outcome(waitUntilUsedOnHost({ port, host: '::1', retryTimeMs: 10, timeOutMs: 30_000 }))).toBe('resolved: undefined');
  });

  it("rejects with Error('timeout') when the state never comes", async () => {
    const [port] = freeRange(1);
    await servers.listen(port, '127.0.0.1');
    expect(await outcome(waitUntilFreeOnHost(port, '127.0.0.1', 10, 150))).toBe('timeout');
    expect(await outcome(waitForStatus({ port: port + 0, host: '127.0.0.1', inUse: false, retryTimeMs: 10, timeOutMs: 150 }))).toBe('timeout');
  });

  it('waitForStatus takes inUse in both forms and rejects one that is not a boolean', async () => {
    const [port] = freeRange(1);
    await servers.listen(port, '127.0.0.1');
    expect(await outcome(waitForStatus(port, '127.0.0.1', true, 10, 30_000))).toBe('resolved: undefined');
    expect(await outcome(waitForStatus({ port, inUse: true }))).toBe('resolved: undefined');
    expect(await outcome(waitForStatus(port, '127.0.0.1', 'yes' as never))).toBe('inUse must be a boolean');
    expect(await outcome(waitForStatus({ port } as never))).toBe('inUse must be a boolean');
  });

  it('the wait functions reject a bad port with check\'s text', async () => {
    expect(await outcome(waitUntilFreeOnHost({} as never))).toBe('invalid port: undefined');
    expect(await outcome((waitUntilFree as () => Promise<void>)())).toBe('invalid port: undefined');
    expect(await outcome(waitUntilUsed('hello' as never, 10, 1000))).toBe("invalid port: 'hello'");
    expect(await outcome(waitUntilUsedOnHost({ port: 'hello' as never, host: '127.0.0.1' }))).toBe("invalid port: 'hello'");
  });

  it("leaves the caller's options object as it was (tcp-port-used writes inUse and host into it)", async () => {
    const [port] = freeRange(1);
    const options = { port, host: '::1', retryTimeMs: 10, timeOutMs: 30_000 };
    await waitUntilFree(options);
    expect(options).toEqual({ port, host: '::1', retryTimeMs: 10, timeOutMs: 30_000 });
  });
});
