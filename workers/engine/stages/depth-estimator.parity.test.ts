/**
 * Depth estimation from a photo against transformers' `depth-estimation` pipeline on the tiny
 * Depth Anything model (models/export/record_depth_reference.py), on onnxruntime-node (CPU).
 * Each stage is checked on the recorded input of that stage, so a failure names the stage.
 */
import { describe, expect, it } from 'vitest';
import { compareFloat32 } from '../../../test-support/compare';
import { compareDepthEstimate, depthMapPixelsOffAllowed } from '../../../test-support/depth-reference';
import {
  depthData,
  depthInput,
  depthReference,
  depthTensor,
} from '../../../test-support/depth-reference.node';
import { openTinyModelSet } from '../../../test-support/tiny-fixture.node';
import { depthMapToHint } from '../image';
import { liveOrtObjects } from '../ort';
import {
  bicubicResizePlane,
  depthInputSize,
  depthPixelValues,
  depthToUint8,
  estimateDepth,
} from './depth-estimator';

const size = depthReference.depth_image_processor.size;

describe('DPTImageProcessor (keep aspect ratio, multiple of 14)', () => {
  it('picks the size transformers picked for every recorded photo', () => {
    expect(depthReference.estimate_cases.length).toBeGreaterThanOrEqual(4);
    for (const c of depthReference.estimate_cases) {
      const got = depthInputSize(c.width, c.height, size);
      expect([got.height, got.width], c.name).toEqual(c.processed);
    }
  });

  it('rounds halves to even like Python and scales by the side closer to 1', () => {
    // 518 / 1024 vs 518 / 768: the height's scale is closer to 1, so 1024 · 518/768 = 690.67 → 686.
    expect(depthInputSize(1024, 768, 518)).toEqual({ width: 686, height: 518 });
    // 49 px at scale 1: 49 / 14 = 3.5 → 4 (even) · 14 = 56; 63 / 14 = 4.5 → 4 · 14 = 56.
    expect(depthInputSize(49, 518, 518)).toEqual({ width: 56, height: 518 });
    expect(depthInputSize(63, 518, 518)).toEqual({ width: 56, height: 518 });
  });

  it('gives the recorded pixel_values for every photo', async () => {
    for (const c of depthReference.estimate_cases) {
      const photo = await depthInput(c.input);
      const got = depthPixelValues(photo, size);
      const expected = depthTensor(`estimate/${c.name}`, 'pixel_values');
      expect([1, 3, got.height, got.width]).toEqual(expected.shape);
      expect(compareFloat32(got.data, expected.data).maxAbs, c.name).toBeLessThanOrEqual(1e-6);
    }
  });
});

describe('depth-estimation post-processing', () => {
  it('resizes the recorded prediction and casts it to the recorded uint8 depth map', () => {
    // torch's vectorised bicubic can differ from a scalar float32 port by an ulp, which moves a
    // value sitting just under an integer across the uint8 cast (seen: 101.99998 vs 102 at 2 of
    // 49,563 pixels). Allow one level at one pixel in 10,000; anything systematic fails.
    let differing = 0;
    let total = 0;
    for (const c of depthReference.estimate_cases) {
      const predicted = depthTensor(`estimate/${c.name}`, 'predicted_depth');
      const [, h = 0, w = 0] = predicted.shape;
      const resized = bicubicResizePlane(predicted.data, w, h, c.width, c.height);
      const grey = depthToUint8(resized);
      const expected = depthTensor(`estimate/${c.name}`, 'depth_map').data;
      for (let i = 0; i < grey.length; i++) {
        const d = Math.abs((grey[i] ?? 0) - (expected[i] ?? 0));
        expect(d, `${c.name} pixel ${i}`).toBeLessThanOrEqual(1);
        if (d) differing++;
      }
      total += grey.length;
    }
    expect(differing, `${differing} of ${total} pixels differ`).toBeLessThanOrEqual(
      Math.floor(total / 10_000),
    );
  });

  it('wraps negative values like numpy and maps an all-zero prediction to black', () => {
    // max 2 → 127.5 · v: −0.01 → −1.275 → −1 → 255; −0.001 → −0.1275 → 0.
    expect([...depthToUint8(Float32Array.from([2, 1, -0.01, -0.001]))]).toEqual([255, 127, 255, 0]);
    expect([...depthToUint8(new Float32Array(3))]).toEqual([0, 0, 0]);
  });

  it('makes the hint of diffusers make_hint from the depth map', () => {
    const c = depthReference.estimate_cases[0];
    if (!c) throw new Error('no estimate case');
    const grey = depthTensor(`estimate/${c.name}`, 'depth_map').data;
    const data = new Uint8Array(grey.length * 4);
    grey.forEach((g, i) => {
      data.set([g, g, g, 255], i * 4);
    });
    const hint = depthMapToHint({ width: c.width, height: c.height, data });
    expect(compareFloat32(hint, depthTensor(`estimate/${c.name}`, 'hint').data).maxAbs).toBe(0);
  });
});

describe('estimateDepth on the tiny depth_estimator graph', () => {
  it('reproduces predicted_depth and the depth map of every photo', async () => {
    const models = openTinyModelSet();
    try {
      for (const c of depthReference.estimate_cases) {
        const check = await compareDepthEstimate(
          c,
          await estimateDepth(models, await depthInput(c.input)),
          depthData,
        );
        expect(check.predictedMaxRel, `${c.name} predicted_depth`).toBeLessThanOrEqual(1e-4);
        // ORT and torch differ by ~1e-7, which can move a value across an integer boundary of
        // the uint8 cast: allow a level of difference at a few pixels, never more.
        expect(check.sizeOk, `${c.name} depth map size`).toBe(true);
        expect(check.pixelsOffByMore, `${c.name} pixels off by more than a level`).toBe(0);
        expect(check.pixelsOff, c.name).toBeLessThanOrEqual(depthMapPixelsOffAllowed(check.pixels));
      }
    } finally {
      await models.releaseAll();
    }
    expect(liveOrtObjects().tensors).toBe(0);
  });
});
