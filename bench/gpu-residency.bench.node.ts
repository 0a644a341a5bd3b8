/**
 * GPU residency of the denoising loop: ms per decoder step and GPU → CPU readbacks per step, with
 * the latents read back every step and guided/stepped in JavaScript ('cpu' residency, the
 * reference path) vs kept in GPU buffers and stepped by the step graph ('gpu' residency), on
 * onnxruntime-node's WebGPU provider (SwiftShader here; a real GPU where a Vulkan driver is set).
 *
 *   npx vitest run --config bench/bench.config.node.ts bench/gpu-residency.bench.node.ts
 *
 * Tiny fixture UNet (random weights) at 64×64 and 256×256 pixels (8² and 32² latents), CFG on
 * (UNet batch 2). Text encoder, prior and MoVQ run on the CPU provider (they are not what is
 * measured). Each configuration runs once to compile its shaders, then once measured. A step's time
 * is the denoise stage's time (which ends with the final latents on the CPU) ÷ steps: the gap
 * between progress events would flatter the resident loop, whose `run` calls return once the GPU
 * work is queued, not done (it is paid for at the final readback).
 * Figures, not pass/fail; SwiftShader on a shared 2-core machine is noisy: compare within one run.
 */
import { expect, it } from 'vitest';
import { DecoderOnWebGpu, swiftShaderUnlessIcdSet } from '../test-support/webgpu-fixture.node';
import type { Residency } from '../workers/engine/model-set';
import { gpuReadbacks, liveOrtObjects } from '../workers/engine/ort';
import { runPipeline } from '../workers/engine/pipeline';
import { DEFAULT_SETTINGS, type GenerationSettings } from '../workers/engine/settings';

const skipReason = swiftShaderUnlessIcdSet();
const STEPS = Number(process.env.BENCH_STEPS ?? 3);
const SIZES = (process.env.BENCH_SIZES ?? '64,256').split(',').map(Number);

interface Measured {
  readonly size: number;
  readonly residency: Residency;
  readonly msPerStep: number;
  readonly readbacksPerStep: number;
  readonly readbacksPerStepWithPreviews: number;
}

async function measure(size: number, residency: Residency): Promise<Measured> {
  const models = new DecoderOnWebGpu({ residency });
  const settings: GenerationSettings = {
    ...DEFAULT_SETTINGS,
    prompt: 'a lighthouse in a storm',
    width: size,
    height: size,
    priorSteps: 2,
    steps: STEPS,
    seed: 42,
  };
  try {
    await runPipeline(models, { settings: { ...settings, steps: 1 } }); // compile shaders for this shape
    const run = async (previews: boolean) => {
      const readbacks: number[] = [];
      const before = gpuReadbacks();
      const result = await runPipeline(
        models,
        { settings },
        {
          previews,
          onProgress: (p) => {
            if (p.stage === 'denoise') readbacks.push(gpuReadbacks() - before);
          },
        },
      );
      const perStep = readbacks.map((r, i) => r - (readbacks[i - 1] ?? 0));
      return {
        msPerStep: result.timings.denoise / STEPS,
        readbacksPerStep: perStep.reduce((a, b) => a + b, 0) / perStep.length,
      };
    };
    const plain = await run(false);
    const withPreviews = size <= 64 ? (await run(true)).readbacksPerStep : Number.NaN;
    return { size, residency, ...plain, readbacksPerStepWithPreviews: withPreviews };
  } finally {
    await models.releaseAll();
  }
}

it.skipIf(skipReason !== null)('GPU residency: ms per decoder step, CPU loop vs GPU-resident', async () => {
  const results: Measured[] = [];
  for (const size of SIZES) {
    for (const residency of ['cpu', 'gpu'] as const) results.push(await measure(size, residency));
  }
  const rows = results.map(
    (r) =>
      `| ${r.size}×${r.size} | ${r.residency === 'cpu' ? 'CPU loop (readback each step)' : 'GPU-resident'} | ${r.msPerStep.toFixed(0)} | ${r.readbacksPerStep} | ${Number.isNaN(r.readbacksPerStepWithPreviews) ? '—' : r.readbacksPerStepWithPreviews} |`,
  );
  const ratios = SIZES.map((size) => {
    const [cpu, gpu] = (['cpu', 'gpu'] as const).map((res) =>
      results.find((r) => r.size === size && r.residency === res),
    );
    return `${size}×${size}: GPU-resident / CPU loop = ${((gpu?.msPerStep ?? Number.NaN) / (cpu?.msPerStep ?? Number.NaN)).toFixed(3)}`;
  });
  console.log(
    [
      `onnxruntime-node WebGPU, ICD ${process.env.VK_ICD_FILENAMES}, ${STEPS} steps, CFG (UNet batch 2), tiny UNet`,
      '| image | loop | ms / step | engine GPU readbacks / step | with previews |',
      '| --- | --- | --- | --- | --- |',
      ...rows,
      ...ratios,
    ].join('\n'),
  );
  // The 'cpu' loop's UNet output (noise_pred, [2, 8, h, w]) comes back inside session.run as a CPU
  // tensor, so the engine's counter can't see it; the resident loop must count none without previews.
  for (const r of results.filter((m) => m.residency === 'gpu')) expect(r.readbacksPerStep).toBe(0);
  expect(liveOrtObjects().tensors).toBe(0);
});
