/**
 * Generation settings: the one shape shared by the UI, the worker, the CLI and the PNG metadata,
 * and the validation that turns bad input into an error naming the field and the fix.
 */

export const DECODER_SCHEDULERS = ['ddpm', 'ddim', 'dpmpp-2m'] as const;
export type DecoderSchedulerName = (typeof DECODER_SCHEDULERS)[number];

export const MODES = ['txt2img', 'img2img', 'inpaint', 'depth'] as const;
export type Mode = (typeof MODES)[number];

/** Output sizes a model set supports, in pixels. */
export interface SizeLimits {
  readonly minSide: number;
  readonly maxSide: number;
  /** Every side must be a multiple of this (the UNet's down-sampling × the MoVQ factor 8). */
  readonly multiple: number;
  /** Longest side ÷ shortest side. */
  readonly maxAspect: number;
}

/** Kandinsky 2.2's real model sets: 256–2048 px per side in steps of 64, up to 4:1. */
export const KANDINSKY_SIZE_LIMITS: SizeLimits = { minSide: 256, maxSide: 2048, multiple: 64, maxAspect: 4 };

export interface GenerationSettings {
  readonly mode: Mode;
  readonly prompt: string;
  readonly negativePrompt: string;
  /** 0 … 2^53−1: seeds a torch-compatible generator, so the same seed gives diffusers' image. */
  readonly seed: number;
  /** Output size, pixels. */
  readonly width: number;
  readonly height: number;
  readonly priorSteps: number;
  readonly priorGuidance: number;
  readonly steps: number;
  readonly guidance: number;
  readonly scheduler: DecoderSchedulerName;
  readonly numImages: number;
  /** img2img and depth: how much of the input image is re-drawn, 0 (none) … 1 (all). */
  readonly strength: number;
  /**
   * img2img and depth from a photo: the prior also starts from the input picture's CLIP image
   * embedding, noised this far, 0 (keep its look) … 1 (all from the prompt) — diffusers'
   * KandinskyV22PriorEmb2EmbPipeline `strength`, as the ControlNet img2img example runs it. Absent:
   * the plain text prior. Optional so settings saved before it existed still load.
   */
  readonly priorStrength?: number;
}

export const DEFAULT_SETTINGS: GenerationSettings = {
  mode: 'txt2img',
  prompt: '',
  negativePrompt: '',
  seed: 0,
  width: 1024,
  height: 1024,
  priorSteps: 25,
  priorGuidance: 4,
  steps: 50,
  guidance: 4,
  scheduler: 'ddpm',
  numImages: 1,
  strength: 0.3,
};

export const LIMITS = {
  steps: { min: 1, max: 200 },
  // The UnCLIP prior scheduler divides by (steps − 1): one step is undefined.
  priorSteps: { min: 2, max: 100 },
  guidance: { min: 0, max: 30 },
  numImages: { min: 1, max: 8 },
  promptChars: 10_000,
} as const;

export class SettingsError extends Error {
  override readonly name = 'SettingsError';
  readonly code = 'INVALID_INPUT';
  /** The settings field that is wrong, as named in GenerationSettings. */
  readonly field: keyof GenerationSettings;

  constructor(field: keyof GenerationSettings, message: string) {
    super(message);
    this.field = field;
  }
}

function integerIn(
  field: keyof GenerationSettings,
  label: string,
  value: number,
  min: number,
  max: number,
): void {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new SettingsError(field, `${label} must be a whole number from ${min} to ${max}; got ${value}.`);
  }
}

function numberIn(
  field: keyof GenerationSettings,
  label: string,
  value: number,
  min: number,
  max: number,
): void {
  if (!Number.isFinite(value) || value < min || value > max) {
    throw new SettingsError(field, `${label} must be a number from ${min} to ${max}; got ${value}.`);
  }
}

