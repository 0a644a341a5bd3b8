/**
 * From what is on the generate screen to the GenerateRequest the worker takes: the mode's inputs
 * fitted to the output size, the seed chosen, everything validated. Returns a message for the
 * person instead of a request when something is missing.
 */
import type { GenerationSettings, RgbaImage } from '../../workers/api';
import { SettingsError, type SizeLimits, validateSettings } from '../../workers/engine/settings';
import { hasRepaint, type MaskDrawing, rasterizeMask } from '../inpaint/mask';
import { buildMix, type MixDraft, type MixGenerateRequest } from '../mix/mix';

/** The tabs of the generate screen: the engine's modes plus image mixing. */
export const TABS = ['txt2img', 'img2img', 'inpaint', 'depth', 'mix'] as const;
export type Tab = (typeof TABS)[number];

export const TAB_LABELS: Readonly<Record<Tab, string>> = {
  txt2img: 'Text → Image',
  img2img: 'Image → Image',
  inpaint: 'Inpaint',
  depth: 'Depth',
  mix: 'Mix',
};

export interface ScreenInputs {
  readonly tab: Tab;
  readonly settings: GenerationSettings;
  /** The seed to use when "random each time" is on; ignored otherwise. */
  readonly randomSeed: number | null;
  /** Draws the chosen picture at width × height pixels, or null when none is chosen. */
  readonly fitSource: (width: number, height: number) => RgbaImage | null;
  /** depth: whether the picture is a photo (estimate depth) or already a depth map. */
  readonly depthSource: 'photo' | 'depth-map';
  readonly mask: MaskDrawing;
  readonly mixDrafts: readonly MixDraft[];
}

export type RequestCheck =
  | { readonly ok: true; readonly request: MixGenerateRequest }
  | {
      readonly ok: false;
      readonly field: keyof GenerationSettings | 'image' | 'mask' | 'mix';
      readonly message: string;
    };

/** Whether the tab takes the picture's look through the prior (settings.priorStrength). */
export function takesPictureLook(tab: Tab, depthSource: ScreenInputs['depthSource']): boolean {
  return tab === 'img2img' || (tab === 'depth' && depthSource === 'photo');
}

export function buildRequest(inputs: ScreenInputs, limits: SizeLimits): RequestCheck {
  const { tab } = inputs;
  // The picture's look applies only where the picture is a photo to start from.
  const { priorStrength, ...rest } = inputs.settings;
  const requested: GenerationSettings = {
    ...rest,
    ...(priorStrength !== undefined && takesPictureLook(tab, inputs.depthSource) ? { priorStrength } : {}),
    // Mixing draws with the text→image decoder from the blended embedding.
    mode: tab === 'mix' ? 'txt2img' : tab,
    seed: inputs.randomSeed ?? inputs.settings.seed,
  };
  let settings: GenerationSettings;
  try {
    // Sizes come back rounded up to the set's multiple (as diffusers'): the pictures are fitted to that.
    settings = validateSettings(requested, limits, {
      fromPhoto: tab === 'depth' && inputs.depthSource === 'photo',
    });
  } catch (error) {
    if (error instanceof SettingsError) return { ok: false, field: error.field, message: error.message };
    throw error;
  }
  if (tab !== 'mix' && tab !== 'depth' && settings.prompt.trim() === '') {
    return { ok: false, field: 'prompt', message: 'Write a prompt: what should the picture show?' };
  }
  const { width, height } = settings;
  switch (tab) {
    case 'txt2img':
      return { ok: true, request: { settings, previews: true } };
    case 'img2img':
    case 'inpaint':
    case 'depth': {
      const image = inputs.fitSource(width, height);
      if (!image) return { ok: false, field: 'image', message: 'Choose a picture to start from.' };
      if (tab === 'img2img') return { ok: true, request: { settings, initImage: image, previews: true } };
      if (tab === 'depth') {
        return {
          ok: true,
          request:
            inputs.depthSource === 'depth-map'
              ? { settings, depthMap: image, previews: true }
              : { settings, initImage: image, previews: true },
        };
      }
      if (!hasRepaint(inputs.mask)) {
        return { ok: false, field: 'mask', message: 'Paint over the part of the picture to repaint.' };
      }
      return {
        ok: true,
        request: {
          settings,
          initImage: image,
          mask: rasterizeMask(inputs.mask, width, height),
          previews: true,
        },
      };
    }
    case 'mix': {
      const mix = buildMix(inputs.mixDrafts);
      if (!mix.ok) return { ok: false, field: 'mix', message: mix.message };
      return { ok: true, request: { settings, mix: mix.items, previews: true } };
    }
  }
}
