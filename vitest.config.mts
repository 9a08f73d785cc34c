import { defineConfig } from 'vitest/config';

// Every suite runs twice: against the native addon and against the pure-JS
// backend. Tests import the built package (dist/), as users do.
export default defineConfig({
  test: {
    pool: 'forks',
    testTimeout: 60_000,
    hookTimeout: 60_000,
    projects: [
      { extends: true, test: { name: 'native', env: { PORTALLOC_BACKEND: 'native' } } },
      { extends: true, test: { name: 'js', env: { PORTALLOC_BACKEND: 'js' } } },
      // Type tests (*.test-d.ts, *.test-d.mts): tsc over the built declarations, resolved by package name.
      { test: { name: 'types', typecheck: { enabled: true, only: true, include: ['test/**/*.test-d.{ts,mts}'], tsconfig: 'test/tsconfig.json' } } },
    ],
  },
});
