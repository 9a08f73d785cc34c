/**
 * Passing reserved sockets to a child process, with no gap at all: the child
 * gets the bound socket itself at fds 3.., announced by systemd's
 * socket-activation variables (LISTEN_FDS, LISTEN_PID, LISTEN_FDNAMES), and
 * turns it into a listening net.Server.
 */
import { spawn, type ChildProcess, type SpawnOptions } from 'node:child_process';
// (A namespace import: the declarations name net's types, and must not need esModuleInterop.)
import * as net from 'node:net';
import fs from 'node:fs';
import { backend, isReservation, type Reservation } from './allocate';
import { typeError, unsupportedError, type PortallocError } from './errors';

/** The first fd systemd's convention passes sockets at. */
export const LISTEN_FDS_START = 3;

/** How {@link spawnWithSockets} runs the child. */
export interface SpawnWithSocketsOptions extends Omit<SpawnOptions, 'stdio' | 'shell'> {
  /** The child's stdin, stdout and stderr: `'inherit'` (default), `'pipe'`, `'ignore'`, or one per slot. */
  readonly stdio?: 'inherit' | 'pipe' | 'ignore' | readonly ['inherit' | 'pipe' | 'ignore' | number, 'inherit' | 'pipe' | 'ignore' | number, 'inherit' | 'pipe' | 'ignore' | number];
  /** LISTEN_FDNAMES, one name per socket (no ':'). Default: `port-<port>` for each. */
  readonly names?: readonly string[];
  /**
   * Keep this process's copy of the sockets (default `false`: the reservation
   * is released once the child has its copies, so the socket lives exactly as
   * long as the child keeps it).
   */
  readonly keep?: boolean;
}

/**
 * Spawns `command` with the reservation's sockets at fds 3, 4, ... and
 * `LISTEN_FDS`, `LISTEN_PID` (the child's own pid, set by a `/bin/sh` wrapper
 * that then execs the command) and `LISTEN_FDNAMES` in its environment, as
 * systemd's socket activation does. The child listens on the very socket this
 * process bound: no other process can take the port in between. Native
 * backend only (the JS backend's holds are node:net servers in a worker).
 * As the command runs through `/bin/sh`, a missing command shows as exit
 * status 127 rather than an 'error' event.
 *
 * @example
 * import { reserve, spawnWithSockets } from 'portalloc';
 * const hold = reserve(2);
 * const child = spawnWithSockets(hold, process.execPath, ['server.js']);
 * // server.js: const [http, admin] = await listenInherited();
 */
export function spawnWithSockets(reservation: Reservation, command: string, args: readonly string[] = [], options: SpawnWithSocketsOptions = {}): ChildProcess {
  if (backend === 'js') {
    throw unsupportedError('spawnWithSockets needs the native backend: the JS backend holds ports with node:net servers that are already listening, not bound sockets a child can take over.');
  }
  if (!isReservation(reservation)) throw typeError('reservation', 'a Reservation from reserve()', reservation);
  if (reservation.released) {
    const error = new Error('portalloc: spawnWithSockets() on a released reservation: its sockets are closed') as PortallocError;
    error.code = 'ERR_RESERVATION_RELEASED';
    throw error;
  }
  if (typeof command !== 'string' || command === '') throw typeError('command', 'a non-empty string', command);
  if (!Array.isArray(args) || args.some((arg) => typeof arg !== 'string')) throw typeError('args', 'an array of strings', args);
  const { names = reservation.ports.map((port) => `port-${port}`), keep = false, stdio = 'inherit', env = process.env, ...rest } = options;
  if (!Array.isArray(names) || names.length !== reservation.fds.length || names.some((name) => typeof name !== 'string' || name.includes(':') || name === '')) {
    throw typeError('options.names', `${reservation.fds.length} non-empty strings without ':'`, names);
  }
  const standard = typeof stdio === 'string' ? [stdio, stdio, stdio] : [...stdio];
  const childEnv: NodeJS.ProcessEnv = { ...env, LISTEN_FDS: String(reservation.fds.length), LISTEN_FDNAMES: names.join(':') };
  delete childEnv.LISTEN_PID;
  // LISTEN_PID must be the child's pid, known only after fork: a shell sets it and execs.
  const child = spawn('/bin/sh', ['-c', 'LISTEN_PID=$$; export LISTEN_PID; exec "$0" "$@"', command, ...args], {
    ...rest,
    env: childEnv,
    stdio: [...standard, ...reservation.fds] as SpawnOptions['stdio'],
  });
  // The child holds its own copies now (fork happened inside spawn()).
  if (!keep) reservation.release();
  return child;
}

