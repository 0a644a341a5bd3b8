import { describe, expect, it } from 'vitest';
import { openTinyModelSet } from '../../test-support/tiny-fixture.node';
import { toWireError } from '../errors';
import type { PipelineProgress } from './hooks';
import { liveOrtObjects } from './ort';
import { runPipeline } from './pipeline';
import { DEFAULT_SETTINGS, type GenerationSettings } from './settings';

const settings: GenerationSettings = {
  ...DEFAULT_SETTINGS,
  prompt: 'a lighthouse in a storm',
  negativePrompt: 'blurry',
  width: 64,
  height: 64,
  priorSteps: 2,
  steps: 3,
  seed: 1234,
};

describe('pipeline control', () => {
  it('reports every stage and step in order, with previews only when asked', async () => {
    const models = openTinyModelSet();
    const seen: PipelineProgress[] = [];
    await runPipeline(
      models,
      { settings: { ...settings, numImages: 2 } },
      { onProgress: (p) => seen.push(p), previews: true },
    );
    const stages = seen.map((p) =>
      'step' in p
        ? `${p.stage}${p.step}/${p.steps}`
        : p.stage === 'loop-start'
          ? `${p.loop}-start/${p.steps}`
          : p.stage,
    );
    // Each new session is announced after its files are read; each loop before its first step.
    expect(stages).toEqual([
      'load',
      'session',
      'load',
      'session',
      'load',
      'session',
      'load',
      'session',
      'encode',
      'prior-start/2',
      'prior1/2',
      'prior2/2',
      'denoise-start/3',
      'denoise1/3',
      'denoise2/3',
      'denoise3/3',
      'decode',
      'decode',
    ]);
    const denoise = seen.filter((p) => p.stage === 'denoise');
    expect(denoise.every((p) => p.preview?.width === 8 && p.preview.data.length === 8 * 8 * 4)).toBe(true);

    const quiet: PipelineProgress[] = [];
    await runPipeline(models, { settings }, { onProgress: (p) => quiet.push(p) });
    expect(quiet.some((p) => p.stage === 'denoise' && p.preview)).toBe(false);
    // The second run reuses every session: loads, but no session is created again.
    expect(quiet.filter((p) => p.stage === 'load')).toHaveLength(4);
    expect(quiet.some((p) => p.stage === 'session')).toBe(false);
    await models.releaseAll();
  });

  it('is deterministic: the same seed gives the same pixels, another seed does not', async () => {
    const models = openTinyModelSet();
    const a = await runPipeline(models, { settings });
    const b = await runPipeline(models, { settings });
    const c = await runPipeline(models, { settings: { ...settings, seed: 1235 } });
    expect(b.images[0]?.data).toEqual(a.images[0]?.data);
    expect(c.images[0]?.data).not.toEqual(a.images[0]?.data);
    await models.releaseAll();
  });

  it('cancels between steps with CANCELLED and leaves no tensor behind', async () => {
    const models = openTinyModelSet();
    const before = liveOrtObjects().tensors;
    for (const cancelAt of ['prior', 'denoise', 'decode'] as const) {
      const controller = new AbortController();
      const run = runPipeline(
        models,
        { settings },
        {
          signal: controller.signal,
          onProgress: (p) => {
            if (p.stage === cancelAt) controller.abort();
          },
        },
      );
      await expect(run).rejects.toSatisfy((e) => toWireError(e).code === 'CANCELLED');
      expect(liveOrtObjects().tensors).toBe(before);
    }
    // The next job still works.
    const after = await runPipeline(models, { settings });
    expect(after.images).toHaveLength(1);
    await models.releaseAll();
  });

  it('creates and disposes every tensor and session over 20 generations of every mode', async () => {
    const sessionsBefore = liveOrtObjects().sessions;
    const models = openTinyModelSet();
    const image = { width: 64, height: 64, data: new Uint8Array(64 * 64 * 4).fill(128) };
    const mask = { width: 64, height: 64, data: new Uint8Array(64 * 64).fill(255) };
    const modes: Parameters<typeof runPipeline>[1][] = [
      { settings },
      { settings: { ...settings, mode: 'img2img', strength: 0.7 }, initImage: image },
      { settings: { ...settings, mode: 'inpaint' }, initImage: image, mask },
      { settings: { ...settings, mode: 'depth' }, depthMap: image },
      { settings: { ...settings, mode: 'img2img', strength: 0.7, priorStrength: 0.5 }, initImage: image },
    ];
    for (let run = 0; run < 20; run++) {
      await runPipeline(models, modes[run % modes.length] as Parameters<typeof runPipeline>[1], {
        lowMemory: run % 2 === 1,
      });
      expect(liveOrtObjects().tensors).toBe(0);
    }
    await models.releaseAll();
    expect(liveOrtObjects()).toEqual({ tensors: 0, sessions: sessionsBefore, deviceBuffers: 0 });
  });

  it('rejects missing or mis-sized inputs with a clear message before running anything', async () => {
    const models = openTinyModelSet();
    const small = { width: 32, height: 32, data: new Uint8Array(32 * 32 * 4) };
    const photo = { width: 64, height: 64, data: new Uint8Array(64 * 64 * 4).fill(90) };
    const cases: [Parameters<typeof runPipeline>[1], RegExp][] = [
      [{ settings: { ...settings, mode: 'img2img' } }, /An input image is needed for img2img/],
      [{ settings: { ...settings, mode: 'img2img' }, initImage: small }, /32×32 but the output is 64×64/],
      [
        {
          settings: { ...settings, mode: 'inpaint' },
          initImage: { ...small, width: 64, height: 64, data: new Uint8Array(64 * 64 * 4) },
          mask: { width: 64, height: 64, data: new Uint8Array(64 * 64) },
        },
        /The mask is empty/,
      ],
      [{ settings: { ...settings, mode: 'depth' } }, /A depth map is needed/],
      [
        { settings: { ...settings, mode: 'depth', priorStrength: 0.5 }, depthMap: photo },
        /needs img2img, or depth control from a photo/,
      ],
      [
        {
          settings: { ...settings, mode: 'img2img', priorStrength: 0.5 },
          initImage: photo,
          mix: [{ kind: 'prompt', prompt: 'a cat', weight: 1 }],
        },
        /cannot be combined/,
      ],
      [
        { settings: { ...settings, mode: 'img2img', priorStrength: 0.4 }, initImage: photo },
        /Prior strength 0.4 with 2 prior steps runs no prior step/,
      ],
    ];
    const sessionsBefore = liveOrtObjects().sessions;
    for (const [request, message] of cases) {
      const error = await runPipeline(models, request).catch((e: unknown) => e);
      expect(toWireError(error)).toMatchObject({
        code: 'INVALID_INPUT',
        message: expect.stringMatching(message),
      });
    }
    expect(liveOrtObjects().sessions).toBe(sessionsBefore);
  });
});
