// Types of portalloc/tcp-port-used and portalloc/get-port-please as CommonJS
// code sees them (require condition: dist/compat/*.d.ts), by package name.
import { describe, expectTypeOf, it } from 'vitest';
import tcpPortUsed = require('portalloc/tcp-port-used');
import please = require('portalloc/get-port-please');

describe('portalloc/tcp-port-used (CommonJS types)', () => {
  it("has tcp-port-used's signatures, positional and object forms", () => {
    expectTypeOf(tcpPortUsed.check).toBeCallableWith(3000);
    expectTypeOf(tcpPortUsed.check).toBeCallableWith(3000, '127.0.0.1');
    expectTypeOf(tcpPortUsed.check).toBeCallableWith({ port: 3000, host: '::1' });
    expectTypeOf(tcpPortUsed.check).returns.toEqualTypeOf<Promise<boolean>>();
    expectTypeOf(tcpPortUsed.waitForStatus).toBeCallableWith(3000, '127.0.0.1', true, 100, 5000);
    expectTypeOf(tcpPortUsed.waitUntilUsed).toBeCallableWith({ port: 3000, retryTimeMs: 100, timeOutMs: 5000 });
    expectTypeOf(tcpPortUsed.waitUntilFreeOnHost).returns.toEqualTypeOf<Promise<void>>();
    expectTypeOf(tcpPortUsed.default.waitUntilFree).toEqualTypeOf(tcpPortUsed.waitUntilFree);
    // @ts-expect-error the port is a number
    void tcpPortUsed.check('3000');
  });
});

describe('portalloc/get-port-please (CommonJS types)', () => {
  it("has get-port-please's functions and option types", () => {
    expectTypeOf(please.getPort).toBeCallableWith({ port: 3000, ports: [3001], portRange: [3002, 3010], host: '127.0.0.1', random: false, verbose: true });
    expectTypeOf(please.getPort).toBeCallableWith(3000);
    expectTypeOf(please.getPort).toBeCallableWith('3000');
    expectTypeOf(please.getPort).returns.toEqualTypeOf<Promise<number>>();
    expectTypeOf(please.checkPort).returns.toEqualTypeOf<Promise<number | false>>();
    expectTypeOf(please.waitForPort).toBeCallableWith(3000, { host: 'localhost', delay: 100, retries: 10 });
    expectTypeOf<please.GetPortInput>().toEqualTypeOf<Partial<please.GetPortOptions> | number | string>();
    expectTypeOf(please.getSocketAddress).parameter(0).toEqualTypeOf<please.GetSocketOptions>();
    expectTypeOf(please.GetPortError).toBeConstructibleWith('no port', { cause: new Error('why') });
    // @ts-expect-error portRange is a pair
    void please.getPort({ portRange: 3000 });
  });
});
