import { expect, type Page, test } from '@playwright/test';
import type * as Comlink from 'comlink';
import { HARNESS_PORT } from '../playwright.config';
import { depthMapPixelsOffAllowed, depthMustCompare } from '../test-support/depth-reference';
import { depthReference } from '../test-support/depth-reference.node';
import { mixMustCompare } from '../test-support/mix-reference';
import { mixReference } from '../test-support/mix-reference.node';
import { MUST_CHECK, type TensorCheck, webGpuTolerance } from '../test-support/reference-cases';
import { reference } from '../test-support/tiny-fixture.node';
import type { ParityHarness } from './harness/parity.worker';

/**
 * Browser tolerances (max absolute error) for onnxruntime-web's WebGPU provider on SwiftShader:
 * test-support/reference-cases.ts's webGpuTolerance. WebGPU shaders accumulate in other orders
 * than torch's CPU kernels and use fused multiply-adds, so errors are ~5× those in Node. Worst
 * measured over all cases (onnxruntime-web 1.30 JSEP, Chromium 156 SwiftShader): embeddings 2.5e-5,
 * latents 2.9e-4, MoVQ output 1.1e-4 of its magnitude, final image 2.0e-3 (half an 8-bit level).
 */
const browserTolerance = webGpuTolerance;

type Harness = { parity: Comlink.Remote<ParityHarness> };

/** Logs a case's errors and checks each against its tolerance and that `mustCompare` were compared. */
function expectWithin(
  caseName: string,
  { checks, ms }: { checks: TensorCheck[]; ms: number },
  toleranceOf: (name: string, magnitude: number) => number,
  mustCompare: readonly string[],
): void {
  // The check nearest its tolerance (a share of 1 is the limit).
  const worst = checks.reduce<{ name: string; share: number; maxAbs: number; tolerance: number } | null>(
    (w, c) => {
      const tolerance = toleranceOf(c.name, c.magnitude);
      const share = tolerance === 0 ? (c.maxAbs === 0 ? 0 : Number.POSITIVE_INFINITY) : c.maxAbs / tolerance;
      return w && !(share > w.share) ? w : { name: c.name, share, maxAbs: c.maxAbs, tolerance };
    },
    null,
  );
  console.log(
    `${caseName} (${(ms / 1000).toFixed(1)} s): ${checks
      .map((c) => `${c.name} ${c.maxAbs.toExponential(1)}`)
      .join(', ')}${
      worst
        ? `; nearest its tolerance: ${worst.name} ${worst.maxAbs.toExponential(1)} of ${worst.tolerance.toExponential(1)}`
        : ''
    }`,
  );
  for (const { name, maxAbs, magnitude, shapeOk } of checks) {
    expect(shapeOk, `${caseName}: ${name} shape`).toBe(true);
    expect(maxAbs, `${caseName}: ${name} max abs error`).toBeLessThanOrEqual(toleranceOf(name, magnitude));
  }
  const checked = new Set(checks.map((c) => c.name));
  for (const name of mustCompare) {
    expect(checked.has(name), `${caseName}: ${name} was not compared`).toBe(true);
  }
}

/**
 * The reference cases run here: in the browser only onnxruntime-web's kernels differ from Node,
 * which checks every case (workers/engine/pipeline.parity.test.ts). A case whose twin differs only
 * by its negative prompt runs the same kernels on other text-encoder inputs, so the twin with the
 * negative prompt is left out where the plain one runs (txt2img_64_x2_neg still covers negative
 * prompts). Seed mode 'separate' only changes which generator the host draws from, and a size
 * rounded up only the host's arithmetic: Node checks those cases. E2E_ALL_CASES=1 runs all of them
 * (about 4 min more on two cores).
 */
const browserCases = process.env.E2E_ALL_CASES
  ? reference.cases
  : reference.cases.filter(
      (c) =>
        !(c.name.endsWith('_neg') && reference.cases.some((o) => `${o.name}_neg` === c.name)) &&
        c.params.seed_mode !== 'separate' &&
        // Rounding a size up is host arithmetic (Node checks it): the kernels are txt2img_h64_w128's.
        c.name !== 'txt2img_h64_w96',
    );

