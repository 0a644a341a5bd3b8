// Settings that used to pass validation and fail late (issue 19): an img2img strength too small for
// the steps, a prior strength too small for the prior steps (both found only after the models
// loaded and the prior ran), and values of the wrong type from a postMessage or a saved PNG.
import { describe, expect, it } from 'vitest';
import { MANIFEST_LIMITS } from '../../models/manifest';
import { KandinskyError } from '../errors';
import {
  DEFAULT_SETTINGS,
  type GenerationSettings,
  KANDINSKY_SIZE_LIMITS,
  LIMITS,
  SettingsError,
  validateSettings,
} from './settings';

function refusal(settings: unknown, inputs?: { readonly fromPhoto?: boolean }): SettingsError {
  try {
    validateSettings(settings as GenerationSettings, KANDINSKY_SIZE_LIMITS, inputs);
  } catch (error) {
    if (error instanceof SettingsError) return error;
    throw error;
  }
  throw new Error(`accepted ${JSON.stringify(settings)}`);
}

const img2img = (change: Partial<GenerationSettings>): GenerationSettings => ({
  ...DEFAULT_SETTINGS,
  mode: 'img2img',
  ...change,
});

describe('validateSettings: runs that would do no step', () => {
  it('refuses img2img whose int(steps × strength) is 0, saying what to raise', () => {
    const error = refusal(img2img({ steps: 3, strength: 0.3 }));
    expect(error.field).toBe('strength');
    expect(error.message).toMatch(/Strength 0\.3 with 3 steps runs no denoising step/);
    expect(error.message).toMatch(/strength to at least 0\.334 or the steps to at least 4/);
    // The smallest working pairs pass: int(4 × 0.3) = 1, int(3 × 0.334) = 1.
    expect(() => validateSettings(img2img({ steps: 4, strength: 0.3 }), KANDINSKY_SIZE_LIMITS)).not.toThrow();
    expect(() =>
      validateSettings(img2img({ steps: 3, strength: 0.334 }), KANDINSKY_SIZE_LIMITS),
    ).not.toThrow();
  });

  it('suggests only step counts within the limits, and ends for any strength (found by fuzzing)', () => {
    const tiny = refusal(img2img({ steps: 50, strength: 1e-300 }));
    expect(tiny.message).toMatch(/raise the strength to at least 0\.02\.$/);
    expect(refusal(img2img({ steps: 1, strength: Number.MIN_VALUE })).message).toMatch(/at least 1\.$/);
  });

  it('refuses depth from a photo (not from a depth map) whose int(steps × strength) is 0', () => {
    const depth = { ...DEFAULT_SETTINGS, mode: 'depth', steps: 2, strength: 0.3 };
    expect(refusal(depth, { fromPhoto: true }).field).toBe('strength');
    // A depth map starts from noise: strength is not used.
    expect(() =>
      validateSettings(depth as GenerationSettings, KANDINSKY_SIZE_LIMITS, { fromPhoto: false }),
    ).not.toThrow();
    // A prior strength means a photo (the pipeline refuses it otherwise).
    expect(refusal({ ...depth, priorStrength: 0.5 }).field).toBe('strength');
  });

  it('refuses a prior strength whose int(priorSteps × priorStrength) is 0', () => {
    const error = refusal(img2img({ priorSteps: 4, priorStrength: 0.2 }));
    expect(error.field).toBe('priorStrength');
    expect(error.message).toMatch(/Prior strength 0\.2 with 4 prior steps runs no prior step/);
    expect(error.message).toMatch(
      /raise the prior strength to at least 0\.25 or the prior steps to at least 5/,
    );
    expect(() =>
      validateSettings(img2img({ priorSteps: 5, priorStrength: 0.2 }), KANDINSKY_SIZE_LIMITS),
    ).not.toThrow();
  });
});

describe('validateSettings: values of any type', () => {
  it('refuses what is not a settings object with INVALID_INPUT, never a TypeError', () => {
    for (const value of [null, undefined, 42, 'settings', [], Object.create(null)]) {
      const error = refusal(value);
      expect(error).toBeInstanceOf(KandinskyError);
      expect(error.code).toBe('INVALID_INPUT');
    }
  });

  it('names fields whose values cannot even be printed', () => {
    const bare = Object.create(null) as object;
    for (const [field, value] of [
      ['mode', bare],
      ['mode', Symbol('txt2img')],
      ['scheduler', bare],
      ['steps', bare],
      ['seed', 10n],
      ['guidance', Symbol('x')],
      ['prompt', bare],
    ] as const) {
      const error = refusal({ ...DEFAULT_SETTINGS, [field]: value });
      expect(error.field).toBe(field);
      expect(error.code).toBe('INVALID_INPUT');
    }
    expect(refusal(img2img({ strength: bare as unknown as number })).field).toBe('strength');
  });

  it('keeps its step limits inside what any valid manifest schedules', () => {
    // Every step count a person may ask for has distinct training timesteps to spread over.
    expect(2 * LIMITS.steps.max).toBeLessThanOrEqual(MANIFEST_LIMITS.trainTimesteps.min);
    expect(LIMITS.priorSteps.max).toBeLessThanOrEqual(MANIFEST_LIMITS.trainTimesteps.min);
  });
});