/** A socket handed to this process by systemd's convention. */
export interface InheritedSocket {
  readonly fd: number;
  /** Its LISTEN_FDNAMES entry, or `'unknown'` as systemd says when none is given. */
  readonly name: string;
}

/** At most this many inherited sockets (sd_listen_fds has no cap; a bad LISTEN_FDS must not hang). */
export const MAX_INHERITED_SOCKETS = 4096;

function inheritedError(message: string): PortallocError {
  const error = new Error(`portalloc: ${message}`) as PortallocError;
  error.code = 'ERR_INHERITED_SOCKETS';
  return error;
}

/**
 * The sockets this process was handed at fds 3.. (LISTEN_FDS), as
 * sd_listen_fds(3) reads them: none unless LISTEN_PID is this process's pid.
 * Unsets the variables, as sd_listen_fds(1) does, so children of this process
 * do not take them for theirs. Throws `ERR_INHERITED_SOCKETS` when LISTEN_FDS
 * is above MAX_INHERITED_SOCKETS (4,096) or an fd it names is not an open socket.
 *
 * @example
 * import { inheritedSockets } from 'portalloc';
 * for (const { fd, name } of inheritedSockets()) console.log(fd, name);
 */
export function inheritedSockets({ unsetEnvironment = true }: { readonly unsetEnvironment?: boolean } = {}): InheritedSocket[] {
  const { LISTEN_FDS: count, LISTEN_PID: pid, LISTEN_FDNAMES: names } = process.env;
  if (unsetEnvironment) {
    delete process.env.LISTEN_FDS;
    delete process.env.LISTEN_PID;
    delete process.env.LISTEN_FDNAMES;
  }
  if (count === undefined || !/^\d+$/.test(count)) return [];
  if (pid !== String(process.pid)) return [];
  const n = Number(count);
  if (n > MAX_INHERITED_SOCKETS) throw inheritedError(`LISTEN_FDS=${count} is above ${MAX_INHERITED_SOCKETS}`);
  const nameList = names === undefined ? [] : names.split(':');
  return Array.from({ length: n }, (_, i) => {
    const fd = LISTEN_FDS_START + i;
    let socket = false;
    try {
      socket = fs.fstatSync(fd).isSocket();
    } catch {
      // not open
    }
    if (!socket) throw inheritedError(`LISTEN_FDS=${count}, but fd ${fd} is not an open socket`);
    return { fd, name: nameList[i] || 'unknown' };
  });
}

/**
 * Turns the inherited sockets into listening `net.Server`s, in fd order, each
 * with `connectionListener` when given. Resolves once every one listens.
 *
 * @example
 * import { listenInherited } from 'portalloc';
 * const [server] = await listenInherited((socket) => socket.end('hello\n'));
 */
export async function listenInherited(connectionListener?: (socket: net.Socket) => void, options: net.ServerOpts & { readonly backlog?: number } = {}): Promise<net.Server[]> {
  const { backlog, ...serverOptions } = options;
  const servers: net.Server[] = [];
  try {
    for (const { fd } of inheritedSockets()) {
      const server = net.createServer(serverOptions, connectionListener);
      servers.push(server);
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen({ fd, backlog }, () => {
          server.off('error', reject);
          resolve();
        });
      });
    }
  } catch (error) {
    for (const server of servers) server.close();
    throw error;
  }
  return servers;
}
