import { describe, expectTypeOf, it } from 'vitest';
import { namedPort, type NamedPortOptions } from '../dist/index.js';
import { test as vitestTest, portFixtures, type PortFixtures } from '../dist/vitest.mjs';
import { test as playwrightTest, type WorkerPortFixtures } from '../dist/playwright.mjs';

describe('test-runner and named-port types', () => {
  it('namedPort resolves to a number; its options are checked', () => {
    expectTypeOf(namedPort('web')).toEqualTypeOf<Promise<number>>();
    expectTypeOf<{ project: string; range: [20000, 29999]; host: '127.0.0.1' }>().toMatchTypeOf<NamedPortOptions>();
    // @ts-expect-error: a name is a string
    void namedPort(3000);
    // @ts-expect-error: no such option
    void namedPort('web', { port: 3000 });
  });

  it('the vitest fixtures: port is a number, ports(count) a promise of numbers', () => {
    expectTypeOf<PortFixtures['port']>().toEqualTypeOf<number>();
    expectTypeOf<PortFixtures['ports']>().returns.toEqualTypeOf<Promise<number[]>>();
    expectTypeOf(portFixtures).toHaveProperty('port');
    vitestTest.skip('typed', async ({ port, ports }) => {
      expectTypeOf(port).toEqualTypeOf<number>();
      expectTypeOf(await ports(2, { range: [20000, 29999] })).toEqualTypeOf<number[]>();
      // @ts-expect-error: test ports are always shared
      await ports(1, { shared: true });
    });
  });

  it('the Playwright fixtures: test- and worker-scoped', () => {
    expectTypeOf<WorkerPortFixtures['workerPort']>().toEqualTypeOf<number>();
    playwrightTest.skip('typed', async ({ port, ports, workerPort, workerPorts }) => {
      expectTypeOf(port).toEqualTypeOf<number>();
      expectTypeOf(workerPort).toEqualTypeOf<number>();
      expectTypeOf(await ports(2)).toEqualTypeOf<number[]>();
      expectTypeOf(await workerPorts(2)).toEqualTypeOf<number[]>();
    });
  });
});
