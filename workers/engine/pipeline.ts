/**
 * The Kandinsky 2.2 pipelines as one readable sequence of stages, in the order diffusers'
 * `__call__`s run them (each stage is a file of stages/ or denoise/):
 *
 *   load → [depth estimate] → text encoder + prior (or mixing, or the image prior)
 *        → prepare latents → denoise → MoVQ decode
 *
 * Text→image, image→image, inpainting and depth control differ only in how latents are prepared
 * and what the UNet is given besides them. The numbers follow diffusers' pipelines exactly
 * (models/CONTRACT.md, "Engine rules"); the reference fixtures prove it.
 */
import { denoise } from './denoise/loop';
import { assertFinite } from './finite';
import { checkAborted, type PipelineHooks, type StageTimings } from './hooks';
import { latentPreview } from './image';
import type { ModelSet } from './model-set';
import type { RgbaImage } from './png';
import {
  checkRequest,
  depthInputOf,
  graphsFor,
  type PipelineRequest,
  unetFor,
  usesImagePrior,
} from './request';
import { TorchGenerator } from './rng';
import { pipelineCall, releaseAfterStage, type StageContext, timed } from './stages/context';
import { estimateDepth } from './stages/depth-estimator';
import { prepareLatents, unetInputDims } from './stages/latents';
import { mixImageEmbeds } from './stages/mix';
import { decodeLatents } from './stages/movq';
import { type PriorEmbeddings, runImagePrior, runTextPrior } from './stages/prior';
import type { TruncatedPrompt } from './stages/text-encoder';

export interface PipelineResult {
  readonly images: RgbaImage[];
  /** The images as floats in [0, 1], NHWC — diffusers' `output_type="np"`. */
  readonly floatImages: Float32Array;
  readonly truncatedPrompt?: TruncatedPrompt;
  readonly timings: StageTimings;
}

export async function runPipeline(
  models: ModelSet,
  request: PipelineRequest,
  hooks: PipelineHooks = {},
): Promise<PipelineResult> {
  checkRequest(request);
  const { settings } = request;
  const context: StageContext = {
    models,
    hooks,
    generator: new TorchGenerator().manualSeed(settings.seed),
    timings: { load: 0, encode: 0, prior: 0, denoise: 0, decode: 0 },
  };
  try {
    await timed(context, 'load', () => loadModels(context, request));
    const depthMap = await estimateDepthFromPhoto(context, request);
    const prior = await runPriorStage(pipelineCall(context, settings), request);
    const decoder = pipelineCall(context, settings);
    const latents = await timed(context, 'denoise', () =>
      runDecoder(decoder, depthMap ? { ...request, depthMap } : request, prior),
    );
    const decoded = await timed(context, 'decode', () => decodeLatents(context, latents));
    return {
      ...decoded,
      timings: context.timings,
      ...(prior.truncatedPrompt ? { truncatedPrompt: prior.truncatedPrompt } : {}),
    };
  } finally {
    if (hooks.lowMemory) await models.releaseAll();
  }
}

/** Opens every session the request needs before the first runs (low-memory mode opens them as it goes). */
async function loadModels(context: StageContext, request: PipelineRequest): Promise<void> {
  const { models, hooks } = context;
  if (hooks.lowMemory) return;
  const graphs = graphsFor(request);
  const unet = unetFor(request.settings.mode);
  for (const [index, component] of graphs.entries()) {
    checkAborted(hooks.signal);
    hooks.onProgress?.({ stage: 'load', component, index, count: graphs.length });
    const onCreate = () => hooks.onProgress?.({ stage: 'session', component });
    // The loop's UNet, captured for this request's shapes where it can be: never a second session.
    await (component === unet && models.residency === 'gpu'
      ? models.loopSession(unet, unetInputDims(models, request), onCreate)
      : models.session(component, onCreate));
  }
}

/** Depth from a photo: the map comes first, so the person sees the layout while the rest runs. */
async function estimateDepthFromPhoto(
  context: StageContext,
  request: PipelineRequest,
): Promise<RgbaImage | undefined> {
  if (request.settings.mode !== 'depth' || depthInputOf(request) !== 'photo') return undefined;
  const { hooks } = context;
  const estimate = await timed(context, 'encode', async () => {
    const estimate = await estimateDepth(context.models, request.initImage as RgbaImage);
    await releaseAfterStage(context, 'depth_estimator');
    return estimate;
  });
  const { predicted } = estimate;
  hooks.trace?.('depth_predicted_depth', predicted.data, [1, predicted.height, predicted.width]);
  hooks.onProgress?.({ stage: 'depth', depthMap: estimate.depthMap });
  return estimate.depthMap;
}

/** The image embeddings the decoder is conditioned on: from the prompt, a mix, or the input picture. */
async function runPriorStage(context: StageContext, request: PipelineRequest): Promise<PriorEmbeddings> {
  const { settings } = request;
  const prior = request.mix
    ? await mixImageEmbeds(context, request.mix, settings)
    : usesImagePrior(settings)
      ? await runImagePrior(context, settings, request.initImage as RgbaImage)
      : await runTextPrior(context, settings);
  assertFinite(prior.imageEmbeds, 'The prior’s image embeddings');
  assertFinite(prior.negativeImageEmbeds, 'The negative image embeddings');
  return prior;
}

/** Latents prepared for the mode, then the denoising loop; the final latents `[N, C, h, w]`. */
async function runDecoder(context: StageContext, request: PipelineRequest, prior: PriorEmbeddings) {
  const { models, hooks, generator } = context;
  const { settings } = request;
  const { trace } = hooks;
  const start = await prepareLatents(context, request, prior.imageEmbeds, prior.negativeImageEmbeds);
  assertFinite(start.latents.data, 'The initial latents');
  const shape = start.latents.dims;
  const [, , h = 0, w = 0] = shape;
  const unet = unetFor(settings.mode);
  hooks.onProgress?.({ stage: 'loop-start', loop: 'denoise', steps: start.timesteps.length });
  const latents = await denoise({
    models,
    unet,
    unetDims: unetInputDims(models, request),
    scheduler: start.scheduler,
    generator,
    timesteps: start.timesteps,
    latents: start.latents,
    guidance: settings.guidance,
    unetConstants: start.unetConstants,
    inpaint: start.inpaint,
    checkAborted: () => checkAborted(hooks.signal),
    readEveryStep: Boolean(hooks.previews || trace),
    onStep: (i, stepLatents) => {
      if (stepLatents) trace?.(`decoder_latents_${i}`, stepLatents, shape);
      const preview = hooks.previews && stepLatents ? latentPreview(stepLatents, h, w) : null;
      hooks.onProgress?.({
        stage: 'denoise',
        step: i + 1,
        steps: start.timesteps.length,
        ...(preview ? { preview } : {}),
      });
    },
  });
  await releaseAfterStage(context, unet);
  assertFinite(latents, 'The denoised latents');
  return { latents, dims: shape };
}
