/**
 * Named ports: the same port for the same name in the same project, every
 * time, while it is free; another project (another checkout) or another name
 * gets another. No daemon and no file: the port is computed from the name and
 * the project, and `portalloc exec --name` owns the name while its command
 * runs by listening on an abstract unix socket named after it
 * (`\0portalloc/v2/name/<key>`), which answers anyone who connects with the
 * port. The name vanishes with the owner's process, as a claim does
 * (docs/internals.md).
 */
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { internalBinding } from './allocate';
import { Claim, TryPass } from './binding';
import { lender } from './compat/try-port';
import { backend } from './backend';
import { config } from './config';
import { exhaustedError, show, systemError, typeError, type PortallocError } from './errors';
import { checkHost, checkKeys, checkRange, ephemeralRange, reservedPorts, resolveHost } from './options';

/** Options of {@link namedPort}. */
export interface NamedPortOptions {
  /**
   * The project the name belongs to: a directory. Default: the nearest
   * directory up with a package.json or a `.git`, or the workspace root of
   * the monorepo it is a package of (projectRoot).
   */
  readonly project?: string;
  /** `[from, to]`, inclusive, where the name's port is chosen. Default: {@link namedRange}. */
  readonly range?: readonly [number, number];
  /** The address the port must be free on. Default: every local address. */
  readonly host?: string;
}

/** Where named ports are chosen by default: 20000-32767, or what of it lies below the kernel's ephemeral range. */
export function namedRange(): [number, number] {
  const [low, high] = ephemeralRange();
  if (low > 21000) return [20000, Math.min(32767, low - 1)];
  if (high < 64535) return [Math.max(high + 1, 33000), 65535];
  return [20000, 32767];
}

const EPERM = 1;
const EACCES = 13;
const EADDRINUSE = 98;

const NAME_OPTIONS = new Set(['project', 'range', 'host']);
const MAX_NAME = 200;

/** A name's checks: a non-empty string of printable characters. */
export function checkName(name: unknown): string {
  if (typeof name !== 'string') throw typeError('name', 'a non-empty string', name);
  if (name === '' || name.length > MAX_NAME || /[\x00-\x1f\x7f]/.test(name)) {
    const error = new TypeError(`portalloc: name must be 1 to ${MAX_NAME} printable characters; got ${show(name)}`) as PortallocError;
    error.code = 'ERR_INVALID_ARG_VALUE';
    throw error;
  }
  return name;
}

/**
 * The project a directory belongs to: the nearest directory up with a
 * package.json or a .git (a checkout's root; a git worktree has a .git file),
 * unless a directory above it, in the same checkout, is a workspace root
 * (a package.json with "workspaces", or a pnpm-workspace.yaml): then that
 * root, so that the packages of one monorepo share their names. `from` itself
 * when none is found.
 */
export function projectRoot(from: string = process.cwd()): string {
  let nearest: string | undefined;
  let workspace: string | undefined;
  for (let dir = path.resolve(from); ; dir = path.dirname(dir)) {
    const hasPackage = fs.existsSync(path.join(dir, 'package.json'));
    const checkout = fs.existsSync(path.join(dir, '.git'));
    if (nearest === undefined && (hasPackage || checkout)) nearest = dir;
    if (isWorkspaceRoot(dir, hasPackage)) workspace = dir;
    if (checkout || path.dirname(dir) === dir) break;
  }
  return workspace ?? nearest ?? path.resolve(from);
}

function isWorkspaceRoot(dir: string, hasPackage: boolean): boolean {
  if (fs.existsSync(path.join(dir, 'pnpm-workspace.yaml'))) return true;
  if (!hasPackage) return false;
  try {
    return JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8')).workspaces !== undefined;
  } catch {
    return false; // unreadable or not JSON: not a workspace root
  }
}

/** A name's identity in a project, checked. */
export interface NameKey {
  readonly name: string;
  readonly project: string;
  /** 32 hex digits: sha256 of project and name. */
  readonly key: string;
  /** The abstract unix socket the owner listens on. */
  readonly socket: string;
  readonly range: [number, number];
  /** '' for every local address, or an IP literal. */
  readonly host: string;
}

export function nameKey(name: unknown, options?: NamedPortOptions): NameKey {
  checkName(name);
  const checked = checkKeys(options, NAME_OPTIONS);
  if (checked.project !== undefined && (typeof checked.project !== 'string' || checked.project === '')) throw typeError('options.project', 'a directory (a non-empty string)', checked.project);
  checkHost(checked.host);
  const range = checkRange(checked.range) ?? namedRange();
  const host = resolveHost(checked.host, internalBinding);
  let project = checked.project === undefined ? projectRoot() : path.resolve(checked.project as string);
  try {
    project = fs.realpathSync(project);
  } catch {
    // A directory that does not exist yet names a project all the same.
  }
  if (fs.statSync(project, { throwIfNoEntry: false })?.isDirectory() === false) {
    const error = new TypeError(`portalloc: options.project must be a directory; got ${show(checked.project)}, a file`) as PortallocError;
    error.code = 'ERR_INVALID_ARG_VALUE';
    throw error;
  }
  const key = createHash('sha256').update(`${project}\0${name as string}`).digest('hex').slice(0, 32);
  return { name: name as string, project, key, socket: `\0portalloc/v2/name/${key}`, range, host };
}

