/** What every stage of one generation shares: the models, the caller's hooks, the one generator. */
import type { GraphComponentId } from '../../../models/contract';
import type { PipelineHooks, StageTimings } from '../hooks';
import type { ModelSet } from '../model-set';
import { TorchGenerator } from '../rng';
import type { GenerationSettings } from '../settings';

export interface StageContext {
  readonly models: ModelSet;
  readonly hooks: PipelineHooks;
  /**
   * Every random draw of the generation, in diffusers' order: one generator through prior and
   * decoder, as diffusers' combined pipelines pass it (seed mode 'separate': `pipelineCall`).
   */
  readonly generator: TorchGenerator;
  readonly timings: StageTimings;
}

/**
 * The context a diffusers pipeline call runs in: in seed mode 'separate' each call (the prior
 * pipeline, each prior run of an image prior, the decoder pipeline) draws from a generator seeded
 * anew with the seed; in 'combined' every call continues the one generator.
 */
export function pipelineCall(context: StageContext, settings: GenerationSettings): StageContext {
  if (settings.seedMode !== 'separate') return context;
  return { ...context, generator: new TorchGenerator().manualSeed(settings.seed) };
}

/** Low-memory mode frees a stage's session as soon as the stage is done. */
export async function releaseAfterStage(context: StageContext, id: GraphComponentId): Promise<void> {
  if (context.hooks.lowMemory) await context.models.release(id);
}

/** Runs `work`, adding its wall time to `timings[stage]`. */
export async function timed<T>(
  context: StageContext,
  stage: keyof StageTimings,
  work: () => Promise<T>,
): Promise<T> {
  const start = performance.now();
  try {
    return await work();
  } finally {
    context.timings[stage] += performance.now() - start;
  }
}
