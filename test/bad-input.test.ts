/**
 * Every bad input gets a clear error: the right class, a `code` to branch on,
 * a message naming the option and the value, and no fd left open. Rows are
 * data: add a row to extend the table (see the compat rows' note at the end).
 */
import { spawnSync } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { backends, cliPath, fdCount, loadApi, loadCli, loadEntry, root, type Api, type Backend } from './harden-support';

// Child processes and real sockets on a shared 2-core machine: generous limits (time is never asserted).
vi.setConfig({ testTimeout: 30_000, hookTimeout: 240_000 });

type ErrorClass = 'TypeError' | 'RangeError' | 'Error' | 'IPAddressNotAvailableError';

interface ApiRow {
  /** What the row calls, as a user would write it. */
  name: string;
  /** `entry('portfinder')` gives another entry point on the same backend as `api`. */
  call: (api: Api, entry: typeof loadEntry) => unknown;
  /** Whether the call returns a promise that must reject (never throw synchronously). */
  async?: boolean;
  class: ErrorClass;
  code: string;
  /** Substrings the message must contain: the option's name and the value as shown. */
  names: string[];
  /** Where the row differs by backend (a mode only one backend has). */
  only?: Backend;
}

/** 192.0.2.0/24 is TEST-NET-1 (RFC 5737): never an address of this machine. */
const NOT_LOCAL = '192.0.2.1';

/** The get-port drop-in and wait helpers on the main entry point. */
type Compat = Record<'portNumbers' | 'getPort' | 'waitForPort' | 'waitUntilFree', (...args: unknown[]) => unknown>;
const odd = { [Symbol.iterator]: 5 };

