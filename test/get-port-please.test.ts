/**
 * portalloc/get-port-please: the order get-port-please tries ports in, its
 * options, log lines, results and GetPortError texts, checked beside the
 * original where the machine allows; and what portalloc adds: calls in flight
 * at the same time never share a port.
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import {
  checkPort,
  cleanSocket,
  getPort,
  GetPortError,
  getRandomPort,
  getSocketAddress,
  isSafePort,
  isSocketSupported,
  isUnsafePort,
  waitForPort,
} from '../dist/compat/get-port-please.js';
import { detect } from '../dist/compat/detect-port.js';
import { getPortPromise as portfinderGetPort } from '../dist/compat/portfinder.js';
import { allocate, clearLockedPorts, getPort as lockingGetPort } from '../dist/index.js';
import { freeRange, Servers } from './compat-helpers';
import { backendName, openFds, root, tryListen } from './helpers';

const original = createRequire(path.join(root, 'package.json'))('get-port-please') as typeof import('get-port-please');

const servers = new Servers();
afterEach(async () => {
  await servers.closeAll();
  vi.restoreAllMocks();
});

/** The error's `name: message`, or the value. */
const outcome = (promise: Promise<unknown>) => promise.then(String, (error: Error) => `${error.name}: ${error.message}`);

/** console.log lines a call prints (verbose). */
async function logged(call: () => Promise<unknown>): Promise<string[]> {
  const lines: string[] = [];
  const spy = vi.spyOn(console, 'log').mockImplementation((line: string) => void lines.push(line));
  try {
    await call().catch(() => undefined);
  } finally {
    spy.mockRestore();
  }
  return lines;
}

