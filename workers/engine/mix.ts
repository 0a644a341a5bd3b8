/**
 * Image mixing: several prompts and pictures, each with a weight, blended into one image embedding
 * that the decoder then draws. This is diffusers' `KandinskyV22PriorPipeline.interpolate`, number for
 * number and draw for draw:
 *
 * - every prompt runs the whole prior (with the negative prompt as its unconditional text), each run
 *   drawing from the one shared generator, in item order;
 * - every picture goes through CLIPImageProcessor's steps and the image encoder (no random draws),
 *   so the image encoder is loaded only when a picture is mixed;
 * - the embeddings are summed with their weights (as given: diffusers does not normalise them);
 * - one more prior run gives the negative embedding: the prior's embedding of the negative prompt,
 *   or, without one, the constant `negative_image_embeds` — diffusers still runs that prior (on "")
 *   and discards it, so its random draws are made here too (without running the graphs), keeping
 *   the decoder's noise identical to the reference.
 */
import { KandinskyError } from '../errors';
import type { ModelSet } from './model-set';
import { readFloat32, TensorScope } from './ort';
import type { PipelineHooks, TraceFn } from './pipeline';
import type { RgbaImage } from './png';
import { resamplePixels } from './resample';
import type { TorchGenerator } from './rng';
import { createPriorScheduler, type SchedulerConfigJson } from './schedulers';
import type { GenerationSettings } from './settings';

/** One ingredient of a mix. The same shape as the UI's `src/mix/mix.ts` items. */
export type MixItem =
  | { readonly kind: 'prompt'; readonly prompt: string; readonly weight: number }
  | { readonly kind: 'image'; readonly image: RgbaImage; readonly weight: number };

/** What the prior stage hands the decoder: `[numImages, D]` each. */
export interface PriorEmbeddings {
  readonly imageEmbeds: Float32Array;
  readonly negativeImageEmbeds: Float32Array;
  readonly truncatedPrompt?: { readonly keptText: string; readonly droppedTokens: number } | undefined;
}

/**
 * Runs the text prior once for `settings` (its prompt, negative prompt, steps, guidance and number
 * of images) with the generation's generator, tracing under the given function.
 */
export type RunPrior = (settings: GenerationSettings, trace: TraceFn | undefined) => Promise<PriorEmbeddings>;

/** CLIPImageProcessor's normalisation of the real prior (OpenAI CLIP's statistics). */
const CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073] as const;
const CLIP_STD = [0.26862954, 0.26130258, 0.27577711] as const;

export function mixNeedsImageEncoder(items: readonly MixItem[] | undefined): boolean {
  return items?.some((item) => item.kind === 'image') ?? false;
}

/**
 * CLIPImageProcessor's geometry: the shortest side resized to `size` with Pillow's bicubic (the
 * longest to `trunc(size · long / short)`), then the centre `size × size` crop. 8-bit RGB result.
 */
export function clipResizeAndCrop(image: RgbaImage, size: number): RgbaImage {
  const { width, height } = image;
  const short = Math.min(width, height);
  const long = Math.max(width, height);
  const newLong = Math.trunc((size * long) / short);
  const outWidth = width <= height ? size : newLong;
  const outHeight = width <= height ? newLong : size;
  const plane = width * height;
  const rgb = new Uint8Array(plane * 3);
  for (let i = 0; i < plane; i++) {
    for (let c = 0; c < 3; c++) rgb[i * 3 + c] = image.data[i * 4 + c] ?? 0;
  }
  const resized = resamplePixels(rgb, width, height, 3, outWidth, outHeight, 'bicubic');
  const top = Math.floor((outHeight - size) / 2);
  const left = Math.floor((outWidth - size) / 2);
  const data = new Uint8Array(size * size * 4);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const from = ((top + y) * outWidth + left + x) * 3;
      const to = (y * size + x) * 4;
      data[to] = resized[from] ?? 0;
      data[to + 1] = resized[from + 1] ?? 0;
      data[to + 2] = resized[from + 2] ?? 0;
      data[to + 3] = 255;
    }
  }
  return { width: size, height: size, data };
}

/**
 * A picture → the image encoder's `pixel_values` `[1, 3, size, size]`: resize and crop, then
 * `(pixel · (1/255) − mean) / std` with the rounding transformers does (the product in float64,
 * then float32 for the rest).
 */
export function clipPixelValues(image: RgbaImage, size: number): Float32Array {
  const crop = clipResizeAndCrop(image, size);
  const plane = size * size;
  const out = new Float32Array(3 * plane);
  for (let c = 0; c < 3; c++) {
    const mean = Math.fround(CLIP_MEAN[c] ?? 0);
    const std = Math.fround(CLIP_STD[c] ?? 1);
    for (let i = 0; i < plane; i++) {
      const scaled = Math.fround((crop.data[i * 4 + c] ?? 0) * (1 / 255));
      out[c * plane + i] = Math.fround(Math.fround(scaled - mean) / std);
    }
  }
  return out;
}

function checkItems(items: readonly MixItem[]): void {
  if (items.length === 0)
    throw new KandinskyError('INVALID_INPUT', 'A mix needs at least one prompt or picture.');
  for (const [index, item] of items.entries()) {
    if (!Number.isFinite(item.weight)) {
      throw new KandinskyError('INVALID_INPUT', `Mix item ${index + 1}: the weight must be a number.`);
    }
    if (item.kind === 'image' && (item.image.width < 1 || item.image.height < 1)) {
      throw new KandinskyError('INVALID_INPUT', `Mix item ${index + 1}: the picture has no pixels.`);
    }
  }
}

