/**
 * Fuzzing the option parsing (every API) and the CLI's argument parsing with
 * fast-check: whatever arrives, the result is either a correct answer or one
 * of the documented errors, with a one-line message, and no fd stays open.
 * Host names are drawn from a fixed list, never random text: a random name
 * would be a DNS query, which is neither fast nor this suite's subject.
 */
import { spawnSync } from 'node:child_process';
import fc from 'fast-check';
import { beforeAll, describe, expect, it, vi } from 'vitest';
import { backends, cliPath, fdCount, loadApi, loadCli, root, type Api } from './harden-support';

// Child processes and real sockets on a shared 2-core machine: generous limits (time is never asserted).
vi.setConfig({ testTimeout: 120_000, hookTimeout: 240_000 });

const SEED = Number(process.env.FUZZ_SEED ?? Date.now() % 1_000_000);
const SAFE_HOSTS = ['127.0.0.1', '::1', '0.0.0.0', '::', 'localhost', '192.0.2.1', 'no-such-host.invalid', ''];
/** Counts above this would make a run slow, not more interesting: filtered out when valid. */
const MAX_VALID_COUNT = 200;

/** The documented errors: class and code. System errors carry an errno name, a negative errno and the syscall. */
function expectDocumented(error: unknown): void {
  expect(error).toBeInstanceOf(Error);
  const e = error as Error & { code?: unknown; errno?: unknown; syscall?: unknown };
  expect(typeof e.code, `no code on ${e.stack}`).toBe('string');
  const code = e.code as string;
  expect(e.message).toMatch(/^portalloc: /);
  expect(e.message).not.toContain('\n');
  switch (code) {
    case 'ERR_INVALID_ARG_TYPE':
      expect(e).toBeInstanceOf(TypeError);
      break;
    case 'ERR_OUT_OF_RANGE':
      expect(e).toBeInstanceOf(RangeError);
      break;
    case 'ERR_INVALID_ARG_VALUE':
      expect(e instanceof TypeError || e instanceof RangeError).toBe(true);
      break;
    case 'ERR_PORTS_EXHAUSTED':
    case 'ERR_PORTALLOC_UNSUPPORTED':
    case 'ENOTFOUND':
      expect(e.constructor).toBe(Error);
      break;
    default:
      // A system error: EADDRNOTAVAIL, EAFNOSUPPORT, EMFILE, ...
      expect(code, e.stack).toMatch(/^E[A-Z0-9]+$/);
      expect(typeof e.errno).toBe('number');
      expect(e.errno as number).toBeLessThan(0);
      expect(typeof e.syscall).toBe('string');
  }
}

const anyValue = fc.oneof(
  fc.anything(),
  fc.constantFrom(undefined, null, NaN, Infinity, -Infinity, -0, 0, 1, 65535, 65536, 1.5, '', 'tcp', [], {}, Symbol('s'), 5n, () => 1),
);
const count = fc.oneof({ weight: 3, arbitrary: fc.integer({ min: 1, max: 40 }) }, fc.integer({ min: -3, max: 0 }), fc.double(), fc.integer(), anyValue);
const port = fc.oneof(fc.integer({ min: -2, max: 65537 }), fc.double({ min: -1, max: 70000 }), anyValue);
const validRange = fc.tuple(fc.integer({ min: 20000, max: 40000 }), fc.integer({ min: 0, max: 300 })).map(([from, span]) => [from, from + span]);
/** Options a careful caller writes: the calls mostly succeed. */
const validOptions = fc.record(
  {
    host: fc.constantFrom('127.0.0.1', '::1', '0.0.0.0', '::', 'localhost'),
    protocol: fc.constantFrom('tcp', 'udp', 'both'),
    range: validRange,
    order: fc.constantFrom('random', 'ascending'),
    exclude: fc.array(fc.integer({ min: 1, max: 65535 }), { maxLength: 20 }),
  },
  { requiredKeys: [] },
);
/** Anything in any key, known or not. */
const wildOptions = fc.record(
  {
    host: fc.oneof(fc.constantFrom(...SAFE_HOSTS), fc.constantFrom(42, null, true, ['127.0.0.1'])),
    protocol: fc.oneof(fc.constantFrom('tcp', 'udp', 'both', 'TCP', 'toString', '__proto__'), fc.string(), anyValue),
    range: fc.oneof(validRange, fc.tuple(port, port), fc.array(port, { maxLength: 3 }), anyValue),
    order: fc.oneof(fc.constantFrom('random', 'ascending', 'descending'), anyValue),
    exclude: fc.oneof(fc.array(port, { maxLength: 20 }), fc.array(fc.integer({ min: 1, max: 65535 }), { maxLength: 20 }).map((a) => new Set(a)), anyValue),
    shared: fc.oneof(fc.boolean(), anyValue),
    extra: anyValue,
  },
  { requiredKeys: [] },
);
const options = fc.oneof({ weight: 3, arbitrary: validOptions }, { weight: 1, arbitrary: fc.constant(undefined) }, { weight: 3, arbitrary: wildOptions }, { weight: 1, arbitrary: anyValue });

