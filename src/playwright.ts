/**
 * portalloc/playwright: Playwright Test's `test` with ports held for a test
 * (`port`, `ports`) or for a worker (`workerPort`, `workerPorts`), see
 * src/test-ports.ts. For `webServer` in playwright.config, see
 * docs/test-runners.md (the config is evaluated in every worker).
 */
import { test as base } from '@playwright/test';
import { TestPorts, type TestPortOptions } from './test-ports';

export type { TestPortOptions } from './test-ports';

/** Test-scoped fixtures: held until the test ends. */
export interface PortFixtures {
  /** A free port, held for this test: listen on it (a Node server can while it is held). */
  port: number;
  /** `count` free ports, held for this test; call it as often as the test needs. */
  ports: (count: number, options?: TestPortOptions) => Promise<number[]>;
}

/** Worker-scoped fixtures: held until the worker ends, for a server a worker starts once. */
export interface WorkerPortFixtures {
  /** A free port, held for this worker. */
  workerPort: number;
  /** `count` free ports, held for this worker. */
  workerPorts: (count: number, options?: TestPortOptions) => Promise<number[]>;
}

async function onePort(use: (port: number) => Promise<void>): Promise<void> {
  const held = new TestPorts();
  try {
    await use((await held.take(1))[0]!);
  } finally {
    held.release();
  }
}

async function somePorts(use: (ports: PortFixtures['ports']) => Promise<void>): Promise<void> {
  const held = new TestPorts();
  try {
    await use((count, options) => held.take(count, options));
  } finally {
    held.release();
  }
}

/**
 * `@playwright/test`'s `test`, with `port`, `ports`, `workerPort` and `workerPorts`.
 *
 * @example
 * import { test, expect } from 'portalloc/playwright';
 * test('api', async ({ port, request }) => {
 *   server.listen(port);
 *   expect((await request.get(`http://127.0.0.1:${port}/`)).ok()).toBe(true);
 * });
 */
export const test = base.extend<PortFixtures, WorkerPortFixtures>({
  // eslint-disable-next-line no-empty-pattern
  port: async ({}, use) => onePort(use),
  // eslint-disable-next-line no-empty-pattern
  ports: async ({}, use) => somePorts(use),
  // eslint-disable-next-line no-empty-pattern
  workerPort: [async ({}, use) => onePort(use), { scope: 'worker' }],
  // eslint-disable-next-line no-empty-pattern
  workerPorts: [async ({}, use) => somePorts(use), { scope: 'worker' }],
});

export { expect } from '@playwright/test';
