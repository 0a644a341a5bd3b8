/**
 * What one generation asks for (PipelineRequest), the checks it must pass before any model loads,
 * and the one answer to "which components does it need" — used by the pipeline's load stage, the
 * worker's storage check, the CLI and the model manager's per-feature sizes.
 */
import type { ComponentId, Feature, GraphComponentId } from '../../models/contract';
import { componentKind } from '../../models/contract';
import { KandinskyError } from '../errors';
import { type MaskImage, maskIsEmpty } from './image';
import type { RgbaImage } from './png';
import type { GenerationSettings, Mode } from './settings';
import type { MixItem } from './stages/mix';

export interface PipelineRequest {
  readonly settings: GenerationSettings;
  /**
   * img2img and inpaint: the starting picture, already at the output size (width × height).
   * depth: a photo, making it image-to-image with depth control (diffusers'
   * KandinskyV22ControlnetImg2ImgPipeline); its depth is estimated unless `depthMap` is given.
   */
  readonly initImage?: RgbaImage;
  /** inpaint: white (≥ 128) = repaint, at the output size. */
  readonly mask?: MaskImage;
  /** depth: the depth map (grey, near = bright) at the output size; needed without a photo. */
  readonly depthMap?: RgbaImage;
  /**
   * Image mixing: these weighted prompts and pictures replace `settings.prompt` as the prior's
   * input (stages/mix.ts); the decoder stage runs as the mode says.
   */
  readonly mix?: readonly MixItem[];
}

/**
 * What decides the components a request needs: its mode, prior strength, and which inputs it
 * carries (their pixels don't matter, so a feature can be described without a picture).
 */
export interface RequestShape {
  readonly settings: Pick<GenerationSettings, 'mode'> & Partial<Pick<GenerationSettings, 'priorStrength'>>;
  readonly initImage?: unknown;
  readonly depthMap?: unknown;
  readonly mix?: readonly { readonly kind: MixItem['kind'] }[];
}

export function unetFor(mode: Mode): GraphComponentId {
  return mode === 'inpaint' ? 'unet_inpaint' : mode === 'depth' ? 'unet_depth' : 'unet';
}

/** How depth mode gets its hint: a given map (text→image), or a photo (image→image) whose depth
 * is estimated or, with a map given too, taken from the map. */
export type DepthInput = 'map' | 'photo' | 'photo-and-map';

export function depthInputOf(request: Pick<RequestShape, 'initImage' | 'depthMap'>): DepthInput {
  if (!request.initImage) return 'map';
  return request.depthMap ? 'photo-and-map' : 'photo';
}

/**
 * Whether the prior starts from the input picture's image embedding (`settings.priorStrength`,
 * diffusers' KandinskyV22PriorEmb2EmbPipeline): then the image encoder runs too.
 */
export function usesImagePrior(settings: RequestShape['settings']): boolean {
  return settings.priorStrength !== undefined;
}

/** Whether the latents start from an encoded picture (image→image, depth control from a photo). */
export function startsFromImage(request: RequestShape): boolean {
  const { mode } = request.settings;
  return mode === 'img2img' || (mode === 'depth' && request.initImage !== undefined);
}

export function mixNeedsImageEncoder(items: RequestShape['mix']): boolean {
  return items?.some((item) => item.kind === 'image') ?? false;
}

/** Every component a request reads, graphs in the order the pipeline runs them. */
export function componentsFor(request: RequestShape): ComponentId[] {
  const { mode } = request.settings;
  const depth = depthInputOf(request);
  const fromPhoto = mode === 'depth' && depth !== 'map';
  const needsImageEncoder = mixNeedsImageEncoder(request.mix) || usesImagePrior(request.settings);
  const needsMovqEncoder = mode === 'img2img' || mode === 'inpaint' || fromPhoto;
  return [
    ...(fromPhoto && depth === 'photo' ? (['depth_estimator'] as const) : []),
    'tokenizer',
    'text_encoder',
    ...(needsImageEncoder ? (['image_encoder'] as const) : []),
    'prior',
    'prior_clip_mean',
    'prior_clip_std',
    'negative_image_embeds',
    ...(needsMovqEncoder ? (['movq_encoder'] as const) : []),
    unetFor(mode),
    'movq_decoder',
  ];
}

/** The ONNX graphs among a request's components, in pipeline order (what the load stage opens). */
export function graphsFor(request: RequestShape): GraphComponentId[] {
  return componentsFor(request).filter((id): id is GraphComponentId => componentKind(id) === 'onnx');
}

/** The request each feature of the model manager stands for. */
const FEATURE_REQUESTS: Record<Feature, RequestShape> = {
  'text-to-image': { settings: { mode: 'txt2img' } },
  'image-to-image': { settings: { mode: 'img2img' }, initImage: true },
  inpainting: { settings: { mode: 'inpaint' }, initImage: true },
  'depth-control': { settings: { mode: 'depth' }, depthMap: true },
  'image-prompt': { settings: { mode: 'txt2img' }, mix: [{ kind: 'image' }] },
  'depth-from-photo': { settings: { mode: 'depth' }, initImage: true },
};

/** The components a feature needs (every one, the text→image ones included). */
export function featureComponents(feature: Feature): ComponentId[] {
  return componentsFor(FEATURE_REQUESTS[feature]);
}

/** Checks a request's pictures and mode-specific settings; throws INVALID_INPUT naming the problem. */
export function checkRequest(request: PipelineRequest): void {
  const { settings, initImage, mask, depthMap } = request;
  const needImage = (what: string, image: RgbaImage | MaskImage | undefined) => {
    if (!image) throw new KandinskyError('INVALID_INPUT', `${what} is needed for ${settings.mode}.`);
    if (image.width !== settings.width || image.height !== settings.height) {
      throw new KandinskyError(
        'INVALID_INPUT',
        `${what} is ${image.width}×${image.height} but the output is ${settings.width}×${settings.height}; resize it to the output size.`,
      );
    }
  };
  if (settings.mode === 'img2img' || settings.mode === 'inpaint') needImage('An input image', initImage);
  if (settings.mode === 'inpaint') {
    needImage('A mask', mask);
    if (mask && maskIsEmpty(mask)) {
      throw new KandinskyError('INVALID_INPUT', 'The mask is empty: paint the area to repaint in white.');
    }
  }
  if (usesImagePrior(settings)) {
    if (request.mix) {
      throw new KandinskyError('INVALID_INPUT', 'Image mixing and a prior strength cannot be combined.');
    }
    if (settings.mode !== 'img2img' && !(settings.mode === 'depth' && initImage)) {
      throw new KandinskyError(
        'INVALID_INPUT',
        'Taking the look of the input picture (prior strength) needs img2img, or depth control from a photo.',
      );
    }
    const priorStrength = settings.priorStrength ?? 1;
    // The prior keeps the last int(priorSteps × priorStrength) steps (get_timesteps): none is no run.
    if (Math.trunc(settings.priorSteps * priorStrength) === 0) {
      throw new KandinskyError(
        'INVALID_INPUT',
        `Prior strength ${priorStrength} with ${settings.priorSteps} prior steps runs no prior step; raise either.`,
      );
    }
  }
  if (settings.mode === 'depth') {
    if (initImage) needImage('The photo', initImage);
    // Without a photo the map is the only source of the hint.
    if (depthMap || !initImage) needImage('A depth map', depthMap);
  }
}
