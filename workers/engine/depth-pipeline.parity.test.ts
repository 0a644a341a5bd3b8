/**
 * Depth control from a photo, end to end, against diffusers (models/export/record_depth_reference.py):
 * photo → transformers depth-estimation → make_hint → KandinskyV22PriorPipeline (or, with a prior
 * strength, KandinskyV22PriorEmb2EmbPipeline on the photo twice) → KandinskyV22ControlnetImg2ImgPipeline,
 * one generator, on onnxruntime-node (CPU), both residencies.
 */
import { describe, expect, it } from 'vitest';
import { compareFloat32 } from './compare';
import { type DepthPipelineCase, depthInput, depthReference, depthTensor } from './depth-reference.node';
import { liveOrtObjects } from './ort';
import { runPipeline } from './pipeline';
import { settingsFromParams } from './reference-cases';
import type { GenerationSettings } from './settings';
import { openTinyModelSet } from './tiny-fixture.node';

function settingsOf(c: DepthPipelineCase): GenerationSettings {
  return {
    ...settingsFromParams('depth', c.params),
    ...(c.prior === 'emb2emb' ? { priorStrength: c.params.prior_strength as number } : {}),
  };
}

/** The engine's trace names that the recorder stored under another name. */
const RECORDED_AS: Readonly<Record<string, string>> = {
  input_hint: 'depth_hint',
  image_encoder_image_embeds: 'photo_image_embeds',
  prior_0_prior_noise: 'prior_0_noise',
  prior_1_prior_noise: 'prior_1_noise',
};

// Same bounds as pipeline.parity.test.ts (measured there over every case).
function tolerance(name: string, magnitude: number): number {
  if (name.endsWith('_noise')) return 1e-6;
  if (name === 'output_image') return 1 / 255;
  if (name === 'movq_output') return 1e-4 * Math.max(1, magnitude);
  if (name === 'depth_predicted_depth') return 1e-6; // values ≤ 0.03
  if (name === 'input_hint') return 1 / 255 + 1e-7; // one uint8 level of the depth map (see depth-estimator.parity.test.ts)
  return 1e-4;
}

describe.each(['cpu', 'gpu'] as const)('depth from a photo, image to image (%s residency)', (residency) => {
  it.each(depthReference.cases.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
    const models = openTinyModelSet({ residency });
    const traced = new Map<string, { data: Float32Array | BigInt64Array; dims: readonly number[] }>();
    const stages: string[] = [];
    let depthPreview: { width: number; height: number } | null = null;
    try {
      const result = await runPipeline(
        models,
        { settings: settingsOf(c), initImage: await depthInput(c.inputs.photo) },
        {
          trace: (name, data, dims) => traced.set(name, { data: data.slice(), dims: [...dims] }),
          onProgress: (p) => {
            stages.push(p.stage);
            if (p.stage === 'depth') depthPreview = { width: p.depthMap.width, height: p.depthMap.height };
          },
        },
      );
      expect(result.images[0]?.width).toBe(c.params.width);
      expect(result.images[0]?.height).toBe(c.params.height);
    } finally {
      await models.releaseAll();
    }
    // The depth map is reported once, before the prior, at the output size.
    expect(stages.indexOf('depth')).toBeGreaterThanOrEqual(0);
    expect(stages.indexOf('depth')).toBeLessThan(stages.indexOf('prior'));
    expect(depthPreview).toEqual({ width: c.params.width, height: c.params.height });

    const compared: string[] = [];
    const errors: string[] = [];
    for (const [name, { data, dims }] of traced) {
      const recorded = RECORDED_AS[name] ?? name;
      if (!c.tensors[recorded]) continue;
      const expected = depthTensor(c.name, recorded);
      expect(dims, `${name} shape`).toEqual(expected.shape);
      const magnitude = expected.data.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      const { maxAbs } = compareFloat32(Array.from(data, Number), expected.data);
      expect(maxAbs, `${name} max abs error`).toBeLessThanOrEqual(tolerance(name, magnitude));
      compared.push(name);
      errors.push(`  ${name}: ${maxAbs.toExponential(2)} (max |x| ${magnitude.toPrecision(3)})`);
    }
    console.log(`${c.name} (${residency} residency)\n${errors.join('\n')}`);
    // Every stage that could go wrong was compared, not just what happened to be traced.
    const steps = Array.from(
      { length: Math.floor(c.params.num_inference_steps * c.params.strength) },
      (_, i) => `decoder_latents_${i}`,
    );
    for (const name of [
      'depth_predicted_depth',
      'input_hint',
      'image_embeds',
      'negative_image_embeds',
      'input_image',
      'image_latents',
      'decoder_noise',
      ...steps,
      'movq_output',
      'output_image',
      ...(c.prior === 'emb2emb'
        ? ['image_encoder_image_embeds', 'prior_0_prior_noise', 'prior_1_prior_noise']
        : []),
    ]) {
      expect(compared, `${name} compared`).toContain(name);
    }
    expect(liveOrtObjects().tensors).toBe(0);
  });
});
