/**
 * The ports a test is given (portalloc/vitest, portalloc/playwright, the
 * recipes in docs/test-runners.md): held until the test (or worker) ends so
 * that the test's own server can listen on them and no allocator, in this
 * process or another, is given them meanwhile.
 *
 * Native backend: a shared reservation (a Node server listens while it is
 * held; the ledger, the claims and the kernel keep everyone else off). JS
 * backend, which has no shared holds and no claims: `allocate` (the ledger
 * keeps this process off the port) plus the port's lock (port-lock.ts), which
 * every JS-backend check in every process respects: none binds the port under
 * the test's server. Another process's plain `allocate` may have been given
 * the port just before the test was (docs/test-runners.md).
 */
import { allocate, backend, reserveAsync, type Reservation } from './allocate';
import { checkCount, checkExclude, checkKeys } from './options';
import { exhaustedError } from './errors';
import { lockPort, type PortLock } from './port-lock';
import type { ReserveOptions } from './options';

/** Options of a test's `ports(count, options)`: `reserve`'s, less `shared` (always on). */
export type TestPortOptions = Omit<ReserveOptions, 'shared'>;

/** `reserve`'s options but `shared` (test ports are always shared). */
const TAKE_OPTIONS = new Set(['host', 'protocol', 'range', 'order', 'exclude']);

/** Rounds of "allocate, then lock" before the JS backend gives up (each lock refused means another test process has the port). */
const LOCK_ROUNDS = 64;

/** One test's (or one worker's) ports: `take` as often as needed, `release` once at the end. */
export class TestPorts {
  // TypeScript's `private`, not `#`: a `#` field puts `#private` in the declarations, which
  // do not type-check for a user whose target is older than ES2015 (TypeScript's default).
  private readonly holds: Reservation[] = [];
  private readonly locks: PortLock[] = [];

  /** `count` ports, held until {@link release}. */
  async take(count: number, options?: TestPortOptions): Promise<number[]> {
    checkCount(count);
    checkKeys(options, TAKE_OPTIONS);
    if (backend === 'native') {
      const hold = await reserveAsync(count, { ...options, shared: true });
      this.holds.push(hold);
      return [...hold.ports];
    }
    return this.takeLocked(count, options);
  }

  private async takeLocked(count: number, options: TestPortOptions | undefined): Promise<number[]> {
    const taken: number[] = [];
    // Read once, through the option's checks (coded errors, a bound on endless iterables).
    const excluded = checkExclude(options?.exclude);
    const refused = new Set<number>();
    for (let port = 1; excluded && port < 65536; port++) if (excluded[port >> 3]! & (1 << (port & 7))) refused.add(port);
    for (let round = 0; round < LOCK_ROUNDS && taken.length < count; round++) {
      for (const port of allocate(count - taken.length, { ...options, exclude: refused })) {
        const lock = await lockPort(port);
        if (lock) {
          this.locks.push(lock);
          taken.push(port);
        } else {
          refused.add(port);
        }
      }
    }
    if (taken.length < count) throw exhaustedError(count, taken.length, 'that no other test process has locked');
    return taken;
  }

  /** Lets every port go; idempotent. */
  release(): void {
    for (const hold of this.holds.splice(0)) hold.release();
    for (const lock of this.locks.splice(0)) lock.unlock();
  }
}
