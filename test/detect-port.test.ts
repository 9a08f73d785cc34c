import { createRequire } from 'node:module';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import detectPortDefault, { detect, detectPort, IPAddressNotAvailableError, waitPort, WaitPortRetryError } from '../dist/compat/detect-port.js';
import { freeRange, Servers } from './compat-helpers';
import { backendName, close, listen, openFds, root, tryListen } from './helpers';

// The original, for side-by-side answers.
const original = createRequire(path.join(root, 'package.json'))('detect-port') as typeof import('detect-port');

const servers = new Servers();
afterEach(() => servers.closeAll());

const turn = () => new Promise((resolve) => setImmediate(resolve));

beforeAll(async () => void (await detect(0)));

describe(`detect-port compatibility (${backendName})`, () => {
  it('exports detectPort as default, as detect and by name', () => {
    expect(detectPortDefault).toBe(detectPort);
    expect(detect).toBe(detectPort);
  });

  it('returns the port when it is free', async () => {
    const [port] = freeRange(1);
    expect(await detect(port)).toBe(port);
    expect(await tryListen(port)).toBe('ok');
  });

  it('tries port .. port+9, skipping ports busy on any address', async () => {
    const [from] = freeRange(5);
    await servers.listen(from);
    await servers.listen(from + 1, '0.0.0.0');
    await servers.listen(from + 2, '127.0.0.1');
    await servers.listen(from + 3, '::1');
    expect(await original.detect(from)).toBe(from + 4);
    await turn();
    expect(await detect(from)).toBe(from + 4);
  });

  it('falls back to a random free port when port .. port+9 are all busy', async () => {
    const [from] = freeRange(11);
    for (let port = from; port < from + 10; port++) await servers.listen(port);
    const got = await detect(from);
    expect(got < from || got > from + 9).toBe(true);
    // port+10 is never tried: the random pick comes from the kernel's ephemeral range, above these.
    expect(got).not.toBe(from + 10);
    expect(await tryListen(got)).toBe('ok');
  });

  it('takes a string port, an object with hostname, or nothing (a random port)', async () => {
    const [from] = freeRange(2);
    expect(await detect(String(from))).toBe(from);
    await servers.listen(from, '127.0.0.1');
    await turn();
    expect(await detect({ port: from, hostname: '127.0.0.1' })).toBe(from + 1);
    // On another host, the port busy on 127.0.0.1 is free.
    expect(await detect({ port: from, hostname: '127.0.0.2' })).toBe(from);
    const random = await detect();
    expect(random).toBeGreaterThan(0);
    expect(await tryListen(random)).toBe('ok');
  });

  it('calls back error-first, from the second argument or the object', async () => {
    const [port] = freeRange(1);
    expect(await new Promise((resolve) => detect(port, (err, found) => resolve([err, found])))).toEqual([null, port]);
    await turn();
    expect(await new Promise((resolve) => detect({ port, callback: (err, found) => resolve([err, found]) }))).toEqual([null, port]);
    const random = await new Promise<number | undefined>((resolve) => detect((err, found) => resolve(err ? undefined : found)));
    expect(random).toBeGreaterThan(0);
  });

  it('rejects a hostname that is not local with IPAddressNotAvailableError', async () => {
    const [port] = freeRange(1);
    const error = await detect({ port, hostname: '192.0.2.1' }).catch((e: Error) => e);
    const theirs = await original.detect({ port, hostname: '192.0.2.1' }).catch((e: Error) => e);
    expect(error).toBeInstanceOf(IPAddressNotAvailableError);
    expect(error).toMatchObject({ name: 'IPAddressNotAvailableError', code: 'EADDRNOTAVAIL', message: (theirs as Error).message });
    expect((error as Error).message).toBe('The IP address is not available on this machine');
  });

  it('takes a hostname that does not resolve as free, as detect-port does', async () => {
    const [port] = freeRange(1);
    expect(await original.detect({ port, hostname: 'no-such-host.invalid' })).toBe(port);
    expect(await detect({ port, hostname: 'no-such-host.invalid' })).toBe(port);
  });

  it('moves past port numbers Node would refuse to a random port, as detect-port does', async () => {
    for (const port of [70000, -5]) {
      const got = await detect(port);
      expect(got).toBeGreaterThan(0);
      expect(got).toBeLessThan(65536);
      expect(await tryListen(got)).toBe('ok');
    }
    // detect-port would resolve 0 here; a port 0 is of no use, so portalloc rejects.
    await expect(detect({ hostname: 'no-such-host.invalid' })).rejects.toMatchObject({ code: 'ENOTFOUND' });
  });

  it('never gives the same port to calls running at the same time (unlike detect-port)', async () => {
    const [from] = freeRange(10);
    const ports = await Promise.all(Array.from({ length: 10 }, () => detect(from)));
    expect(ports.sort((a, b) => a - b)).toEqual(Array.from({ length: 10 }, (_, i) => from + i));
    const count = backendName === 'native' ? 200 : 50;
    const random = await Promise.all(Array.from({ length: count }, () => detect()));
    expect(new Set(random).size).toBe(count);
  });

  it('answers calls made one after another as detect-port does: the same free port, a random one included', async () => {
    const [port] = freeRange(1);
    expect([await detect(port), await detect(port), await detect({ port })]).toEqual([port, port, port]);
    const random = await detect();
    expect(await detect(random)).toBe(random);
    expect(await tryListen(random)).toBe('ok');
    // A server that listened and closed in between changes nothing.
    const server = await listen(random, '0.0.0.0');
    await close(server);
    expect(await detect(random)).toBe(random);
  });

  it('waitPort resolves true once the port is in use', async () => {
    const [port] = freeRange(1);
    const started = setTimeout(() => void servers.listen(port), 150);
    try {
      expect(await waitPort(port, { retryInterval: 50, retries: 100 })).toBe(true);
    } finally {
      clearTimeout(started);
    }
  });

  it('waitPort rejects with WaitPortRetryError after its retries, like detect-port', async () => {
    const [port] = freeRange(1);
    const ours = await waitPort(port, { retryInterval: 10, retries: 2 }).catch((e: unknown) => e);
    const theirs = await original.waitPort(port, { retryInterval: 10, retries: 2 }).catch((e: unknown) => e);
    expect(ours).toBeInstanceOf(WaitPortRetryError);
    expect(ours).toMatchObject({ name: 'WaitPortRetryError', message: 'retries exceeded', retries: 2, count: 3 });
    expect(ours).toMatchObject({ name: (theirs as Error).name, message: (theirs as Error).message, retries: 2, count: (theirs as { count: number }).count });
  });

  it('closes every socket it opens', async () => {
    const [from] = freeRange(2);
    const server = await listen(from);
    try {
      await detect(from);
      await turn();
      const before = openFds();
      for (let i = 0; i < 100; i++) await detect(from);
      await detect({ port: from, hostname: '192.0.2.1' }).catch(() => undefined);
      await waitPort(from, { retries: 1, retryInterval: 1 });
      await turn();
      expect(openFds()).toBe(before);
    } finally {
      await close(server);
    }
  });
});
