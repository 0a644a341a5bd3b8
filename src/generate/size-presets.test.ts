import { describe, expect, it } from 'vitest';
import { KANDINSKY_SIZE_LIMITS, validateSize } from '../../workers/engine/settings';
import {
  checkCustomSize,
  presetIdFor,
  presetProblem,
  SIZE_PRESETS,
  sizeForAspect,
  sizeRangeText,
} from './size-presets';

describe('size presets', () => {
  it.each(SIZE_PRESETS.map((p) => [p.label, p] as const))('%s is a size Kandinsky 2.2 accepts', (_, p) => {
    expect(() => validateSize(p.width, p.height, KANDINSKY_SIZE_LIMITS)).not.toThrow();
    // About one megapixel, the training resolution: within ±10%.
    expect(Math.abs((p.width * p.height) / (1024 * 1024) - 1)).toBeLessThan(0.1);
  });

  it('has the aspect ratios it names', () => {
    // Sides are multiples of 64, so the named ratio holds to within 3%.
    const aspectError = (id: string, ratio: number) => {
      const p = SIZE_PRESETS.find((preset) => preset.id === id);
      return p ? Math.abs(p.width / p.height / ratio - 1) : Number.NaN;
    };
    expect(aspectError('square', 1)).toBe(0);
    expect(aspectError('wide', 16 / 9)).toBeLessThan(0.03);
    expect(aspectError('cinema', 21 / 9)).toBeLessThan(0.03);
    expect(aspectError('portrait', 9 / 16)).toBeLessThan(0.03);
    expect(aspectError('photo', 3 / 2)).toBeLessThan(0.03);
  });

  it('recognises a preset size and calls anything else custom', () => {
    expect(presetIdFor(1344, 768)).toBe('wide');
    expect(presetIdFor(768, 1344)).toBe('portrait');
    expect(presetIdFor(1024, 768)).toBe('custom');
  });
});

describe('checkCustomSize', () => {
  it('accepts multiples of 64 within the limits', () => {
    expect(checkCustomSize('1280', ' 704 ', KANDINSKY_SIZE_LIMITS)).toEqual({
      ok: true,
      width: 1280,
      height: 704,
      note: null,
    });
  });

  it('rounds a side that is not a multiple of 64 up, as diffusers does, and says so', () => {
    expect(checkCustomSize('1000', '768', KANDINSKY_SIZE_LIMITS)).toEqual({
      ok: true,
      width: 1024,
      height: 768,
      note: 'Sides round up to multiples of 64 (as in diffusers): the picture will be 1024×768.',
    });
    // Rounding up can leave the range: then it is an error naming the limit.
    const over = checkCustomSize('2040', '2047', KANDINSKY_SIZE_LIMITS);
    expect(over).toMatchObject({ ok: true, width: 2048, height: 2048 });
    const beyond = checkCustomSize('1024', '2049', KANDINSKY_SIZE_LIMITS);
    expect(beyond).toMatchObject({ ok: false, field: 'height' });
  });

  it('reports the field that is out of range', () => {
    expect(checkCustomSize('1024', '4096', KANDINSKY_SIZE_LIMITS)).toMatchObject({
      ok: false,
      field: 'height',
    });
    expect(checkCustomSize('128', '1024', KANDINSKY_SIZE_LIMITS)).toMatchObject({
      ok: false,
      field: 'width',
    });
  });

  it('rejects text and fractions before validating', () => {
    expect(checkCustomSize('abc', '1024', KANDINSKY_SIZE_LIMITS)).toMatchObject({
      ok: false,
      field: 'width',
      message: 'The width must be a whole number of pixels.',
    });
    expect(checkCustomSize('1024', '512.5', KANDINSKY_SIZE_LIMITS)).toMatchObject({
      ok: false,
      field: 'height',
    });
  });

  it('refuses aspect ratios beyond 4:1', () => {
    const check = checkCustomSize('2048', '256', KANDINSKY_SIZE_LIMITS);
    expect(check.ok === false && check.message).toMatch(/aspect ratios up to 4:1/);
  });
});

describe('sizeForAspect', () => {
  it('keeps a photo’s aspect at about a megapixel, in valid steps', () => {
    const size = sizeForAspect(4000, 3000, KANDINSKY_SIZE_LIMITS);
    expect(() => validateSize(size.width, size.height, KANDINSKY_SIZE_LIMITS)).not.toThrow();
    expect(size.width / size.height).toBeCloseTo(4 / 3, 1);
    expect(size.width * size.height).toBeGreaterThan(0.9 * 1024 * 1024);
  });

  it('clamps a panorama to the widest allowed aspect', () => {
    const size = sizeForAspect(10_000, 1000, KANDINSKY_SIZE_LIMITS);
    expect(() => validateSize(size.width, size.height, KANDINSKY_SIZE_LIMITS)).not.toThrow();
    expect(size.width / size.height).toBeLessThanOrEqual(4);
  });
});

describe('clampSize', () => {
  it('brings a size into a model set’s range and keeps valid sizes as they are', async () => {
    const { clampSize } = await import('./size-presets');
    const { KANDINSKY_SIZE_LIMITS } = await import('../../workers/engine/settings');
    const tiny = { minSide: 64, maxSide: 512, multiple: 64, maxAspect: 8 };
    expect(clampSize(1024, 1024, tiny)).toEqual({ width: 512, height: 512 });
    expect(clampSize(1536, 640, tiny)).toEqual({ width: 512, height: 512 });
    // In range, a side that is not a multiple of 64 stays as typed (the request rounds it up).
    expect(clampSize(1000, 100, KANDINSKY_SIZE_LIMITS)).toEqual({ width: 1000, height: 256 });
    expect(clampSize(1000, 700, KANDINSKY_SIZE_LIMITS)).toEqual({ width: 1000, height: 700 });
    expect(clampSize(2048, 256, KANDINSKY_SIZE_LIMITS)).toEqual({ width: 1024, height: 256 });
    expect(clampSize(1344, 768, KANDINSKY_SIZE_LIMITS)).toEqual({ width: 1344, height: 768 });
  });
});

describe('presets and a set’s size range', () => {
  it('are all usable with Kandinsky 2.2’s range and none with the demo set’s, with the range as the reason', () => {
    for (const preset of SIZE_PRESETS) expect(presetProblem(preset, KANDINSKY_SIZE_LIMITS)).toBeNull();
    const demo = { minSide: 64, maxSide: 512, multiple: 64, maxAspect: 8 };
    for (const preset of SIZE_PRESETS) {
      expect(presetProblem(preset, demo)).toBe(
        `This model set makes 64–512 px pictures; ${preset.width}×${preset.height} is outside it.`,
      );
    }
    expect(sizeRangeText(demo)).toBe('This model set makes 64–512 px per side (in steps of 64).');
  });

  it('follow a range that takes some presets and not others', () => {
    const upTo1024 = { ...KANDINSKY_SIZE_LIMITS, maxSide: 1024 };
    const usable = SIZE_PRESETS.filter((p) => presetProblem(p, upTo1024) === null).map((p) => p.id);
    expect(usable).toEqual(['square']);
  });
});
