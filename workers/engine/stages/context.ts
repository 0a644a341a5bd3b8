/** What every stage of one generation shares: the models, the caller's hooks, the one generator. */
import type { GraphComponentId } from '../../../models/contract';
import type { PipelineHooks, StageTimings } from '../hooks';
import type { ModelSet } from '../model-set';
import type { TorchGenerator } from '../rng';

export interface StageContext {
  readonly models: ModelSet;
  readonly hooks: PipelineHooks;
  /**
   * Every random draw of the generation, in diffusers' order: one generator through prior and
   * decoder, as diffusers' combined pipelines pass it.
   */
  readonly generator: TorchGenerator;
  readonly timings: StageTimings;
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
