/**
 * The GPU-residency loop (UNet → step graph → UNet in ORT tensors) run on the CPU provider, against
 * the JavaScript reference loop: every mode and decoder scheduler, with and without guidance, must
 * give the same pixels; cancelling and repeated runs must leave no tensor behind.
 */
import { describe, expect, it } from 'vitest';
import { openTinyModelSet } from '../../../test-support/tiny-fixture.node';
import { toWireError } from '../../errors';
import type { PipelineProgress } from '../hooks';
import { gpuReadbacks, liveOrtObjects } from '../ort';
import { runPipeline } from '../pipeline';
import type { PipelineRequest } from '../request';
import { DECODER_SCHEDULERS, DEFAULT_SETTINGS, type GenerationSettings } from '../settings';

const settings: GenerationSettings = {
  ...DEFAULT_SETTINGS,
  prompt: 'a red fox in snow',
  negativePrompt: 'blurry',
  width: 64,
  height: 64,
  priorSteps: 2,
  steps: 4,
  seed: 77,
  numImages: 2,
};
const image = {
  width: 64,
  height: 64,
  data: Uint8Array.from({ length: 64 * 64 * 4 }, (_, i) => (i * 37) % 251),
};
const mask = {
  width: 64,
  height: 64,
  data: Uint8Array.from({ length: 64 * 64 }, (_, i) => (i % 64 < 24 ? 255 : 0)),
};
const requests: Record<GenerationSettings['mode'], PipelineRequest> = {
  txt2img: { settings },
  img2img: { settings: { ...settings, mode: 'img2img', strength: 0.75 }, initImage: image },
  inpaint: { settings: { ...settings, mode: 'inpaint' }, initImage: image, mask },
  depth: { settings: { ...settings, mode: 'depth' }, depthMap: image },
};

describe('GPU-residency denoising loop on the CPU provider', () => {
  const onHost = openTinyModelSet({ residency: 'cpu' });
  const resident = openTinyModelSet({ residency: 'gpu' });

  const cases = DECODER_SCHEDULERS.flatMap((scheduler) =>
    Object.keys(requests).flatMap((mode) => [4, 1].map((guidance) => [mode, scheduler, guidance] as const)),
  );
  it.each(cases)(
    '%s with %s, guidance %d: the same latents every step and the same image',
    async (mode, scheduler, guidance) => {
      const base = requests[mode as GenerationSettings['mode']];
      const request = { ...base, settings: { ...base.settings, scheduler, guidance } };
      const latentsOf = async (models: typeof onHost) => {
        const steps: Float32Array[] = [];
        const result = await runPipeline(models, request, {
          trace: (name, data) => {
            if (name.startsWith('decoder_latents_') || name === 'movq_input_latents')
              steps.push(Float32Array.from(data, Number));
          },
        });
        return { steps, result };
      };
      const expected = await latentsOf(onHost);
      const actual = await latentsOf(resident);
      expect(actual.steps.length).toBe(expected.steps.length);
      actual.steps.forEach((latents, i) => {
        expect(Array.from(latents), `latents ${i}`).toEqual(Array.from(expected.steps[i] as Float32Array));
      });
      expect(actual.result.floatImages).toEqual(expected.result.floatImages);
      expect(liveOrtObjects().tensors).toBe(0);
    },
  );

  it('counts no readback on the CPU provider, where nothing lives on a GPU', async () => {
    const before = gpuReadbacks();
    await runPipeline(resident, { settings: { ...settings, steps: 2 } }, { previews: true });
    expect(gpuReadbacks()).toBe(before);
  });

  it('gives previews when asked and cancels between steps, leaving no tensor behind', async () => {
    const seen: PipelineProgress[] = [];
    await runPipeline(resident, { settings }, { previews: true, onProgress: (p) => seen.push(p) });
    const denoise = seen.filter((p) => p.stage === 'denoise');
    expect(denoise).toHaveLength(settings.steps);
    expect(denoise.every((p) => p.preview?.width === 8 && p.preview.data.length === 8 * 8 * 4)).toBe(true);

    for (const cancelAfter of [1, 3]) {
      const controller = new AbortController();
      const run = runPipeline(resident, requests.inpaint, {
        signal: controller.signal,
        onProgress: (p) => {
          if (p.stage === 'denoise' && p.step === cancelAfter) controller.abort();
        },
      });
      await expect(run).rejects.toSatisfy((e) => toWireError(e).code === 'CANCELLED');
      expect(liveOrtObjects().tensors).toBe(0);
    }
  });

  it('releases its step and copy graph sessions with the model set', async () => {
    const sessionsBefore = liveOrtObjects().sessions;
    const models = openTinyModelSet({ residency: 'gpu' });
    for (const mode of ['inpaint', 'depth'] as const) {
      await runPipeline(models, requests[mode], { lowMemory: true });
      await runPipeline(models, {
        ...requests[mode],
        settings: { ...requests[mode].settings, scheduler: 'dpmpp-2m' },
      });
    }
    expect(liveOrtObjects().sessions).toBeGreaterThan(sessionsBefore);
    await models.releaseAll();
    expect(liveOrtObjects()).toEqual({ tensors: 0, sessions: sessionsBefore, deviceBuffers: 0 });
  });
});
