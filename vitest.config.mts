import { defineConfig } from 'vitest/config';

// Every suite runs twice: against the native addon and against the pure-JS
// backend, in the default mode users get (coordination on). Tests import the
// built package (dist/), as users do. Type tests (*.test-d.ts) run once, with
// the native project. Suites that count fds count claim sockets apart
// (test/helpers.ts, openFds).
// One file at a time, the native project's before the JS one's: suites prove a port free, then bind it, and a suite
// running beside them (they take thousands of ports) can take it in between.
export default defineConfig({
  test: {
    pool: 'forks',
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    projects: [
      {
        extends: true,
        test: {
          name: 'native',
          sequence: { groupOrder: 0 },
          env: { PORTALLOC_BACKEND: 'native' },
          typecheck: { enabled: true, include: ['test/**/*.test-d.{ts,mts}'], tsconfig: 'test/tsconfig.json' },
        },
      },
      { extends: true, test: { name: 'js', sequence: { groupOrder: 1 }, env: { PORTALLOC_BACKEND: 'js' } } },
    ],
  },
});
