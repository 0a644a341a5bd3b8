/**
 * The depth estimator's time per image in Chromium on WebGPU (SwiftShader here), tiny fixture set:
 * `npx vite build --config e2e/harness/vite.config.ts && npx vitest run --config bench/bench.config.node.ts bench/depth-browser.bench.node.ts`.
 * Prints the figures and writes bench/depth-browser.json; asserts nothing about time.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { chromium } from '@playwright/test';
import type * as Comlink from 'comlink';
import { expect, it } from 'vitest';
import { CHROMIUM_ARGS, CHROMIUM_PATH } from '../e2e/chromium';
import type { ParityHarness } from '../e2e/harness/parity.worker';
import { REPO } from './sets.node';

const PORT = Number(process.env.BENCH_PORT ?? 4291);

it('depth estimation per image in the browser', async () => {
  if (!existsSync(`${REPO}/dist-e2e/harness/index.html`))
    throw new Error('Build the harness first (see the header).');
  const server: ChildProcess = spawn(
    'npx',
    ['vite', 'preview', '--config', 'e2e/harness/vite.config.ts', '--port', String(PORT), '--strictPort'],
    { cwd: REPO, stdio: 'ignore' },
  );
  const browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: [...CHROMIUM_ARGS] });
  try {
    const page = await browser.newPage();
    for (let attempt = 0; ; attempt++) {
      try {
        await page.goto(`http://localhost:${PORT}/`);
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
    const results: Record<string, { firstMs: number; laterMs: number[] }> = {};
    for (const size of [64, 256]) {
      results[`${size}x${size}`] = await page.evaluate(
        ([runs, side]) =>
          (globalThis as unknown as { parity: Comlink.Remote<ParityHarness> }).parity.timeDepth(runs, side),
        [6, size] as const,
      );
    }
    const median = (values: number[]) =>
      [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)] ?? Number.NaN;
    const summary = Object.fromEntries(
      Object.entries(results).map(([size, r]) => [
        size,
        { firstMs: Math.round(r.firstMs), medianMs: Math.round(median(r.laterMs)) },
      ]),
    );
    console.log('depth estimator, tiny set, Chromium SwiftShader WebGPU:', JSON.stringify(summary));
    writeFileSync(
      `${REPO}/bench/depth-browser.json`,
      `${JSON.stringify({ device: 'Chromium + SwiftShader (CPU), tiny depth model', summary }, null, 2)}\n`,
    );
    expect(Object.keys(summary)).toHaveLength(2);
  } finally {
    await browser.close();
    server.kill();
  }
});
