import { expect, test } from '@playwright/test';
import type * as Comlink from 'comlink';
import { HARNESS_PORT } from '../playwright.config';
import { MUST_CHECK } from '../workers/engine/reference-cases';
import { reference } from '../workers/engine/tiny-fixture.node';
import type { ParityHarness } from './harness/parity.worker';

/**
 * Browser tolerances (max absolute error) for onnxruntime-web's WebGPU provider on SwiftShader.
 * WebGPU shaders accumulate in other orders than torch's CPU kernels and use fused multiply-adds,
 * so errors are ~5× those in Node. Worst measured over all cases (onnxruntime-web 1.30 JSEP,
 * Chromium 156 SwiftShader): embeddings 2.5e-5, latents 2.9e-4, MoVQ output 1.1e-4 of its
 * magnitude, final image 2.0e-3 (half an 8-bit level).
 */
function browserTolerance(name: string, magnitude: number): number {
  if (name.endsWith('_noise')) return 1e-6; // drawn on the CPU by our torch-compatible generator
  if (name === 'output_image') return 1 / 255;
  if (name === 'movq_output') return 5e-4 * Math.max(1, magnitude);
  if (/^(decoder_latents_\d+|movq_input_latents)$/.test(name)) return 1e-3; // 2–4 UNet steps of drift
  return 1e-4;
}

test('every reference case runs on onnxruntime-web WebGPU within tolerance of diffusers', async ({
  page,
}) => {
  // SwiftShader runs each 64-px case in ~20 s on two cores.
  test.setTimeout(15 * 60_000);
  await page.goto(`http://localhost:${HARNESS_PORT}/`);
  await expect(page.locator('body')).toHaveAttribute('data-ready', 'true');
  for (const testCase of reference.cases) {
    const { checks, ms } = await page.evaluate(
      (name) => (globalThis as unknown as { parity: Comlink.Remote<ParityHarness> }).parity.runCase(name),
      testCase.name,
    );
    console.log(
      `${testCase.name} (${(ms / 1000).toFixed(1)} s): ${checks
        .map((c) => `${c.name} ${c.maxAbs.toExponential(1)}`)
        .join(', ')}`,
    );
    for (const { name, maxAbs, magnitude, shapeOk } of checks) {
      expect(shapeOk, `${testCase.name}: ${name} shape`).toBe(true);
      expect(maxAbs, `${testCase.name}: ${name} max abs error`).toBeLessThanOrEqual(
        browserTolerance(name, magnitude),
      );
    }
    const checked = new Set(checks.map((c) => c.name));
    for (const name of Object.keys(testCase.tensors).filter((n) => MUST_CHECK.test(n))) {
      expect(checked.has(name), `${testCase.name}: ${name} was not compared`).toBe(true);
    }
  }
});
