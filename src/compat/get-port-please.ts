/**
 * get-port-please 3.x, at `portalloc/get-port-please`: the preferred port,
 * then `ports`, then `portRange`, then (when no port was asked for)
 * 3000-3100, then a random port, with get-port-please's options, results,
 * log lines and GetPortError messages; one native check per port (try-port.ts)
 * instead of one Node server per interface. Unlike get-port-please, calls
 * running at the same time in one process never get the same port; a call
 * that begins after another delivered may get that port again, as there.
 * See docs/compat.md.
 */
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { badPortError, begin, checkListen, drop, fallback, FIRST, inTryOrder, isPortNumber, lend, Refusals, resolveListenHost, tryPort, tryRandomPort, type Tried, type TryMode } from './try-port';

/** get-port-please's options (every one optional in {@link GetPortInput}). */
export interface GetPortOptions {
  /** A name for the caller (unused by the search, as in get-port-please). */
  name: string;
  /** A random port (the default when `port` is 0); `false` forbids the random fallback. */
  random: boolean;
  /** The preferred port (default `process.env.PORT`). */
  port: number;
  /** Ports to try after `port`, in order. */
  ports: number[];
  /** An inclusive range to try after `ports`. */
  portRange: [fromInclusive: number, toInclusive: number];
  /** Tried when nothing else was found (default 3000-3100 when no port was asked for, else none). */
  alternativePortRange: [fromInclusive: number, toInclusive: number];
  /** The host the port must be free on (default `process.env.HOST`, else every local address). */
  host: string;
  /** Log each decision to the console, prefixed `[get-port]`. */
  verbose?: boolean;
  /** An invalid host falls back to 0.0.0.0 instead of 127.0.0.1. */
  public?: boolean;
}

/** How {@link waitForPort} polls. */
export interface WaitForPortOptions {
  host?: HostAddress;
  /** Milliseconds between checks (500). */
  delay?: number;
  /** Checks before giving up (4). */
  retries?: number;
}

/** {@link getPort}'s argument: options, or a port (a number or a numeric string). */
export type GetPortInput = Partial<GetPortOptions> | number | string;
export type HostAddress = undefined | string;
export type PortNumber = number;

/** {@link getSocketAddress}'s options. */
export interface GetSocketOptions {
  /** A readable prefix of the socket's name. */
  name: string;
  /** Put the process id in the name. */
  pid?: boolean;
  /** Put a random number in the name. */
  random?: boolean;
}

/**
 * No port was found (`code: 'ERR_PORTS_EXHAUSTED'`); when binds were refused
 * (privileged ports, a sandbox), `cause` is the ERR_PORTS_DENIED error saying so.
 * @example
 * import { getPort } from 'portalloc/get-port-please';
 * await getPort({ port: 3000, random: false }).catch((error) => error.name); //=> 'GetPortError' when 3000-3100 are taken
 */
export class GetPortError extends Error {
  override name = 'GetPortError';
  readonly code = 'ERR_PORTS_EXHAUSTED';
  // (ES2022's ErrorOptions, spelled out: the declarations must not need ES2022's lib.)
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
  }
}

// The ports browsers refuse to fetch from (Chromium's restricted ports), as
// get-port-please 3.2 lists them; it never returns one.
const UNSAFE_PORTS = new Set([
  1, 7, 9, 11, 13, 15, 17, 19, 20, 21, 22, 23, 25, 37, 42, 43, 53, 69, 77, 79, 87, 95, 101, 102, 103, 104, 109, 110, 111, 113, 115, 117, 119, 123,
  135, 137, 139, 143, 161, 179, 389, 427, 465, 512, 513, 514, 515, 526, 530, 531, 532, 540, 548, 554, 556, 563, 587, 601, 636, 989, 990, 993, 995,
  1719, 1720, 1723, 2049, 3659, 4045, 5060, 5061, 6000, 6566, 6665, 6666, 6667, 6668, 6669, 6697, 10080,
]);

/**
 * Whether browsers refuse `port` (Chromium's restricted ports: 6000, 6667, ...).
 * @example
 * import { isUnsafePort } from 'portalloc/get-port-please';
 * isUnsafePort(6667); //=> true
 */