/** The image encoder's embedding `[1, D]` of one picture. */
export async function encodePicture(
  models: ModelSet,
  image: RgbaImage,
  trace: TraceFn | undefined,
): Promise<Float32Array> {
  const size = models.manifest.dims.imageEncoderSize;
  const d = models.manifest.dims.imageEmbedDim;
  const pixels = clipPixelValues(image, size);
  trace?.('image_encoder_pixel_values', pixels, [1, 3, size, size]);
  const session = await models.session('image_encoder');
  const scope = new TensorScope(models.ort);
  try {
    const out = await scope.run(session, { pixel_values: scope.float32(pixels, [1, 3, size, size]) });
    const embeds = out.image_embeds;
    if (!embeds)
      throw new KandinskyError('INFERENCE_FAILED', 'The image encoder returned no "image_embeds" output.');
    const values = (await readFloat32(embeds)).slice(0, d);
    trace?.('image_encoder_image_embeds', values, [1, d]);
    return values;
  } finally {
    scope.disposeAll();
  }
}

/**
 * The random draws of one prior run, without running it: its initial latents and one scheduler
 * draw per step with t > 0 (the scheduler decides; it is stepped on zeros, which costs nothing).
 */
function drawPriorNoise(
  models: ModelSet,
  settings: GenerationSettings,
  generator: TorchGenerator,
  trace: TraceFn | undefined,
): void {
  const rows = settings.numImages;
  const shape = [rows, models.manifest.dims.imageEmbedDim];
  const scheduler = createPriorScheduler(models.manifest.schedulers.prior as SchedulerConfigJson);
  scheduler.setTimesteps(settings.priorSteps);
  // Drawn whether or not anyone traces it: the decoder's noise comes after these draws.
  const noise = generator.randn(shape);
  trace?.('prior_noise', noise, shape);
  const zeros = new Float32Array(rows * (shape[1] ?? 0));
  const timesteps = scheduler.timesteps;
  for (const [i, t] of timesteps.entries()) {
    const prevTimestep = timesteps[i + 1];
    scheduler.step(zeros, t, zeros, {
      shape,
      generator,
      ...(prevTimestep !== undefined ? { prevTimestep } : {}),
    });
  }
}

/**
 * The mixed image embeddings and their negative, `[numImages, D]` each, in place of the prompt's
 * prior run. `settings.prompt` is not used; `settings.negativePrompt` (if any) is both the prior's
 * unconditional text in every run and the text of the negative embedding, as in a plain generation.
 */
export async function mixImageEmbeds(
  models: ModelSet,
  items: readonly MixItem[],
  settings: GenerationSettings,
  generator: TorchGenerator,
  hooks: PipelineHooks,
  runPrior: RunPrior,
): Promise<PriorEmbeddings> {
  checkItems(items);
  const { trace } = hooks;
  const n = settings.numImages;
  const d = models.manifest.dims.imageEmbedDim;
  const priorTrace = (run: number): TraceFn | undefined =>
    trace ? (name, data, dims) => trace(`mix_prior_${run}_${name}`, data, dims) : undefined;

  // Pictures first: they draw nothing, and encoding them before the prior runs lets low-memory
  // mode free the image encoder before the prior is loaded.
  const pictureEmbeds = new Map<number, Float32Array>();
  for (const [index, item] of items.entries()) {
    if (item.kind !== 'image') continue;
    if (hooks.signal?.aborted) throw new KandinskyError('CANCELLED', 'The generation was cancelled.');
    pictureEmbeds.set(index, await encodePicture(models, item.image, trace));
  }
  if (hooks.lowMemory) await models.release('image_encoder');

  let run = 0;
  let truncatedPrompt: PriorEmbeddings['truncatedPrompt'];
  const mixed = new Float32Array(n * d);
  for (const [index, item] of items.entries()) {
    let embeds: Float32Array;
    if (item.kind === 'prompt') {
      const result = await runPrior({ ...settings, prompt: item.prompt }, priorTrace(run++));
      truncatedPrompt ??= result.truncatedPrompt;
      embeds = result.imageEmbeds;
    } else {
      const single = pictureEmbeds.get(index) ?? new Float32Array(d);
      embeds = new Float32Array(n * d);
      for (let row = 0; row < n; row++) embeds.set(single, row * d);
    }
    // torch: `embeds * weight` in float32 (the weight rounded to float32), then a sum over items
    // in order.
    const weight = Math.fround(item.weight);
    for (let k = 0; k < n * d; k++) {
      mixed[k] = Math.fround((mixed[k] ?? 0) + Math.fround((embeds[k] ?? 0) * weight));
    }
  }

  let negativeImageEmbeds: Float32Array;
  if (settings.negativePrompt.length > 0) {
    const negative = settings.negativePrompt;
    const result = await runPrior(
      { ...settings, prompt: negative, negativePrompt: negative },
      priorTrace(run),
    );
    negativeImageEmbeds = result.imageEmbeds;
  } else {
    drawPriorNoise(models, settings, generator, priorTrace(run));
    const zero = await models.tensor('negative_image_embeds');
    negativeImageEmbeds = new Float32Array(n * d);
    for (let row = 0; row < n; row++) negativeImageEmbeds.set(zero.subarray(0, d), row * d);
  }
  trace?.('image_embeds', mixed, [n, d]);
  trace?.('negative_image_embeds', negativeImageEmbeds, [n, d]);
  return { imageEmbeds: mixed, negativeImageEmbeds, ...(truncatedPrompt ? { truncatedPrompt } : {}) };
}
