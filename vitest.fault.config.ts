import { defineConfig } from 'vitest/config';

// Fault tests: HAProxy + real `lab serve`/`lab grader` processes + Postgres, one file at a time.
export default defineConfig({
  test: {
    globalSetup: ['./test/global-setup.ts'],
    include: ['test/fault/**/*.test.ts'],
    pool: 'forks',
    fileParallelism: false,
    testTimeout: 120_000,
    hookTimeout: 120_000,
  },
});
