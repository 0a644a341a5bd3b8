/**
 * Stage 3: the decoder's starting point — its scheduler and timesteps, the initial latents, and
 * what the UNet gets besides them, per mode (diffusers' `prepare_latents` and the mode-specific
 * inputs of each decoder pipeline):
 *
 * - text→image: pure noise on the latent grid (sizes rounded up to 64 pixels);
 * - image→image, depth from a photo: the picture's MoVQ latents noised to `strength`;
 * - inpainting: pure noise, plus the masked picture's latents and the keep mask;
 * - depth: the depth map as the UNet's `hint`.
 */
import { KandinskyError } from '../../errors';
import type { InpaintState } from '../denoise/inpaint-blend';
import type { HostTensor } from '../denoise/loop';
import { depthMapToHint, latentKeepMask, type MaskImage } from '../image';
import type { ModelSet } from '../model-set';
import type { RgbaImage } from '../png';
import { type PipelineRequest, startsFromImage } from '../request';
import { concatRows, repeatRows } from '../rows';
import {
  createDecoderScheduler,
  DECODER_SCHEDULER_CLASSES,
  type DecoderScheduler,
  type SchedulerConfigJson,
} from '../schedulers';
import type { StageContext } from './context';
import { encodeImage } from './movq';

/** The latent grid of a request: text→image rounds the pixel size up to a multiple of 64. */
export function latentSize(request: PipelineRequest, scale: number): { h: number; w: number } {
  const { settings } = request;
  if (startsFromImage(request)) {
    return { h: Math.floor(settings.height / scale), w: Math.floor(settings.width / scale) };
  }
  const cells = scale * scale; // 64 px = 8 latents for scale 8
  return { h: Math.ceil(settings.height / cells) * scale, w: Math.ceil(settings.width / cells) * scale };
}

/** The shape of every UNet input for this request (CFG doubles the batch). */
export function unetInputDims(models: ModelSet, request: PipelineRequest): Record<string, readonly number[]> {
  const { settings } = request;
  const { latentChannels: channels, imageEmbedDim: d, movqScaleFactor: scale } = models.manifest.dims;
  const { h, w } = latentSize(request, scale);
  const batch = settings.guidance > 1 ? 2 * settings.numImages : settings.numImages;
  const dims: Record<string, readonly number[]> = {
    sample: [batch, channels, h, w],
    timestep: [batch],
    image_embeds: [batch, d],
  };
  if (settings.mode === 'depth') dims.hint = [batch, 3, h * scale, w * scale];
  if (settings.mode === 'inpaint') {
    dims.masked_image_latents = [batch, channels, h, w];
    dims.mask = [batch, 1, h, w];
  }
  return dims;
}

export interface PreparedLatents {
  readonly scheduler: DecoderScheduler;
  readonly timesteps: readonly number[];
  /** `[N, C, h, w]`, noised and scaled for the first step. */
  readonly latents: HostTensor;
  /** The UNet's constant inputs, CFG-batched: `image_embeds`, and `hint` or the inpainting inputs. */
  readonly unetConstants: Readonly<Record<string, HostTensor>>;
  readonly inpaint: InpaintState | null;
}

/**
 * The decoder's scheduler, timesteps, initial latents and UNet constants for `request`, drawing
 * the initial noise from the generation's generator. `[negative; positive]` embeddings under guidance.
 */
export async function prepareLatents(
  context: StageContext,
  request: PipelineRequest,
  imageEmbeds: Float32Array,
  negativeImageEmbeds: Float32Array,
): Promise<PreparedLatents> {
  const { models, hooks, generator } = context;
  const { settings } = request;
  const { trace } = hooks;
  const n = settings.numImages;
  const { imageEmbedDim: d, latentChannels: channels, movqScaleFactor: scale } = models.manifest.dims;
  const { h, w } = latentSize(request, scale);
  const plane = h * w;
  const shape = [n, channels, h, w];
  const batch = settings.guidance > 1 ? 2 * n : n;

  // The set's own scheduler unless the person picked one (then built from the set's config).
  const scheduler = createDecoderScheduler(
    models.manifest.schedulers.decoder as SchedulerConfigJson,
    settings.scheduler === undefined ? undefined : DECODER_SCHEDULER_CLASSES[settings.scheduler],
  );
  const conditioning = settings.guidance > 1 ? concatRows(negativeImageEmbeds, imageEmbeds) : imageEmbeds;
  trace?.('decoder_image_embeds', conditioning, [batch, d]);
  const unetConstants: Record<string, HostTensor> = {
    image_embeds: { data: conditioning, dims: [batch, d] },
  };

  const addDepthHint = () => {
    const hint = depthMapToHint(request.depthMap as RgbaImage);
    trace?.('input_hint', hint, [1, 3, h * scale, w * scale]);
    unetConstants.hint = { data: repeatRows(hint, batch), dims: [batch, 3, h * scale, w * scale] };
  };

  if (startsFromImage(request)) {
    const image = await encodeImage(context, request.initImage as RgbaImage);
    const { timesteps } = scheduler.getTimesteps(settings.steps, settings.strength);
    const first = timesteps[0];
    if (first === undefined) {
      throw new KandinskyError(
        'INVALID_INPUT',
        `Strength ${settings.strength} with ${settings.steps} steps runs no step; raise either.`,
      );
    }
    const noise = generator.randn(shape);
    trace?.('decoder_noise', noise, shape);
    const latents = scheduler.addNoise(repeatRows(image.latents, n), noise, Array(n).fill(first));
    if (settings.mode === 'depth') addDepthHint();
    return { scheduler, timesteps, latents: { data: latents, dims: shape }, unetConstants, inpaint: null };
  }

  scheduler.setTimesteps(settings.steps);
  let latents = generator.randn(shape);
  trace?.('decoder_noise', latents, shape);
  if (scheduler.initNoiseSigma !== 1) latents = latents.map((v) => Math.fround(v * scheduler.initNoiseSigma));
  let inpaint: InpaintState | null = null;
  if (settings.mode === 'inpaint') {
    const image = await encodeImage(context, request.initImage as RgbaImage);
    const keep = latentKeepMask(request.mask as MaskImage, h, w);
    const masked = image.latents.map((v, k) => Math.fround(v * (keep[k % plane] ?? 0)));
    trace?.('mask_latent', keep, [1, 1, h, w]);
    trace?.('masked_image_latents', masked, [1, channels, h, w]);
    unetConstants.masked_image_latents = { data: repeatRows(masked, batch), dims: [batch, channels, h, w] };
    unetConstants.mask = { data: repeatRows(keep, batch), dims: [batch, 1, h, w] };
    inpaint = { keep, imageLatents: image.latents, noise: latents.slice() };
  } else if (settings.mode === 'depth') {
    addDepthHint();
  }
  const timesteps = scheduler.timesteps;
  return { scheduler, timesteps, latents: { data: latents, dims: shape }, unetConstants, inpaint };
}