export const apiRows: ApiRow[] = [
  // allocate: count
  { name: 'allocate()', call: (p) => (p.allocate as (...a: unknown[]) => unknown)(), class: 'TypeError', code: 'ERR_INVALID_ARG_TYPE', names: ['count', 'undefined'] },
  { name: "allocate('3')", call: (p) => p.allocate('3' as never), class: 'TypeError', code: 'ERR_INVALID_ARG_TYPE', names: ['count', "'3'"] },
  { name: 'allocate(0)', call: (p) => p.allocate(0), class: 'RangeError', code: 'ERR_OUT_OF_RANGE', names: ['count', '0'] },
  { name: 'allocate(-1)', call: (p) => p.allocate(-1), class: 'RangeError', code: 'ERR_OUT_OF_RANGE', names: ['count', '-1'] },
  { name: 'allocate(1.5)', call: (p) => p.allocate(1.5), class: 'RangeError', code: 'ERR_OUT_OF_RANGE', names: ['count', '1.5'] },
  { name: 'allocate(NaN)', call: (p) => p.allocate(NaN), class: 'RangeError', code: 'ERR_OUT_OF_RANGE', names: ['count', 'NaN'] },
  { name: 'allocate(Infinity)', call: (p) => p.allocate(Infinity), class: 'RangeError', code: 'ERR_OUT_OF_RANGE', names: ['count', 'Infinity'] },
  { name: 'allocate(65536)', call: (p) => p.allocate(65536), class: 'RangeError', code: 'ERR_OUT_OF_RANGE', names: ['count', '65536'] },
  { name: 'allocate of a long array', call: (p) => p.allocate([1, 2, 3, 4, 5, 6, 7, 8, 9] as never), class: 'TypeError', code: 'ERR_INVALID_ARG_TYPE', names: ['count', '[ 1, 2, 3, 4, 5, 6, 7, 8, ... 1 more item ]'] },
  { name: 'allocate(2n)', call: (p) => p.allocate(2n as never), class: 'TypeError', code: 'ERR_INVALID_ARG_TYPE', names: ['count', '2n'] },
  // allocate: options
  { name: "allocate(1, 'tcp')", call: (p) => p.allocate(1, 'tcp' as never), class: 'TypeError', code: 'ERR_INVALID_ARG_TYPE', names: ['options', "'tcp'"] },
  { name: 'allocate(1, [])', call: (p) => p.allocate(1, [] as never), class: 'TypeError', code: 'ERR_INVALID_ARG_TYPE', names: ['options', '[]'] },
  { name: 'allocate(1, { prot })', call: (p) => p.allocate(1, { prot: 'tcp' } as never), class: 'TypeError', code: 'ERR_INVALID_ARG_VALUE', names: ['option', "'prot'"] },
  { name: 'allocate(1, { shared })', call: (p) => p.allocate(1, { shared: true } as never), class: 'TypeError', code: 'ERR_INVALID_ARG_VALUE', names: ['option', "'shared'"] },
  { name: "protocol 'sctp'", call: (p) => p.allocate(1, { protocol: 'sctp' as never }), class: 'RangeError', code: 'ERR_INVALID_ARG_VALUE', names: ['options.protocol', "'sctp'"] },
  { name: "protocol 'TCP'", call: (p) => p.allocate(1, { protocol: 'TCP' as never }), class: 'RangeError', code: 'ERR_INVALID_ARG_VALUE', names: ['options.protocol', "'TCP'"] },
  { name: "protocol 'toString'", call: (p) => p.allocate(1, { protocol: 'toString' as never }), class: 'RangeError', code: 'ERR_INVALID_ARG_VALUE', names: ['options.protocol', "'toString'"] },
  { name: 'protocol 6', call: (p) => p.allocate(1, { protocol: 6 as never }), class: 'TypeError', code: 'ERR_INVALID_ARG_TYPE', names: ['options.protocol', '6'] },
  { name: 'range [1, 2, 3]', call: (p) => p.allocate(1, { range: [1, 2, 3] as never }), class: 'TypeError', code: 'ERR_INVALID_ARG_TYPE', names: ['options.range', '[ 1, 2, 3 ]'] },
  { name: "range '1-2'", call: (p) => p.allocate(1, { range: '1-2' as never }), class: 'TypeError', code: 'ERR_INVALID_ARG_TYPE', names: ['options.range', "'1-2'"] },
  { name: "range ['1', '2']", call: (p) => p.allocate(1, { range: ['1', '2'] as never }), class: 'TypeError', code: 'ERR_INVALID_ARG_TYPE', names: ['options.range', "[ '1', '2' ]"] },
  { name: 'range [0, 10]', call: (p) => p.allocate(1, { range: [0, 10] }), class: 'RangeError', code: 'ERR_OUT_OF_RANGE', names: ['options.range', '[ 0, 10 ]'] },
  { name: 'range [100, 10]', call: (p) => p.allocate(1, { range: [100, 10] }), class: 'RangeError', code: 'ERR_OUT_OF_RANGE', names: ['options.range', '[ 100, 10 ]'] },
  { name: 'range [1, 65536]', call: (p) => p.allocate(1, { range: [1, 65536] }), class: 'RangeError', code: 'ERR_OUT_OF_RANGE', names: ['options.range', '[ 1, 65536 ]'] },
  { name: 'range [1.5, 9]', call: (p) => p.allocate(1, { range: [1.5, 9] }), class: 'RangeError', code: 'ERR_OUT_OF_RANGE', names: ['options.range', '[ 1.5, 9 ]'] },
  { name: "order 'descending'", call: (p) => p.allocate(1, { order: 'descending' as never }), class: 'RangeError', code: 'ERR_INVALID_ARG_VALUE', names: ['options.order', "'descending'"] },
  { name: 'order 1', call: (p) => p.allocate(1, { order: 1 as never }), class: 'TypeError', code: 'ERR_INVALID_ARG_TYPE', names: ['options.order', '1'] },
  { name: 'exclude 8080', call: (p) => p.allocate(1, { exclude: 8080 as never }), class: 'TypeError', code: 'ERR_INVALID_ARG_TYPE', names: ['options.exclude', '8080'] },
  { name: "exclude '8080'", call: (p) => p.allocate(1, { exclude: '8080' as never }), class: 'TypeError', code: 'ERR_INVALID_ARG_TYPE', names: ['options.exclude', "'8080'"] },
  { name: 'exclude null', call: (p) => p.allocate(1, { exclude: null as never }), class: 'TypeError', code: 'ERR_INVALID_ARG_TYPE', names: ['options.exclude', 'null'] },
  { name: 'exclude a broken iterable', call: (p) => p.allocate(1, { exclude: odd as never }), class: 'TypeError', code: 'ERR_INVALID_ARG_TYPE', names: ['options.exclude'] },
  { name: 'exclude [70000]', call: (p) => p.allocate(1, { exclude: [70000] }), class: 'RangeError', code: 'ERR_OUT_OF_RANGE', names: ['options.exclude', '70000'] },
  { name: 'exclude [-1]', call: (p) => p.allocate(1, { exclude: [-1] }), class: 'RangeError', code: 'ERR_OUT_OF_RANGE', names: ['options.exclude', '-1'] },
  { name: 'exclude [null]', call: (p) => p.allocate(1, { exclude: [null as never] }), class: 'TypeError', code: 'ERR_INVALID_ARG_TYPE', names: ['options.exclude', 'null'] },
  { name: 'exclude new Set([8.5])', call: (p) => p.allocate(1, { exclude: new Set([8.5]) }), class: 'RangeError', code: 'ERR_OUT_OF_RANGE', names: ['options.exclude', '8.5'] },
  { name: 'host 42', call: (p) => p.allocate(1, { host: 42 as never }), class: 'TypeError', code: 'ERR_INVALID_ARG_TYPE', names: ['options.host', '42'] },
  { name: "host ''", call: (p) => p.allocate(1, { host: '' }), class: 'RangeError', code: 'ERR_OUT_OF_RANGE', names: ['options.host', "''"] },
  // (issue 11) a NUL byte was cut there and the rest ignored; an unknown zone reached the addon as an uncoded TypeError
  { name: 'host with a NUL byte', call: (p) => p.allocate(1, { host: '127.0.0.1\0junk' }), class: 'TypeError', code: 'ERR_INVALID_ARG_VALUE', names: ['options.host', "'127.0.0.1\\x00junk'"] },
  { name: "host 'fe80::1%nosuchif'", call: (p) => p.allocate(1, { host: 'fe80::1%nosuchif' }), class: 'TypeError', code: 'ERR_INVALID_ARG_VALUE', names: ['options.host', "'fe80::1%nosuchif'", 'interface'] },
  { name: "isFree host '::1%nosuchif'", call: (p) => p.isFree(3000, { host: '::1%nosuchif' }), class: 'TypeError', code: 'ERR_INVALID_ARG_VALUE', names: ['options.host', "'::1%nosuchif'"] },
  // (issue 11) an endless iterable hung the event loop (getPort's: heap OOM)
  {
    name: 'exclude that never ends',
    call: (p) => p.allocate(1, { exclude: (function* () { for (;;) yield 3000; })() }),
    class: 'RangeError',
    code: 'ERR_OUT_OF_RANGE',
    names: ['options.exclude', '1048576 items'],
  },
  { name: 'host that does not resolve', call: (p) => p.allocate(1, { host: 'no-such-host.invalid' }), class: 'Error', code: 'ENOTFOUND', names: ['options.host', "'no-such-host.invalid'"] },
  { name: 'host not of this machine', call: (p) => p.allocate(1, { host: NOT_LOCAL }), class: 'Error', code: 'EADDRNOTAVAIL', names: [NOT_LOCAL, 'not an address of this machine'] },
  // allocateAsync: rejects, never throws synchronously
  { name: 'allocateAsync(0)', call: (p) => p.allocateAsync(0), async: true, class: 'RangeError', code: 'ERR_OUT_OF_RANGE', names: ['count', '0'] },
  { name: 'allocateAsync range [5, 4]', call: (p) => p.allocateAsync(1, { range: [5, 4] }), async: true, class: 'RangeError', code: 'ERR_OUT_OF_RANGE', names: ['options.range', '[ 5, 4 ]'] },
  { name: 'allocateAsync host not local', call: (p) => p.allocateAsync(2, { host: NOT_LOCAL }), async: true, class: 'Error', code: 'EADDRNOTAVAIL', names: [NOT_LOCAL] },
  // reserve / reserveAsync
  { name: 'reserve(-5)', call: (p) => p.reserve(-5), class: 'RangeError', code: 'ERR_OUT_OF_RANGE', names: ['count', '-5'] },
  { name: "reserve shared 'yes'", call: (p) => p.reserve(1, { shared: 'yes' as never }), class: 'TypeError', code: 'ERR_INVALID_ARG_TYPE', names: ['options.shared', "'yes'"] },
  { name: "reserve protocol 'UDP'", call: (p) => p.reserve(1, { protocol: 'UDP' as never }), class: 'RangeError', code: 'ERR_INVALID_ARG_VALUE', names: ['options.protocol', "'UDP'"] },
  { name: 'reserve host not local', call: (p) => p.reserve(3, { host: NOT_LOCAL }), class: 'Error', code: 'EADDRNOTAVAIL', names: [NOT_LOCAL] },
  { name: 'reserve shared on the JS backend', call: (p) => p.reserve(1, { shared: true }), class: 'Error', code: 'ERR_PORTALLOC_UNSUPPORTED', names: ['shared'], only: 'js' },
  { name: 'reserveAsync(1.1)', call: (p) => p.reserveAsync(1.1), async: true, class: 'RangeError', code: 'ERR_OUT_OF_RANGE', names: ['count', '1.1'] },
  { name: 'reserveAsync shared 1', call: (p) => p.reserveAsync(1, { shared: 1 as never }), async: true, class: 'TypeError', code: 'ERR_INVALID_ARG_TYPE', names: ['options.shared', '1'] },
  { name: 'reserveAsync { order: null }', call: (p) => p.reserveAsync(1, { order: null as never }), async: true, class: 'TypeError', code: 'ERR_INVALID_ARG_TYPE', names: ['options.order', 'null'] },
  // isFree
  { name: 'isFree()', call: (p) => (p.isFree as (...a: unknown[]) => unknown)(), class: 'TypeError', code: 'ERR_INVALID_ARG_TYPE', names: ['port', 'undefined'] },
  { name: 'isFree(0)', call: (p) => p.isFree(0), class: 'RangeError', code: 'ERR_OUT_OF_RANGE', names: ['port', '0'] },
  { name: 'isFree(65536)', call: (p) => p.isFree(65536), class: 'RangeError', code: 'ERR_OUT_OF_RANGE', names: ['port', '65536'] },
  { name: "isFree('80')", call: (p) => p.isFree('80' as never), class: 'TypeError', code: 'ERR_INVALID_ARG_TYPE', names: ['port', "'80'"] },
  { name: 'isFree(80.5)', call: (p) => p.isFree(80.5), class: 'RangeError', code: 'ERR_OUT_OF_RANGE', names: ['port', '80.5'] },
  { name: 'isFree(80, { range })', call: (p) => p.isFree(80, { range: [1, 2] } as never), class: 'TypeError', code: 'ERR_INVALID_ARG_VALUE', names: ['option', "'range'"] },
  { name: "isFree protocol 'icmp'", call: (p) => p.isFree(80, { protocol: 'icmp' as never }), class: 'RangeError', code: 'ERR_INVALID_ARG_VALUE', names: ['options.protocol', "'icmp'"] },
  { name: 'isFree host not local', call: (p) => p.isFree(40000, { host: NOT_LOCAL }), class: 'Error', code: 'EADDRNOTAVAIL', names: [NOT_LOCAL, '40000'] },
  // The compat entry points: the originals' exact messages, with a `code` added
  { name: 'portNumbers(3000, 2000)', call: (p) => (p as unknown as Compat).portNumbers(3000, 2000), class: 'RangeError', code: 'ERR_OUT_OF_RANGE', names: ['`to`', '`from`'] },
  { name: 'portNumbers(1.5, 3000)', call: (p) => (p as unknown as Compat).portNumbers(1.5, 3000), class: 'TypeError', code: 'ERR_INVALID_ARG_TYPE', names: ['`from`', '`to`', 'integer'] },
  { name: 'portNumbers(80, 3000)', call: (p) => (p as unknown as Compat).portNumbers(80, 3000), class: 'RangeError', code: 'ERR_OUT_OF_RANGE', names: ["'from'", '1024'] },
  { name: 'getPort({ exclude: 5 })', call: (p) => (p as unknown as Compat).getPort({ exclude: 5 }), async: true, class: 'TypeError', code: 'ERR_INVALID_ARG_TYPE', names: ['`exclude`', 'iterable'] },
  { name: 'getPort({ exclude: [NaN] })', call: (p) => (p as unknown as Compat).getPort({ exclude: [NaN] }), async: true, class: 'TypeError', code: 'ERR_OUT_OF_RANGE', names: ['NaN', 'exclude'] },
  { name: "getPort({ port: 'x' })", call: (p) => (p as unknown as Compat).getPort({ port: 'x' }), async: true, class: 'RangeError', code: 'ERR_SOCKET_BAD_PORT', names: ['options.port', "'x'"] },
  { name: 'getPort host not local', call: (p) => (p as unknown as Compat).getPort({ host: NOT_LOCAL }), async: true, class: 'Error', code: 'EADDRNOTAVAIL', names: [NOT_LOCAL] },
  { name: 'portfinder port -1', call: (_, entry) => entry('portfinder').getPortPromise!({ port: -1 } as never), async: true, class: 'Error', code: 'ERR_OUT_OF_RANGE', names: ['options.port(-1)'] },
  { name: 'portfinder stopPort below port', call: (_, entry) => entry('portfinder').getPortPromise!({ port: 9000, stopPort: 8000 } as never), async: true, class: 'Error', code: 'ERR_OUT_OF_RANGE', names: ['stopPort(8000)', 'port(9000)'] },
  { name: 'portfinder host not local', call: (_, entry) => entry('portfinder').getPortPromise!({ host: NOT_LOCAL } as never), async: true, class: 'Error', code: 'EADDRNOTAVAIL', names: [NOT_LOCAL] },
  { name: 'detect-port hostname not local', call: (_, entry) => entry('detect-port').detectPort!({ port: 8080, hostname: NOT_LOCAL } as never), async: true, class: 'IPAddressNotAvailableError', code: 'EADDRNOTAVAIL', names: ['IP address', 'not available'] },
  { name: 'waitForPort timeout -1', call: (p) => (p as unknown as Compat).waitForPort(80, { timeout: -1 }), async: true, class: 'RangeError', code: 'ERR_OUT_OF_RANGE', names: ['options.timeout', '-1'] },
  { name: 'waitUntilFree(0)', call: (p) => (p as unknown as Compat).waitUntilFree(0), async: true, class: 'RangeError', code: 'ERR_OUT_OF_RANGE', names: ['port', '0'] },
  // namedPort (issue 13): async, so every mistake is a rejection
  { name: 'namedPort()', call: (p) => (p.namedPort as (...a: unknown[]) => unknown)(), async: true, class: 'TypeError', code: 'ERR_INVALID_ARG_TYPE', names: ['name', 'undefined'] },
  { name: "namedPort('')", call: (p) => p.namedPort(''), async: true, class: 'TypeError', code: 'ERR_INVALID_ARG_VALUE', names: ['name', "''"] },
  { name: 'namedPort with a newline', call: (p) => p.namedPort('a\nb'), async: true, class: 'TypeError', code: 'ERR_INVALID_ARG_VALUE', names: ['name', "'a\\nb'"] },
  { name: "namedPort('web', 'here')", call: (p) => p.namedPort('web', 'here' as never), async: true, class: 'TypeError', code: 'ERR_INVALID_ARG_TYPE', names: ['options', "'here'"] },
  { name: "namedPort('web', { port })", call: (p) => p.namedPort('web', { port: 3000 } as never), async: true, class: 'TypeError', code: 'ERR_INVALID_ARG_VALUE', names: ['option', "'port'"] },
  { name: 'namedPort project 5', call: (p) => p.namedPort('web', { project: 5 as never }), async: true, class: 'TypeError', code: 'ERR_INVALID_ARG_TYPE', names: ['options.project', '5'] },
  { name: 'namedPort range [9, 3]', call: (p) => p.namedPort('web', { range: [9, 3] }), async: true, class: 'RangeError', code: 'ERR_OUT_OF_RANGE', names: ['options.range', '[ 9, 3 ]'] },
  { name: 'namedPort host not local', call: (p) => p.namedPort('bad-input-host', { host: NOT_LOCAL }), async: true, class: 'Error', code: 'EADDRNOTAVAIL', names: [NOT_LOCAL] },
  // Reservation methods
  {
    name: 'share() after release()',
    call: (p) => {
      const hold = p.reserve(1);
      hold.release();
      hold.release(); // idempotent: no error
      return hold.share();
    },
    class: 'Error',
    code: 'ERR_RESERVATION_RELEASED',
    names: ['share()', 'released'],
  },
  {
    name: 'share() on the JS backend',
    call: (p) => {
      const hold = p.reserve(1);
      try {
        return hold.share();
      } finally {
        hold.release();
      }
    },
    class: 'Error',
    code: 'ERR_PORTALLOC_UNSUPPORTED',
    names: ['shared'],
    only: 'js',
  },
];