/** The port the owner of a name answers with, or undefined when nobody owns it. */
export function ownerPort(named: NameKey): Promise<number | undefined> {
  return new Promise((resolve) => {
    let answer = '';
    const socket = net.connect(named.socket);
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (answer += chunk));
    // ECONNREFUSED (nobody listens) or anything else: no owner to ask.
    socket.on('error', () => resolve(undefined));
    socket.on('close', () => {
      const port = /^(\d+)\n$/.test(answer) ? Number(answer.trim()) : undefined;
      resolve(port !== undefined && port >= 1 && port <= 65535 ? port : undefined);
    });
  });
}

/** The name's candidates, in order: from the name's own place in the range on, wrapping; never a reserved port (ip_local_reserved_ports). */
export function* candidates(named: NameKey): Generator<number> {
  const [from, to] = named.range;
  const size = to - from + 1;
  const start = parseInt(named.key.slice(0, 8), 16) % size;
  const reserved = reservedPorts();
  for (let i = 0; i < size; i++) {
    const port = from + ((start + i) % size);
    if (!reserved || !(reserved[port >> 3]! & (1 << (port & 7)))) yield port;
  }
}

/**
 * Whether a Node server could listen on `port` now and no portalloc caller,
 * in this process or (native) another, holds or was just given it. Takes
 * nothing: a port in TIME_WAIT from the last run passes, as a Node server
 * could listen there.
 */
export async function usable(named: NameKey, port: number): Promise<boolean> {
  const since = internalBinding.ledgerClock();
  const tried = await internalBinding.tryPort(named.host, port, false, backend === 'native' && config.coordinate ? Claim.Port : Claim.None, since, TryPass.Compat, lender);
  if (tried.errno === EADDRINUSE || tried.errno === EACCES || tried.errno === EPERM) return false;
  if (tried.errno !== 0) throw systemError(tried.errno, tried.syscall, { address: named.host || undefined, port });
  internalBinding.dropPort(port, tried.prior ?? 0n, tried.fresh ?? false);
  return true;
}

/** The first usable candidate of a name; ERR_PORTS_EXHAUSTED when none is. */
export async function firstUsable(named: NameKey, skip: (port: number) => boolean = () => false): Promise<number> {
  for (const port of candidates(named)) {
    if (!skip(port) && (await usable(named, port))) return port;
  }
  throw exhaustedError(1, 0, `for the name ${show(named.name)} in ${named.range[0]}-${named.range[1]}`);
}

/**
 * The port of `name` in this project: while `portalloc exec --name NAME` runs
 * in the project, that command's port; otherwise the name's own port,
 * computed from the name and the project (the same in every process, on
 * every run), or, when that one is busy, the next usable one after it.
 * Another project or another name gets another port. The port is not held:
 * listen on it (or run the server with `portalloc exec --name`).
 *
 * @example
 * import { namedPort } from 'portalloc';
 * const port = await namedPort('web'); // the same on every run of this checkout
 * server.listen(port);
 */
export async function namedPort(name: string, options?: NamedPortOptions): Promise<number> {
  const named = nameKey(name, options);
  return (await ownerPort(named)) ?? firstUsable(named);
}

/** A name taken by a running `portalloc exec --name`. */
function takenError(named: NameKey, port: number | undefined): PortallocError {
  const where = port === undefined ? '' : ` (port ${port})`;
  const error = new Error(`portalloc: the name ${show(named.name)} is owned by another running 'portalloc exec --name'${where} in ${named.project}`) as PortallocError;
  error.code = 'ERR_NAME_TAKEN';
  if (port !== undefined) error.port = port;
  return error;
}

/** An owned name: it answers queries with `port` once `answer(port)` is called, until `close()`. */
export interface NameOwner {
  readonly named: NameKey;
  answer(port: number): void;
  close(): void;
}

/** Takes the name for this process (exec --name); ERR_NAME_TAKEN when another process owns it. */
export function ownName(named: NameKey): Promise<NameOwner> {
  let port: number | undefined;
  const waiting: net.Socket[] = [];
  const server = net.createServer((socket) => {
    socket.on('error', () => {});
    if (port === undefined) waiting.push(socket);
    else socket.end(`${port}\n`);
  });
  server.unref();
  return new Promise((resolve, reject) => {
    server.once('error', async (error: NodeJS.ErrnoException) => {
      reject(error.code === 'EADDRINUSE' ? takenError(named, await ownerPort(named)) : error);
    });
    server.listen(named.socket, () => {
      resolve({
        named,
        answer(chosen) {
          port = chosen;
          for (const socket of waiting.splice(0)) socket.end(`${port}\n`);
        },
        close() {
          for (const socket of waiting.splice(0)) socket.destroy();
          server.close();
        },
      });
    });
  });
}
