// Types of the compatibility entry points as CommonJS code sees them
// (require condition: dist/*.d.ts), resolved by package name.
import { describe, expectTypeOf, it } from 'vitest';
import portalloc = require('portalloc');
import portfinder = require('portalloc/portfinder');
import detectPortModule = require('portalloc/detect-port');

describe('portalloc (CommonJS types)', () => {
  it('has getPort as default and by name, with get-port\'s signature', () => {
    expectTypeOf(portalloc.default).toEqualTypeOf(portalloc.getPort);
    expectTypeOf(portalloc.getPort).parameter(0).toEqualTypeOf<portalloc.GetPortOptions | undefined>();
    expectTypeOf<portalloc.Options>().toEqualTypeOf<portalloc.GetPortOptions>();
    expectTypeOf(portalloc.getPort).returns.toEqualTypeOf<Promise<number>>();
    expectTypeOf(portalloc.portNumbers).toEqualTypeOf<(from: number, to: number) => Iterable<number>>();
    expectTypeOf(portalloc.clearLockedPorts).toEqualTypeOf<() => void>();
  });

  it('takes get-port\'s options and the rest of ListenOptions', () => {
    expectTypeOf(portalloc.getPort).toBeCallableWith({ port: 3000 });
    expectTypeOf(portalloc.getPort).toBeCallableWith({ port: [3000, 3001], exclude: new Set([3002]), host: '127.0.0.1', reserve: true });
    expectTypeOf(portalloc.getPort).toBeCallableWith({ port: portalloc.portNumbers(3000, 3100), ipv6Only: true, backlog: 5 });
    expectTypeOf(portalloc.getPort).toBeCallableWith();
    // @ts-expect-error port is a number or an iterable of numbers
    void portalloc.getPort({ port: '3000' });
    // @ts-expect-error exclude is an iterable of numbers
    void portalloc.getPort({ exclude: 3000 });
  });

  it('waitForPort and waitUntilFree resolve to void', () => {
    expectTypeOf(portalloc.waitForPort).toBeCallableWith(3000, { host: '::1', timeout: 1000, interval: 50 });
    expectTypeOf(portalloc.waitUntilFree).returns.toEqualTypeOf<Promise<void>>();
    expectTypeOf<portalloc.WaitOptions>().toEqualTypeOf<{ readonly host?: string; readonly timeout?: number; readonly interval?: number }>();
  });
});

describe('portalloc/portfinder (CommonJS types)', () => {
  it('has portfinder\'s functions and settings', () => {
    expectTypeOf(portfinder.basePort).toBeNumber();
    expectTypeOf(portfinder.highestPort).toBeNumber();
    expectTypeOf(portfinder.getPortPromise).returns.toEqualTypeOf<Promise<number>>();
    expectTypeOf(portfinder.getPortsPromise).returns.toEqualTypeOf<Promise<number[]>>();
    expectTypeOf(portfinder.getPort).toBeCallableWith({ port: 3000, stopPort: 3999, host: 'localhost', startPort: 3000 });
    expectTypeOf(portfinder.getPort({ port: 3000 })).toEqualTypeOf<Promise<number>>();
    expectTypeOf(portfinder.getPort((err, port) => void [err, port])).toEqualTypeOf<void>();
    expectTypeOf(portfinder.getPorts(2, {}, (err, ports) => void [err, ports])).toEqualTypeOf<void>();
    expectTypeOf(portfinder.default.setBasePort).toEqualTypeOf<(port: number) => void>();
    expectTypeOf(portfinder.default.basePort).toBeNumber();
    // Callbacks typed as portfinder's own types declare them still fit.
    const typed: (err: Error, port: number) => void = () => undefined;
    expectTypeOf(portfinder.getPort).toBeCallableWith({ port: 3000 }, typed);
    expectTypeOf(portfinder.getPorts).toBeCallableWith(2, (err: Error, ports: Array<number>) => void [err, ports]);
  });
});

describe('portalloc/detect-port (CommonJS types)', () => {
  it('has detect-port\'s overloads and errors', () => {
    expectTypeOf(detectPortModule.detect).toEqualTypeOf(detectPortModule.detectPort);
    expectTypeOf(detectPortModule.default).toEqualTypeOf(detectPortModule.detectPort);
    expectTypeOf(detectPortModule.detect(3000)).toEqualTypeOf<Promise<number>>();
    expectTypeOf(detectPortModule.detect('3000')).toEqualTypeOf<Promise<number>>();
    expectTypeOf(detectPortModule.detect({ port: 3000, hostname: '127.0.0.1' })).toEqualTypeOf<Promise<number>>();
    expectTypeOf(detectPortModule.detect((err, port) => void [err, port])).toEqualTypeOf<void>();
    expectTypeOf(detectPortModule.waitPort(3000, { retries: 3, retryInterval: 100 })).toEqualTypeOf<Promise<boolean>>();
    expectTypeOf<detectPortModule.WaitPortRetryError>().toHaveProperty('count').toBeNumber();
    expectTypeOf<detectPortModule.IPAddressNotAvailableError>().toMatchTypeOf<Error>();
  });
});