/** Checks a width × height against a model set's limits; throws a SettingsError naming the fix. */
export function validateSize(width: number, height: number, limits: SizeLimits): void {
  for (const [field, value] of [
    ['width', width],
    ['height', height],
  ] as const) {
    if (!Number.isInteger(value) || value < limits.minSide || value > limits.maxSide) {
      throw new SettingsError(
        field,
        `The ${field} must be from ${limits.minSide} to ${limits.maxSide} pixels; got ${value}.`,
      );
    }
    if (value % limits.multiple !== 0) {
      const down = Math.max(limits.minSide, Math.floor(value / limits.multiple) * limits.multiple);
      const up = Math.min(limits.maxSide, down + limits.multiple);
      throw new SettingsError(
        field,
        `The ${field} must be a multiple of ${limits.multiple} pixels; ${value} is not — use ${down} or ${up}.`,
      );
    }
  }
  const aspect = Math.max(width, height) / Math.min(width, height);
  if (aspect > limits.maxAspect) {
    throw new SettingsError(
      width > height ? 'width' : 'height',
      `${width}×${height} is wider than ${limits.maxAspect}:1; Kandinsky 2.2 supports aspect ratios up to ${limits.maxAspect}:1.`,
    );
  }
}

/** Validates every field; returns the settings unchanged when they are usable. */
export function validateSettings(settings: GenerationSettings, limits: SizeLimits): GenerationSettings {
  if (!(MODES as readonly string[]).includes(settings.mode)) {
    throw new SettingsError('mode', `Unknown mode "${settings.mode}"; use one of ${MODES.join(', ')}.`);
  }
  for (const field of ['prompt', 'negativePrompt'] as const) {
    if (typeof settings[field] !== 'string') throw new SettingsError(field, `The ${field} must be text.`);
    if (settings[field].length > LIMITS.promptChars) {
      throw new SettingsError(
        field,
        `The ${field} is ${settings[field].length} characters; keep it under ${LIMITS.promptChars}.`,
      );
    }
  }
  integerIn('seed', 'The seed', settings.seed, 0, Number.MAX_SAFE_INTEGER);
  validateSize(settings.width, settings.height, limits);
  integerIn('steps', 'Steps', settings.steps, LIMITS.steps.min, LIMITS.steps.max);
  integerIn('priorSteps', 'Prior steps', settings.priorSteps, LIMITS.priorSteps.min, LIMITS.priorSteps.max);
  numberIn('guidance', 'Guidance', settings.guidance, LIMITS.guidance.min, LIMITS.guidance.max);
  numberIn(
    'priorGuidance',
    'Prior guidance',
    settings.priorGuidance,
    LIMITS.guidance.min,
    LIMITS.guidance.max,
  );
  if (!(DECODER_SCHEDULERS as readonly string[]).includes(settings.scheduler)) {
    throw new SettingsError(
      'scheduler',
      `Unknown scheduler "${settings.scheduler}"; use one of ${DECODER_SCHEDULERS.join(', ')}.`,
    );
  }
  integerIn('numImages', 'Number of images', settings.numImages, LIMITS.numImages.min, LIMITS.numImages.max);
  if (settings.mode === 'img2img' || settings.mode === 'depth') {
    if (!Number.isFinite(settings.strength) || settings.strength <= 0 || settings.strength > 1) {
      throw new SettingsError(
        'strength',
        `Strength must be above 0 and at most 1 (0.3 keeps most of the image, 1 redraws it); got ${settings.strength}.`,
      );
    }
  }
  if (settings.priorStrength !== undefined) {
    if (settings.mode !== 'img2img' && settings.mode !== 'depth') {
      throw new SettingsError(
        'priorStrength',
        `Taking the look of the input picture (prior strength) needs img2img or depth mode, not ${settings.mode}.`,
      );
    }
    const value = settings.priorStrength;
    if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0 || value > 1) {
      throw new SettingsError(
        'priorStrength',
        `Prior strength must be above 0 and at most 1 (low keeps the picture's look, 1 takes it all from the prompt); got ${value}.`,
      );
    }
  }
  return settings;
}
