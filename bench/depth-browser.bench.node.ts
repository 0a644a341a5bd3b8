/**
 * The depth estimator's time per image in Chromium on WebGPU (SwiftShader here), tiny fixture set:
 * `npx vite build --config e2e/harness/vite.config.ts && npx vitest run --config bench/bench.config.node.ts bench/depth-browser.bench.node.ts`.
 * Prints the figures and writes bench/depth-browser.json; asserts nothing about time.
 */
import { writeFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import { type HarnessScope, openHarnessPage } from './harness-page.node';
import { REPO } from './sets.node';

const PORT = Number(process.env.BENCH_PORT ?? 4291);

it('depth estimation per image in the browser', async () => {
  const harness = await openHarnessPage(PORT);
  const { page } = harness;
  try {
    const results: Record<string, { firstMs: number; laterMs: number[] }> = {};
    for (const size of [64, 256]) {
      results[`${size}x${size}`] = await page.evaluate(
        ([runs, side]) => (globalThis as unknown as HarnessScope).parity.timeDepth(runs, side),
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
    await harness.close();
  }
});
