/**
 * get-port's lock lifetime: two generations rotated by a 15 s timer, so a
 * returned port stays locked for 15 to 30 s. Its own file: the rotation timer
 * is module state, and fake timers must be on before the first call.
 */
import { spawnSync } from 'node:child_process';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { clearLockedPorts, getPort } from '../dist/index.js';
import { backendName, root } from './helpers';
import { freeRange } from './compat-helpers';

vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] });
afterAll(() => vi.useRealTimers());

describe(`get-port lock lifetime (${backendName})`, () => {
  it('keeps a port locked for at least 15 s and frees it after the second rotation; reserve outlives both', async () => {
    const [from] = freeRange(2);
    expect(await getPort({ port: from })).toBe(from);
    expect(await getPort({ port: from + 1, reserve: true })).toBe(from + 1);
    vi.advanceTimersByTime(14_000);
    expect(await getPort({ port: from })).not.toBe(from);
    vi.advanceTimersByTime(2_000); // first rotation at 15 s: the lock is now in the old generation
    expect(await getPort({ port: from })).not.toBe(from); // the next rotation is due at 30 s
    vi.advanceTimersByTime(15_000);
    expect(await getPort({ port: from })).toBe(from);
    expect(await getPort({ port: from + 1 })).not.toBe(from + 1);
    clearLockedPorts();
    expect(await getPort({ port: from + 1 })).toBe(from + 1);
  });

  it('does not keep the process alive with its timer (unref)', () => {
    const result = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(root + '/dist')}).default().then((port) => console.log(port))`], {
      encoding: 'utf8',
      timeout: 10_000,
      env: process.env,
    });
    expect(result.signal).toBeNull();
    expect(result.status).toBe(0);
    expect(Number(result.stdout)).toBeGreaterThan(0);
  });
});
