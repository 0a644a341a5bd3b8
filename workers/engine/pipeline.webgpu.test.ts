/**
 * The GPU-resident denoising loop on a real WebGPU implementation: onnxruntime-node's bundled WebGPU
 * provider (Dawn) on SwiftShader, Chromium's CPU Vulkan (TESTING.md). Proves that latents stay in GPU
 * buffers between steps (readbacks counted), that every GPU tensor is released, and that the
 * numbers match diffusers within the browser's WebGPU tolerances.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { checkReferenceCase, MUST_CHECK, webGpuTolerance } from '../../test-support/reference-cases';
import { reference, referenceInput, referenceTensor } from '../../test-support/tiny-fixture.node';
import { DecoderOnWebGpu, swiftShaderUnlessIcdSet } from '../../test-support/webgpu-fixture.node';
import type { PipelineProgress } from './hooks';
import { gpuReadbacks, liveOrtObjects } from './ort';
import { runPipeline } from './pipeline';
import { DEFAULT_SETTINGS, type GenerationSettings } from './settings';

const skipReason = swiftShaderUnlessIcdSet();
if (skipReason) console.warn(`Skipping the onnxruntime-node WebGPU tests: ${skipReason}`);

const settings: GenerationSettings = {
  ...DEFAULT_SETTINGS,
  prompt: 'a lighthouse in a storm',
  negativePrompt: 'blurry',
  width: 64,
  height: 64,
  priorSteps: 2,
  steps: 2,
  seed: 1234,
};

describe.skipIf(skipReason !== null)(
  'GPU-resident denoising on onnxruntime-node WebGPU (SwiftShader)',
  () => {
    const models = new DecoderOnWebGpu();
    const sessionsBefore = liveOrtObjects().sessions;
    afterAll(async () => {
      await models.releaseAll();
      expect(liveOrtObjects()).toEqual({ tensors: 0, sessions: sessionsBefore, deviceBuffers: 0 });
    });

    it('picks GPU residency with GPU-buffer outputs on the webgpu provider', () => {
      expect(models.residency).toBe('gpu');
      expect(models.outputsOnGpu).toBe(true);
    });

    it('reads latents back only for previews: 0 per step without, 1 per step with, 1 for the decoder', async () => {
      for (const previews of [false, true]) {
        const atStep: number[] = [];
        const before = gpuReadbacks();
        await runPipeline(
          models,
          { settings },
          {
            previews,
            onProgress: (p: PipelineProgress) => {
              if (p.stage === 'denoise') atStep.push(gpuReadbacks() - before);
            },
          },
        );
        const perStep = atStep.map((count, i) => count - (atStep[i - 1] ?? 0));
        expect(perStep, `readbacks per step, previews ${previews}`).toEqual(
          Array(settings.steps).fill(previews ? 1 : 0),
        );
        // The final latents come down once for the MoVQ decoder: proof they were GPU buffers.
        expect(gpuReadbacks() - before).toBe(settings.steps * (previews ? 1 : 0) + 1);
        expect(liveOrtObjects().tensors).toBe(0);
      }
    });

    const data = {
      image: referenceInput,
      tensor: async (...args: Parameters<typeof referenceTensor>) => referenceTensor(...args),
    };
    const onePerMode = ['txt2img_64_noguidance', 'img2img_64_s05', 'inpaint_64', 'depth_64'];
    it.each(onePerMode)('%s matches diffusers within the WebGPU tolerances', async (name) => {
      const testCase = reference.cases.find((c) => c.name === name);
      if (!testCase) throw new Error(`No reference case ${name}`);
      const { checks } = await checkReferenceCase(models, testCase, data);
      console.log(
        `${name} (node webgpu): ${checks.map((c) => `${c.name} ${c.maxAbs.toExponential(1)}`).join(', ')}`,
      );
      for (const { name: tensor, maxAbs, magnitude, shapeOk } of checks) {
        expect(shapeOk, `${tensor} shape`).toBe(true);
        expect(maxAbs, `${tensor} max abs error`).toBeLessThanOrEqual(webGpuTolerance(tensor, magnitude));
      }
      const checked = new Set(checks.map((c) => c.name));
      for (const tensor of Object.keys(testCase.tensors).filter((n) => MUST_CHECK.test(n))) {
        expect(checked.has(tensor), `${tensor} was not compared`).toBe(true);
      }
      expect(liveOrtObjects().tensors).toBe(0);
    });
  },
  // A guard against a hang, not a speed check: the first run compiles every shader on SwiftShader,
  // which takes minutes on a machine busy with other work (a CI run next to two CPU-bound jobs).
  600_000,
);
