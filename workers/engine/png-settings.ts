/**
 * Generated images as PNG files that carry their own recipe: the GenerationSettings as JSON in an
 * iTXt chunk under the keyword `kandinsky-web`. The CLI reads the same chunk, and re-importing
 * the PNG into the app restores the settings.
 */
import { encodePng, PngError, type RgbaImage, readPngText, type Zlib } from './png';
import {
  DEFAULT_SETTINGS,
  type GenerationSettings,
  SettingsError,
  type SizeLimits,
  validateSettings,
} from './settings';

export const SETTINGS_KEYWORD = 'kandinsky-web';

export class SettingsImportError extends Error {
  override readonly name = 'SettingsImportError';
  readonly code = 'INVALID_INPUT';
}

export function encodeImagePng(
  image: RgbaImage,
  settings: GenerationSettings,
  zlib: Pick<Zlib, 'deflate'>,
): Promise<Uint8Array> {
  return encodePng(image, { [SETTINGS_KEYWORD]: JSON.stringify(settings), Software: 'Kandinsky Web' }, zlib);
}

/**
 * Parses settings JSON from a PNG (or anywhere else) into GenerationSettings: every field must be
 * present with the right type and within the limits. Unknown extra fields are dropped. Throws a
 * SettingsImportError whose message says what is wrong; never returns partial settings.
 */
export function parseSettingsJson(text: string, limits: SizeLimits): GenerationSettings {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new SettingsImportError(`The “${SETTINGS_KEYWORD}” text in this PNG is not valid JSON.`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new SettingsImportError(`The “${SETTINGS_KEYWORD}” text in this PNG is not a settings object.`);
  }
  const source = value as Record<string, unknown>;
  const settings: Record<string, unknown> = {};
  for (const [field, fallback] of Object.entries(DEFAULT_SETTINGS)) {
    const fieldValue = source[field];
    if (typeof fieldValue !== typeof fallback) {
      throw new SettingsImportError(
        fieldValue === undefined
          ? `The settings in this PNG have no “${field}”.`
          : `The settings in this PNG have a “${field}” of the wrong type (${typeof fieldValue}, expected ${typeof fallback}).`,
      );
    }
    settings[field] = fieldValue;
  }
  // Optional fields: absent in older PNGs.
  for (const [field, type] of [
    ['priorStrength', 'number'],
    ['seedMode', 'string'],
    // Absent: the set's own scheduler (and in PNGs from before sets named theirs, 'ddpm' is there).
    ['scheduler', 'string'],
  ] as const) {
    const fieldValue = source[field];
    if (fieldValue === undefined) continue;
    if (typeof fieldValue !== type) {
      throw new SettingsImportError(
        `The settings in this PNG have a “${field}” of the wrong type (${typeof fieldValue}, expected ${type}).`,
      );
    }
    settings[field] = fieldValue;
  }
  try {
    return validateSettings(settings as unknown as GenerationSettings, limits);
  } catch (error) {
    if (error instanceof SettingsError) {
      throw new SettingsImportError(`The settings in this PNG are out of range: ${error.message}`);
    }
    throw error;
  }
}

/** Reads the settings a Kandinsky Web PNG carries; throws SettingsImportError for anything else. */
export function readSettingsFromPng(png: Uint8Array, limits: SizeLimits): GenerationSettings {
  let text: Record<string, string>;
  try {
    text = readPngText(png);
  } catch (error) {
    if (error instanceof PngError) throw new SettingsImportError(error.message);
    throw error;
  }
  const json = text[SETTINGS_KEYWORD];
  if (json === undefined) {
    throw new SettingsImportError(
      'This PNG carries no Kandinsky Web settings (it was not made by this app, or they were stripped).',
    );
  }
  return parseSettingsJson(json, limits);
}
