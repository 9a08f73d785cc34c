/**
 * portalloc/vitest: vitest's `test` with two fixtures, `port` and `ports`,
 * whose ports are held for the test (src/test-ports.ts): the test's own
 * server can listen on them, and no allocator in this process or another is
 * given them, until the test ends (native backend; on the JS backend other
 * test processes keep off them, docs/test-runners.md). ESM only, as vitest is.
 */
import { test as base } from 'vitest';
import { TestPorts, type TestPortOptions } from './test-ports.js';

export type { TestPortOptions } from './test-ports.js';

/** The fixtures {@link test} adds. */
export interface PortFixtures {
  /** A free port, held for this test: listen on it (a Node server can while it is held). */
  port: number;
  /** `count` free ports, held for this test; call it as often as the test needs. */
  ports: (count: number, options?: TestPortOptions) => Promise<number[]>;
}

/**
 * The fixtures as an object for `test.extend`, to add them to a `test` of
 * your own.
 *
 * @example
 * import { test as base } from 'vitest';
 * import { portFixtures } from 'portalloc/vitest';
 * export const test = base.extend(portFixtures).extend({ db: async ({}, use) => use(await openDb()) });
 */
export const portFixtures = {
  // eslint-disable-next-line no-empty-pattern
  port: async ({}, use: (port: number) => Promise<void>) => {
    const held = new TestPorts();
    try {
      await use((await held.take(1))[0]!);
    } finally {
      held.release();
    }
  },
  // eslint-disable-next-line no-empty-pattern
  ports: async ({}, use: (ports: PortFixtures['ports']) => Promise<void>) => {
    const held = new TestPorts();
    try {
      await use((count, options) => held.take(count, options));
    } finally {
      held.release();
    }
  },
};

/**
 * vitest's `test`, with `port` and `ports`.
 *
 * @example
 * import { test, expect } from 'portalloc/vitest';
 * test('serves', async ({ port, ports }) => {
 *   server.listen(port);
 *   const [a, b] = await ports(2);
 * });
 */
export const test = base.extend<PortFixtures>(portFixtures);

/** The same as {@link test}. */
export const it = test;

export { expect } from 'vitest';
