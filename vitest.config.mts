import { defineConfig } from 'vitest/config';

// Every suite runs twice: against the native addon and against the pure-JS
// backend. Tests import the built package (dist/), as users do. Type tests
// (*.test-d.ts) run once, with the native project. PORTALLOC_COORDINATE=0: the
// suites count fds around calls, and coordination's claim sockets outlive a call
// by design (20 s); test/handoff.test.ts turns it back on where it tests it.
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
          env: { PORTALLOC_BACKEND: 'native', PORTALLOC_COORDINATE: '0' },
          typecheck: { enabled: true, include: ['test/**/*.test-d.{ts,mts}'], tsconfig: 'test/tsconfig.json' },
        },
      },
      { extends: true, test: { name: 'js', sequence: { groupOrder: 1 }, env: { PORTALLOC_BACKEND: 'js', PORTALLOC_COORDINATE: '0' } } },
    ],
  },
});
