/**
 * The ports this process has handed out through the compatibility APIs, in
 * one module so that get-port, portfinder and detect-port calls (CommonJS and
 * ESM alike: the ESM entry points wrap this one CommonJS copy) never hand the
 * same port to two callers at once.
 *
 * - Locked (get-port): two generations, `young` and `old`, rotated by an
 *   unref'd 15 s timer, so a port stays locked for 15 to 30 s, as in get-port.
 * - Reserved (get-port `reserve: true`): locked until `clearLockedPorts()`.
 * - Claimed: a port a call has picked and not yet delivered. portfinder and
 *   detect-port keep their claim until the caller has had its turn to bind
 *   (released on the next macrotask after delivery), so concurrent calls get
 *   distinct ports while sequential calls still see the same free port.
 */

const ROTATE_MS = 15_000;

let young = new Set<number>();
let old = new Set<number>();
const reserved = new Set<number>();
const claimed = new Map<number, number>();
let timer: NodeJS.Timeout | undefined;

/** Whether another call in this process has this port (locked, reserved or claimed). */
export function isTaken(port: number): boolean {
  return young.has(port) || old.has(port) || reserved.has(port) || claimed.has(port);
}

/** Locks a port get-port returns: for 15-30 s, or for the process with `reserve`. */
export function lock(port: number, reserve: boolean): void {
  if (reserve) {
    reserved.add(port);
    return;
  }
  young.add(port);
  if (timer === undefined) {
    timer = setTimeout(() => {
      timer = undefined;
      old = young;
      young = new Set();
    }, ROTATE_MS);
    timer.unref();
  }
}

/** Every port locked or claimed now. */
export function takenPorts(): Iterable<number> {
  return [...young, ...old, ...reserved, ...claimed.keys()];
}

/** Marks a port as picked by a call that has not delivered it yet; claims nest. */
export function claim(port: number): void {
  claimed.set(port, (claimed.get(port) ?? 0) + 1);
}

/** Drops a claim at once (the port turned out busy, or the call failed). */
export function unclaim(port: number): void {
  const count = claimed.get(port) ?? 0;
  if (count <= 1) claimed.delete(port);
  else claimed.set(port, count - 1);
}

/** Drops a claim once the caller has had its turn: after the microtasks of the delivery. */
export function unclaimLater(port: number): void {
  setImmediate(() => unclaim(port)).unref();
}

/** get-port's `clearLockedPorts()`: forgets locked and reserved ports (not in-flight claims). */
export function clearLocks(): void {
  young.clear();
  old.clear();
  reserved.clear();
}
