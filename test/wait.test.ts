import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import { allocate, reserve, waitForPort, waitUntilFree } from '../dist/index.js';
import { freeRange, Servers, timeWait } from './compat-helpers';
import { backendName, close, listen, openFds } from './helpers';

const servers = new Servers();
afterEach(() => servers.closeAll());

const native = backendName === 'native';

beforeAll(() => void allocate(1));

describe(`waitForPort (${backendName})`, () => {
  it('resolves once a server listens, on loopback by default', async () => {
    const [port] = freeRange(1);
    const start = setTimeout(() => void servers.listen(port, '127.0.0.1'), 150);
    try {
      await expect(waitForPort(port, { interval: 20, timeout: 5000 })).resolves.toBeUndefined();
    } finally {
      clearTimeout(start);
    }
  });

  it('finds a server on ::1 by default, and one on a given host', async () => {
    const [port] = freeRange(1);
    await servers.listen(port, '::1');
    await waitForPort(port, { timeout: 1000 });
    await waitForPort(port, { host: '::1', timeout: 1000 });
    await expect(waitForPort(port, { host: '127.0.0.1', timeout: 100, interval: 20 })).rejects.toMatchObject({ code: 'ETIMEDOUT' });
  });

  it('rejects with code ETIMEDOUT when nothing listens in time', async () => {
    const [port] = freeRange(1);
    const error = await waitForPort(port, { timeout: 150, interval: 30 }).catch((e: NodeJS.ErrnoException) => e);
    expect(error).toMatchObject({ code: 'ETIMEDOUT', port, timeout: 150 });
    expect((error as Error).message).toBe(`portalloc: nothing listened on loopback port ${port} within 150 ms`);
  });

  it("says why when the host never resolved: the timeout's message and cause name ENOTFOUND", async () => {
    const [port] = freeRange(1);
    const error = await waitForPort(port, { host: 'nothing.invalid', timeout: 150, interval: 30 }).catch((e: Error) => e);
    expect(error).toMatchObject({ code: 'ETIMEDOUT', port, cause: { code: 'ENOTFOUND' } });
    expect((error as Error).message).toBe(`portalloc: nothing listened on nothing.invalid port ${port} within 150 ms (the last try: ENOTFOUND, nothing.invalid does not resolve)`);
  });

  it.runIf(native)('does not take a held (bound, not listening) port for a listener', async () => {
    const hold = reserve(1);
    try {
      await expect(waitForPort(hold.ports[0]!, { timeout: 100, interval: 20 })).rejects.toMatchObject({ code: 'ETIMEDOUT' });
    } finally {
      hold.release();
    }
  });

  it('checks at least once, even with timeout 0', async () => {
    const [port] = freeRange(1);
    await servers.listen(port);
    await expect(waitForPort(port, { timeout: 0 })).resolves.toBeUndefined();
  });
});

describe(`waitUntilFree (${backendName})`, () => {
  it('resolves once the server on the port has closed', async () => {
    const [port] = freeRange(1);
    const server = await listen(port, '0.0.0.0');
    const stop = setTimeout(() => void close(server), 150);
    try {
      await expect(waitUntilFree(port, { interval: 20, timeout: 5000 })).resolves.toBeUndefined();
    } finally {
      clearTimeout(stop);
      await close(server).catch(() => undefined);
    }
  });

  it('rejects with code ETIMEDOUT while the port stays in use', async () => {
    const [port] = freeRange(1);
    await servers.listen(port, '127.0.0.1');
    const error = await waitUntilFree(port, { timeout: 120, interval: 30 }).catch((e: NodeJS.ErrnoException) => e);
    expect(error).toMatchObject({ code: 'ETIMEDOUT', port });
    expect((error as Error).message).toBe(`portalloc: port ${port} was still in use within 120 ms`);
    // With a host where the port is free, it resolves.
    await waitUntilFree(port, { host: '127.0.0.2', timeout: 0 });
  });

  it('counts a port in TIME_WAIT as free, as a Node server can listen there', async () => {
    const [port] = freeRange(1);
    await timeWait(port);
    await expect(waitUntilFree(port, { timeout: 0 })).resolves.toBeUndefined();
  });

  it('rejects at once with EADDRNOTAVAIL for a host that is not local', async () => {
    const [port] = freeRange(1);
    await expect(waitUntilFree(port, { host: '192.0.2.1' })).rejects.toMatchObject({ code: 'EADDRNOTAVAIL' });
  });
});

describe('wait options', () => {
  it('names the bad option and value', async () => {
    await expect(waitForPort(0)).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE', message: expect.stringContaining('port must be an integer from 1 to 65535; got 0') });
    await expect(waitForPort('80' as unknown as number)).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' });
    await expect(waitForPort(80, { timeout: -1 })).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE', message: expect.stringContaining('options.timeout') });
    await expect(waitForPort(80, { timeout: '5' as unknown as number })).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' });
    await expect(waitUntilFree(80, { interval: 0 })).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE', message: expect.stringContaining('options.interval') });
    await expect(waitUntilFree(80, { interval: Infinity })).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE' });
    await expect(waitUntilFree(80, { host: '' })).rejects.toMatchObject({ code: 'ERR_OUT_OF_RANGE', message: expect.stringContaining('options.host') });
    await expect(waitUntilFree(80, { retries: 3 } as never)).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_VALUE', message: expect.stringContaining("'retries'") });
    await expect(waitUntilFree(80, 5 as never)).rejects.toMatchObject({ code: 'ERR_INVALID_ARG_TYPE' });
  });

  it('closes every socket and timer it opens', async () => {
    const [port] = freeRange(1);
    await waitForPort(port, { timeout: 30, interval: 10 }).catch(() => undefined);
    const before = openFds();
    await waitForPort(port, { timeout: 100, interval: 10 }).catch(() => undefined);
    await waitUntilFree(port, { timeout: 0 });
    // A socket that a timed-out connect() closed may take a tick to leave the table.
    const settle = Date.now() + 2000;
    while (openFds() !== before && Date.now() < settle) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(openFds()).toBe(before);
    // An accepted check connection is ended, then closed once the server closes its side.
    const server = await servers.listen(port);
    const baseline = openFds();
    await waitForPort(port, { timeout: 1000 });
    const end = Date.now() + 2000;
    while (openFds() !== baseline && Date.now() < end) await new Promise((resolve) => setTimeout(resolve, 20));
    expect(openFds()).toBe(baseline);
    expect(server.listening).toBe(true);
  });
});
