/**
 * UnCLIPScheduler as the Kandinsky 2.2 prior runs it: a DDPM variant over image embeddings that re-derives
 * β for the gap between the current and the next timestep (the pipeline passes that next timestep in).
 */

import { roundHalfEven } from '../math';
import { allTimestepsDescending, SchedulerBase } from './base';
import {
  addScaledInPlace,
  checkStepInputs,
  drawStepNoise,
  f32,
  originalSampleConfig,
  posteriorCoefficients,
  posteriorMean,
  requireOneOf,
  SchedulerError,
  type StepOptions,
  type StepResult,
  stdViaLog,
} from './common';

export interface UnCLIPSchedulerConfig {
  num_train_timesteps?: number;
  variance_type?: 'fixed_small_log';
  clip_sample?: boolean;
  clip_sample_range?: number | null;
  prediction_type?: 'epsilon' | 'sample';
  beta_schedule?: 'squaredcos_cap_v2';
}

export interface UnCLIPStepOptions extends StepOptions {
  /**
   * The timestep the step lands on: the next entry of `timesteps`, or undefined at the last step
   * (then t - 1), exactly as KandinskyV22PriorPipeline passes prev_timestep.
   */
  prevTimestep?: number | undefined;
}

export class UnCLIPScheduler extends SchedulerBase {
  readonly config: Required<{ [K in keyof UnCLIPSchedulerConfig]: NonNullable<UnCLIPSchedulerConfig[K]> }>;

  constructor(config: UnCLIPSchedulerConfig = {}) {
    const resolved: UnCLIPScheduler['config'] = {
      num_train_timesteps: config.num_train_timesteps ?? 1000,
      variance_type: requireOneOf('variance_type', config.variance_type ?? 'fixed_small_log', [
        'fixed_small_log',
      ]),
      ...originalSampleConfig(config),
      beta_schedule: requireOneOf('beta_schedule', config.beta_schedule ?? 'squaredcos_cap_v2', [
        'squaredcos_cap_v2',
      ]),
    };
    super(resolved, 'squaredcos_cap_v2', allTimestepsDescending(resolved.num_train_timesteps));
    this.config = resolved;
  }

  /**
   * Spreads steps over 0..T-1 with both ends included (karlo's grid, unlike DDPM's): 25 steps give
   * 999, 957, ..., 42, 0.
   */
  setTimesteps(numInferenceSteps: number): void {
    const numTrain = this.config.num_train_timesteps;
    if (!Number.isInteger(numInferenceSteps) || numInferenceSteps < 2 || numInferenceSteps > numTrain) {
      // diffusers divides by (steps - 1); one step would give NaN timesteps there.
      throw new SchedulerError(
        'invalid-argument',
        `The prior needs 2..${numTrain} steps, got ${numInferenceSteps}`,
      );
    }
    const ratio = (numTrain - 1) / (numInferenceSteps - 1);
    const timesteps: number[] = [];
    for (let i = numInferenceSteps - 1; i >= 0; i--) timesteps.push(roundHalfEven(i * ratio));
    this.timestepList = timesteps;
  }

  /** One reverse step from `timestep` to `options.prevTimestep`, drawing noise unless this is t = 0. */
  step(
    modelOutput: Float32Array,
    timestep: number,
    sample: Float32Array,
    options: UnCLIPStepOptions,
  ): StepResult {
    checkStepInputs(modelOutput, sample, options.shape);
    const { betas, alphas, alphasCumprod } = this.schedule;
    const t = timestep;
    const prevT = options.prevTimestep ?? t - 1;
    const alphaProdT = alphasCumprod[t];
    if (alphaProdT === undefined || prevT >= t) {
      throw new SchedulerError('invalid-argument', `Bad timestep pair t=${t} -> ${prevT}`);
    }
    const alphaProdPrev = prevT >= 0 ? (alphasCumprod[prevT] as number) : 1;
    let beta: number;
    let alpha: number;
    if (prevT === t - 1) {
      beta = betas[t] as number;
      alpha = alphas[t] as number;
    } else {
      beta = f32(1 - f32(alphaProdT / alphaProdPrev));
      alpha = f32(1 - beta);
    }

    const p = posteriorCoefficients(alphaProdT, alphaProdPrev, alpha, beta);
    const { predOriginal, prevSample } = posteriorMean(this.config, sample, modelOutput, p);
    if (t > 0) {
      const noise = drawStepNoise(options.shape, options.generator, 'UnCLIPScheduler');
      // fixed_small_log: the posterior standard deviation, via log/exp as diffusers computes it.
      addScaledInPlace(prevSample, stdViaLog(p.variance), noise);
    }
    return { prevSample, predOriginalSample: predOriginal };
  }
}
