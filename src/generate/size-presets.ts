/**
 * Output sizes offered on the generate screen. Kandinsky 2.2 was trained at ~1 megapixel in many
 * aspect ratios, so the presets show that off rather than the 512×512 habit of older models.
 */
import { roundedSize, SettingsError, type SizeLimits, validateSize } from '../../workers/engine/settings';

export interface SizePreset {
  readonly id: string;
  readonly label: string;
  /** Pixels. */
  readonly width: number;
  readonly height: number;
}

export const SIZE_PRESETS: readonly SizePreset[] = [
  { id: 'square', label: 'Square 1:1', width: 1024, height: 1024 },
  { id: 'wide', label: 'Wide 16:9', width: 1344, height: 768 },
  { id: 'cinema', label: 'Cinema 21:9', width: 1536, height: 640 },
  { id: 'portrait', label: 'Portrait 9:16', width: 768, height: 1344 },
  { id: 'photo', label: 'Photo 3:2', width: 1216, height: 832 },
];

/** The preset a size matches, or 'custom'. */
export function presetIdFor(width: number, height: number): string {
  return SIZE_PRESETS.find((p) => p.width === width && p.height === height)?.id ?? 'custom';
}

export type SizeCheck =
  | {
      readonly ok: true;
      /** The output size: each side rounded up to the set's multiple, as diffusers does. */
      readonly width: number;
      readonly height: number;
      /** Set when a side was rounded: what the picture will be, in words. */
      readonly note: string | null;
    }
  | { readonly ok: false; readonly field: 'width' | 'height'; readonly message: string };

/**
 * Parses the custom width/height fields as typed and checks them against the model set's limits.
 * Any whole number is accepted and rounded up to the set's multiple (as diffusers does), with a
 * note saying so; an out-of-range size returns validateSize's message instead of throwing, so the
 * form can show it next to the field while the person types.
 */
export function checkCustomSize(widthText: string, heightText: string, limits: SizeLimits): SizeCheck {
  const fields = [
    ['width', widthText],
    ['height', heightText],
  ] as const;
  for (const [field, text] of fields) {
    if (!/^\s*\d+\s*$/.test(text)) {
      return { ok: false, field, message: `The ${field} must be a whole number of pixels.` };
    }
  }
  const width = Number(widthText);
  const height = Number(heightText);
  try {
    const output = validateSize(width, height, limits);
    const rounded = output.width !== width || output.height !== height;
    return {
      ok: true,
      ...output,
      note: rounded
        ? `Sides round up to multiples of ${limits.multiple} (as in diffusers): the picture will be ${output.width}×${output.height}.`
        : null,
    };
  } catch (error) {
    if (error instanceof SettingsError && (error.field === 'width' || error.field === 'height')) {
      return { ok: false, field: error.field, message: error.message };
    }
    throw error;
  }
}

/**
 * The valid size closest to an input image's aspect ratio at about the same pixel count as
 * `targetPixels`, so an img2img input is not squashed or cropped more than it must be.
 */
export function sizeForAspect(
  imageWidth: number,
  imageHeight: number,
  limits: SizeLimits,
  targetPixels = 1024 * 1024,
): { readonly width: number; readonly height: number } {
  const aspect = Math.min(limits.maxAspect, Math.max(1 / limits.maxAspect, imageWidth / imageHeight));
  const snap = (value: number) =>
    Math.min(limits.maxSide, Math.max(limits.minSide, Math.round(value / limits.multiple) * limits.multiple));
  const height = snap(Math.sqrt(targetPixels / aspect));
  const width = snap(height * aspect);
  return { width, height };
}

/**
 * The nearest size a model set accepts: each side clamped into its range (a side that is not a
 * multiple stays as typed: the request rounds it up, as diffusers does), the aspect ratio kept
 * within its limit (e.g. 1024×1024 becomes 512×512 for the demo set).
 */
export function clampSize(
  width: number,
  height: number,
  limits: SizeLimits,
): { width: number; height: number } {
  const side = (value: number) => Math.min(limits.maxSide, Math.max(limits.minSide, Math.round(value)));
  let w = side(width);
  let h = side(height);
  const output = roundedSize(w, h, limits);
  if (Math.max(output.width, output.height) / Math.min(output.width, output.height) > limits.maxAspect) {
    if (w > h) w = side(Math.floor((h * limits.maxAspect) / limits.multiple) * limits.multiple);
    else h = side(Math.floor((w * limits.maxAspect) / limits.multiple) * limits.multiple);
  }
  return { width: w, height: h };
}

/** A set's size range in words, e.g. "This model set makes 64–512 px per side (in steps of 64)." */
export function sizeRangeText(limits: SizeLimits): string {
  return `This model set makes ${limits.minSide}–${limits.maxSide} px per side (in steps of ${limits.multiple}).`;
}

/** Why a preset can't be used with a set (its range in words), or null when it can. */
export function presetProblem(preset: SizePreset, limits: SizeLimits): string | null {
  try {
    validateSize(preset.width, preset.height, limits);
    return null;
  } catch (error) {
    if (error instanceof SettingsError) {
      return `This model set makes ${limits.minSide}–${limits.maxSide} px pictures; ${preset.width}×${preset.height} is outside it.`;
    }
    throw error;
  }
}
