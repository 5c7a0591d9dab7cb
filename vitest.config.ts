import os from 'node:os';
import { defineConfig } from 'vitest/config';

// Test files in parallel, one per two cores: each file runs its own app, graders and sandboxes (some
// a browser or a supervisor of several processes) beside the one Postgres of the run, and many of them
// time things against limits (sandbox time limits, request timeouts, grading latency). Vitest's default
// (all cores but one) oversubscribes the CPU: with 6 files at once on 2 cores, 10 tests of 5 files
// failed on time alone. One file at a time on 2 cores (the default there too), 2 on 4, up to 4.
const files = Math.min(4, Math.max(1, Math.floor(os.availableParallelism() / 2)));

export default defineConfig({
  test: {
    globalSetup: ['./test/global-setup.ts'],
    include: ['src/**/*.test.ts', 'test/**/*.test.ts'],
    // The fault tests (test/fault) run afterwards on their own: they time real processes, so they
    // must not share the two cores with the rest of the suite (vitest.fault.config.ts).
    exclude: ['**/node_modules/**', 'web/**', 'test/fault/**'],
    pool: 'forks',
    maxWorkers: files,
    minWorkers: 1,
    testTimeout: 30_000,
    hookTimeout: 60_000,
    coverage: {
      provider: 'v8',
      include: ['src/**/*.ts'],
      exclude: ['src/**/*.test.ts', 'src/db/migrations/**', 'src/cli.ts'],
      reporter: ['text-summary', 'text'],
      thresholds: { lines: 90 },
    },
  },
});
