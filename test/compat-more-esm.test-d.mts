// Types of portalloc/tcp-port-used and portalloc/get-port-please as ESM code
// sees them (import condition: dist/compat/*.d.mts), by package name.
import { describe, expectTypeOf, it } from 'vitest';
import tcpPortUsed, { check, waitUntilUsed } from 'portalloc/tcp-port-used';
import { getPort, getRandomPort, isUnsafePort, type GetPortOptions, type WaitForPortOptions } from 'portalloc/get-port-please';

describe('ESM types of the tcp-port-used and get-port-please drop-ins', () => {
  it('import tcpPortUsed from "portalloc/tcp-port-used" is the module', () => {
    expectTypeOf(tcpPortUsed.check).toEqualTypeOf(check);
    expectTypeOf(waitUntilUsed(3000, 100, 5000)).toEqualTypeOf<Promise<void>>();
  });

  it('get-port-please names', () => {
    expectTypeOf(getPort({ port: 3000 } satisfies Partial<GetPortOptions>)).toEqualTypeOf<Promise<number>>();
    expectTypeOf(getRandomPort).parameter(0).toEqualTypeOf<string | undefined>();
    expectTypeOf(isUnsafePort).returns.toBeBoolean();
    expectTypeOf<WaitForPortOptions['retries']>().toEqualTypeOf<number | undefined>();
  });
});
