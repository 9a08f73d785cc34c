import net from 'node:net';
import { afterEach, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import getPort, { clearLockedPorts, getPort as namedGetPort, portNumbers } from '../dist/index.js';
import { freeRange, runProgram, Servers, timeWait, userProject } from './compat-helpers';
import { backendName, openFds, pythonBind, tryListen } from './helpers';

const servers = new Servers();
afterEach(async () => {
  await servers.closeAll();
  clearLockedPorts();
});

// The JS backend starts its worker thread (and its fds) on first use.
beforeAll(async () => void (await getPort()));

describe(`get-port compatibility (${backendName})`, () => {
  it('is the default export and the named getPort', () => {
    expect(getPort).toBe(namedGetPort);
  });

  it('returns a random port a Node server can listen on, on the default host and on 0.0.0.0', async () => {
    const port = await getPort();
    expect(Number.isInteger(port) && port > 0 && port < 65536).toBe(true);
    clearLockedPorts();
    expect(await tryListen(port)).toBe('ok');
    expect(await tryListen(port, '0.0.0.0')).toBe('ok');
  });

  it('returns the preferred port when it is free', async () => {
    const [port] = freeRange(1);
    expect(await getPort({ port })).toBe(port);
    expect(await tryListen(port)).toBe('ok');
  });

  it('returns a random free port when the preferred port is busy', async () => {
    const [port] = freeRange(1);
    await servers.listen(port);
    const got = await getPort({ port });
    expect(got).not.toBe(port);
    expect(await tryListen(got)).toBe('ok');
  });

  it('takes the first free port of a list, in order', async () => {
    const [from] = freeRange(3);
    await servers.listen(from);
    expect(await getPort({ port: [from, from + 2, from + 1] })).toBe(from + 2);
  });

  it('takes any iterable: a Set, a generator, portNumbers()', async () => {
    const [from] = freeRange(4);
    await servers.listen(from);
    expect(await getPort({ port: new Set([from, from + 1]) })).toBe(from + 1);
    expect(
      await getPort({
        port: (function* () {
          yield from;
          yield from + 2;
        })(),
      }),
    ).toBe(from + 2);
    expect(await getPort({ port: portNumbers(from, from + 3) })).toBe(from + 3);
  });

  it('skips excluded ports, preferred or random', async () => {
    const [from] = freeRange(2);
    expect(await getPort({ port: [from, from + 1], exclude: [from] })).toBe(from + 1);
    clearLockedPorts();
    expect(await getPort({ port: [from, from + 1], exclude: portNumbers(from, from + 1) })).not.toBeOneOf([from, from + 1]);
    // A random pick never lands on an excluded port either (get-port 7.2 does not check).
    const random = await getPort();
    clearLockedPorts();
    expect(await getPort({ exclude: [random], port: random })).not.toBe(random);
  });

  for (const host of [undefined, '0.0.0.0', '127.0.0.1', '::', '::1'] as const) {
    it(`skips a port busy on ${host ?? 'the default host'} (checked on every local address)`, async () => {
      const [from] = freeRange(2);
      await servers.listen(from, host);
      expect(await getPort({ port: [from, from + 1] })).toBe(from + 1);
    });
  }

  /** Another process that binds 127.0.0.1:port (python3, so SO_REUSEADDR only when asked) and does not listen. */
  async function bindElsewhere(port: number, reuse: boolean): Promise<() => Promise<void>> {
    const { spawn } = await import('node:child_process');
    const code = `import socket,sys\ns=socket.socket(socket.AF_INET,socket.SOCK_STREAM)\n${reuse ? 's.setsockopt(socket.SOL_SOCKET,socket.SO_REUSEADDR,1)\n' : ''}s.bind(('127.0.0.1',${port}))\nprint('ok',flush=True)\nsys.stdin.read()`;
    const holder = spawn('python3', ['-c', code], { stdio: ['pipe', 'pipe', 'inherit'] });
    await new Promise((resolve) => holder.stdout!.once('data', resolve));
    return async () => {
      holder.stdin!.end();
      await new Promise((resolve) => holder.once('exit', resolve));
    };
  }

  it('skips a port another process binds without SO_REUSEADDR, even when it does not listen', async () => {
    const [from] = freeRange(2);
    const release = await bindElsewhere(from, false);
    try {
      expect(await getPort({ port: [from, from + 1] })).toBe(from + 1);
    } finally {
      await release();
    }
  });

  it('takes a port another process only binds with SO_REUSEADDR, as get-port does (a Node server can listen there)', async () => {
    const original = await import('get-port');
    const [port] = freeRange(1);
    const release = await bindElsewhere(port, true);
    try {
      expect(await original.default({ port })).toBe(port);
      expect(await getPort({ port })).toBe(port);
    } finally {
      await release();
    }
  });

  it('with host, checks only that host', async () => {
    const [port] = freeRange(1);
    await servers.listen(port, '127.0.0.1');
    expect(await getPort({ port, host: '127.0.0.1' })).not.toBe(port);
    expect(await getPort({ port, host: '127.0.0.2' })).toBe(port);
  });

  it('counts a port in TIME_WAIT as free, as a Node server can listen on it', async () => {
    const [port] = freeRange(1);
    await timeWait(port);
    // TIME_WAIT is there: a bind without SO_REUSEADDR fails.
    expect(pythonBind([port])).toEqual(['EADDRINUSE']);
    expect(await getPort({ port })).toBe(port);
    expect(await tryListen(port)).toBe('ok');
  });

  it('locks a returned port against later calls until clearLockedPorts()', async () => {
    const [from] = freeRange(3);
    const port = [from, from + 1, from + 2];
    expect(await getPort({ port })).toBe(from);
    expect(await getPort({ port })).toBe(from + 1);
    clearLockedPorts();
    expect(await getPort({ port })).toBe(from);
  });

  it('never gives the same port to calls running at the same time', async () => {
    const [from] = freeRange(10);
    const preferred = await Promise.all(Array.from({ length: 20 }, () => getPort({ port: portNumbers(from, from + 9) })));
    expect(new Set(preferred).size).toBe(20);
    expect(preferred.filter((port) => port >= from && port <= from + 9).sort()).toEqual(Array.from({ length: 10 }, (_, i) => from + i));
    // Hundreds at once: the kernel's bind(0) hands the same port out again as soon as it is closed.
    // (Fewer on the JS backend, whose picks hold a listening server each while they run.)
    const count = backendName === 'native' ? 300 : 50;
    const random = await Promise.all(Array.from({ length: count }, () => getPort()));
    expect(new Set(random).size).toBe(count);
  });

  it('reserve keeps the port locked, and clearLockedPorts() releases it too', async () => {
    const [port] = freeRange(1);
    expect(await getPort({ port, reserve: true })).toBe(port);
    expect(await getPort({ port })).not.toBe(port);
    clearLockedPorts();
    expect(await getPort({ port })).toBe(port);
  });

  it('accepts the rest of ListenOptions (ipv6Only with host ::)', async () => {
    const [port] = freeRange(1);
    await servers.listen(port, '0.0.0.0');
    // IPv6 only: the IPv4 listener does not matter, as for a Node server with these options.
    expect(await getPort({ port, host: '::', ipv6Only: true })).toBe(port);
    clearLockedPorts();
    expect(await getPort({ port, host: '::' })).not.toBe(port);
  });

  it('rejects a host that does not resolve, with getaddrinfo ENOTFOUND', async () => {
    await expect(getPort({ host: 'no-such-host.invalid' })).rejects.toMatchObject({ code: 'ENOTFOUND', syscall: 'getaddrinfo' });
  });

  it('rejects an address that is not local, with Node\'s EADDRNOTAVAIL', async () => {
    const [port] = freeRange(1);
    const error = await getPort({ port, host: '192.0.2.1' }).catch((e: NodeJS.ErrnoException) => e);
    expect(error).toMatchObject({ code: 'EADDRNOTAVAIL', syscall: 'listen', message: `listen EADDRNOTAVAIL: address not available 192.0.2.1:${port}` });
    await expect(getPort({ host: '192.0.2.1' })).rejects.toMatchObject({ code: 'EADDRNOTAVAIL' });
  });

  it('rejects a preferred port Node would refuse, with ERR_SOCKET_BAD_PORT', async () => {
    await expect(getPort({ port: 70000 })).rejects.toMatchObject({
      name: 'RangeError',
      code: 'ERR_SOCKET_BAD_PORT',
      message: 'options.port should be >= 0 and < 65536. Received type number (70000).',
    });
  });

  it('throws get-port\'s exclude errors', async () => {
    await expect(getPort({ exclude: 5 as unknown as number[] })).rejects.toThrow(Object.assign(new TypeError('The `exclude` option must be an iterable.'), { code: 'ERR_INVALID_ARG_TYPE' }));
    await expect(getPort({ exclude: ['80'] as unknown as number[] })).rejects.toThrow(Object.assign(new TypeError('Each item in the `exclude` option must be a number corresponding to the port you want excluded.'), { code: 'ERR_INVALID_ARG_TYPE' }));
    await expect(getPort({ exclude: [NaN] })).rejects.toThrow(Object.assign(new TypeError("Number NaN in the exclude option is not a safe integer and can't be used"), { code: 'ERR_OUT_OF_RANGE' }));
    await expect(getPort({ exclude: [1.5] })).rejects.toThrow(Object.assign(new TypeError("Number 1.5 in the exclude option is not a safe integer and can't be used"), { code: 'ERR_OUT_OF_RANGE' }));
  });

  it('portNumbers() is lazy, inclusive, and throws get-port\'s errors in get-port\'s order', () => {
    expect([...portNumbers(1024, 1026)]).toEqual([1024, 1025, 1026]);
    expect([...portNumbers(65535, 65535)]).toEqual([65535]);
    expect(() => portNumbers(1.5, 2000)).toThrow(Object.assign(new TypeError('`from` and `to` must be integer numbers'), { code: 'ERR_INVALID_ARG_TYPE' }));
    expect(() => portNumbers(70000.5, 1)).toThrow(Object.assign(new TypeError('`from` and `to` must be integer numbers'), { code: 'ERR_INVALID_ARG_TYPE' }));
    expect(() => portNumbers(80, 70000)).toThrow(Object.assign(new RangeError("'from' must be between 1024 and 65535"), { code: 'ERR_OUT_OF_RANGE' }));
    expect(() => portNumbers(2000, 70000)).toThrow(Object.assign(new RangeError("'to' must be between 1024 and 65535"), { code: 'ERR_OUT_OF_RANGE' }));
    expect(() => portNumbers(3000, 2000)).toThrow(Object.assign(new RangeError('`to` must be greater than or equal to `from`'), { code: 'ERR_OUT_OF_RANGE' }));
  });

  it('gives the same messages as get-port 7.2 itself', async () => {
    const original = await import('get-port');
    const cases: [number, number][] = [
      [1.5, 2000],
      [80, 70000],
      [2000, 70000],
      [3000, 2000],
    ];
    for (const [from, to] of cases) {
      const theirs = (() => {
        try {
          original.portNumbers(from, to);
        } catch (error) {
          return `${(error as Error).name}: ${(error as Error).message}`;
        }
      })();
      expect(() => portNumbers(from, to)).toThrow(theirs!.replace(/^\w+: /, ''));
    }
    for (const exclude of [5, ['80'], [NaN]]) {
      const theirs = await original.default({ exclude: exclude as number[] }).catch((error: Error) => error.message);
      const ours = await getPort({ exclude: exclude as number[] }).catch((error: Error) => error.message);
      expect(ours).toBe(theirs);
    }
  });

  it('agrees with get-port 7.2 on the same busy and free ports', async () => {
    const original = await import('get-port');
    const [from] = freeRange(4);
    await servers.listen(from, '127.0.0.1');
    await servers.listen(from + 1, '::');
    const port = [from, from + 1, from + 2];
    const theirs = await original.default({ port });
    expect(await getPort({ port })).toBe(theirs);
    expect(theirs).toBe(from + 2);
  });

  it('closes every socket it opens', async () => {
    const [from] = freeRange(2);
    await servers.listen(from);
    await getPort();
    const before = openFds();
    for (let i = 0; i < 200; i++) await getPort({ port: [from, from + 1] });
    await getPort({ host: '192.0.2.1' }).catch(() => undefined);
    expect(openFds()).toBe(before);
    expect(pythonBind([from + 1])).toEqual(['ok']);
  });
});

describe.runIf(process.getuid?.() === 0)(`get-port as an unprivileged user (${backendName})`, () => {
  it('skips privileged ports it may not listen on (EACCES)', async () => {
    const dir = userProject();
    const { chmodSync, rmSync } = await import('node:fs');
    chmodSync(dir, 0o755);
    const [free] = freeRange(1);
    onTestFinished(() => rmSync(dir, { recursive: true, force: true }));
    const result = runProgram(
      dir,
      'privileged.cjs',
      `const net = require('node:net');
const getPort = require('portalloc').default;
const server = net.createServer().once('error', async (error) => {
  const got = await getPort({ port: [80, 443, ${free}] });
  console.log(JSON.stringify({ uid: process.getuid(), listen80: error.code, got }));
});
server.listen(80);`,
      { uid: 65534, gid: 65534 },
    ) as { uid: number; listen80: string; got: number };
    expect(result).toEqual({ uid: 65534, listen80: 'EACCES', got: free });
  });
});

describe('ports checked here are not left busy', () => {
  it('a checked port is immediately listenable by a Node server', async () => {
    const port = await getPort();
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(port, resolve));
    await new Promise((resolve) => server.close(resolve));
  });
});
