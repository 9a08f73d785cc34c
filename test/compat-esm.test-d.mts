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

import type originalGetPort from 'get-port';
import type { portNumbers as originalPortNumbers, clearLockedPorts as originalClearLockedPorts } from 'get-port';
import type originalPortfinder from 'portfinder';
import type { detectPort as originalDetectPort, waitPort as originalWaitPort } from 'detect-port';

describe('the same types as the originals (a typed program switches its import and still compiles)', () => {
  it('get-port', () => {
    expectTypeOf(getPort).toEqualTypeOf<typeof originalGetPort>();
    expectTypeOf(portNumbers).toEqualTypeOf<typeof originalPortNumbers>();
    expectTypeOf(clearLockedPorts).toEqualTypeOf<typeof originalClearLockedPorts>();
  });

  it('portfinder: its functions accept what portfinder\'s accept', () => {
    expectTypeOf(portfinder.getPortPromise).toEqualTypeOf<typeof originalPortfinder.getPortPromise>();
    expectTypeOf(portfinder.getPortsPromise).toEqualTypeOf<typeof originalPortfinder.getPortsPromise>();
    expectTypeOf(portfinder.getPort).toMatchTypeOf<typeof originalPortfinder.getPort>();
    expectTypeOf(portfinder.getPorts).toMatchTypeOf<typeof originalPortfinder.getPorts>();
    expectTypeOf(portfinder.setBasePort).toEqualTypeOf<typeof originalPortfinder.setBasePort>();
    expectTypeOf(portfinder.getPort).toBeCallableWith({ port: 3000 }, (err: Error, port: number) => void [err, port]);
  });

  it('detect-port', () => {
    expectTypeOf(detectPort).toEqualTypeOf<typeof originalDetectPort>();
    expectTypeOf(waitPort).toEqualTypeOf<typeof originalWaitPort>();
  });
});
