/**
 * The Kandinsky 2.2 pipelines as one readable sequence of named steps:
 * tokenize → encode text → prior (text → image embedding) → prepare latents → denoise → MoVQ decode.
 * Text→image, image→image, inpainting and depth control differ only in how latents are prepared
 * and what the UNet is given besides them. The numbers follow diffusers' pipelines exactly
 * (models/CONTRACT.md, "Engine rules"); the reference fixtures prove it.
 */
import type { GraphComponentId } from '../../models/contract';
import { KandinskyError } from '../errors';
import { estimateDepth } from './depth-estimator';
import {
  depthMapToHint,
  latentKeepMask,
  latentPreview,
  type MaskImage,
  maskIsEmpty,
  movqOutputToImages,
  rgbaToSignedNchw,
} from './image';
import { encodePicture, type MixItem, mixImageEmbeds, mixNeedsImageEncoder } from './mix';
import type { ModelSet } from './model-set';
import { type InferenceSession, readFloat32, type Tensor, TensorScope } from './ort';
import type { RgbaImage } from './png';
import { denoiseResident } from './resident-denoise';
import { TorchGenerator } from './rng';
import {
  createDecoderScheduler,
  createPriorScheduler,
  type DecoderScheduler,
  type DecoderSchedulerName,
  img2imgTimesteps,
  type SchedulerConfigJson,
} from './schedulers';
import type { GenerationSettings, DecoderSchedulerName as SettingsScheduler } from './settings';

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
   * input (workers/engine/mix.ts); the decoder stage runs as the mode says.
   */
  readonly mix?: readonly MixItem[];
}

export type PipelineProgress =
  | {
      readonly stage: 'load';
      readonly component: GraphComponentId;
      readonly index: number;
      readonly count: number;
    }
  | { readonly stage: 'encode' }
  /** The depth map estimated from the photo (depth mode), at the output size. */
  | { readonly stage: 'depth'; readonly depthMap: RgbaImage }
  | { readonly stage: 'prior'; readonly step: number; readonly steps: number }
  | { readonly stage: 'denoise'; readonly step: number; readonly steps: number; readonly preview?: RgbaImage }
  | { readonly stage: 'decode'; readonly image: number; readonly images: number };

/** A recorded intermediate, named as in the reference fixtures (models/CONTRACT.md). */
export type TraceFn = (name: string, data: Float32Array | BigInt64Array, dims: readonly number[]) => void;

export interface PipelineHooks {
  readonly signal?: AbortSignal;
  readonly onProgress?: (progress: PipelineProgress) => void;
  /** Send a latent preview with every denoising step (one readback per step on the GPU). */
  readonly previews?: boolean;
  /** Release each stage's session before the next: the peak is the largest component. */
  readonly lowMemory?: boolean;
  readonly trace?: TraceFn;
}

export interface PipelineResult {
  readonly images: RgbaImage[];
  /** The images as floats in [0, 1], NHWC — diffusers' `output_type="np"`. */
  readonly floatImages: Float32Array;
  readonly truncatedPrompt?: { readonly keptText: string; readonly droppedTokens: number };
  readonly timings: Record<'load' | 'encode' | 'prior' | 'denoise' | 'decode', number>;
}

const SCHEDULER_CLASSES: Record<SettingsScheduler, DecoderSchedulerName> = {
  ddpm: 'DDPMScheduler',
  ddim: 'DDIMScheduler',
  'dpmpp-2m': 'DPMSolverMultistepScheduler',
};

function unetFor(mode: GenerationSettings['mode']): GraphComponentId {
  return mode === 'inpaint' ? 'unet_inpaint' : mode === 'depth' ? 'unet_depth' : 'unet';
}

/** How depth mode gets its hint: a given map (text→image), or a photo (image→image) whose depth
 * is estimated or, with a map given too, taken from the map. */
export type DepthInput = 'map' | 'photo' | 'photo-and-map';