export function isUnsafePort(port: number): boolean {
  return UNSAFE_PORTS.has(port);
}

/**
 * `!isUnsafePort(port)`.
 * @example
 * import { isSafePort } from 'portalloc/get-port-please';
 * isSafePort(3000); //=> true
 */
export function isSafePort(port: number): boolean {
  return !isUnsafePort(port);
}

function log(verbose: boolean | undefined, message: string): void {
  if (verbose) console.log(`[get-port] ${message}`);
}

function onHost(host: string | undefined): string {
  return host ? `on host ${JSON.stringify(host)}` : 'on any host';
}

/** get-port-please's test of a host name: 1-63 letters, digits, '.', ':' or '-', not starting or ending with '-'. */
function plausibleHost(host: string): boolean {
  return host.length <= 63 && /^[A-Za-z\d.:-]+$/.test(host) && !host.startsWith('-') && !host.endsWith('-');
}

function validHost(host: string | undefined, isPublic: boolean | undefined, verbose: boolean | undefined): string | undefined {
  if (!host || plausibleHost(host)) return host;
  const fallback = isPublic ? '0.0.0.0' : '127.0.0.1';
  log(verbose, `Invalid hostname: ${JSON.stringify(host)}. Using ${JSON.stringify(fallback)} as fallback.`);
  return fallback;
}

function range(from: number, to: number): number[] {
  const ports: number[] = [];
  for (let port = from; port <= to; port++) ports.push(port);
  return ports;
}

/** One call's search: where it looks (a host name resolved once, as Node's listen does), what it was refused. */
class Search {
  /** `since`: when the call began (begin()): its fallback searches keep it, so they never take a port handed out meanwhile. */
  readonly refusals = new Refusals();
  #address: Promise<string | undefined> | undefined;

  /** `mode`: how its tries claim and take ports (try-port.ts, TryMode). */
  constructor(
    readonly host: string | undefined,
    readonly mode: TryMode = FIRST,
    readonly since = begin(),
  ) {}