describe(`get-port-please compatibility (${backendName})`, () => {
  it('returns the preferred port when it is free, and a server can listen on it', async () => {
    const [port] = freeRange(1);
    expect(await getPort({ port })).toBe(port);
    expect(await getPort(port)).toBe(port);
    expect(await getPort(String(port))).toBe(port);
    expect(await tryListen(port)).toBe('ok');
  });

  it('tries port, then ports, then portRange, then alternativePortRange, as get-port-please does', async () => {
    const [from] = freeRange(8);
    for (const busy of [from, from + 1, from + 3, from + 5]) await servers.listen(busy);
    const cases = [
      { port: from, ports: [from + 1, from + 2] },
      { port: from, portRange: [from + 3, from + 4] as [number, number] },
      { port: from, ports: [from + 1], portRange: [from + 3, from + 4] as [number, number] },
      { port: from, alternativePortRange: [from + 5, from + 7] as [number, number] },
      { ports: [from + 3], portRange: [from, from + 2] as [number, number] },
    ];
    for (const options of cases) {
      const theirs = await original.getPort(options);
      expect(await getPort(options), JSON.stringify(options)).toBe(theirs);
    }
  });

  it('never returns an unsafe port: the same list as get-port-please', async () => {
    const differing: number[] = [];
    for (let port = 0; port <= 65536; port++) if (isUnsafePort(port) !== original.isUnsafePort(port)) differing.push(port);
    expect(differing).toEqual([]);
    expect(isUnsafePort(6667)).toBe(true);
    expect(isSafePort(6667)).toBe(false);
    const [free] = freeRange(1);
    expect(await getPort({ ports: [6000, 6666, 10080, free] })).toBe(free);
    expect(await checkPort(6000)).toBe(false);
  });

  it('falls back to a random port when the ports asked for are taken, unless random is false', async () => {
    const [from] = freeRange(2);
    await servers.listen(from);
    await servers.listen(from + 1);
    const random = await getPort({ port: from, ports: [from + 1] });
    expect(random).not.toBe(from);
    expect(random).not.toBe(from + 1);
    expect(await tryListen(random)).toBe('ok');
    const options = { port: from, portRange: [from, from + 1] as [number, number], random: false };
    const ours = await getPort(options).catch((error: unknown) => error);
    expect(ours).toBeInstanceOf(GetPortError);
    expect(ours).toMatchObject({ name: 'GetPortError', code: 'ERR_PORTS_EXHAUSTED' });
    expect(await outcome(getPort(options))).toBe(await outcome(original.getPort(options)));
    expect(await outcome(getPort(options))).toBe(`GetPortError: Unable to find an available port on any host (tried ${from}, ${from}-${from + 1})`);
  });

  it('a random port, from getRandomPort(), { random: true }, port 0 or "0", is free and can be listened on', async () => {
    for (const port of [await getRandomPort(), await getPort({ random: true }), await getPort({ port: 0 }), await getPort(0), await getPort({ port: '0' as never })]) {
      expect(port).toBeGreaterThan(0);
      expect(isSafePort(port)).toBe(true);
      expect(await tryListen(port)).toBe('ok');
    }
  });

  it('answers a call that begins after another delivered as get-port-please would: the same free port again', async () => {
    const [port] = freeRange(1);
    expect(await getPort({ port })).toBe(port);
    expect(await getPort({ port })).toBe(port);
    const random = await getRandomPort();
    expect(await getPort({ port: random })).toBe(random);
    expect(await checkPort(random)).toBe(random);
  });

  it('never gives the same port to calls running at the same time (unlike get-port-please)', async () => {
    const [from] = freeRange(8);
    const ports = await Promise.all(Array.from({ length: 8 }, () => getPort({ port: from, portRange: [from, from + 7] })));
    expect(ports.sort((a, b) => a - b)).toEqual(Array.from({ length: 8 }, (_, i) => from + i));
    const random = await Promise.all(Array.from({ length: 50 }, () => getRandomPort()));
    expect(new Set(random).size).toBe(50);
  });

  it('reads PORT and HOST from the environment when no port or host is given', async () => {
    const [port] = freeRange(2);
    await servers.listen(port, '127.0.0.1');
    const saved = { PORT: process.env.PORT, HOST: process.env.HOST };
    try {
      process.env.PORT = String(port + 1);
      expect(await getPort()).toBe(port + 1);
      process.env.PORT = String(port);
      process.env.HOST = '127.0.0.1';
      expect(await checkPort(port)).toBe(false);
      expect(await getPort({ portRange: [port, port + 1] })).toBe(port + 1);
    } finally {
      for (const [key, value] of Object.entries(saved)) {
        if (value === undefined) delete process.env[key];
        else process.env[key] = value;
      }
    }
  });

  it('with a host, a port need only be free there; an address that is not local finds none', async () => {
    const [port] = freeRange(2);
    await servers.listen(port, '127.0.0.1');
    expect(await getPort({ port, host: '127.0.0.1', random: false, portRange: [port, port + 1] })).toBe(port + 1);
    expect(await getPort({ port, host: '::1' })).toBe(port);
    const options = { port, host: '192.0.2.1' };
    expect(await outcome(getPort(options))).toBe('GetPortError: Unable to find a random port on host "192.0.2.1"');
    expect(await outcome(getPort(options))).toBe(await outcome(original.getPort(options)));
    expect(await outcome(getRandomPort('192.0.2.1'))).toBe('GetPortError: Unable to find a random port on host "192.0.2.1"');
  });

  it("logs get-port-please's lines when verbose, and falls back from a host that is not a host name", async () => {
    const [from] = freeRange(3);
    await servers.listen(from);
    const invalid = { host: 'http://localhost:8080', verbose: true, port: from + 1 };
    expect(await logged(() => getPort(invalid))).toEqual(await logged(() => original.getPort(invalid)));
    expect(await logged(() => getPort({ ...invalid, public: true }))).toEqual(['[get-port] Invalid hostname: "http://localhost:8080". Using "0.0.0.0" as fallback.']);
    expect(await logged(() => getPort({ port: 6666, ports: [from + 2], verbose: true }))).toEqual(['[get-port] Ignoring unsafe port: 6666']);
    const alternative = { port: from, alternativePortRange: [from + 1, from + 2] as [number, number], verbose: true };
    const lines = await logged(() => getPort(alternative));
    expect(lines).toEqual([`[get-port] Unable to find an available port (tried ${from} on any host). Using alternative port ${from + 1}.`]);
    expect(lines).toEqual(await logged(() => original.getPort(alternative)));
    expect(await logged(() => getPort({ port: from, verbose: true }))).toEqual([expect.stringMatching(/^\[get-port\] Using random port \d+$/)]);
  });

  it('checkPort: the port when free on every host given, false when not; port 0 gives a random one', async () => {
    const [port] = freeRange(2);
    await servers.listen(port, '::1');
    expect(await checkPort(port)).toBe(false);
    expect(await checkPort(port, '127.0.0.1')).toBe(port);
    expect(await checkPort(port, ['127.0.0.1', '::1'])).toBe(false);
    expect(await checkPort(port + 1, ['127.0.0.1', '::1'])).toBe(port + 1);
    const random = await checkPort(0);
    expect(random).toBeGreaterThan(0);
    expect(await tryListen(random as number)).toBe('ok');
  });

  it('waitForPort resolves once the port is in use, else rejects with get-port-please\'s text', async () => {
    const [port] = freeRange(1);
    // (Its check is a listen, as get-port-please's is: a server starting meanwhile could meet it, so it starts first.)
    await servers.listen(port);
    await expect(waitForPort(port, { delay: 20, retries: 3 })).resolves.toBeUndefined();
    await servers.closeAll();
    const options = { delay: 10, retries: 2 };
    expect(await outcome(waitForPort(port, options))).toBe(`GetPortError: Timeout waiting for port ${port} after 2 retries with 10ms interval.`);
    expect(await outcome(waitForPort(port, options))).toBe(await outcome(original.waitForPort(port, options)));
  });

  it('a search that found nothing reuses no port handed out after the call began (allocate gave it meanwhile)', async () => {
    const [port] = freeRange(1);
    const pending = getPort({ port, portRange: [port, port], random: false });
    const given = allocate(1, { range: [port, port] }); // while the call runs: the caller's, for the window
    expect(given).toEqual([port]);
    await expect(pending).rejects.toThrow(/Unable to find an available port/);
  });

  it('socket addresses: the same names as get-port-please, usable by a server', async () => {
    expect(getSocketAddress({ name: 'app' })).toBe(original.getSocketAddress({ name: 'app' }));
    expect(getSocketAddress({ name: 'app', pid: true })).toBe(original.getSocketAddress({ name: 'app', pid: true }));
    expect(getSocketAddress({ name: 'app', pid: true, random: true })).toMatch(new RegExp(`^\\0?.*app-${process.pid}-\\d+\\.sock$`));
    expect(await isSocketSupported()).toBe(await original.isSocketSupported());
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'portalloc-gpp-'));
    try {
      const file = path.join(dir, 'left.sock');
      fs.writeFileSync(file, '');
      await cleanSocket(file);
      expect(fs.existsSync(file)).toBe(false);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });

  it("keeps off ports get-port locked, as portfinder and detect-port do, until clearLockedPorts()", async () => {
    const [port] = freeRange(2);
    expect(await lockingGetPort({ port })).toBe(port);
    expect(await getPort({ port, ports: [port + 1] })).toBe(port + 1);
    expect(await portfinderGetPort({ port })).toBe(port + 1);
    expect(await detect(port)).toBe(port + 1);
    clearLockedPorts();
    expect(await getPort({ port })).toBe(port);
  });

  it('closes every socket it opens', async () => {
    const [from] = freeRange(2);
    await servers.listen(from);
    await getPort({ port: from + 1 });
    const before = openFds();
    for (let i = 0; i < 50; i++) await getPort({ port: from, ports: [from + 1] });
    await checkPort(from + 1, ['127.0.0.1', '::1']);
    await getRandomPort();
    await waitForPort(from, { retries: 1, delay: 1 });
    await new Promise((resolve) => setImmediate(resolve));
    expect(openFds()).toBe(before);
  });
});