export function depthInputOf(request: Pick<PipelineRequest, 'initImage' | 'depthMap'>): DepthInput {
  if (!request.initImage) return 'map';
  return request.depthMap ? 'photo-and-map' : 'photo';
}

/**
 * Whether the prior starts from the input picture's image embedding (`settings.priorStrength`,
 * diffusers' KandinskyV22PriorEmb2EmbPipeline): then the image encoder runs too.
 */
export function usesImagePrior(settings: Pick<GenerationSettings, 'priorStrength'>): boolean {
  return settings.priorStrength !== undefined;
}

/** The components a mode runs, in pipeline order. */
export function componentsFor(
  mode: GenerationSettings['mode'],
  depth: DepthInput = 'map',
): GraphComponentId[] {
  const fromPhoto = mode === 'depth' && depth !== 'map';
  const needsEncoder = mode === 'img2img' || mode === 'inpaint' || fromPhoto;
  return [
    ...(fromPhoto && depth === 'photo' ? (['depth_estimator'] as const) : []),
    'text_encoder',
    'prior',
    ...(needsEncoder ? (['movq_encoder'] as const) : []),
    unetFor(mode),
    'movq_decoder',
  ];
}

function checkAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new KandinskyError('CANCELLED', 'The generation was cancelled.');
}

