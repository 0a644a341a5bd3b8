import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['{src,workers,models,scripts,test-support,bench}/**/*.test.ts'],
    environment: 'node',
    testTimeout: 60_000,
  },
});
