import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseManifest } from '../../models/manifest';
import { toWireError } from '../errors';
import { contractMismatch, ModelSet } from './model-set';
import { liveOrtObjects } from './ort';
import { ortCpu, TINY_DIR, tinyManifest } from './tiny-fixture.node';

describe('graphs are checked against the contract when loaded', () => {
  it('accepts every graph of the fixture set', async () => {
    const models = new ModelSet(ortCpu, tinyManifest, {
      read: async (path) => new Uint8Array(readFileSync(TINY_DIR + path)),
    });
    for (const id of [
      'text_encoder',
      'prior',
      'unet',
      'unet_inpaint',
      'unet_depth',
      'movq_decoder',
    ] as const) {
      await expect(models.session(id)).resolves.toBeDefined();
    }
    await models.releaseAll();
  });

  it('refuses a graph whose inputs are another component’s, before anything runs', async () => {
    // A set whose "unet.onnx" holds the text encoder's graph (its manifest entry hashes match it).
    const textEncoderGraph = tinyManifest.components.text_encoder?.files[0];
    if (!textEncoderGraph) throw new Error('fixture has no text encoder');
    const manifest = parseManifest({
      ...tinyManifest,
      components: {
        ...tinyManifest.components,
        unet: { ...tinyManifest.components.unet, files: [{ ...textEncoderGraph, path: 'unet.onnx' }] },
      },
    });
    const before = liveOrtObjects().sessions;
    const models = new ModelSet(ortCpu, manifest, {
      read: async (path) =>
        new Uint8Array(readFileSync(TINY_DIR + (path === 'unet.onnx' ? textEncoderGraph.path : path))),
    });
    const error = toWireError(await models.session('unet').catch((e: unknown) => e));
    expect(error.code).toBe('MODEL_LOAD_FAILED');
    expect(error.message).toMatch(
      /unet of "kandinsky-2.2-tiny-random" does not match model-set contract 1: its inputs are \[input_ids\], the contract's are \[image_embeds, sample, timestep\]/,
    );
    expect(liveOrtObjects().sessions).toBe(before);
  });

  it('names a missing output', () => {
    expect(
      contractMismatch('text_encoder', { inputNames: ['input_ids'], outputNames: ['text_embeds'] }),
    ).toBe('it has no output last_hidden_state');
  });
});
