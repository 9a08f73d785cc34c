/**
 * Bookkeeping for tests: open fds, real servers and binds that prove what a
 * user would see. Non-reuse binds use python3, whose sockets do not set
 * SO_REUSEADDR unless told to (Node's TCP sockets always set it).
 */
import { spawnSync } from 'node:child_process';
import dgram from 'node:dgram';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';

export const root = path.join(__dirname, '..');
export const cli = path.join(root, 'dist', 'cli.js');
export const backendName = process.env.PORTALLOC_BACKEND === 'js' ? 'js' : 'native';

/**
 * Closes the sockets with which synchronous allocate calls check ports
 * (native/probe.h), as the next turn of the event loop would: fd counts
 * before and after a call then compare what the call left open.
 */
export function closeProbe(): void {
  if (process.env.PORTALLOC_BACKEND === 'js') return;
  // eslint-disable-next-line @typescript-eslint/no-require-imports
  (require('node-gyp-build')(root) as { closeProbe(): void }).closeProbe();
}

/** The process's open fds (the probe closed first), claim sockets counted apart (fixtures/fds.cjs). */
export function openFds(): number {
  closeProbe();
  return fdsNow.count();
}

/** How many claim sockets (native/claims.h) this process has open. */
export function claimFds(): number {
  return fdsNow.claimFds();
}

// eslint-disable-next-line @typescript-eslint/no-require-imports
const fdsNow = require('./fixtures/fds.cjs') as { count(): number; claimFds(): number; openFds(): string[] };

/** Whether an fd is open in this process. */
export function isOpen(fd: number): boolean {
  return fs.existsSync(`/proc/self/fd/${fd}`);
}

/** A Node server listening on port (Node sets SO_REUSEADDR), or the error code it got. */
export function listen(port: number, host?: string): Promise<net.Server> {
  return new Promise((resolve, reject) => {
    const server = net.createServer((socket) => socket.end('hello\n'));
    server.once('error', reject);
    server.listen(host === undefined ? { port } : { port, host }, () => resolve(server));
  });
}

export function close(server: net.Server | dgram.Socket): Promise<void> {
  return new Promise((resolve) => {
    if (server instanceof net.Server) server.close(() => resolve());
    else server.close(() => resolve());
  });
}

/** 'ok' when a Node server could listen on port, else the error code. */
export async function tryListen(port: number, host?: string): Promise<string> {
  try {
    await close(await listen(port, host));
    return 'ok';
  } catch (error) {
    return (error as NodeJS.ErrnoException).code ?? String(error);
  }
}

/** 'ok' when a UDP socket (no SO_REUSEADDR) could bind port on every address, else the code. */
export function tryUdp(port: number): Promise<string> {
  return new Promise((resolve) => {
    const socket = dgram.createSocket({ type: 'udp6', ipv6Only: false });
    socket.once('error', (error) => {
      socket.close();
      resolve((error as NodeJS.ErrnoException).code ?? String(error));
    });
    socket.bind(port, '::', () => socket.close(() => resolve('ok')));
  });
}

/**
 * Binds each port the way a program that does not set SO_REUSEADDR does
 * (dual-stack [::], python3), optionally with SO_REUSEADDR and listen().
 * Returns 'ok' or the errno name per port.
 */
export function pythonBind(ports: readonly number[], { reuse = false, listen = false, type = 'tcp' } = {}): string[] {
  const script = `
import socket, sys, errno, json
out = []
for port in json.loads(sys.argv[1]):
    s = socket.socket(socket.AF_INET6, socket.SOCK_STREAM if sys.argv[2] == 'tcp' else socket.SOCK_DGRAM)
    s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
    if sys.argv[3] == '1':
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        s.bind(('::', port))
        if sys.argv[4] == '1':
            s.listen(1)
        out.append('ok')
    except OSError as e:
        out.append(errno.errorcode.get(e.errno, str(e.errno)))
    s.close()
print(json.dumps(out))
`;
  const result = spawnSync('python3', ['-c', script, JSON.stringify(ports), type, reuse ? '1' : '0', listen ? '1' : '0'], { encoding: 'utf8' });
  if (result.status !== 0) throw new Error(`python3 failed: ${result.stderr}`);
  return JSON.parse(result.stdout) as string[];
}

/** Runs the CLI; returns status, stdout, stderr. */
export function runCli(args: string[], env: NodeJS.ProcessEnv = {}) {
  const result = spawnSync(process.execPath, [cli, ...args], { encoding: 'utf8', env: { ...process.env, ...env } });
  return { status: result.status, stdout: result.stdout, stderr: result.stderr };
}

/** Runs a script in a new Node process with this backend; returns its parsed JSON stdout. */
export function runNode(code: string, args: string[] = [], nodeArgs: string[] = []): unknown {
  const result = spawnSync(process.execPath, [...nodeArgs, '-e', code, ...args], { encoding: 'utf8', cwd: root, env: process.env });
  if (result.status !== 0) throw new Error(`child failed (${result.status}): ${result.stderr}`);
  return JSON.parse(result.stdout);
}

/**
 * `size` consecutive ports below the ephemeral range that are all free now,
 * at a random place, so suites running at once do not meet in fixed ranges.
 */
export function freeRange(size: number): [number, number] {
  // Free for a non-reuse bind (TCP and UDP, every address), and no portalloc
  // process claims it (native/claims.h: the port's name and its block's), so a
  // child process may be handed it.
  const script = `
import random, socket, sys
size = int(sys.argv[1])
def claimed(name):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    try:
        s.connect(b"\\0portalloc/v2/" + name.encode())
        return True
    except OSError:
        return False
    finally:
        s.close()
def free(port):
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        s = socket.socket(socket.AF_INET6, kind)
        s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        try:
            s.bind(("::", port))
        except OSError:
            return False
        finally:
            s.close()
    return not claimed("port/%d" % port) and not claimed("block/%d" % (port >> 5))
for attempt in range(10000):
    start = random.randrange(20000, 32000)
    if all(free(port) for port in range(start, start + size)):
        print(start)
        break
`;
  const probe = spawnSync('python3', ['-c', script, String(size)], { encoding: 'utf8' });
  const from = Number(probe.stdout.trim());
  if (!Number.isInteger(from) || from < 20000) throw new Error(`no free range found: ${probe.stderr}`);
  return [from, from + size - 1];
}
