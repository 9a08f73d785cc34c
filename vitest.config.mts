import { defineConfig } from 'vitest/config';

// Every suite runs twice: against the native addon and against the pure-JS
// backend. Tests import the built package (dist/), as users do. Type tests
// (*.test-d.ts) run once, with the native project. PORTALLOC_COORDINATE=0: the
// suites count fds around calls, and coordination's claim sockets outlive a call
// by design (20 s); test/handoff.test.ts turns it back on where it tests it.
export default defineConfig({
  test: {
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 60_000,
    projects: [
      {
        extends: true,
        test: {
          name: 'native',
          env: { PORTALLOC_BACKEND: 'native', PORTALLOC_COORDINATE: '0' },
          typecheck: { enabled: true, include: ['test/**/*.test-d.{ts,mts}'], tsconfig: 'test/tsconfig.json' },
        },
      },
      { extends: true, test: { name: 'js', env: { PORTALLOC_BACKEND: 'js', PORTALLOC_COORDINATE: '0' } } },
    ],
  },
});
