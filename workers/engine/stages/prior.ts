/**
 * Stage 2: the prior (PriorTransformer with the UnCLIP scheduler) turns text into CLIP image
 * embeddings: diffusers' KandinskyV22PriorPipeline, and KandinskyV22PriorEmb2EmbPipeline when it
 * starts from a picture's embedding. Image mixing (mix.ts) runs it once per prompt.
 */
import { KandinskyError } from '../../errors';
import { checkAborted, prefixedTrace } from '../hooks';
import { readFloat32, requiredOutput, TensorScope } from '../ort';
import type { RgbaImage } from '../png';
import { concatRows, guide, repeatRows } from '../rows';
import { createPriorScheduler, img2imgTimesteps, type SchedulerConfigJson } from '../schedulers';
import type { GenerationSettings } from '../settings';
import { pipelineCall, releaseAfterStage, type StageContext, timed } from './context';
import { encodePicture } from './image-encoder';
import { encodeTexts, type TextBatch, type TruncatedPrompt } from './text-encoder';

/** What the prior stage hands the decoder: `[numImages, D]` each. */
export interface PriorEmbeddings {
  readonly imageEmbeds: Float32Array;
  readonly negativeImageEmbeds: Float32Array;
  readonly truncatedPrompt?: TruncatedPrompt | undefined;
}

/** A prior run that starts from an image embedding `[1, D]` noised to `strength`. */
export interface PriorStart {
  readonly embeds: Float32Array;
  readonly strength: number;
}

/**
 * Prompt → (image embeddings, negative image embeddings), each `[N, D]`, from `settings`' prompt,
 * negative prompt, prior steps, prior guidance and number of images. With `from`, the prior starts
 * from that image embedding noised to its strength instead of from pure noise.
 */
export async function runTextPrior(
  context: StageContext,
  settings: GenerationSettings,
  from?: PriorStart,
): Promise<PriorEmbeddings> {
  const { models, hooks, generator } = context;
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
  const uncondTexts = baseTexts.map(() => negative ?? '');

  const { encoded, cond, uncond } = await timed(context, 'encode', async () => {
    hooks.onProgress?.({ stage: 'encode' });
    // Each distinct text is encoded once; rows are copies (the encoder treats rows independently).
    const distinct = [...new Set([...baseTexts, ...(guided ? [negative ?? ''] : [])])];
    const encoded = await encodeTexts(context, distinct);
    const gather = (texts: readonly string[], times: number) => gatherRows(encoded, distinct, texts, times);
    if (trace) {
      const length = models.manifest.dims.textMaxLength;
      const tokens = encoded.hiddenStates.length / encoded.rows / length;
      const base = gather(baseTexts, 1);
      trace('text_cond_text_embeds', base.textEmbeds, [base.rows, d]);
      trace('text_cond_last_hidden_state', base.hiddenStates, [base.rows, length, tokens]);
      if (guided) {
        const baseUncond = gather(uncondTexts, 1);
        trace('text_uncond_text_embeds', baseUncond.textEmbeds, [base.rows, d]);
        trace('text_uncond_last_hidden_state', baseUncond.hiddenStates, [base.rows, length, tokens]);
      }
    }
    return { encoded, cond: gather(baseTexts, n), uncond: guided ? gather(uncondTexts, n) : null };
  });

  return timed(context, 'prior', async () => {
    const length = models.manifest.dims.textMaxLength;
    const tokens = encoded.hiddenStates.length / encoded.rows / length;
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
      hooks.onProgress?.({ stage: 'loop-start', loop: 'prior', steps: timesteps.length });
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
          const predicted = await readFloat32(requiredOutput(out, 'predicted_image_embedding'));
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
    await releaseAfterStage(context, 'prior');

    // The prior works on normalised embeddings; undo the normalisation once, after the last step.
    const [mean, std] = await Promise.all([
      models.tensor('prior_clip_mean'),
      models.tensor('prior_clip_std'),
    ]);
    const embeds = latents.map((v, k) =>
      Math.fround(Math.fround(v * (std[k % d] ?? 1)) + (mean[k % d] ?? 0)),
    );
    const imageEmbeds = embeds.slice(0, n * d);
    const negativeImageEmbeds =
      negative !== null
        ? embeds.slice(n * d, 2 * n * d)
        : repeatRows(await models.tensor('negative_image_embeds'), n);
    trace?.('image_embeds', imageEmbeds, [n, d]);
    trace?.('negative_image_embeds', negativeImageEmbeds, [n, d]);
    return { imageEmbeds, negativeImageEmbeds, truncatedPrompt: encoded.truncated };
  });
}

/** Rows of the encoded batch (one row per `distinct` text) for `texts`, each repeated `times` times. */
function gatherRows(
  encoded: TextBatch,
  distinct: readonly string[],
  texts: readonly string[],
  times: number,
) {
  const d = encoded.textEmbeds.length / encoded.rows;
  const hidden = encoded.hiddenStates.length / encoded.rows;
  const length = encoded.mask.length / encoded.rows;
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
  } satisfies TextBatch;
}

/**
 * The prior from the input picture, as diffusers' ControlNet img2img example runs it: the picture's
 * CLIP image embedding, noised to `priorStrength`, is denoised towards the prompt
 * (KandinskyV22PriorEmb2EmbPipeline, unconditional text ""); the negative embedding is the same run
 * on the negative prompt (or "") at strength 1. Two prior runs on the one generator, in that order.
 */
export async function runImagePrior(
  context: StageContext,
  settings: GenerationSettings,
  picture: RgbaImage,
): Promise<PriorEmbeddings> {
  const { models, hooks } = context;
  const { trace } = hooks;
  const n = settings.numImages;
  const d = models.manifest.dims.imageEmbedDim;
  const embeds = await timed(context, 'encode', async () => {
    hooks.onProgress?.({ stage: 'encode' });
    const embeds = await encodePicture(models, picture, trace);
    await releaseAfterStage(context, 'image_encoder');
    return embeds;
  });
  // Two calls of the prior pipeline (diffusers' ControlNet img2img example): each seeded anew in seed
  // mode 'separate'; the first starts from the stage's own generator, which is already fresh.
  const run = (index: number): StageContext => ({
    ...(index === 0 ? context : pipelineCall(context, settings)),
    hooks: { ...hooks, trace: prefixedTrace(trace, `prior_${index}`) },
  });
  const positive = await runTextPrior(
    run(0),
    { ...settings, negativePrompt: '' },
    { embeds, strength: settings.priorStrength ?? 1 },
  );
  const negative = await runTextPrior(
    run(1),
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
 * The random draws of one prior run, without running it: its initial latents and one scheduler
 * draw per step with t > 0 (the scheduler decides; it is stepped on zeros, which costs nothing).
 * Drawn whether or not anything is traced: later draws (the decoder's noise) come after these.
 */
export function drawPriorNoise(context: StageContext, settings: GenerationSettings): void {
  const { models, generator, hooks } = context;
  const rows = settings.numImages;
  const shape = [rows, models.manifest.dims.imageEmbedDim];
  const scheduler = createPriorScheduler(models.manifest.schedulers.prior as SchedulerConfigJson);
  scheduler.setTimesteps(settings.priorSteps);
  const noise = generator.randn(shape);
  hooks.trace?.('prior_noise', noise, shape);
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
