/**
 * The browser benchmarks' page: the test-only harness build (e2e/harness, `npx vite build --config
 * e2e/harness/vite.config.ts` first) under `vite preview`, open in Debian's Chromium with WebGPU on
 * SwiftShader, its worker's API reachable as `window.parity` (e2e/harness/parity.ts).
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { type Browser, chromium, type Page } from '@playwright/test';
import type * as Comlink from 'comlink';
import { CHROMIUM_ARGS, CHROMIUM_PATH } from '../e2e/chromium';
import type { ParityHarness } from '../e2e/harness/parity.worker';
import { REPO } from './sets.node';

/** What `page.evaluate` callbacks see as the page's global scope. */
export type HarnessScope = { parity: Comlink.Remote<ParityHarness> };

export interface HarnessPage {
  readonly browser: Browser;
  readonly page: Page;
  close(): Promise<void>;
}

/** Serves the harness on `port` and opens it; `extraArgs` go on Chromium's command line. */
export async function openHarnessPage(port: number, extraArgs: readonly string[] = []): Promise<HarnessPage> {
  if (!existsSync(`${REPO}/dist-e2e/harness/index.html`))
    throw new Error('Build the harness first: npx vite build --config e2e/harness/vite.config.ts');
  const server: ChildProcess = spawn(
    'npx',
    ['vite', 'preview', '--config', 'e2e/harness/vite.config.ts', '--port', String(port), '--strictPort'],
    { cwd: REPO, stdio: 'ignore' },
  );
  const browser = await chromium.launch({
    executablePath: CHROMIUM_PATH,
    args: [...CHROMIUM_ARGS, ...extraArgs],
  });
  const close = async () => {
    await browser.close();
    server.kill();
  };
  try {
    const page = await browser.newPage();
    for (let attempt = 0; ; attempt++) {
      try {
        await page.goto(`http://localhost:${port}/`);
        break;
      } catch (error) {
        if (attempt > 50) throw error;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    }
    await page.waitForFunction(
      () =>
        (globalThis as { document?: { body?: { dataset?: { ready?: string } } } }).document?.body?.dataset
          ?.ready === 'true',
    );
    return { browser, page, close };
  } catch (error) {
    await close();
    throw error;
  }
}
