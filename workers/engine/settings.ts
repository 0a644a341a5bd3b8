/**
 * Generation settings: the one shape shared by the UI, the worker, the CLI and the PNG metadata,
 * and the validation that turns bad input into an error naming the field and the fix.
 */
import { KandinskyError } from '../errors';

export const DECODER_SCHEDULERS = ['ddpm', 'ddim', 'dpmpp-2m'] as const;
export type DecoderSchedulerName = (typeof DECODER_SCHEDULERS)[number];

/**
 * How the seed drives the random draws, as two ways of running diffusers give them:
 * 'combined' — one generator through prior and decoder (KandinskyV22CombinedPipeline and the
 * other combined/Auto pipelines); 'separate' — the prior pipeline and the decoder pipeline each
 * seeded with the seed (`KandinskyV22PriorPipeline(..., generator=manual_seed(seed))`, then
 * `KandinskyV22Pipeline(..., generator=manual_seed(seed))`).
 */
export const SEED_MODES = ['combined', 'separate'] as const;
export type SeedMode = (typeof SEED_MODES)[number];

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
  /**
   * The decoder's scheduler; absent: the set's own (its checkpoint's scheduler config, as diffusers'
   * pipelines run it). Another one is built from the set's config as diffusers' `from_config` does.
   */
  readonly scheduler?: DecoderSchedulerName;
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
  /** Absent: 'combined' (settings saved before seed modes existed load as they were made). */
  readonly seedMode?: SeedMode;
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

/** A setting that can't be used: INVALID_INPUT, with the field to highlight and the fix. */
export class SettingsError extends KandinskyError {
  override readonly code = 'INVALID_INPUT';
  /** The settings field that is wrong, as named in GenerationSettings. */
  readonly field: keyof GenerationSettings;

  constructor(field: keyof GenerationSettings, message: string) {
    super('INVALID_INPUT', message);
    this.field = field;
  }
}

/**
 * A value for a message, whatever it is (settings arrive through postMessage and PNG text): never
 * throws, never long.
 */
function shown(value: unknown): string {
  if (typeof value === 'number') return String(value);
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  return value === null ? 'null' : `a ${typeof value}`;
}

function integerIn(
  field: keyof GenerationSettings,
  label: string,
  value: unknown,
  min: number,
  max: number,
): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new SettingsError(
      field,
      `${label} must be a whole number from ${min} to ${max}; got ${shown(value)}.`,
    );
  }
}

function numberIn(
  field: keyof GenerationSettings,
  label: string,
  value: unknown,
  min: number,
  max: number,
): void {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < min || value > max) {
    throw new SettingsError(field, `${label} must be a number from ${min} to ${max}; got ${shown(value)}.`);
  }
}

/**
 * diffusers' get_timesteps keeps the last int(steps × strength) steps. Returns the fix when that is
 * none: the least strength (rounded up to 3 decimals) and the fewest steps that keep one.
 */
function noStepFix(
  steps: number,
  strength: number,
  maxSteps: number,
  stage: 'decoder' | 'prior',
): string | null {
  const the = stage === 'prior' ? 'the prior' : 'the';
  if (Math.trunc(steps * strength) >= 1) return null;
  // Both searches are bounded: steps ≥ 1 needs at most a strength of 1, and the step count is only
  // searched up to maxSteps (a tiny strength would otherwise count past float precision for good).
  let leastStrength = Math.ceil(1000 / steps) / 1000;
  while (leastStrength < 1 && Math.trunc(steps * leastStrength) < 1) leastStrength += 0.001;
  let fewestSteps = Math.min(Math.ceil(1 / strength), maxSteps + 1);
  while (fewestSteps <= maxSteps && Math.trunc(fewestSteps * strength) < 1) fewestSteps += 1;
  const raiseSteps = fewestSteps <= maxSteps ? ` or ${the} steps to at least ${fewestSteps}` : '';
  return `raise ${the} strength to at least ${Number(leastStrength.toFixed(3))}${raiseSteps}`;
}

/** What validateSettings knows of the request besides its settings. */
export interface SettingsInputs {
  /**
   * depth mode: whether the run starts from a photo (then `strength` applies) rather than from a
   * depth map alone. Unknown (a PNG's saved settings): checked only where a prior strength says so.
   */
  readonly fromPhoto?: boolean;
}

/**
 * The output size for a requested one: each side rounded up to the set's multiple, as diffusers'
 * `downscale_height_and_width` does (96×64 → 128×64), pixels.
 */
export function roundedSize(
  width: number,
  height: number,
  limits: Pick<SizeLimits, 'multiple'>,
): { width: number; height: number } {
  const up = (side: number) => Math.ceil(side / limits.multiple) * limits.multiple;
  return { width: up(width), height: up(height) };
}

/**
 * Checks a requested width × height against a model set's limits, after rounding each side up to
 * the set's multiple (any whole number is accepted, as in diffusers); throws a SettingsError
 * naming the fix. Returns the output size.
 */
export function validateSize(
  width: number,
  height: number,
  limits: SizeLimits,
): { width: number; height: number } {
  for (const [field, value] of [
    ['width', width],
    ['height', height],
  ] as const) {
    if (
      typeof value !== 'number' ||
      !Number.isInteger(value) ||
      value < limits.minSide ||
      value > limits.maxSide
    ) {
      throw new SettingsError(
        field,
        `The ${field} must be from ${limits.minSide} to ${limits.maxSide} pixels; got ${shown(value)}.`,
      );
    }
    const rounded = Math.ceil(value / limits.multiple) * limits.multiple;
    if (rounded > limits.maxSide) {
      throw new SettingsError(
        field,
        `The ${field} ${value} rounds up to ${rounded} pixels (sides are multiples of ${limits.multiple}), over the ${limits.maxSide} this model set supports; use at most ${limits.maxSide}.`,
      );
    }
  }
  const output = roundedSize(width, height, limits);
  const aspect = Math.max(output.width, output.height) / Math.min(output.width, output.height);
  if (aspect > limits.maxAspect) {
    throw new SettingsError(
      output.width > output.height ? 'width' : 'height',
      `${output.width}×${output.height} is wider than ${limits.maxAspect}:1; Kandinsky 2.2 supports aspect ratios up to ${limits.maxAspect}:1.`,
    );
  }
  return output;
}

