/**
 * NaN or infinity in a stage's output fails the generation with NUMERIC_FAILURE naming the stage,
 * instead of an all-black picture reported as success: through the real pipeline on the tiny set.
 */
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import type { Manifest } from '../../models/manifest';
import { ortCpu, TINY_DIR, tinyManifest } from '../../test-support/tiny-fixture.node';
import { toWireError } from '../errors';
import { ModelSet } from './model-set';
import { liveOrtObjects } from './ort';
import { runPipeline } from './pipeline';
import { DEFAULT_SETTINGS, type GenerationSettings } from './settings';

const settings: GenerationSettings = {
  ...DEFAULT_SETTINGS,
  prompt: 'a lighthouse',
  width: 64,
  height: 64,
  priorSteps: 2,
  steps: 2,
  seed: 3,
};

/** The tiny set, with `replace` deciding a file's bytes (a constant whose hash the manifest matches). */
function tinySet(manifest: Manifest, replace: (path: string, bytes: Uint8Array) => Uint8Array = (_, b) => b) {
  return new ModelSet(
    ortCpu,
    manifest,
    { read: async (path) => replace(path, new Uint8Array(await readFile(TINY_DIR + path))) },
    { sessionOptions: { executionProviders: ['cpu'], intraOpNumThreads: 1 } },
  );
}

async function failure(models: ModelSet) {
  try {
    await runPipeline(models, { settings });
    return null;
  } catch (error) {
    return toWireError(error);
  } finally {
    await models.releaseAll();
  }
}

describe('non-finite values at a stage boundary', () => {
  it('a NaN in a constant tensor: the prior stage fails, naming the embeddings', async () => {
    const nanStd = (path: string, bytes: Uint8Array) => {
      if (path !== 'prior_clip_std.bin') return bytes;
      const values = new Float32Array(bytes.slice().buffer);
      values[3] = Number.NaN;
      return new Uint8Array(values.buffer);
    };
    const error = await failure(tinySet(tinyManifest, nanStd));
    expect(error).toMatchObject({ code: 'NUMERIC_FAILURE' });
    expect(error?.message).toMatch(/^The prior’s image embeddings hold 1 of 32 values that are not numbers/);
    expect(liveOrtObjects().tensors).toBe(0);
  });

  it('an extreme decoder scheduler: the denoised latents fail, naming them', async () => {
    // β near 1 makes ᾱ underflow to 0, and DDPM's 1/√ᾱ step overflows.
    const manifest: Manifest = {
      ...tinyManifest,
      schedulers: {
        ...tinyManifest.schedulers,
        decoder: { ...tinyManifest.schedulers.decoder, beta_start: 0.5, beta_end: 0.9999 },
      },
    };
    const error = await failure(tinySet(manifest));
    expect(error).toMatchObject({ code: 'NUMERIC_FAILURE' });
    expect(error?.message).toMatch(/^The denoised latents hold 256 of 256 values that are not numbers/);
  });

  it('the same set, untouched, generates', async () => {
    expect(await failure(tinySet(tinyManifest))).toBeNull();
  });
});
