// Vitest config for one benchmark probe in a fresh process (bench/probes.probe.node.ts), started by
// bench/kandinsky.bench.node.ts so that each memory figure starts from a clean process.
import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['bench/**/*.probe.node.ts'],
    environment: 'node',
    pool: 'forks',
    execArgv: ['--expose-gc', '--max-old-space-size=8192'],
    testTimeout: 1_800_000,
    hookTimeout: 120_000,
  },
});
