import { defineConfig } from 'vitest/config';

// Every suite runs twice: against the native addon and against the pure-JS
// backend. Tests import the built package (dist/), as users do. Type tests
// (*.test-d.ts) run once, with the native project.
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
          env: { PORTALLOC_BACKEND: 'native' },
          typecheck: { enabled: true, include: ['test/**/*.test-d.{ts,mts}'], tsconfig: 'test/tsconfig.json' },
        },
      },
      { extends: true, test: { name: 'js', env: { PORTALLOC_BACKEND: 'js' } } },
    ],
  },
});
