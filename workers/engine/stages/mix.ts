/**
 * Image mixing: several prompts and pictures, each with a weight, blended into one image embedding
 * that the decoder then draws. This is diffusers' `KandinskyV22PriorPipeline.interpolate`, number for
 * number and draw for draw:
 *
 * - every prompt runs the whole prior (prior.ts, with the negative prompt as its unconditional
 *   text), each run drawing from the one shared generator, in item order;
 * - every picture goes through CLIPImageProcessor's steps and the image encoder (no random draws),
 *   so the image encoder is loaded only when a picture is mixed;
 * - the embeddings are summed with their weights (as given: diffusers does not normalise them);
 * - one more prior run gives the negative embedding: the prior's embedding of the negative prompt,
 *   or, without one, the constant `negative_image_embeds` — diffusers still runs that prior (on "")
 *   and discards it, so its random draws are made here too (without running the graphs), keeping
 *   the decoder's noise identical to the reference.
 */
import { KandinskyError } from '../../errors';
import { checkAborted, prefixedTrace } from '../hooks';
import type { RgbaImage } from '../png';
import type { GenerationSettings } from '../settings';
import { releaseAfterStage, type StageContext } from './context';
import { encodePicture } from './image-encoder';
import { drawPriorNoise, type PriorEmbeddings, runTextPrior } from './prior';

/** One ingredient of a mix. The same shape as the UI's `src/mix/mix.ts` items. */
export type MixItem =
  | { readonly kind: 'prompt'; readonly prompt: string; readonly weight: number }
  | { readonly kind: 'image'; readonly image: RgbaImage; readonly weight: number };

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

/**
 * The mixed image embeddings and their negative, `[numImages, D]` each, in place of the prompt's
 * prior run. `settings.prompt` is not used; `settings.negativePrompt` (if any) is both the prior's
 * unconditional text in every run and the text of the negative embedding, as in a plain generation.
 */
export async function mixImageEmbeds(
  context: StageContext,
  items: readonly MixItem[],
  settings: GenerationSettings,
): Promise<PriorEmbeddings> {
  checkItems(items);
  const { models, hooks } = context;
  const { trace } = hooks;
  const n = settings.numImages;
  const d = models.manifest.dims.imageEmbedDim;
  const priorRun = (run: number): StageContext => ({
    ...context,
    hooks: { ...hooks, trace: prefixedTrace(trace, `mix_prior_${run}`) },
  });

  // Pictures first: they draw nothing, and encoding them before the prior runs lets low-memory
  // mode free the image encoder before the prior is loaded.
  const pictureEmbeds = new Map<number, Float32Array>();
  for (const [index, item] of items.entries()) {
    if (item.kind !== 'image') continue;
    checkAborted(hooks.signal);
    pictureEmbeds.set(index, await encodePicture(models, item.image, trace));
  }
  await releaseAfterStage(context, 'image_encoder');

  let run = 0;
  let truncatedPrompt: PriorEmbeddings['truncatedPrompt'];
  const mixed = new Float32Array(n * d);
  for (const [index, item] of items.entries()) {
    let embeds: Float32Array;
    if (item.kind === 'prompt') {
      const result = await runTextPrior(priorRun(run++), { ...settings, prompt: item.prompt });
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
    const result = await runTextPrior(priorRun(run), {
      ...settings,
      prompt: negative,
      negativePrompt: negative,
    });
    negativeImageEmbeds = result.imageEmbeds;
  } else {
    drawPriorNoise(priorRun(run), settings);
    const zero = await models.tensor('negative_image_embeds');
    negativeImageEmbeds = new Float32Array(n * d);
    for (let row = 0; row < n; row++) negativeImageEmbeds.set(zero.subarray(0, d), row * d);
  }
  trace?.('image_embeds', mixed, [n, d]);
  trace?.('negative_image_embeds', negativeImageEmbeds, [n, d]);
  return { imageEmbeds: mixed, negativeImageEmbeds, ...(truncatedPrompt ? { truncatedPrompt } : {}) };
}
