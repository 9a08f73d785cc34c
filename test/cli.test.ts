import net from 'node:net';
import { describe, expect, it } from 'vitest';
import { reserve } from '../dist/index.js';
import { backendName, close, freeRange, listen, runCli, tryListen } from './helpers';

describe(`portalloc CLI (${backendName})`, () => {
  it('prints five distinct free ports, one a line', async () => {
    const { status, stdout, stderr } = runCli(['5']);
    expect(status).toBe(0);
    expect(stderr).toBe('');
    const ports = stdout.trim().split('\n').map(Number);
    expect(ports).toHaveLength(5);
    expect(new Set(ports).size).toBe(5);
    for (const port of ports) expect(await tryListen(port)).toBe('ok');
  });

  it('prints one port by default and JSON with --json', () => {
    expect(runCli([]).stdout).toMatch(/^\d+\n$/);
    const ports = JSON.parse(runCli(['3', '--json', '--protocol', 'both']).stdout) as number[];
    expect(ports).toHaveLength(3);
  });

  it('--first --range gives the first free port of the range', async () => {
    const server = await listen(0);
    const busy = (server.address() as net.AddressInfo).port;
    try {
      const { status, stdout } = runCli(['--first', '--range', `${busy}-${busy + 50}`]);
      expect(status).toBe(0);
      const port = Number(stdout.trim());
      expect(port).toBeGreaterThan(busy);
      expect(port).toBeLessThanOrEqual(busy + 50);
    } finally {
      await close(server);
    }
  });

  it('--exclude and --range are honoured', () => {
    const [from, to] = freeRange(5);
    const { stdout } = runCli(['3', '--range', `${from}-${to}`, '--exclude', `${from},${from + 1}`, '--first']);
    expect(stdout.trim().split('\n').map(Number)).toEqual([from + 2, from + 3, from + 4]);
  });

  it('check exits 0 for free ports and 1 for a busy one, naming its process', async () => {
    const free = Number(runCli([]).stdout.trim());
    expect(runCli(['check', String(free)])).toMatchObject({ status: 0, stdout: `${free} free\n` });
    const server = await listen(0);
    const busy = (server.address() as net.AddressInfo).port;
    try {
      const { status, stdout } = runCli(['check', String(free), String(busy)]);
      expect(status).toBe(1);
      expect(stdout).toContain(`${free} free`);
      expect(stdout).toMatch(new RegExp(`${busy} busy: tcp LISTEN pid ${process.pid} `));
      const json = JSON.parse(runCli(['check', String(busy), '--json']).stdout);
      expect(json[busy]).toMatchObject({ free: false, holders: [expect.objectContaining({ pid: process.pid, state: 'LISTEN' })] });
    } finally {
      await close(server);
    }
  });

  it('check names the process of a reservation, a bound socket that /proc/net does not list', () => {
    const hold = reserve(1);
    try {
      const { status, stdout } = runCli(['check', String(hold.ports[0])]);
      expect(status).toBe(1);
      // The JS backend holds with a listening server; the native one with a bound socket.
      const state = backendName === 'native' ? 'BOUND' : 'LISTEN';
      expect(stdout).toMatch(new RegExp(`^${hold.ports[0]} busy: tcp ${state} pid ${process.pid} `));
    } finally {
      hold.release();
    }
  });

  it('--help and --version', () => {
    const help = runCli(['--help']);
    expect(help.status).toBe(0);
    expect(help.stdout).toContain('portalloc check PORT...');
    expect(runCli(['--version']).stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
  });

  it.each([
    [['abc'], /count must be a whole number/],
    [['0'], /count must be a whole number/],
    [['1', '2'], /at most one count/],
    [['--range', '9000-8000'], /--range start must not be above its end/],
    [['--range', 'lots'], /--range must look like 8000-9000/],
    [['--protocol', 'sctp'], /--protocol must be tcp, udp or both; got 'sctp'/],
    [['--exclude', '80,x'], /--exclude must be a port number/],
    [['--bogus'], /Unknown option '--bogus'/],
    [['check'], /check needs at least one port/],
    [['check', '70000'], /check must be a port number from 1 to 65535; got '70000'/],
    [['--host'], /--host/],
    [['--exclude', '1,,2'], /--exclude must be ports separated by commas, as 8080,8081; got '1,,2'/],
    [['check', '3000', '--first'], /check goes with --host, --protocol and --json only; got --first/],
    [['check', '3000', '--range', '1-2'], /check goes with --host, --protocol and --json only; got --range/],
    [['check', '3000', '--timewait'], /got --timewait/],
    [['check', '3000', '--exclude', '3'], /got --exclude/],
    [['check', '3000', '--name', 'x'], /got --name/],
    [['--name', 'web', '--project', __filename], /options.project must be a directory; got '.*', a file/],
  ])('usage error %j exits 2 with one line and no stack', (args, message) => {
    const { status, stdout, stderr } = runCli(args);
    expect(status).toBe(2);
    expect(stdout).toBe('');
    expect(stderr).toMatch(message);
    expect(stderr.trim().split('\n')).toHaveLength(1);
    expect(stderr).not.toMatch(/\n\s+at /);
  });

  it('a system failure exits 1 with one line', () => {
    const { status, stderr } = runCli(['--host', '192.0.2.1']);
    expect(status).toBe(1);
    expect(stderr.trim()).toMatch(/^portalloc: (bind|listen) EADDRNOTAVAIL 192\.0\.2\.1/);
    const exhausted = runCli(['2', '--range', '1-1']);
    expect(exhausted.status).toBe(1);
    expect(exhausted.stderr).toMatch(/asked for 2 free ports in range 1-1, found [01]/);
  });
});
