/**
 * The stress script (scripts/stress.cjs) as a test: every API and error path,
 * worker threads that exit holding ports, a low fd limit so batches hit EMFILE.
 * It must end with no undocumented error and every fd closed. The full
 * 100,000-operation run under AddressSanitizer is `npm run sanitize`
 * (docs/hardening.md); this is a smaller run on the normal build.
 */
import { spawnSync } from 'node:child_process';
import { describe, expect, it, vi } from 'vitest';
import { backends, root } from './harden-support';

// Child processes and real sockets on a shared 2-core machine: generous limits (time is never asserted).
vi.setConfig({ testTimeout: 180_000, hookTimeout: 240_000 });

const hasPrlimit = spawnSync('prlimit', ['--version']).status === 0;
/**
 * The stress holds thousands of ports at once (its EMFILE batches): in the
 * machine's port space that would take ports other test files just proved
 * free. It runs in a network namespace of its own (root and unshare needed).
 */
const canUnshare = spawnSync('unshare', ['-n', 'true']).status === 0;

describe.skipIf(!hasPrlimit || !canUnshare)('stress, in a network namespace of its own', () => {
  for (const backend of backends()) {
    const ops = backend === 'native' ? 20_000 : 10_000;
    it(`${ops} operations on the ${backend} backend: only documented errors, no fd left`, () => {
      const command = ['prlimit', '--nofile=2048:2048', process.execPath, '--expose-gc', 'scripts/stress.cjs'];
      const result = spawnSync('unshare', ['-n', 'sh', '-c', 'ip link set lo up && exec "$@"', 'sh', ...command], {
        cwd: root,
        env: { ...process.env, PORTALLOC_BACKEND: backend, OPS: String(ops), WORKERS: '2', SEED: String(Date.now() % 100000) },
        encoding: 'utf8',
        timeout: 120_000,
      });
      expect(result.stdout, result.stderr).toMatch(/^\{/);
      const summary = JSON.parse(result.stdout) as { ops: number; fds: { before: number; after: number }; undocumented: string[]; errors: Record<string, number> };
      expect(summary.undocumented).toEqual([]);
      expect(summary.fds.after).toBe(summary.fds.before);
      expect(summary.ops).toBeGreaterThanOrEqual(ops - 10);
      expect(summary.errors.EMFILE ?? 0).toBeGreaterThan(0); // the EMFILE path ran
      expect(result.status, result.stderr).toBe(0);
    });
  }
});