interface CliRow {
  args: string[];
  /** 2 for a usage mistake, 1 for a failure of the system (the port or host). */
  status: 1 | 2;
  code: string;
  names: string[];
}

export const cliRows: CliRow[] = [
  { args: ['--bogus'], status: 2, code: 'ERR_USAGE', names: ["'--bogus'"] },
  { args: ['0'], status: 2, code: 'ERR_USAGE', names: ['count', "'0'"] },
  { args: ['abc'], status: 2, code: 'ERR_USAGE', names: ['count', "'abc'"] },
  { args: ['66000'], status: 2, code: 'ERR_USAGE', names: ['count', "'66000'"] },
  { args: ['-3'], status: 2, code: 'ERR_USAGE', names: ["'-3'"] },
  { args: ['1', '2'], status: 2, code: 'ERR_USAGE', names: ['count', "'1 2'"] },
  { args: ['1\n2'], status: 2, code: 'ERR_USAGE', names: ['count', "'1\\n2'"] },
  { args: ['--range', '10'], status: 2, code: 'ERR_USAGE', names: ['--range', "'10'"] },
  { args: ['--range', '0-10'], status: 2, code: 'ERR_USAGE', names: ['--range', "'0'"] },
  { args: ['--range', '9-3'], status: 2, code: 'ERR_USAGE', names: ['--range', "'9-3'"] },
  { args: ['--range', '1-70000'], status: 2, code: 'ERR_USAGE', names: ['--range', "'70000'"] },
  { args: ['--protocol', 'sctp'], status: 2, code: 'ERR_USAGE', names: ['--protocol', "'sctp'"] },
  { args: ['--exclude', '80,x'], status: 2, code: 'ERR_USAGE', names: ['--exclude', "'x'"] },
  { args: ['--exclude', '99999'], status: 2, code: 'ERR_USAGE', names: ['--exclude', "'99999'"] },
  { args: ['--host'], status: 2, code: 'ERR_USAGE', names: ['--host'] },
  { args: ['--json=yes'], status: 2, code: 'ERR_USAGE', names: ['--json'] },
  { args: ['--host', ''], status: 2, code: 'ERR_OUT_OF_RANGE', names: ['host', "''"] },
  { args: ['check'], status: 2, code: 'ERR_USAGE', names: ['check'] },
  { args: ['check', '0'], status: 2, code: 'ERR_USAGE', names: ['check', "'0'"] },
  { args: ['check', 'http'], status: 2, code: 'ERR_USAGE', names: ['check', "'http'"] },
  { args: ['check', '80', '--protocol', 'x'], status: 2, code: 'ERR_USAGE', names: ['--protocol', "'x'"] },
  // named ports (issue 13)
  { args: ['--name'], status: 2, code: 'ERR_USAGE', names: ['--name'] },
  { args: ['--name', ''], status: 2, code: 'ERR_USAGE', names: ['--name', "''"] },
  { args: ['--name', 'web', '3'], status: 2, code: 'ERR_USAGE', names: ['--name', "'3'"] },
  { args: ['--name', 'web', '--timewait'], status: 2, code: 'ERR_USAGE', names: ['--name', '--timewait'] },
  { args: ['--name', 'web', '--range', '9-3'], status: 2, code: 'ERR_USAGE', names: ['--range', "'9-3'"] },
  { args: ['--project', '.'], status: 2, code: 'ERR_USAGE', names: ['--project', '--name'] },
  { args: ['exec', '--name', '--print', '--', 'true'], status: 2, code: 'ERR_USAGE', names: ['--name', "'--print'"] },
  { args: ['exec', '--range', '1-0', '--', 'true'], status: 2, code: 'ERR_USAGE', names: ['exec:', '--range end', "'0'"] },
  { args: ['--host', NOT_LOCAL], status: 1, code: 'EADDRNOTAVAIL', names: [NOT_LOCAL] },
  { args: ['check', '40000', '--host', NOT_LOCAL], status: 1, code: 'EADDRNOTAVAIL', names: [NOT_LOCAL] },
];