type Call = { name: string; run: (api: Api) => unknown; count: unknown; options: unknown };
const call = fc.oneof(
  fc.tuple(count, options).map(([n, o]): Call => ({ name: 'allocate', run: (api) => api.allocate(n as number, o as never), count: n, options: o })),
  fc.tuple(count, options).map(([n, o]): Call => ({ name: 'allocateAsync', run: (api) => api.allocateAsync(n as number, o as never), count: n, options: o })),
  fc.tuple(count, options).map(([n, o]): Call => ({ name: 'reserve', run: (api) => api.reserve(n as number, o as never), count: n, options: o })),
  fc.tuple(count, options).map(([n, o]): Call => ({ name: 'reserveAsync', run: (api) => api.reserveAsync(n as number, o as never), count: n, options: o })),
  fc.tuple(port, options).map(([p, o]): Call => ({ name: 'isFree', run: (api) => api.isFree(p as number, o as never), count: 1, options: o })),
);

const isLargeValidCount = (n: unknown) => typeof n === 'number' && Number.isInteger(n) && n > MAX_VALID_COUNT && n <= 65535;

/** Checks a successful answer against what was asked. */
function expectCorrect(name: string, value: unknown, asked: Call): void {
  const given = (typeof asked.options === 'object' && asked.options !== null ? asked.options : {}) as {
    range?: [number, number];
    exclude?: Iterable<number>;
  };
  if (name === 'isFree') {
    expect(typeof value).toBe('boolean');
    return;
  }
  const ports = name.startsWith('reserve') ? (value as { ports: number[] }).ports : (value as number[]);
  expect(ports).toHaveLength(asked.count as number);
  expect(new Set(ports).size).toBe(ports.length);
  const excluded = new Set(given.exclude ?? []);
  for (const p of ports) {
    expect(Number.isInteger(p) && p >= 1 && p <= 65535).toBe(true);
    if (given.range) expect(p >= given.range[0] && p <= given.range[1]).toBe(true);
    expect(excluded.has(p)).toBe(false);
  }
}

for (const backend of backends()) {
  describe(`fuzzing the options on the ${backend} backend (seed ${SEED})`, () => {
    let api: Api;
    beforeAll(() => {
      api = loadApi(backend);
      api.isFree(10000); // the JS backend starts its worker before fds are counted
    });

    it('every call answers correctly or throws a documented error; no fd left', async () => {
      const seen = { answers: 0, errors: 0 };
      await fc.assert(
        fc.asyncProperty(call, async (asked) => {
          fc.pre(!isLargeValidCount(asked.count));
          const before = fdCount();
          let value: unknown;
          let failure: unknown;
          let returned: unknown;
          try {
            returned = asked.run(api);
          } catch (error) {
            failure = error;
            // Async APIs never throw synchronously: their errors are rejections.
            expect(asked.name.endsWith('Async'), `${asked.name} threw synchronously`).toBe(false);
          }
          if (failure === undefined) {
            try {
              value = await returned;
            } catch (error) {
              failure = error;
            }
          }
          if (failure !== undefined) {
            expectDocumented(failure);
            seen.errors++;
          } else {
            expectCorrect(asked.name, value, asked);
            seen.answers++;
            if (asked.name.startsWith('reserve')) (value as { release(): void }).release();
          }
          expect(fdCount()).toBe(before);
        }),
        { seed: SEED, numRuns: backend === 'native' ? 400 : 200 },
      );
      // The generators reach both sides: real answers, not only rejections.
      expect(seen.answers).toBeGreaterThan(10);
      expect(seen.errors).toBeGreaterThan(10);
    });
  });
}