test('the reference cases run on onnxruntime-web WebGPU within tolerance of diffusers', async ({ page }) => {
  // SwiftShader runs each 64-px case in ~20 s on two cores.
  test.setTimeout(15 * 60_000);
  await page.goto(`http://localhost:${HARNESS_PORT}/`);
  await expect(page.locator('body')).toHaveAttribute('data-ready', 'true');
  expect(browserCases.map((c) => c.name)).toEqual(
    process.env.E2E_ALL_CASES
      ? reference.cases.map((c) => c.name)
      : [
          'txt2img_64',
          'txt2img_h64_w128',
          'txt2img_64_x2_neg',
          'txt2img_64_noguidance',
          'img2img_64_s05',
          'inpaint_64',
          'depth_64',
        ],
  );
  for (const testCase of browserCases) {
    const run = await page.evaluate(
      (name) => (globalThis as unknown as Harness).parity.runCase(name),
      testCase.name,
    );
    console.log(
      `${testCase.name} stage ms: ${Object.entries(run.timings)
        .map(([stage, ms]) => `${stage} ${Math.round(ms)}`)
        .join(' ')}`,
    );
    expectWithin(
      testCase.name,
      run,
      browserTolerance,
      Object.keys(testCase.tensors).filter((n) => MUST_CHECK.test(n)),
    );
  }
});

/**
 * The image-mixing and depth-from-a-photo recordings (reference-mix/, reference-depth/), which Node
 * checks in full (mix.parity.test.ts, depth-*.parity.test.ts): here the cheapest case of each kind
 * that still covers every stage, on one page so the sessions are shared.
 */
test.describe('mixing and depth recordings on onnxruntime-web WebGPU', () => {
  test.describe.configure({ mode: 'serial' });
  let page: Page;
  test.beforeAll(async ({ browser }) => {
    page = await browser.newPage();
    await page.goto(`http://localhost:${HARNESS_PORT}/`);
    await expect(page.locator('body')).toHaveAttribute('data-ready', 'true');
  });
  test.afterAll(async () => {
    await page.close();
  });

  // A portrait photo of odd size (75×97, processed at 56×70): the pipeline case below estimates a
  // square one. Node checks every recorded photo (depth-estimator.parity.test.ts).
  const estimateCase = 'photo_w75_h97';
  test(`the depth estimator matches transformers: ${estimateCase}`, async () => {
    test.setTimeout(3 * 60_000);
    const c = depthReference.estimate_cases.find((e) => e.name === estimateCase);
    if (!c) throw new Error(`No depth estimate case ${estimateCase}`);
    const check = await page.evaluate(
      (name) => (globalThis as unknown as Harness).parity.runDepthEstimate(name),
      c.name,
    );
    const tolerance = browserTolerance('depth_predicted_depth', check.predictedMagnitude);
    console.log(
      `depth estimate ${c.name} (${(check.ms / 1000).toFixed(1)} s): predicted_depth ` +
        `${check.predictedMaxAbs.toExponential(1)} of ${tolerance.toExponential(1)} ` +
        `(rel ${check.predictedMaxRel.toExponential(1)}, max |x| ${check.predictedMagnitude.toPrecision(2)}), ` +
        `depth map ${check.pixelsOff}/${check.pixels} pixels a level off (≤ ${depthMapPixelsOffAllowed(check.pixels)}), ` +
        `${check.pixelsOffByMore} more`,
    );
    expect(check.sizeOk, `${c.name}: depth map size`).toBe(true);
    expect(check.predictedMaxAbs, `${c.name}: predicted_depth max abs error`).toBeLessThanOrEqual(tolerance);
    expect(check.pixelsOffByMore, `${c.name}: depth map pixels off by more than a level`).toBe(0);
    expect(check.pixelsOff, `${c.name}: depth map pixels a level off`).toBeLessThanOrEqual(
      depthMapPixelsOffAllowed(check.pixels),
    );
  });

  // Emb2Emb prior on the photo, a negative prompt, estimated depth, ControlNet image to image.
  const depthCase = 'depth_img2img_64_emb2emb_neg';
  test(`depth image to image from a photo: ${depthCase}`, async () => {
    test.setTimeout(5 * 60_000);
    const c = depthReference.cases.find((d) => d.name === depthCase);
    if (!c) throw new Error(`No depth case ${depthCase}`);
    const run = await page.evaluate(
      (name) => (globalThis as unknown as Harness).parity.runDepthCase(name),
      c.name,
    );
    // MoVQ decodes once here (decodeOnce): its output is checked as the shipped run's pixels.
    expectWithin(
      c.name,
      run,
      browserTolerance,
      depthMustCompare(c).filter((name) => name !== 'movq_output'),
    );
    expect(run.stages.indexOf('depth'), 'depth reported before the prior').toBeLessThan(
      run.stages.indexOf('prior'),
    );
    expect(run.stages.indexOf('depth')).toBeGreaterThanOrEqual(0);
  });

  // A prompt and a picture: the image encoder, two prior runs (the last only draws), the decoder.
  const mixCase = 'mix_prompt_image';
  test(`image mixing: ${mixCase}`, async () => {
    test.setTimeout(5 * 60_000);
    const c = mixReference.cases.find((m) => m.name === mixCase);
    if (!c) throw new Error(`No mix case ${mixCase}`);
    const run = await page.evaluate(
      (name) => (globalThis as unknown as Harness).parity.runMixCase(name),
      c.name,
    );
    // CLIP pixel values are computed on the CPU by the same float ops as Node: exact.
    expectWithin(
      c.name,
      run,
      (name, magnitude) => (name === 'image_encoder_pixel_values' ? 0 : browserTolerance(name, magnitude)),
      mixMustCompare(c),
    );
  });
});