  /** The IP literal to check ('' for every local address); undefined when the name does not resolve. */
  address(): Promise<string | undefined> {
    return (this.#address ??= this.host ? resolveListenHost(this.host).catch(() => undefined) : Promise.resolve(''));
  }

  /** `port` tried for this call (try-port.ts): the caller's until lent or dropped; undefined when it is not free there. */
  async try(port: unknown): Promise<Tried | undefined> {
    const number = typeof port === 'string' && port.trim() !== '' ? Number(port) : port;
    if (!isPortNumber(number)) throw badPortError(port); // Node's listen() throws it
    const address = await this.address();
    if (address === undefined) return undefined;
    const tried = number === 0 ? await tryRandomPort(address, this.since, this.refusals, false, this.mode) : await tryPort(address, number, this.since, false, this.mode);
    if (tried === undefined) return undefined;
    if (tried.errno !== 0) {
      this.refusals.note(tried.errno, tried.port, tried.syscall);
      return undefined;
    }
    if (isSafePort(tried.port)) return tried;
    drop(tried);
    return undefined;
  }

  /** The first of `ports` free here, lent; undefined when none is. */
  async first(ports: readonly unknown[]): Promise<number | undefined> {
    const numbers = ports.every((port) => typeof port === 'number') ? inTryOrder(ports as number[], this.mode) : ports;
    for (const port of numbers) {
      const tried = await this.try(port);
      if (tried) {
        lend(tried);
        return tried.port;
      }
    }
    return undefined;
  }

  /** The "no port" error, with the refusals as its cause. */
  error(message: string): GetPortError {
    return this.refusals.explain(new GetPortError(message), 1, onHost(this.host));
  }
}

/**
 * Resolves with a port a server can listen on: `port` (default
 * `process.env.PORT`), else the first free of `ports`, then of `portRange`,
 * then of `alternativePortRange` (3000-3100 when no port was asked for), then a
 * random port unless `random: false`; with no port at all (or `port: 0`), a
 * random one. Unsafe ports are skipped. Rejects with {@link GetPortError}.
 *
 * @example
 * import { getPort } from 'portalloc/get-port-please';
 * const port = await getPort({ port: 3000, portRange: [3001, 3010] });
 * const any = await getPort({ random: true });
 */
export async function getPort(input: GetPortInput = {}): Promise<PortNumber> {
  const asked = typeof input === 'number' || typeof input === 'string' ? { port: Number.parseInt(String(input)) || 0 } : input;
  const port = Number(asked.port ?? process.env.PORT);
  // (`port: '0'` asks for no port, as `port: 0` does: get-port-please itself takes the string for a port and tries 3000.)
  const askedForPort = Boolean(Number(asked.port) || asked.ports?.length || asked.portRange?.length);
  const options = {
    name: 'default',
    random: port === 0,
    ports: [] as number[],
    portRange: [] as unknown as [number, number],
    alternativePortRange: (askedForPort ? [] : [3000, 3100]) as [number, number],
    verbose: false,
    ...asked,
    port,
    host: validHost(asked.host ?? process.env.HOST, asked.public, asked.verbose),
  };
  if (options.random && !askedForPort) return getRandomPort(options.host);

  const candidates = [options.port, ...options.ports, ...range(...options.portRange)].filter((candidate) => {
    if (!candidate) return false;
    if (isUnsafePort(candidate)) {
      log(options.verbose, `Ignoring unsafe port: ${candidate}`);
      return false;
    }
    return true;
  });
  if (candidates.length === 0) candidates.push(3000);

  const look = async (search: Search) => {
    let found = await search.first(candidates);
    if (!found && options.alternativePortRange.length > 0) {
      found = await search.first(range(...options.alternativePortRange));
      const alternative = found ? ` Using alternative port ${found}.` : '';
      if (search.mode === FIRST || found) log(options.verbose, `Unable to find an available port (tried ${candidates.join('-')} ${onHost(options.host)}).${alternative}`);
    }
    if (!found && asked.random !== false) {
      found = await search.first([0]);
      if (found) log(options.verbose, `Using random port ${found}`);
    }
    return found;
  };
  // Nothing found: again in the search's fallback modes (try-port.ts), as get-port-please would find
  // free the ports this process handed out or other processes claim.
  let search = new Search(options.host);
  let found = await look(search);
  for (let mode = fallback(search.mode, search.refusals); !found && mode; mode = fallback(search.mode, search.refusals)) {
    found = await look((search = new Search(options.host, mode, search.since)));
  }
  // (get-port-please's random fallback fails with getRandomPort's own error.)
  if (!found && asked.random !== false) throw search.error(`Unable to find a random port ${onHost(options.host)}`);
  if (!found) {
    const tried = [options.port, options.portRange.join('-'), options.alternativePortRange.join('-')].filter(Boolean).join(', ');
    throw search.error(`Unable to find an available port ${onHost(options.host)} (tried ${tried})`);
  }
  return found;
}

/**
 * Resolves with a random free port (on `host`, or on every local address).
 * Rejects with {@link GetPortError}.
 *
 * @example
 * import { getRandomPort } from 'portalloc/get-port-please';
 * const port = await getRandomPort();
 */
export async function getRandomPort(host?: HostAddress): Promise<number> {
  let search = new Search(host);
  let port = await search.first([0]);
  for (let mode = fallback(search.mode, search.refusals); port === undefined && mode; mode = fallback(search.mode, search.refusals)) {
    port = await (search = new Search(host, mode, search.since)).first([0]);
  }
  if (port === undefined) throw search.error(`Unable to find a random port ${onHost(host)}`);
  return port;
}

/**
 * Resolves once `port` is in use (a server could no longer listen on it at
 * `host`), checking `retries` times (4), `delay` ms apart (500); then rejects
 * with {@link GetPortError}.
 *
 * @example
 * import { waitForPort } from 'portalloc/get-port-please';
 * spawn('node', ['server.js']);
 * await waitForPort(3000, { retries: 20, delay: 250 });
 */
export async function waitForPort(port: PortNumber, options: WaitForPortOptions = {}): Promise<void> {
  const delay = options.delay || 500;
  const retries = options.retries || 4;
  for (let left = retries; left > 0; left--) {
    if (!(await listenable(port, options.host))) return;
    await new Promise((resolve) => setTimeout(resolve, delay));
  }
  throw new GetPortError(`Timeout waiting for port ${port} after ${retries} retries with ${delay}ms interval.`);
}

/** Whether a Node server could listen on `port` at `host` now (an unsafe port never counts), without taking it. */
async function listenable(port: PortNumber, host: HostAddress): Promise<boolean> {
  if (!isPortNumber(port)) throw badPortError(port);
  if (isUnsafePort(port)) return false;
  const address = host ? await resolveListenHost(host).catch(() => undefined) : '';
  if (address === undefined) return false;
  return (await checkListen(address, port)).errno === 0;
}

/**
 * Resolves with `port` when a server could listen on it on every host given
 * (default `process.env.HOST`, else every local address), else `false`;
 * `port` 0 resolves with a random free port. An unsafe port is `false`.
 *
 * @example
 * import { checkPort } from 'portalloc/get-port-please';
 * if ((await checkPort(3000)) === false) console.log('3000 is taken');
 * await checkPort(8080, ['127.0.0.1', '::1']);
 */
export async function checkPort(port: PortNumber, host: HostAddress | HostAddress[] = process.env.HOST, verbose?: boolean): Promise<PortNumber | false> {
  const hosts = Array.isArray(host) ? host : [host];
  if (hosts.length === 0) return port;
  const [first, ...others] = hosts;
  if (port !== 0 && isUnsafePort(port)) return false;
  const search = new Search(first);
  const tried = await search.try(port);
  const privileged = (on: HostAddress) => port !== 0 && port < 1024 && log(verbose, `Unable to listen to the privileged port ${port} ${onHost(on)}`);
  if (!tried) {
    privileged(first);
    return false;
  }
  for (const other of others) {
    let free: boolean;
    try {
      free = await listenable(tried.port, other);
    } catch (error) {
      drop(tried);
      throw error;
    }
    if (!free) {
      drop(tried);
      privileged(other);
      return false;
    }
  }
  lend(tried);
  return tried.port;
}

/**
 * A socket address for a server to listen on: `<name>[-<pid>][-<random>].sock`
 * in Linux's abstract namespace (Node 20+), as a Windows pipe, or in the temp
 * directory elsewhere.
 *
 * @example
 * import { getSocketAddress } from 'portalloc/get-port-please';
 * server.listen(getSocketAddress({ name: 'my-app', pid: true }));
 */
export function getSocketAddress(options: GetSocketOptions): string {
  const parts = [options.name, options.pid ? process.pid : undefined, options.random ? Math.round(Math.random() * 10_000) : undefined];
  const file = `${parts.filter(Boolean).join('-')}.sock`;
  if (process.platform === 'win32') return path.join('\\\\.\\pipe', file);
  if (process.platform === 'linux' && Number(process.versions.node.split('.')[0]) >= 20) return `\0${file}`;
  return path.join(os.tmpdir(), file);
}

let socketSupport: boolean | undefined;

/**
 * Whether a server can listen on a {@link getSocketAddress} address here
 * (tried once, then remembered).
 *
 * @example
 * import { isSocketSupported, getSocketAddress } from 'portalloc/get-port-please';
 * if (await isSocketSupported()) server.listen(getSocketAddress({ name: 'app' }));
 */
export async function isSocketSupported(): Promise<boolean> {
  if (socketSupport !== undefined) return socketSupport;
  if ((process.versions as Record<string, string | undefined>).webcontainer) return false; // StackBlitz: listening on sockets misbehaves
  const address = getSocketAddress({ name: 'get-port', random: true });
  const server = net.createServer();
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(address, resolve);
    });
    socketSupport = true;
  } catch {
    socketSupport = false;
  } finally {
    if (server.listening) {
      server.close();
      await cleanSocket(address);
    }
  }
  return socketSupport;
}

/**
 * Removes a socket file left behind (abstract sockets and Windows pipes have none).
 *
 * @example
 * import { cleanSocket } from 'portalloc/get-port-please';
 * await cleanSocket('/tmp/app.sock');
 */
export async function cleanSocket(socketPath: string): Promise<void> {
  if (!socketPath || socketPath.startsWith('\0') || socketPath.startsWith('\\\\.\\pipe')) return;
  await fs.promises.rm(socketPath, { force: true, recursive: true }).catch((error: unknown) => console.error(error));
}
