import fs from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { afterEach, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import portfinder, { getPort, getPortPromise, getPorts, getPortsPromise, getSocketPromise, nextPort, nextSocket, setBasePort, setHighestPort } from '../dist/compat/portfinder.js';
import { freeRange, Servers } from './compat-helpers';
import { backendName, openFds, root, tryListen } from './helpers';

// The original, for side-by-side answers (CommonJS).
const original = createRequire(path.join(root, 'package.json'))('portfinder') as typeof import('portfinder');

const servers = new Servers();
afterEach(async () => {
  await servers.closeAll();
  setBasePort(8000);
  setHighestPort(65535);
});

const turn = () => new Promise((resolve) => setImmediate(resolve));

beforeAll(async () => void (await getPortPromise({ port: freeRange(1)[0] })));

describe(`portfinder compatibility (${backendName})`, () => {
  it('starts at basePort 8000 and highestPort 65535, like portfinder', async () => {
    expect(portfinder.basePort).toBe(8000);
    expect(portfinder.highestPort).toBe(65535);
    const theirs = await original.getPortPromise();
    const ours = await getPortPromise();
    expect(ours).toBe(theirs);
    expect(ours).toBeGreaterThanOrEqual(8000);
  });

  it('returns options.port when it is free, and a Node server can listen there', async () => {
    const [port] = freeRange(1);
    expect(await getPortPromise({ port })).toBe(port);
    expect(await tryListen(port)).toBe('ok');
  });

  it('scans upward past busy ports, as portfinder does', async () => {
    const [from] = freeRange(4);
    await servers.listen(from);
    await servers.listen(from + 1, '127.0.0.1');
    await servers.listen(from + 2, '::');
    expect(await original.getPortPromise({ port: from })).toBe(from + 3);
    expect(await getPortPromise({ port: from })).toBe(from + 3);
  });

  it('skips a port busy on 0.0.0.0 only', async () => {
    const [from] = freeRange(2);
    await servers.listen(from, '0.0.0.0');
    expect(await getPortPromise({ port: from })).toBe(from + 1);
  });

  it('startPort starts the scan when port is not given', async () => {
    const [from] = freeRange(2);
    await servers.listen(from);
    expect(await getPortPromise({ startPort: from })).toBe(from + 1);
  });

  it('setBasePort() and assigning basePort move the default start', async () => {
    const [from] = freeRange(2);
    setBasePort(from);
    expect(portfinder.basePort).toBe(from);
    expect(await getPortPromise()).toBe(from);
    await turn();
    // Assignment, through Node's own CommonJS loader (vitest's copies module properties).
    const cjs = createRequire(path.join(root, 'package.json'))('./dist/compat/portfinder.js') as typeof portfinder;
    cjs.basePort = from + 1;
    try {
      expect(await cjs.getPortPromise()).toBe(from + 1);
    } finally {
      cjs.basePort = 8000;
    }
  });

  it('calls back error-first when given a callback, and returns nothing', async () => {
    const [port] = freeRange(1);
    const result = await new Promise<[Error | null, number | undefined, unknown]>((resolve) => {
      const returned = getPort({ port }, (err, found) => resolve([err, found, returned]));
    });
    expect(result).toEqual([null, port, undefined]);
    setBasePort(port);
    await turn();
    expect(await new Promise((resolve) => getPort((err, found) => resolve([err, found])))).toEqual([null, port]);
    const failed = await new Promise<Error | null>((resolve) => getPort({ port: port + 5, stopPort: port }, (err) => resolve(err)));
    expect(failed?.message).toBe(`Provided options.stopPort(${port}) is less than options.port(${port + 5})`);
  });

  it('getPorts() finds each port above the previous one', async () => {
    const [from] = freeRange(5);
    await servers.listen(from + 1);
    expect(await getPortsPromise(3, { port: from })).toEqual([from, from + 2, from + 3]);
    await turn();
    expect(await original.getPortsPromise(3, { port: from })).toEqual([from, from + 2, from + 3]);
    const viaCallback = await new Promise((resolve) => getPorts(2, { port: from }, (err, ports) => resolve([err, ports])));
    expect(viaCallback).toEqual([null, [from, from + 2]]);
  });

  it('gives portfinder\'s error messages', async () => {
    const [from] = freeRange(3);
    await servers.listen(from);
    await servers.listen(from + 1);
    const cases = [
      { port: from, stopPort: from + 1 },
      { port: from + 5, stopPort: from },
      { port: -5 },
      { startPort: from, port: from, stopPort: from + 1 },
    ];
    for (const options of cases) {
      const theirs = await original.getPortPromise({ ...options }).catch((error: Error) => error.message);
      const ours = await getPortPromise({ ...options }).catch((error: Error) => error.message);
      expect(ours).toBe(theirs);
      expect(typeof ours).toBe('string');
    }
    expect(await getPortPromise({ port: from, stopPort: from + 1 }).catch((error: Error) => error.message)).toBe(
      `No open ports found in between ${from} and ${from + 1}`,
    );
    // With startPort given, portfinder skips its checks and Node's listen() refuses the port.
    await expect(getPortPromise({ startPort: 5, port: -3 })).rejects.toMatchObject({ code: 'ERR_SOCKET_BAD_PORT' });
    expect(await getPortPromise({ port: -5 }).catch((error: Error) => error.message)).toBe(
      'Provided options.port(-5) is less than 0, which are cannot be bound.',
    );
  });

  it('says "No open ports available" past highestPort', async () => {
    const [from] = freeRange(2);
    await servers.listen(from);
    await servers.listen(from + 1);
    setHighestPort(from + 1);
    original.setHighestPort(from + 1);
    try {
      const theirs = await original.getPortPromise({ port: from }).catch((error: Error) => error.message);
      const ours = await getPortPromise({ port: from }).catch((error: Error) => error.message);
      expect(ours).toBe('No open ports available');
      expect(ours).toBe(theirs);
    } finally {
      original.setHighestPort(65535);
    }
  });

  it('with host, the port must be free there too; a host that is not local is refused', async () => {
    const [from] = freeRange(2);
    await servers.listen(from, '127.0.0.1');
    expect(await getPortPromise({ port: from, host: '127.0.0.1' })).toBe(from + 1);
    await expect(getPortPromise({ port: from + 1, host: '192.0.2.1' })).rejects.toThrow(
      'Provided host 192.0.2.1 could NOT be bound. Please provide a different host address or hostname',
    );
    await expect(getPortPromise({ port: from + 1, host: 'no-such-host.invalid' })).rejects.toMatchObject({ code: 'ENOTFOUND' });
  });

  it('never gives the same port to calls running at the same time (unlike portfinder)', async () => {
    const [from] = freeRange(10);
    const ports = await Promise.all(Array.from({ length: 10 }, () => getPortPromise({ port: from })));
    expect(ports.sort((a, b) => a - b)).toEqual(Array.from({ length: 10 }, (_, i) => from + i));
    const batches = await Promise.all([getPortsPromise(3, { port: from }), getPortsPromise(3, { port: from })]);
    expect(new Set(batches.flat()).size).toBe(6);
  });

  it('returns the same free port again to a later call, like portfinder', async () => {
    const [port] = freeRange(1);
    expect(await getPortPromise({ port })).toBe(port);
    await turn();
    expect(await getPortPromise({ port })).toBe(port);
  });

  it('answers calls made one after another in the same turn as portfinder does: the same free port', async () => {
    const [port] = freeRange(1);
    const first = await getPortPromise({ port });
    const second = await getPortPromise({ port });
    const third = await new Promise((resolve) => getPort({ port }, (_err, found) => resolve(found)));
    expect([first, second, third]).toEqual([port, port, port]);
  });

  it("getPorts running past stopPort: portfinder's error, and the ports found so far to the callback", async () => {
    const [from] = freeRange(4);
    await servers.listen(from);
    await servers.listen(from + 1);
    // Two free ports (from + 2, from + 3) below stopPort, three asked for.
    const options = { port: from, stopPort: from + 3 };
    const viaCallback = (finder: typeof original | typeof portfinder) =>
      new Promise<[string | undefined, unknown]>((resolve) => finder.getPorts(3, { ...options }, (err, ports) => resolve([err?.message, ports])));
    const theirs = await viaCallback(original);
    const ours = await viaCallback(portfinder);
    expect(ours).toEqual([`No open ports found in between ${from} and ${from + 3}`, [from + 2, from + 3, undefined]]);
    expect(ours).toEqual(theirs);
    await expect(getPortsPromise(3, { ...options })).rejects.toMatchObject({ message: `No open ports found in between ${from} and ${from + 3}`, code: 'ERR_PORTS_EXHAUSTED' });
    // The promise form handed nothing out: the two free ports are still there for the next call.
    expect(await getPortsPromise(2, { ...options })).toEqual([from + 2, from + 3]);
  });

  it('nextPort and nextSocket count as portfinder does', () => {
    // Exported by portfinder, though its types do not declare them.
    const counters = original as unknown as { nextPort(port: number): number; nextSocket(socketPath: string): string };
    expect(nextPort(8000)).toBe(counters.nextPort(8000));
    for (const socketPath of ['/tmp/portfinder.sock', '/tmp/app1.sock', '/a/b/x9.sock']) {
      expect(nextSocket(socketPath)).toBe(counters.nextSocket(socketPath));
    }
  });

  it('getSocket finds a socket path that does not exist yet, creating its directory', async () => {
    const scratch = fs.mkdtempSync(path.join(os.tmpdir(), 'portalloc-sock-'));
    onTestFinished(() => fs.rmSync(scratch, { recursive: true, force: true }));
    const dir = path.join(scratch, 'sub');
    expect(await getSocketPromise({ path: path.join(dir, 'app.sock') })).toBe(path.join(dir, 'app.sock'));
    expect(fs.statSync(dir).isDirectory()).toBe(true);
    fs.writeFileSync(path.join(dir, 'app.sock'), '');
    fs.writeFileSync(path.join(dir, 'app1.sock'), '');
    expect(await getSocketPromise({ path: path.join(dir, 'app.sock') })).toBe(path.join(dir, 'app2.sock'));
  });

  it('closes every socket it opens', async () => {
    const [from] = freeRange(3);
    await servers.listen(from);
    await getPortPromise({ port: from });
    await turn();
    const before = openFds();
    for (let i = 0; i < 100; i++) {
      await getPortPromise({ port: from });
      await getPortPromise({ port: from, stopPort: from }).catch(() => undefined);
    }
    await getPortPromise({ port: from, host: '192.0.2.1' }).catch(() => undefined);
    await turn();
    expect(openFds()).toBe(before);
  });
});