/**
 * Graph capture (the app's way on WebGPU, and the reference cases' above): a captured UNet loop
 * gives the same picture as a plain one, reads nothing back per step, really replays (onnxruntime
 * says so), is captured anew when the shapes change, and frees its GPU buffers with its session.
 */
test('graph-captured denoising equals the plain loop and replays on onnxruntime-web WebGPU', async ({
  page,
}) => {
  test.setTimeout(12 * 60_000); // a hang guard: 2.6 min quiet, 4.5 beside a CPU-bound job
  const replays: string[] = [];
  const captures: string[] = [];
  page.on('console', (message) => {
    const text = message.text();
    if (text.includes('Replaying the captured')) replays.push(text);
    if (text.includes('will use the graph capture feature')) captures.push(text);
  });
  await page.goto(`http://localhost:${HARNESS_PORT}/`);
  await expect(page.locator('body')).toHaveAttribute('data-ready', 'true');
  const result = await page.evaluate(() => (globalThis as unknown as Harness).parity.compareGraphCapture());
  for (const run of result.runs) {
    console.log(
      `${run.name}: captured ${run.capturedStepMs.toFixed(0)} ms/step, plain ${run.plainStepMs.toFixed(0)} ms/step, ` +
        `image max |captured − plain| ${run.imageMaxAbs.toExponential(1)}`,
    );
    // The replay dispatches the recorded kernels on the same data: the same bits.
    expect(run.imageMaxAbs, `${run.name}: image`).toBe(0);
    expect(run.capturedReadbacksPerStep, `${run.name}: readbacks per step`).toEqual(
      Array(run.capturedReadbacksPerStep.length).fill(0),
    );
  }
  expect(result.refused).toEqual([]);
  // One capture per shape change (3 loops, the third back at the first's shape after the second).
  expect(captures.length, 'sessions created with graph capture').toBe(3);
  // Each loop's first call records the graph; every later UNet call replays it: 3 loops × 3 replays.
  expect(replays.length, 'captured replays').toBe(9);
  expect(result.liveAfter).toEqual(result.liveBefore);
});