/**
 * Validates every field, whatever the value's type (it may come from postMessage or a PNG), and
 * what the fields mean together: a run that would do no denoising or prior step is refused here,
 * before any model loads. Returns the settings when they are usable, with width and height rounded
 * up to the set's multiple where they were not one (diffusers' sizes); throws SettingsError
 * (a KandinskyError INVALID_INPUT naming the field) otherwise. The one check of settings: the UI,
 * the worker, the CLI and PNG import all call it.
 */
export function validateSettings(
  settings: GenerationSettings,
  limits: SizeLimits,
  inputs: SettingsInputs = {},
): GenerationSettings {
  if (typeof settings !== 'object' || settings === null || Array.isArray(settings)) {
    throw new SettingsError('mode', `The generation settings must be an object; got ${shown(settings)}.`);
  }
  const mode: unknown = settings.mode;
  if (typeof mode !== 'string' || !(MODES as readonly string[]).includes(mode)) {
    throw new SettingsError('mode', `Unknown mode ${shown(mode)}; use one of ${MODES.join(', ')}.`);
  }
  for (const field of ['prompt', 'negativePrompt'] as const) {
    const text: unknown = settings[field];
    if (typeof text !== 'string') throw new SettingsError(field, `The ${field} must be text.`);
    if (text.length > LIMITS.promptChars) {
      throw new SettingsError(
        field,
        `The ${field} is ${text.length} characters; keep it under ${LIMITS.promptChars}.`,
      );
    }
  }
  integerIn('seed', 'The seed', settings.seed, 0, Number.MAX_SAFE_INTEGER);
  const output = validateSize(settings.width, settings.height, limits);
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
  const scheduler: unknown = settings.scheduler;
  if (
    scheduler !== undefined &&
    (typeof scheduler !== 'string' || !(DECODER_SCHEDULERS as readonly string[]).includes(scheduler))
  ) {
    throw new SettingsError(
      'scheduler',
      `Unknown scheduler ${shown(scheduler)}; use one of ${DECODER_SCHEDULERS.join(', ')}, or none for the set's own.`,
    );
  }
  integerIn('numImages', 'Number of images', settings.numImages, LIMITS.numImages.min, LIMITS.numImages.max);
  const strength: unknown = settings.strength;
  if (settings.mode === 'img2img' || settings.mode === 'depth') {
    if (typeof strength !== 'number' || !Number.isFinite(strength) || strength <= 0 || strength > 1) {
      throw new SettingsError(
        'strength',
        `Strength must be above 0 and at most 1 (0.3 keeps most of the image, 1 redraws it); got ${shown(strength)}.`,
      );
    }
  }
  const seedMode: unknown = settings.seedMode;
  if (seedMode !== undefined && !(SEED_MODES as readonly unknown[]).includes(seedMode)) {
    throw new SettingsError(
      'seedMode',
      `Unknown seed mode ${shown(seedMode)}; use ${SEED_MODES.join(' or ')} (as diffusers' combined or separate pipelines).`,
    );
  }
  const priorStrength: unknown = settings.priorStrength;
  if (priorStrength !== undefined) {
    if (settings.mode !== 'img2img' && settings.mode !== 'depth') {
      throw new SettingsError(
        'priorStrength',
        `Taking the look of the input picture (prior strength) needs img2img or depth mode, not ${settings.mode}.`,
      );
    }
    if (
      typeof priorStrength !== 'number' ||
      !Number.isFinite(priorStrength) ||
      priorStrength <= 0 ||
      priorStrength > 1
    ) {
      throw new SettingsError(
        'priorStrength',
        `Prior strength must be above 0 and at most 1 (low keeps the picture's look, 1 takes it all from the prompt); got ${shown(priorStrength)}.`,
      );
    }
  }
  // The decoder starts from the picture (img2img, or depth from a photo: a prior strength is only
  // allowed with one) and keeps the last int(steps × strength) steps; none is no run at all.
  const fromPicture =
    settings.mode === 'img2img' ||
    (settings.mode === 'depth' && (inputs.fromPhoto === true || priorStrength !== undefined));
  if (fromPicture && typeof strength === 'number') {
    const fix = noStepFix(settings.steps, strength, LIMITS.steps.max, 'decoder');
    if (fix) {
      throw new SettingsError(
        'strength',
        `Strength ${strength} with ${settings.steps} steps runs no denoising step; ${fix}.`,
      );
    }
  }
  // The prior keeps the last int(priorSteps × priorStrength) steps the same way.
  if (typeof priorStrength === 'number') {
    const fix = noStepFix(settings.priorSteps, priorStrength, LIMITS.priorSteps.max, 'prior');
    if (fix) {
      throw new SettingsError(
        'priorStrength',
        `Prior strength ${priorStrength} with ${settings.priorSteps} prior steps runs no prior step; ${fix}.`,
      );
    }
  }
  // The size the picture comes out at: a side that is not a multiple rounds up, as in diffusers.
  return output.width === settings.width && output.height === settings.height
    ? settings
    : { ...settings, width: output.width, height: output.height };
}
