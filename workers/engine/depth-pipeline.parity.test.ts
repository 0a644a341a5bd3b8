/**
 * Depth control from a photo, end to end, against diffusers (models/export/record_depth_reference.py):
 * photo → transformers depth-estimation → make_hint → KandinskyV22PriorPipeline (or, with a prior
 * strength, KandinskyV22PriorEmb2EmbPipeline on the photo twice) → KandinskyV22ControlnetImg2ImgPipeline,
 * one generator, on onnxruntime-node (CPU), both residencies.
 */
import { describe, expect, it } from 'vitest';
import { checkDepthCase, depthMustCompare } from '../../test-support/depth-reference';
import { depthData, depthReference } from '../../test-support/depth-reference.node';
import { exactCheck } from '../../test-support/reference-cases';
import { openTinyModelSet } from '../../test-support/tiny-fixture.node';
import { liveOrtObjects } from './ort';

// Same bounds as pipeline.parity.test.ts (measured there over every case).
function tolerance(name: string, magnitude: number): number {
  if (exactCheck(name)) return 0; // the untraced run's pixels, CLIP's pixel values
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
    const stages: string[] = [];
    let depthPreview: { width: number; height: number } | null = null;
    let checks: Awaited<ReturnType<typeof checkDepthCase>>['checks'];
    try {
      const run = await checkDepthCase(models, c, depthData, {
        onProgress: (p) => {
          stages.push(p.stage);
          if (p.stage === 'depth') depthPreview = { width: p.depthMap.width, height: p.depthMap.height };
        },
      });
      checks = run.checks;
      expect(run.result.images[0]?.width).toBe(c.params.width);
      expect(run.result.images[0]?.height).toBe(c.params.height);
    } finally {
      await models.releaseAll();
    }
    // The depth map is reported once, before the prior, at the output size.
    expect(stages.indexOf('depth')).toBeGreaterThanOrEqual(0);
    expect(stages.indexOf('depth')).toBeLessThan(stages.indexOf('prior'));
    expect(depthPreview).toEqual({ width: c.params.width, height: c.params.height });

    const errors: string[] = [];
    for (const { name, maxAbs, magnitude, shapeOk } of checks) {
      expect(shapeOk, `${name} shape`).toBe(true);
      expect(maxAbs, `${name} max abs error`).toBeLessThanOrEqual(tolerance(name, magnitude));
      errors.push(`  ${name}: ${maxAbs.toExponential(2)} (max |x| ${magnitude.toPrecision(3)})`);
    }
    console.log(`${c.name} (${residency} residency)\n${errors.join('\n')}`);
    // Every stage that could go wrong was compared, not just what happened to be traced.
    const compared = checks.map((check) => check.name);
    for (const name of depthMustCompare(c)) {
      expect(compared, `${name} compared`).toContain(name);
    }
    expect(liveOrtObjects().tensors).toBe(0);
  });
});
