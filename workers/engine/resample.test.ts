/**
 * The resampler against Pillow 9.4 (models/export/record_mix_reference.py): CLIPImageProcessor's
 * resize + centre crop on pictures of several sizes, and plain bicubic / Lanczos resizes, all
 * byte for byte.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { TINY_DIR } from '../../test-support/tiny-fixture.node';
import { nodeZlib } from './node-zlib.node';
import { decodePng, type RgbaImage } from './png';
import { resamplePixels, resizeRgb } from './resample';
import { clipResizeAndCrop } from './stages/image-encoder';

const MIX_DIR = `${TINY_DIR}reference-mix/`;

interface Recorded {
  readonly preprocess_cases: readonly {
    name: string;
    input: string;
    resized: [number, number];
    crop: string;
  }[];
  readonly resample_cases: readonly {
    name: string;
    input: string;
    output: string;
    mode: 'RGB' | 'L';
    filter: 'bicubic' | 'lanczos';
    width: number;
    height: number;
  }[];
}

const recorded = JSON.parse(readFileSync(`${MIX_DIR}cases.json`, 'utf8')) as Recorded;

function png(path: string): Promise<RgbaImage> {
  return decodePng(new Uint8Array(readFileSync(MIX_DIR + path)), nodeZlib, 1e7);
}

/** Channel values that differ, and by how much at most. */
function differences(actual: Uint8Array, expected: Uint8Array): { count: number; max: number } {
  expect(actual.length).toBe(expected.length);
  let count = 0;
  let max = 0;
  for (let i = 0; i < expected.length; i++) {
    const d = Math.abs((actual[i] ?? 0) - (expected[i] ?? 0));
    if (d > 0) count++;
    max = Math.max(max, d);
  }
  return { count, max };
}

function channel(image: RgbaImage, c: number): Uint8Array {
  return image.data.filter((_, i) => i % 4 === c);
}

describe('resampling reproduces Pillow', () => {
  it('has every recorded case', () => {
    // Up- and down-scaling, square, tall, wide, one side already 224, and an identity.
    expect(recorded.preprocess_cases.length).toBeGreaterThanOrEqual(8);
    expect(recorded.resample_cases.map((c) => c.filter)).toEqual(
      expect.arrayContaining(['bicubic', 'lanczos']),
    );
  });

  it.each(recorded.preprocess_cases.map((c) => [c.name, c] as const))(
    'CLIPImageProcessor resize + centre crop: %s',
    async (_name, testCase) => {
      const input = await png(testCase.input);
      const expected = await png(testCase.crop);
      const crop = clipResizeAndCrop(input, 224);
      expect([crop.width, crop.height]).toEqual([224, 224]);
      expect(differences(crop.data, expected.data)).toEqual({ count: 0, max: 0 });
    },
  );

  it.each(recorded.resample_cases.map((c) => [c.name, c] as const))(
    'Image.resize: %s',
    async (_name, testCase) => {
      const input = await png(testCase.input);
      const expected = await png(testCase.output);
      if (testCase.mode === 'L') {
        const out = resamplePixels(
          channel(input, 0),
          input.width,
          input.height,
          1,
          testCase.width,
          testCase.height,
          testCase.filter,
        );
        expect(differences(out, channel(expected, 0))).toEqual({ count: 0, max: 0 });
      } else {
        const out = resizeRgb(input, testCase.width, testCase.height, testCase.filter);
        expect(differences(out.data, expected.data)).toEqual({ count: 0, max: 0 });
      }
    },
  );

  it('refuses empty sizes', () => {
    expect(() => resamplePixels(new Uint8Array(4), 2, 2, 1, 0, 2, 'bicubic')).toThrow(RangeError);
  });
});