function expectClear(error: unknown, row: { class?: ErrorClass; code: string; names: string[] }): void {
  expect(error).toBeInstanceOf(Error);
  const e = error as Error & { code?: unknown };
  if (row.class) expect(e.constructor.name).toBe(row.class);
  expect(e.code).toBe(row.code);
  for (const name of row.names) expect(e.message).toContain(name);
  expect(e.message).not.toMatch(/\n/);
}

/** Runs a row and returns what it threw or rejected with; fails if it did neither or threw where it should reject. */
async function failure(row: ApiRow, api: Api): Promise<unknown> {
  let returned: unknown;
  try {
    returned = row.call(api, loadEntry);
  } catch (error) {
    if (row.async) throw new Error(`${row.name} threw synchronously; it must return a rejected promise: ${String(error)}`);
    return error;
  }
  if (!row.async) throw new Error(`${row.name} did not throw; returned ${String(returned)}`);
  expect(returned).toBeInstanceOf(Promise);
  return (returned as Promise<unknown>).then(
    (value) => {
      throw new Error(`${row.name} resolved with ${String(value)}`);
    },
    (error: unknown) => error,
  );
}

describe('bad-input table', () => {
  it('has at least 30 API rows and 15 CLI rows', () => {
    expect(apiRows.length).toBeGreaterThanOrEqual(30);
    expect(cliRows.length).toBeGreaterThanOrEqual(15);
  });
});

