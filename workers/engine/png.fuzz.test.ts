/**
 * Property-based fuzzing of the PNG reader: random bytes, and mutations of valid PNGs (ours from
 * encodePng and Pillow's samples of every colour type) with their checksums repaired, so the
 * mutations reach the header, filter and zlib code instead of stopping at the CRC check. Every case
 * must end in an image or a PngError: never another exception, never a hang.
 */
import { readFileSync } from 'node:fs';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { repairChecksums, PNG_SIGNATURE as SIGNATURE } from '../../test-support/png-fuzz.node';
import { nodeZlib } from './node-zlib.node';
import { decodePng, encodePng, PngError, type RgbaImage, readPngText, type Zlib } from './png';
import { webZlib } from './web-zlib';

/** Small enough that a mutated header can't make a case slow; big enough for every sample. */
const MAX_PIXELS = 4096;

const SAMPLES = ['bilevel', 'grey', 'grey16', 'grey_alpha', 'palette', 'rgb', 'rgba'].map(
  (name) => new Uint8Array(readFileSync(new URL(`../../test-support/testdata/${name}.png`, import.meta.url))),
);

type Edit =
  | { readonly kind: 'set'; readonly at: number; readonly value: number }
  | { readonly kind: 'insert'; readonly at: number; readonly bytes: Uint8Array }
  | { readonly kind: 'delete'; readonly at: number; readonly count: number }
  | { readonly kind: 'truncate'; readonly at: number }
  /** IHDR's width, height, bit depth and colour type (bytes 16–25 of the file). */
  | {
      readonly kind: 'header';
      readonly width: number;
      readonly height: number;
      readonly bitDepth: number;
      readonly colorType: number;
    };

const editArb: fc.Arbitrary<Edit> = fc.oneof(
  fc.record({ kind: fc.constant('set' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ kind: fc.constant('insert' as const), at: fc.nat(), bytes: fc.uint8Array({ maxLength: 16 }) }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), count: fc.integer({ min: 1, max: 16 }) }),
  fc.record({ kind: fc.constant('truncate' as const), at: fc.nat() }),
  fc.record({
    kind: fc.constant('header' as const),
    width: fc.oneof(fc.integer({ min: 0, max: 70 }), fc.constant(0xffffffff)),
    height: fc.oneof(fc.integer({ min: 0, max: 70 }), fc.constant(0x80000000)),
    bitDepth: fc.constantFrom(0, 1, 2, 4, 8, 16, 3),
    colorType: fc.constantFrom(0, 2, 3, 4, 6, 1, 7),
  }),
);

function applyEdit(png: Uint8Array, edit: Edit): Uint8Array {
  const at = edit.kind === 'header' || png.length === 0 ? 0 : edit.at % png.length;
  switch (edit.kind) {
    case 'set': {
      const out = png.slice();
      out[at] = edit.value;
      return out;
    }
    case 'insert':
      return Uint8Array.from([...png.subarray(0, at), ...edit.bytes, ...png.subarray(at)]);
    case 'delete':
      return Uint8Array.from([...png.subarray(0, at), ...png.subarray(at + edit.count)]);
    case 'truncate':
      return png.subarray(0, at);
    case 'header': {
      if (png.length < 26) return png;
      const out = png.slice();
      const view = new DataView(out.buffer);
      view.setUint32(16, edit.width);
      view.setUint32(20, edit.height);
      out[24] = edit.bitDepth;
      out[25] = edit.colorType;
      return out;
    }
  }
}

const imageArb = fc
  .record({ width: fc.integer({ min: 1, max: 12 }), height: fc.integer({ min: 1, max: 12 }) })
  .chain(({ width, height }) =>
    fc.record({
      width: fc.constant(width),
      height: fc.constant(height),
      data: fc.uint8Array({ minLength: width * height * 4, maxLength: width * height * 4 }),
    }),
  );

const textArb = fc.dictionary(fc.stringMatching(/^[a-zA-Z][\w-]{0,15}$/), fc.string({ maxLength: 40 }), {
  maxKeys: 2,
});

/** A valid PNG (ours or Pillow's), edited, its checksums repaired or not. */
const mutatedPngArb = fc.record({
  base: fc.oneof(fc.constantFrom(...SAMPLES), fc.record({ image: imageArb, text: textArb })),
  edits: fc.array(editArb, { minLength: 1, maxLength: 4 }),
  repair: fc.boolean(),
});

async function basePng(
  base: Uint8Array | { image: RgbaImage; text: Record<string, string> },
): Promise<Uint8Array> {
  return base instanceof Uint8Array ? base : encodePng(base.image, base.text, nodeZlib);
}

/** Decodes and checks the outcome is an image of the size it claims, or a PngError. */
async function decodesOrRefuses(png: Uint8Array, zlib: Pick<Zlib, 'inflate'>): Promise<void> {
  let image: Awaited<ReturnType<typeof decodePng>>;
  try {
    image = await decodePng(png, zlib, MAX_PIXELS);
  } catch (error) {
    if (error instanceof PngError) return;
    throw error;
  }
  expect(image.data.length).toBe(image.width * image.height * 4);
  expect(image.width * image.height).toBeLessThanOrEqual(MAX_PIXELS);
}

function readsTextOrRefuses(png: Uint8Array): void {
  try {
    const text = readPngText(png);
    for (const value of Object.values(text)) expect(typeof value).toBe('string');
  } catch (error) {
    if (!(error instanceof PngError)) throw error;
  }
}

describe('PNG decoder fuzzing (fast-check)', () => {
  it('ends random bytes in an image or a PngError', async () => {
    const bytesArb = fc.oneof(
      fc.uint8Array({ maxLength: 300 }),
      // With the signature, so the chunk reader is reached.
      fc.uint8Array({ maxLength: 300 }).map((tail) => Uint8Array.from([...SIGNATURE, ...tail])),
    );
    await fc.assert(
      fc.asyncProperty(bytesArb, async (png) => {
        readsTextOrRefuses(png);
        await decodesOrRefuses(png, nodeZlib);
      }),
      { numRuns: 3000 },
    );
  });

  it('ends mutated valid PNGs in an image or a PngError (Node zlib)', async () => {
    await fc.assert(
      fc.asyncProperty(mutatedPngArb, async ({ base, edits, repair }) => {
        let png = await basePng(base);
        for (const edit of edits) png = applyEdit(png, edit);
        if (repair) png = repairChecksums(png);
        readsTextOrRefuses(png);
        await decodesOrRefuses(png, nodeZlib);
      }),
      { numRuns: 3000 },
    );
  });

  it('ends mutated valid PNGs in an image or a PngError (DecompressionStream, as in the browser)', async () => {
    await fc.assert(
      fc.asyncProperty(mutatedPngArb, async ({ base, edits, repair }) => {
        let png = await basePng(base);
        for (const edit of edits) png = applyEdit(png, edit);
        if (repair) png = repairChecksums(png);
        await decodesOrRefuses(png, webZlib);
      }),
      { numRuns: 500 },
    );
  });
});