/** Rows `[a; b]` of two tensors with the same row size. */
function concatRows(...parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** `times` copies of one row block, one after another (torch `repeat` on dim 0). */
function repeatRows(block: Float32Array, times: number): Float32Array {
  return concatRows(...Array.from({ length: times }, () => block));
}

/** Classifier-free guidance on a batch `[uncond; cond]`: `u + s · (c − u)`, first `size` values of each half. */
function guide(
  batched: Float32Array,
  halfLength: number,
  pick: (i: number) => number,
  count: number,
  scale: number,
) {
  const out = new Float32Array(count);
  for (let i = 0; i < count; i++) {
    const at = pick(i);
    const u = batched[at] ?? 0;
    const c = batched[halfLength + at] ?? 0;
    out[i] = Math.fround(u + Math.fround(scale * Math.fround(c - u)));
  }
  return out;
}

interface TextBatch {
  readonly textEmbeds: Float32Array; // [rows, D]
  readonly hiddenStates: Float32Array; // [rows, 77, T]
  readonly mask: Uint8Array; // [rows, 77] bool
  readonly rows: number;
}

interface Stages {
  readonly models: ModelSet;
  readonly hooks: PipelineHooks;
  readonly generator: TorchGenerator;
  readonly timings: PipelineResult['timings'];
}

export async function runPipeline(
  models: ModelSet,
  request: PipelineRequest,
  hooks: PipelineHooks = {},
): Promise<PipelineResult> {
  const { settings } = request;
  const generator = new TorchGenerator().manualSeed(settings.seed);
  const timings = { load: 0, encode: 0, prior: 0, denoise: 0, decode: 0 };
  const stages: Stages = { models, hooks, generator, timings };
  checkInputs(request);

  let start = performance.now();
  const components = [
    ...componentsFor(settings.mode, depthInputOf(request)),
    ...(mixNeedsImageEncoder(request.mix) || usesImagePrior(settings) ? (['image_encoder'] as const) : []),
  ];
  if (!hooks.lowMemory) {
    for (const [index, component] of components.entries()) {
      checkAborted(hooks.signal);
      hooks.onProgress?.({ stage: 'load', component, index, count: components.length });
      const unetId = unetFor(settings.mode);
      // The loop's UNet, captured for this request's shapes where it can be: never a second session.
      await (component === unetId && models.residency === 'gpu'
        ? models.loopSession(unetId, unetInputDims(models, request))
        : models.session(component));
    }
  }
  timings.load += performance.now() - start;

  let estimatedDepthMap: RgbaImage | undefined;
  try {
    if (settings.mode === 'depth' && depthInputOf(request) === 'photo') {
      // The depth map comes first, so the person sees what the layout will be while the rest runs.
      start = performance.now();
      const estimate = await estimateDepth(models, request.initImage as RgbaImage);
      await release(stages, 'depth_estimator');
      timings.encode += performance.now() - start;
      hooks.trace?.('depth_predicted_depth', estimate.predicted.data, [
        1,
        estimate.predicted.height,
        estimate.predicted.width,
      ]);
      hooks.onProgress?.({ stage: 'depth', depthMap: estimate.depthMap });
      estimatedDepthMap = estimate.depthMap;
    }
    const { imageEmbeds, negativeImageEmbeds, truncatedPrompt } = request.mix
      ? await mixImageEmbeds(models, request.mix, settings, generator, hooks, (priorSettings, trace) =>
          encodeAndRunPrior({ ...stages, hooks: { ...hooks, trace } }, priorSettings),
        )
      : usesImagePrior(settings)
        ? await runImagePrior(stages, settings, request.initImage as RgbaImage)
        : await encodeAndRunPrior(stages, settings);
    start = performance.now();
    const latents = await denoise(
      stages,
      estimatedDepthMap ? { ...request, depthMap: estimatedDepthMap } : request,
      imageEmbeds,
      negativeImageEmbeds,
    );
    timings.denoise += performance.now() - start;
    start = performance.now();
    const decoded = await decodeLatents(stages, latents, settings.numImages);
    timings.decode += performance.now() - start;
    return { ...decoded, timings, ...(truncatedPrompt ? { truncatedPrompt } : {}) };
  } finally {
    if (hooks.lowMemory) await models.releaseAll();
  }
}

function checkInputs(request: PipelineRequest): void {
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

async function release(stages: Stages, id: GraphComponentId): Promise<void> {
  if (stages.hooks.lowMemory) await stages.models.release(id);
}

async function encodeTexts(
  stages: Stages,
  texts: readonly string[],
): Promise<TextBatch & { truncated?: { keptText: string; droppedTokens: number } }> {
  const { models } = stages;
  const tokenizer = await models.tokenizer();
  const session = await models.session('text_encoder');
  const rows = texts.length;
  const length = models.manifest.dims.textMaxLength;
  const ids = new BigInt64Array(rows * length);
  const mask = new Uint8Array(rows * length);
  let truncated: { keptText: string; droppedTokens: number } | undefined;
  texts.forEach((text, row) => {
    const tokens = tokenizer.encode(text);
    ids.set(tokens.inputIds, row * length);
    tokens.attentionMask.forEach((m, i) => {
      mask[row * length + i] = Number(m);
    });
    if (tokens.droppedTokens > 0 && row === 0)
      truncated = { keptText: tokens.keptText, droppedTokens: tokens.droppedTokens };
  });
  const scope = new TensorScope(models.ort);
  try {
    const out = await scope.run(session, { input_ids: scope.int64(ids, [rows, length]) });
    const textEmbeds = await readFloat32(required(out, 'text_embeds'));
    const hiddenStates = await readFloat32(required(out, 'last_hidden_state'));
    return {
      textEmbeds: textEmbeds.slice(),
      hiddenStates: hiddenStates.slice(),
      mask,
      rows,
      ...(truncated ? { truncated } : {}),
    };
  } finally {
    scope.disposeAll();
  }
}

function required(outputs: Record<string, Tensor>, name: string): Tensor {
  const tensor = outputs[name];
  if (!tensor) throw new KandinskyError('INFERENCE_FAILED', `The graph returned no "${name}" output.`);
  return tensor;
}

/**
 * The prior from the input picture, as diffusers' ControlNet img2img example runs it: the picture's
 * CLIP image embedding, noised to `priorStrength`, is denoised towards the prompt
 * (KandinskyV22PriorEmb2EmbPipeline, unconditional text ""); the negative embedding is the same run
 * on the negative prompt (or "") at strength 1. Two prior runs on the one generator, in that order.
 */
async function runImagePrior(stages: Stages, settings: GenerationSettings, picture: RgbaImage) {
  const { models, hooks } = stages;
  const { trace } = hooks;
  const n = settings.numImages;
  const d = models.manifest.dims.imageEmbedDim;
  const start = performance.now();
  hooks.onProgress?.({ stage: 'encode' });
  const embeds = await encodePicture(models, picture, trace);
  await release(stages, 'image_encoder');
  stages.timings.encode += performance.now() - start;
  const runTrace = (run: number): TraceFn | undefined =>
    trace ? (name, data, dims) => trace(`prior_${run}_${name}`, data, dims) : undefined;
  const positive = await encodeAndRunPrior(
    { ...stages, hooks: { ...hooks, trace: runTrace(0) } },
    { ...settings, negativePrompt: '' },
    { embeds, strength: settings.priorStrength ?? 1 },
  );
  const negative = await encodeAndRunPrior(
    { ...stages, hooks: { ...hooks, trace: runTrace(1) } },
    { ...settings, prompt: settings.negativePrompt, negativePrompt: '' },
    { embeds, strength: 1 },
  );
  trace?.('image_embeds', positive.imageEmbeds, [n, d]);
  trace?.('negative_image_embeds', negative.imageEmbeds, [n, d]);
  return {
    imageEmbeds: positive.imageEmbeds,
    negativeImageEmbeds: negative.imageEmbeds,
    truncatedPrompt: positive.truncatedPrompt,
  };
}

/**
 * Prompt → (image embeddings, negative image embeddings), each [N, D]. With `from`, the prior
 * starts from that image embedding `[1, D]` noised to `strength` instead of from pure noise.
 */
async function encodeAndRunPrior(
  stages: Stages,
  settings: GenerationSettings,
  from?: { readonly embeds: Float32Array; readonly strength: number },
) {
  const { models, hooks, generator, timings } = stages;
  const { trace } = hooks;
  const n = settings.numImages;
  const d = models.manifest.dims.imageEmbedDim;
  const guided = settings.priorGuidance > 1;
  const negative = settings.negativePrompt.length > 0 ? settings.negativePrompt : null;

  // Text rows, as diffusers' prior builds them: with a negative prompt the batch doubles so the
  // prior also produces the negative image embedding; the unconditional texts are the negative
  // prompt. Each text is then repeated for the number of images ([p, p, n, n] for two images).
  const baseTexts = negative !== null ? [settings.prompt, negative] : [settings.prompt];
  const rows = baseTexts.length * n;

  let start = performance.now();
  hooks.onProgress?.({ stage: 'encode' });
  // Each distinct text is encoded once; rows are copies (the encoder treats rows independently).
  const distinct = [...new Set([...baseTexts, ...(guided ? [negative ?? ''] : [])])];
  const encoded = await encodeTexts(stages, distinct);
  await release(stages, 'text_encoder');
  const length = models.manifest.dims.textMaxLength;
  const hidden = encoded.hiddenStates.length / encoded.rows;
  const tokens = hidden / length;
  /** Rows of the encoded batch for `texts`, each repeated `times` times in place. */
  const gather = (texts: readonly string[], times: number): TextBatch => {
    const pick = texts.flatMap((t) => Array<number>(times).fill(distinct.indexOf(t)));
    const rowsOf = <T extends Float32Array | Uint8Array>(
      source: T,
      size: number,
      make: (k: number) => T,
    ): T => {
      const out = make(pick.length * size);
      pick.forEach((r, i) => {
        out.set(source.subarray(r * size, (r + 1) * size), i * size);
      });
      return out;
    };
    return {
      textEmbeds: rowsOf(encoded.textEmbeds, d, (k) => new Float32Array(k)),
      hiddenStates: rowsOf(encoded.hiddenStates, hidden, (k) => new Float32Array(k)),
      mask: rowsOf(encoded.mask, length, (k) => new Uint8Array(k)),
      rows: pick.length,
    };
  };
  const uncondTexts = baseTexts.map(() => negative ?? '');
  if (trace) {
    const base = gather(baseTexts, 1);
    trace('text_cond_text_embeds', base.textEmbeds, [base.rows, d]);
    trace('text_cond_last_hidden_state', base.hiddenStates, [base.rows, length, tokens]);
    if (guided) {
      const baseUncond = gather(uncondTexts, 1);
      trace('text_uncond_text_embeds', baseUncond.textEmbeds, [base.rows, d]);
      trace('text_uncond_last_hidden_state', baseUncond.hiddenStates, [base.rows, length, tokens]);
    }
  }
  const cond = gather(baseTexts, n);
  const uncond = guided ? gather(uncondTexts, n) : null;
  timings.encode += performance.now() - start;

  start = performance.now();
  const scheduler = createPriorScheduler(models.manifest.schedulers.prior as SchedulerConfigJson);
  scheduler.setTimesteps(settings.priorSteps);
  const timesteps = from
    ? img2imgTimesteps(scheduler.timesteps, settings.priorSteps, from.strength).timesteps
    : scheduler.timesteps;
  const batch = uncond ? 2 * rows : rows;
  const projEmbedding = uncond ? concatRows(uncond.textEmbeds, cond.textEmbeds) : cond.textEmbeds;
  const hiddenStates = uncond ? concatRows(uncond.hiddenStates, cond.hiddenStates) : cond.hiddenStates;
  const attentionMask = uncond ? Uint8Array.from([...uncond.mask, ...cond.mask]) : cond.mask;
  trace?.('prior_proj_embedding', projEmbedding, [batch, d]);

  let latents = generator.randn([rows, d]);
  trace?.('prior_noise', latents, [rows, d]);
  if (from) {
    const first = timesteps[0];
    if (first === undefined) {
      throw new KandinskyError(
        'INVALID_INPUT',
        `Prior strength ${from.strength} with ${settings.priorSteps} prior steps runs no step; raise either.`,
      );
    }
    latents = scheduler.addNoise(repeatRows(from.embeds, rows), latents, Array(rows).fill(first));
  }
  const session = await models.session('prior');
  const scope = new TensorScope(models.ort);
  try {
    const fixed = {
      proj_embedding: scope.float32(projEmbedding, [batch, d]),
      encoder_hidden_states: scope.float32(hiddenStates, [batch, length, tokens]),
      attention_mask: scope.bool(attentionMask, [batch, length]),
    };
    for (const [i, t] of timesteps.entries()) {
      checkAborted(hooks.signal);
      const stepScope = new TensorScope(models.ort);
      try {
        const input = uncond ? concatRows(latents, latents) : latents;
        const out = await stepScope.run(session, {
          ...fixed,
          latents: stepScope.float32(input, [batch, d]),
          timestep: stepScope.float32(new Float32Array(batch).fill(t), [batch]),
        });
        const predicted = await readFloat32(required(out, 'predicted_image_embedding'));
        const prediction = uncond
          ? guide(predicted, rows * d, (k) => k, rows * d, settings.priorGuidance)
          : predicted.slice();
        const prevTimestep = timesteps[i + 1];
        latents = scheduler.step(prediction, t, latents, {
          shape: [rows, d],
          generator,
          ...(prevTimestep !== undefined ? { prevTimestep } : {}),
        }).prevSample;
        trace?.(`prior_latents_${i}`, latents, [rows, d]);
      } finally {
        stepScope.disposeAll();
      }
      hooks.onProgress?.({ stage: 'prior', step: i + 1, steps: timesteps.length });
    }
  } finally {
    scope.disposeAll();
  }
  await release(stages, 'prior');

  // The prior works on normalised embeddings; undo the normalisation once, after the last step.
  const [mean, std] = await Promise.all([models.tensor('prior_clip_mean'), models.tensor('prior_clip_std')]);
  const embeds = latents.map((v, k) => Math.fround(Math.fround(v * (std[k % d] ?? 1)) + (mean[k % d] ?? 0)));
  const imageEmbeds = embeds.slice(0, n * d);
  const negativeImageEmbeds =
    negative !== null
      ? embeds.slice(n * d, 2 * n * d)
      : repeatRows(await models.tensor('negative_image_embeds'), n);
  trace?.('image_embeds', imageEmbeds, [n, d]);
  trace?.('negative_image_embeds', negativeImageEmbeds, [n, d]);
  timings.prior += performance.now() - start;
  return { imageEmbeds, negativeImageEmbeds, truncatedPrompt: encoded.truncated };
}

/** Whether the latents start from an encoded picture (image→image, depth control from a photo). */
function startsFromImage(request: PipelineRequest): boolean {
  const { mode } = request.settings;
  return mode === 'img2img' || (mode === 'depth' && request.initImage !== undefined);
}

/** Latent grid for an output size (text→image rounds up to a multiple of 64 pixels). */
/** The shape of every UNet input for this request (CFG doubles the batch). */
function unetInputDims(models: ModelSet, request: PipelineRequest): Record<string, readonly number[]> {
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

function latentSize(request: PipelineRequest, scale: number): { h: number; w: number } {
  const { settings } = request;
  if (startsFromImage(request)) {
    return { h: Math.floor(settings.height / scale), w: Math.floor(settings.width / scale) };
  }
  const cells = scale * scale; // 64 px = 8 latents for scale 8
  return { h: Math.ceil(settings.height / cells) * scale, w: Math.ceil(settings.width / cells) * scale };
}

async function encodeImage(
  stages: Stages,
  image: RgbaImage,
): Promise<{ latents: Float32Array; dims: number[] }> {
  const { models } = stages;
  const session = await models.session('movq_encoder');
  const scope = new TensorScope(models.ort);
  try {
    const pixels = rgbaToSignedNchw(image);
    stages.hooks.trace?.('input_image', pixels, [1, 3, image.height, image.width]);
    const out = await scope.run(session, { image: scope.float32(pixels, [1, 3, image.height, image.width]) });
    const latents = required(out, 'latents');
    const result = { latents: (await readFloat32(latents)).slice(), dims: [...latents.dims] };
    stages.hooks.trace?.('image_latents', result.latents, result.dims);
    return result;
  } finally {
    scope.disposeAll();
    await release(stages, 'movq_encoder');
  }
}

async function denoise(
  stages: Stages,
  request: PipelineRequest,
  imageEmbeds: Float32Array,
  negativeImageEmbeds: Float32Array,
): Promise<{ latents: Float32Array; dims: number[] }> {
  const { models, hooks, generator } = stages;
  const { settings } = request;
  const { trace } = hooks;
  const n = settings.numImages;
  const d = models.manifest.dims.imageEmbedDim;
  const channels = models.manifest.dims.latentChannels;
  const scale = models.manifest.dims.movqScaleFactor;
  const { h, w } = latentSize(request, scale);
  const plane = h * w;
  const latentLength = n * channels * plane;
  const shape = [n, channels, h, w];
  const guided = settings.guidance > 1;
  const batch = guided ? 2 * n : n;

  const scheduler: DecoderScheduler = createDecoderScheduler(
    models.manifest.schedulers.decoder as SchedulerConfigJson,
    SCHEDULER_CLASSES[settings.scheduler],
  );
  const conditioning = guided ? concatRows(negativeImageEmbeds, imageEmbeds) : imageEmbeds;
  trace?.('decoder_image_embeds', conditioning, [batch, d]);

  // Latents and what the UNet gets besides them, per mode.
  let latents: Float32Array;
  let timesteps: readonly number[];
  const extraFeeds: Record<string, { data: Float32Array; dims: number[] }> = {};
  let inpaint: { keep: Float32Array; imageLatents: Float32Array; noise: Float32Array } | null = null;

  const addDepthHint = () => {
    const hint = depthMapToHint(request.depthMap as RgbaImage);
    trace?.('input_hint', hint, [1, 3, h * scale, w * scale]);
    extraFeeds.hint = { data: repeatRows(hint, batch), dims: [batch, 3, h * scale, w * scale] };
  };
  if (startsFromImage(request)) {
    const image = await encodeImage(stages, request.initImage as RgbaImage);
    const picked = scheduler.getTimesteps(settings.steps, settings.strength);
    timesteps = picked.timesteps;
    const first = timesteps[0];
    if (first === undefined) {
      throw new KandinskyError(
        'INVALID_INPUT',
        `Strength ${settings.strength} with ${settings.steps} steps runs no step; raise either.`,
      );
    }
    const noise = generator.randn(shape);
    trace?.('decoder_noise', noise, shape);
    latents = scheduler.addNoise(repeatRows(image.latents, n), noise, Array(n).fill(first));
    if (settings.mode === 'depth') addDepthHint();
  } else {
    scheduler.setTimesteps(settings.steps);
    timesteps = scheduler.timesteps;
    latents = generator.randn(shape);
    trace?.('decoder_noise', latents, shape);
    if (scheduler.initNoiseSigma !== 1)
      latents = latents.map((v) => Math.fround(v * scheduler.initNoiseSigma));
    if (settings.mode === 'inpaint') {
      const image = await encodeImage(stages, request.initImage as RgbaImage);
      const keep = latentKeepMask(request.mask as MaskImage, h, w);
      const masked = image.latents.map((v, k) => Math.fround(v * (keep[k % plane] ?? 0)));
      trace?.('mask_latent', keep, [1, 1, h, w]);
      trace?.('masked_image_latents', masked, [1, channels, h, w]);
      extraFeeds.masked_image_latents = { data: repeatRows(masked, batch), dims: [batch, channels, h, w] };
      extraFeeds.mask = { data: repeatRows(keep, batch), dims: [batch, 1, h, w] };
      inpaint = { keep, imageLatents: image.latents, noise: latents.slice() };
    } else if (settings.mode === 'depth') {
      addDepthHint();
    }
  }

  const unetId = unetFor(settings.mode);
  if (models.residency === 'gpu') {
    const unetConstants = { image_embeds: { data: conditioning, dims: [batch, d] }, ...extraFeeds };
    latents = await denoiseResident({
      models,
      unet: await models.loopSession(unetId, unetInputDims(models, request)),
      scheduler,
      generator,
      timesteps,
      latents: { data: latents, dims: shape },
      guidance: settings.guidance,
      unetConstants,
      inpaint,
      checkAborted: () => checkAborted(hooks.signal),
      readEveryStep: Boolean(hooks.previews || trace),
      onStep: (i, stepLatents) => {
        if (stepLatents) trace?.(`decoder_latents_${i}`, stepLatents, shape);
        const preview = hooks.previews && stepLatents ? latentPreview(stepLatents, h, w) : null;
        hooks.onProgress?.({
          stage: 'denoise',
          step: i + 1,
          steps: timesteps.length,
          ...(preview ? { preview } : {}),
        });
      },
    });
  } else {
    const unet: InferenceSession = await models.session(unetId);
    const scope = new TensorScope(models.ort);
    try {
      const fixed: Record<string, Tensor> = { image_embeds: scope.float32(conditioning, [batch, d]) };
      for (const [name, { data, dims }] of Object.entries(extraFeeds))
        fixed[name] = scope.float32(data, dims);
      for (const [i, t] of timesteps.entries()) {
        checkAborted(hooks.signal);
        const stepScope = new TensorScope(models.ort);
        try {
          const input = guided ? concatRows(latents, latents) : latents;
          const out = await stepScope.run(unet, {
            ...fixed,
            sample: stepScope.float32(scheduler.scaleModelInput(input, t), [batch, channels, h, w]),
            timestep: stepScope.float32(new Float32Array(batch).fill(t), [batch]),
          });
          const noisePred = await readFloat32(required(out, 'noise_pred'));
          // Channels 0–3 are ε; 4–7 (learned variance) are unused with the fixed_small DDPM schedule.
          const outChannels = noisePred.length / (batch * plane);
          const epsilonAt = (k: number) => {
            const image = Math.floor(k / (channels * plane));
            return image * outChannels * plane + (k % (channels * plane));
          };
          const epsilon = guided
            ? guide(noisePred, n * outChannels * plane, epsilonAt, latentLength, settings.guidance)
            : Float32Array.from({ length: latentLength }, (_, k) => noisePred[epsilonAt(k)] ?? 0);
          latents = scheduler.step(epsilon, t, latents, { shape, generator }).prevSample;
          if (inpaint) latents = blendKept(scheduler, inpaint, latents, timesteps[i + 1], n, plane, channels);
          trace?.(`decoder_latents_${i}`, latents, shape);
        } finally {
          stepScope.disposeAll();
        }
        const preview = hooks.previews ? latentPreview(latents, h, w) : null;
        hooks.onProgress?.({
          stage: 'denoise',
          step: i + 1,
          steps: timesteps.length,
          ...(preview ? { preview } : {}),
        });
      }
    } finally {
      scope.disposeAll();
    }
  }
  await release(stages, unetId);
  if (inpaint) latents = blendKept(scheduler, inpaint, latents, undefined, n, plane, channels);
  return { latents, dims: shape };
}

/**
 * Inpainting keeps the unmasked area from the input: after each step it is replaced by the encoded
 * image noised to the next timestep (with the initial noise), or by the clean encoded image.
 */
function blendKept(
  scheduler: DecoderScheduler,
  inpaint: { keep: Float32Array; imageLatents: Float32Array; noise: Float32Array },
  latents: Float32Array,
  nextTimestep: number | undefined,
  n: number,
  plane: number,
  channels: number,
): Float32Array {
  const perImage = channels * plane;
  const original =
    nextTimestep === undefined
      ? inpaint.imageLatents
      : scheduler.addNoise(inpaint.imageLatents, inpaint.noise.subarray(0, perImage), [nextTimestep]);
  const out = new Float32Array(latents.length);
  for (let k = 0; k < n * perImage; k++) {
    const keep = inpaint.keep[k % plane] ?? 0;
    const o = original[k % perImage] ?? 0;
    out[k] = Math.fround(Math.fround(keep * o) + Math.fround((1 - keep) * (latents[k] ?? 0)));
  }
  return out;
}

async function decodeLatents(
  stages: Stages,
  latents: { latents: Float32Array; dims: number[] },
  count: number,
): Promise<Pick<PipelineResult, 'images' | 'floatImages'>> {
  const { models, hooks } = stages;
  const [, channels = 4, h = 0, w = 0] = latents.dims;
  hooks.trace?.('movq_input_latents', latents.latents, latents.dims);
  const session = await models.session('movq_decoder');
  const perImage = channels * h * w;
  const samples: Float32Array[] = [];
  let outDims: readonly number[] = [];
  // One image at a time: MoVQ's activations at full size are the largest of the pipeline.
  for (let b = 0; b < count; b++) {
    hooks.onProgress?.({ stage: 'decode', image: b + 1, images: count });
    checkAborted(hooks.signal);
    const scope = new TensorScope(models.ort);
    try {
      const out = await scope.run(session, {
        latents: scope.float32(latents.latents.slice(b * perImage, (b + 1) * perImage), [1, channels, h, w]),
      });
      const sample = required(out, 'sample');
      outDims = sample.dims;
      samples.push((await readFloat32(sample)).slice());
    } finally {
      scope.disposeAll();
    }
  }
  await release(stages, 'movq_decoder');
  const [, c = 3, hp = 0, wp = 0] = outDims;
  const sample = concatRows(...samples);
  hooks.trace?.('movq_output', sample, [count, c, hp, wp]);
  const { images, floatNhwc } = movqOutputToImages(sample, [count, c, hp, wp]);
  hooks.trace?.('output_image', floatNhwc, [count, hp, wp, c]);
  return { images, floatImages: floatNhwc };
}