for (const backend of backends()) {
  describe(`API on the ${backend} backend`, () => {
    let api: Api;
    beforeAll(() => {
      api = loadApi(backend);
      // The JS backend starts its worker on first use: start it before fds are counted.
      api.isFree(1 + Math.floor(Math.random() * 1000) + 50000);
    });

    for (const row of apiRows.filter((r) => r.only === undefined || r.only === backend)) {
      it(`${row.name}: ${row.class} ${row.code}, no fd left`, async () => {
        const before = fdCount();
        const error = await failure(row, api);
        expectClear(error, row);
        expect(fdCount()).toBe(before);
      });
    }
  });
}

describe('CLI, in process: main(argv) throws a coded error, no fd left', () => {
  let cli: ReturnType<typeof loadCli>;
  beforeAll(() => {
    cli = loadCli();
  });
  afterAll(() => {
    process.exitCode = undefined;
  });

  // (`portalloc exec` runs only as the CLI itself: its rows are spawned, below.)
  for (const row of cliRows.filter((row) => row.args[0] !== 'exec')) {
    it(`portalloc ${JSON.stringify(row.args)}: ${row.code}`, () => {
      const before = fdCount();
      const printed: string[] = [];
      let thrown: unknown;
      try {
        cli.main(row.args, (line) => printed.push(line) > 0);
      } catch (error) {
        thrown = error;
      }
      expect(printed).toEqual([]);
      if (row.code === 'ERR_USAGE') expect(thrown).toBeInstanceOf(cli.UsageError);
      expectClear(thrown, { code: row.code, names: row.names });
      expect(fdCount()).toBe(before);
    });
  }
});

describe('CLI, spawned: one line on stderr, no stack trace, the documented exit status', () => {
  for (const row of cliRows) {
    it(`portalloc ${JSON.stringify(row.args)} exits ${row.status}`, () => {
      const result = spawnSync(process.execPath, [cliPath, ...row.args], { cwd: root, encoding: 'utf8', timeout: 30_000 });
      expect(result.status).toBe(row.status);
      expect(result.stdout).toBe('');
      const lines = result.stderr.split('\n');
      expect(lines).toHaveLength(2); // one line and its newline
      expect(lines[1]).toBe('');
      expect(lines[0]).toMatch(/^portalloc: /);
      expect(result.stderr).not.toMatch(/^\s+at /m);
      for (const name of row.names) expect(lines[0]).toContain(name);
    });
  }
});

