/**
 * get-port's own locks, as get-port keeps them: a port it returned is not
 * returned again by get-port for 15-30 s (`reserve`: until
 * `clearLockedPorts()`). Two generations, `young` and `old`, rotated by an
 * unref'd 15 s timer. Only get-port's answers depend on these; keeping other
 * callers off a port is the ledger's work (try-port.ts).
 */

const ROTATE_MS = 15_000;

let young = new Set<number>();
let old = new Set<number>();
const reserved = new Set<number>();
let timer: NodeJS.Timeout | undefined;

/** Whether get-port locked this port. */
export function isLocked(port: number): boolean {
  return young.has(port) || old.has(port) || reserved.has(port);
}

/** Locks a port get-port returns: for 15-30 s, or for the process with `reserve`. */
export function lock(port: number, reserve: boolean): void {
  if (reserve) {
    reserved.add(port);
    return;
  }
  young.add(port);
  rotateLater();
}

/** Every 15 s while anything is locked: the young generation grows old, the old one is forgotten. */
function rotateLater(): void {
  if (timer !== undefined) return;
  timer = setTimeout(() => {
    timer = undefined;
    old = young;
    young = new Set();
    if (old.size > 0) rotateLater();
  }, ROTATE_MS);
  timer.unref();
}

/** Every port locked now. */
export function lockedPorts(): Iterable<number> {
  return [...young, ...old, ...reserved];
}

/** get-port's `clearLockedPorts()`: forgets locked and reserved ports. */
export function clearLocks(): void {
  young.clear();
  old.clear();
  reserved.clear();
}
