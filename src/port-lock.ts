/**
 * The JS backend's port locks: an abstract unix stream socket
 * `\0portalloc/v2/js-lock/<port>`, listened on with node:net. Listening is
 * atomic in the kernel (one socket has the name; a second listen gets
 * EADDRINUSE) and the name vanishes with its socket, so nothing outlives the
 * process.
 *
 * Two holders, one rule (docs/internals.md, "The JS backend's port locks"):
 * - every check of the JS worker (js-worker.ts) locks its port for as long as
 *   it binds it, and skips a port it cannot lock;
 * - a test fixture (test-ports.ts) locks its test's port after `allocate`
 *   returns it, until the test ends.
 * So no JS-backend check, in any process, binds a test's port while the
 * test's server may be starting to listen on it (which would make that
 * listen fail with EADDRINUSE), and a test locks no port a check is binding.
 * Linux only (below).
 */
import net from 'node:net';

/**
 * Abstract unix names exist on Linux alone (libuv refuses them elsewhere with
 * EINVAL): on other systems a lock is given at once and locks nothing, so the
 * JS backend there checks and tests take ports as they did before the locks.
 */
const namesExist = process.platform === 'linux';
const NO_LOCK: PortLock = { unlock() {} };

/** The lock's name (in the network namespace, not the file system). */
export function lockName(port: number): string {
  return `\0portalloc/v2/js-lock/${port}`;
}

/** A port lock. */
export interface PortLock {
  /** Frees the name, at once (libuv closes the socket in the call; only the close event comes later). */
  unlock(): void;
}

/**
 * Locks `port`, or resolves `undefined` when someone else has it locked;
 * rejects on any other failure (EMFILE, say), with the error's code and errno.
 * The lock keeps no event loop alive.
 */
export function lockPort(port: number): Promise<PortLock | undefined> {
  if (!namesExist) return Promise.resolve(NO_LOCK);
  return new Promise((resolve, reject) => {
    // Nobody connects (a test of the name would use connect(); none does): a stray connection is dropped.
    const server = net.createServer((socket) => socket.destroy());
    server.once('error', (error: NodeJS.ErrnoException) => (error.code === 'EADDRINUSE' ? resolve(undefined) : reject(error)));
    server.listen(lockName(port), () => {
      server.unref();
      resolve({ unlock: () => void server.close() });
    });
  });
}
