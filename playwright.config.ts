import { existsSync } from 'node:fs';
import { defineConfig } from '@playwright/test';
import { CHROMIUM_ARGS, CHROMIUM_PATH } from './e2e/chromium';

/**
 * e2e tests drive the *built* app (vite preview) in Debian's Chromium with WebGPU on SwiftShader,
 * a CPU Vulkan: no GPU is needed. Playwright's own browser download can't run here.
 */
const chromium = CHROMIUM_PATH;
if (!existsSync(chromium)) {
  throw new Error(`No Chromium at ${chromium}: apt-get install -y chromium, or set CHROMIUM_PATH.`);
}
const port = Number(process.env.E2E_PORT ?? 4173);
/** The browser parity harness (e2e/harness), a separate test-only build. */
export const HARNESS_PORT = port + 1;

export default defineConfig({
  testDir: 'e2e',
  // SwiftShader is slow: first shader compilation alone takes seconds.
  timeout: 120_000,
  expect: { timeout: 60_000 },
  fullyParallel: false,
  workers: 1,
  forbidOnly: !!process.env.CI,
  retries: 0,
  reporter: process.env.CI ? [['list']] : [['list'], ['html', { open: 'never' }]],
  outputDir: 'test-results',
  use: {
    baseURL: `http://localhost:${port}/`,
    browserName: 'chromium',
    screenshot: 'on',
    trace: 'retain-on-failure',
    launchOptions: {
      executablePath: chromium,
      args: [...CHROMIUM_ARGS],
    },
  },
  webServer: [
    {
      command: `npx vite preview --port ${port} --strictPort`,
      url: `http://localhost:${port}/`,
      reuseExistingServer: !process.env.CI,
      timeout: 60_000,
    },
    {
      command: `npx vite preview --config e2e/harness/vite.config.ts --port ${HARNESS_PORT} --strictPort`,
      url: `http://localhost:${HARNESS_PORT}/`,
      reuseExistingServer: !process.env.CI,
      timeout: 60_000,
    },
  ],
});
