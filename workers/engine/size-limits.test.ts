import { describe, expect, it } from 'vitest';
import { ManifestError, parseManifest } from '../../models/manifest';
import { tinyManifest } from '../../test-support/tiny-fixture.node';
import { KANDINSKY_SIZE_LIMITS } from './settings';
import { sizeLimitsFor } from './size-limits';

describe("a set's size range", () => {
  it('comes from the manifest: a small set exported from diffusers folders generates below 256 px', () => {
    const small = {
      ...tinyManifest,
      source: 'pretrained' as const,
      sizeRange: { minSide: 64, maxSide: 512 },
    };
    expect(sizeLimitsFor(small)).toEqual({ ...KANDINSKY_SIZE_LIMITS, minSide: 64, maxSide: 512 });
    expect(sizeLimitsFor(tinyManifest)).toMatchObject({ minSide: 64, maxSide: 512, multiple: 64 });
  });

  it('falls back on the source for sets exported before the manifest recorded it', () => {
    const { sizeRange: _, ...older } = tinyManifest;
    expect(sizeLimitsFor({ ...older, source: 'pretrained' })).toEqual(KANDINSKY_SIZE_LIMITS);
  });

  it('is refused when it is not a range of whole pixels from 64 up', () => {
    for (const sizeRange of [
      { minSide: 512, maxSide: 64 },
      { minSide: 0, maxSide: 512 },
      { minSide: 64, maxSide: 1e9 },
      { minSide: 64 },
    ]) {
      expect(() => parseManifest({ ...tinyManifest, sizeRange })).toThrow(ManifestError);
    }
  });
});
