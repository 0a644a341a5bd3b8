import { readFileSync } from 'node:fs';
import { expect, test } from '@playwright/test';

/** The smoke graph's weights, written beside it by models/smoke/make_smoke_model.py. */
const weights = JSON.parse(
  readFileSync(new URL('../models/smoke/matmul_sigmoid.json', import.meta.url), 'utf8'),
) as {
  W: number[][];
  b: number[];
};
const input = [
  [1, 2, 3],
  [-1, 0.5, 0.25],
];

/** sigmoid(x·W + b) in plain double precision, independent of onnxruntime. */
function expectedOutput(): number[] {
  const out: number[] = [];
  for (const row of input) {
    for (let j = 0; j < weights.b.length; j++) {
      let sum = weights.b[j] ?? 0;
      row.forEach((x, k) => {
        sum += x * (weights.W[k]?.[j] ?? Number.NaN);
      });
      out.push(1 / (1 + Math.exp(-sum)));
    }
  }
  return out;
}

test('the page finds a WebGPU adapter and ONNX Runtime computes on it', async ({ page }, testInfo) => {
  const consoleErrors: string[] = [];
  page.on('pageerror', (error) => consoleErrors.push(error.message));
  await page.goto('./');

  const status = page.getByTestId('webgpu-status');
  await expect(status).toHaveAttribute('data-available', 'true');
  await expect(page.getByTestId('shader-f16')).toContainText(/yes|no/);
  await expect(page.getByTestId('max-buffer')).toContainText(/\d [kMG]?B$/);

  const selfTest = page.getByTestId('self-test');
  await expect(selfTest).toHaveAttribute('data-state', /passed|failed/);
  const state = await selfTest.getAttribute('data-state');
  expect(state, `self-test failed: ${await selfTest.textContent()}`).toBe('passed');

  expect(JSON.parse((await selfTest.getAttribute('data-shape')) ?? 'null')).toEqual([2, 4]);
  const output = JSON.parse((await selfTest.getAttribute('data-output')) ?? '[]') as number[];
  const expected = expectedOutput();
  expect(output).toHaveLength(expected.length);
  output.forEach((value, i) => {
    expect(Math.abs(value - (expected[i] ?? Number.NaN)), `output[${i}]`).toBeLessThan(1e-5);
  });
  expect(consoleErrors).toEqual([]);
  await page.screenshot({ path: testInfo.outputPath('device-status.png'), fullPage: true });
});

test('without WebGPU the page explains what to do instead of going blank', async ({ page }) => {
  // Hide WebGPU from the generator worker (where the probe runs) by prefixing its script.
  await page.route(/generator\.worker[^/]*\.js$/, async (route) => {
    const response = await route.fetch();
    const hideGpu = "Object.defineProperty(WorkerNavigator.prototype, 'gpu', { get: () => undefined });\n";
    await route.fulfill({ response, body: hideGpu + (await response.text()) });
  });
  await page.goto('./');
  const status = page.getByTestId('webgpu-status');
  await expect(status).toHaveAttribute('data-available', 'false');
  await expect(status).toContainText('does not expose WebGPU');
  await expect(status.getByRole('listitem').first()).toBeVisible();
  await expect(page.getByTestId('self-test')).toHaveCount(0);
});