// The CLI: argv built from its options, values that fit them, and random text.
const SAFE_HOST_ARGS = SAFE_HOSTS.filter((h) => h !== 'no-such-host.invalid'); // ENOTFOUND is covered above
const token = fc.oneof(
  { weight: 4, arbitrary: fc.constantFrom('--host', '--protocol', '--range', '--exclude', '--first', '--json', '-h', '-v', '--help', '--version', 'check', '--', '-', '--bogus', '-x', '--json=1') },
  { weight: 3, arbitrary: fc.integer({ min: -2, max: 70000 }).map(String) },
  { weight: 2, arbitrary: fc.tuple(fc.integer({ min: 0, max: 70000 }), fc.integer({ min: 0, max: 70000 })).map(([a, b]) => `${a}-${b}`) },
  { weight: 2, arbitrary: fc.constantFrom('tcp', 'udp', 'both', 'TCP', '1,2,3', '80,x', ',', '1e3', '0x10', ' 5', '5\n', 'check') },
  { weight: 2, arbitrary: fc.string({ maxLength: 12 }) },
  { weight: 1, arbitrary: fc.string({ unit: 'binary', maxLength: 8 }) },
);
/** Any value after --host becomes a safe host; large valid counts become small ones (speed, not coverage). */
function sanitize(argv: string[], hostPick: number): string[] {
  return argv.map((arg, i) => {
    if (argv[i - 1] === '--host' && !SAFE_HOST_ARGS.includes(arg)) return SAFE_HOST_ARGS[hostPick % SAFE_HOST_ARGS.length]!;
    if (arg.startsWith('--host=')) return `--host=${SAFE_HOST_ARGS[hostPick % SAFE_HOST_ARGS.length]}`;
    if (/^\d+$/.test(arg) && Number(arg) > MAX_VALID_COUNT && Number(arg) <= 65535 && argv[0] !== 'check') return String(Number(arg) % MAX_VALID_COUNT);
    return arg;
  });
}
const argvArbitrary = fc.tuple(fc.array(token, { maxLength: 6 }), fc.nat()).map(([argv, pick]) => sanitize(argv, pick));

describe(`fuzzing the CLI's argument parsing (seed ${SEED})`, () => {
  it('main(argv) returns 0 or 1 with output, or throws ERR_USAGE or a documented error; one line; no fd left', () => {
    const cli = loadCli();
    const seen = { ran: 0, usage: 0 };
    fc.assert(
      fc.property(argvArbitrary, (argv) => {
        const before = fdCount();
        const printed: string[] = [];
        let status: number | undefined;
        try {
          status = cli.main(argv, (line) => printed.push(line) > 0) as number; // (a promise only for --name, which no token here gives)
        } catch (error) {
          if ((error as { code?: unknown }).code === 'ERR_USAGE') {
            seen.usage++;
            expect(error).toBeInstanceOf(cli.UsageError);
            expect((error as Error).message).not.toContain('\n');
          } else {
            expectDocumented(error);
          }
          expect(printed).toEqual([]);
        }
        if (status !== undefined) {
          seen.ran++;
          expect([0, 1]).toContain(status);
          expect(printed.length).toBeGreaterThan(0);
        }
        expect(fdCount()).toBe(before);
      }),
      { seed: SEED, numRuns: 400 },
    );
    expect(seen.ran).toBeGreaterThan(10);
    expect(seen.usage).toBeGreaterThan(10);
  });

  it('spawned: exit 0, 1 or 2; on failure exactly one stderr line and no stack trace', () => {
    // A process argument cannot hold a NUL byte (the OS ends the string there): drop them.
    const samples = fc.sample(argvArbitrary, { seed: SEED, numRuns: 12 }).map((argv) => argv.map((arg) => arg.replace(/\0/g, '')));
    for (const argv of samples) {
      const result = spawnSync(process.execPath, [cliPath, ...argv], { cwd: root, encoding: 'utf8', timeout: 30_000 });
      const shown = JSON.stringify(argv);
      expect([0, 1, 2], `${shown}: ${result.stderr}`).toContain(result.status);
      expect(result.stderr, shown).not.toMatch(/^\s+at /m);
      if (result.status === 2 || (result.status === 1 && result.stdout === '')) {
        expect(result.stderr, shown).toMatch(/^portalloc: [^\n]*\n$/);
      }
      if (result.status === 0) expect(result.stderr, shown).toBe('');
    }
  });
});
