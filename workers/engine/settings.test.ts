import { describe, expect, it } from 'vitest';
import {
  DEFAULT_SETTINGS,
  type GenerationSettings,
  KANDINSKY_SIZE_LIMITS,
  SettingsError,
  validateSettings,
} from './settings';

function rejection(change: Partial<GenerationSettings>): { field: string; message: string } {
  try {
    validateSettings({ ...DEFAULT_SETTINGS, ...change }, KANDINSKY_SIZE_LIMITS);
  } catch (error) {
    if (error instanceof SettingsError) return { field: error.field, message: error.message };
    throw error;
  }
  throw new Error(`accepted ${JSON.stringify(change)}`);
}

describe('validateSettings', () => {
  it('accepts the defaults, an empty prompt (unconditional) and the extreme sizes', () => {
    for (const change of [
      {},
      { prompt: '' },
      { width: 2048, height: 512 },
      { width: 256, height: 1024 },
      { width: 1536, height: 640 },
      { seed: Number.MAX_SAFE_INTEGER },
    ]) {
      expect(() => validateSettings({ ...DEFAULT_SETTINGS, ...change }, KANDINSKY_SIZE_LIMITS)).not.toThrow();
    }
  });

  it('rounds a side that is not a multiple of 64 up, as diffusers does (96×64 → 128×64)', () => {
    expect(
      validateSettings({ ...DEFAULT_SETTINGS, width: 1000, height: 700 }, KANDINSKY_SIZE_LIMITS),
    ).toMatchObject({
      width: 1024,
      height: 704,
    });
    const tiny = { minSide: 64, maxSide: 512, multiple: 64, maxAspect: 8 };
    expect(validateSettings({ ...DEFAULT_SETTINGS, width: 96, height: 64 }, tiny)).toMatchObject({
      width: 128,
      height: 64,
    });
    const unchanged = { ...DEFAULT_SETTINGS, width: 512, height: 512 };
    expect(validateSettings(unchanged, tiny)).toBe(unchanged);
  });

  it.each([
    [{ height: 100 }, 'height', /from 256 to 2048 pixels; got 100/],
    [{ width: 4096 }, 'width', /from 256 to 2048/],
    [{ width: 2048, height: 448 }, 'width', /wider than 4:1/],
    [{ width: 256, height: 1088 }, 'height', /wider than 4:1/],
    [{ steps: 0 }, 'steps', /from 1 to 200; got 0/],
    [{ steps: 1000 }, 'steps', /from 1 to 200; got 1000/],
    [{ steps: 2.5 }, 'steps', /whole number/],
    [{ guidance: Number.NaN }, 'guidance', /got NaN/],
    [{ guidance: -1 }, 'guidance', /from 0 to 30; got -1/],
    [{ priorGuidance: Number.POSITIVE_INFINITY }, 'priorGuidance', /got Infinity/],
    [{ seed: 2 ** 53 }, 'seed', /from 0 to 9007199254740991/],
    [{ seed: -1 }, 'seed', /from 0/],
    [{ numImages: 0 }, 'numImages', /from 1 to 8/],
    [{ priorSteps: 1 }, 'priorSteps', /from 2 to 100; got 1/],
    [{ mode: 'img2img', strength: 1.5 }, 'strength', /at most 1 .*got 1.5/],
    [{ mode: 'img2img', strength: 0 }, 'strength', /above 0/],
    [{ mode: 'depth', strength: Number.NaN }, 'strength', /got NaN/],
    [{ scheduler: 'euler' }, 'scheduler', /ddpm, ddim, dpmpp-2m/],
    [{ prompt: 'x'.repeat(10_001) }, 'prompt', /under 10000/],
    [{ priorStrength: 0.5 }, 'priorStrength', /needs img2img or depth mode, not txt2img/],
    [{ mode: 'inpaint', priorStrength: 0.5 }, 'priorStrength', /not inpaint/],
    [{ mode: 'depth', priorStrength: 0 }, 'priorStrength', /above 0 .*got 0/],
    [{ mode: 'img2img', priorStrength: 1.01 }, 'priorStrength', /at most 1/],
    [{ mode: 'img2img', priorStrength: Number.NaN }, 'priorStrength', /got NaN/],
  ] as [Partial<GenerationSettings>, string, RegExp][])('rejects %o naming %s', (change, field, message) => {
    const error = rejection(change);
    expect(error.field).toBe(field);
    expect(error.message).toMatch(message);
  });

  it('accepts a prior strength in (0, 1] for img2img and depth', () => {
    for (const change of [
      { mode: 'img2img', priorStrength: 1 },
      { mode: 'depth', priorStrength: 0.85 },
    ] as const) {
      expect(validateSettings({ ...DEFAULT_SETTINGS, ...change }, KANDINSKY_SIZE_LIMITS)).toMatchObject(
        change,
      );
    }
  });

  it('ignores strength outside the modes that use it', () => {
    expect(() => validateSettings({ ...DEFAULT_SETTINGS, strength: 7 }, KANDINSKY_SIZE_LIMITS)).not.toThrow();
  });
});
