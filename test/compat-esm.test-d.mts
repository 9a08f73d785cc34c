// Types of the compatibility entry points as ESM code sees them (import
// condition: dist/*.d.mts), resolved by package name.
import { describe, expectTypeOf, it } from 'vitest';
import getPort, { clearLockedPorts, getPort as named, portNumbers, waitForPort, type GetPortOptions } from 'portalloc';
import portfinder, { getPortPromise } from 'portalloc/portfinder';
import detectPort, { detect, waitPort } from 'portalloc/detect-port';

describe('ESM types', () => {
  it('import getPort from "portalloc" is get-port\'s function', () => {
    expectTypeOf(getPort).toEqualTypeOf(named);
    expectTypeOf(getPort).parameter(0).toEqualTypeOf<GetPortOptions | undefined>();
    expectTypeOf(getPort({ port: portNumbers(3000, 3100) })).toEqualTypeOf<Promise<number>>();
    expectTypeOf(clearLockedPorts).returns.toBeVoid();
    expectTypeOf(waitForPort).returns.toEqualTypeOf<Promise<void>>();
  });

  it('import portfinder from "portalloc/portfinder" is the module', () => {
    expectTypeOf(portfinder.getPortPromise).toEqualTypeOf(getPortPromise);
    expectTypeOf(portfinder.basePort).toBeNumber();
  });

  it('import detectPort from "portalloc/detect-port" is detect-port\'s function', () => {
    expectTypeOf(detectPort).toEqualTypeOf(detect);
    expectTypeOf(detectPort(8080)).toEqualTypeOf<Promise<number>>();
    expectTypeOf(waitPort).returns.toEqualTypeOf<Promise<boolean>>();
  });
});
