// Vitest config for the benchmarks in bench/: `npx vitest run --config bench/bench.config.node.ts`.
// Node 20 can't run TypeScript directly and tsx isn't a dependency, so Vitest is the runner.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['bench/**/*.bench.node.ts'],
    environment: 'node',
    // One fork, gc exposed: memory baselines are taken after a collection.
    pool: 'forks',
    execArgv: ['--expose-gc', '--max-old-space-size=8192'],
    testTimeout: 600_000,
    hookTimeout: 120_000,
  },
});
