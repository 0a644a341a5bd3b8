/**
 * UnCLIPScheduler as the Kandinsky 2.2 prior runs it: a DDPM variant over image embeddings that re-derives
 * β for the gap between the current and the next timestep (the pipeline passes that next timestep in).
 */

import {
  addNoiseWithAlphasCumprod,
  checkSameLength,
  drawStepNoise,
  f32,
  type NoiseSchedule,
  numel,
  requireOneOf,
  roundHalfEven,
  SchedulerError,
  type StepOptions,
  type StepResult,
  torchExpFloat32,
  torchLogFloat32,
  trainingNoiseSchedule,
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

export class UnCLIPScheduler {
  readonly order = 1;
  readonly initNoiseSigma = 1;
  readonly config: Required<{ [K in keyof UnCLIPSchedulerConfig]: NonNullable<UnCLIPSchedulerConfig[K]> }>;
  readonly schedule: NoiseSchedule;
  private timestepList: number[];

  constructor(config: UnCLIPSchedulerConfig = {}) {
    this.config = {
      num_train_timesteps: config.num_train_timesteps ?? 1000,
      variance_type: requireOneOf('variance_type', config.variance_type ?? 'fixed_small_log', [
        'fixed_small_log',
      ]),
      clip_sample: config.clip_sample ?? true,
      clip_sample_range: config.clip_sample_range ?? 1,
      prediction_type: requireOneOf('prediction_type', config.prediction_type ?? 'epsilon', [
        'epsilon',
        'sample',
      ]),
      beta_schedule: requireOneOf('beta_schedule', config.beta_schedule ?? 'squaredcos_cap_v2', [
        'squaredcos_cap_v2',
      ]),
    };
    this.schedule = trainingNoiseSchedule(this.config, 'squaredcos_cap_v2');
    this.timestepList = Array.from(
      { length: this.config.num_train_timesteps },
      (_, i) => this.config.num_train_timesteps - 1 - i,
    );
  }

  /** Descending timesteps of the current schedule. */
  get timesteps(): readonly number[] {
    return this.timestepList;
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

  /**
   * The prior's image-to-image start (KandinskyV22PriorEmb2EmbPipeline): sqrt(ᾱ_t)·x + sqrt(1-ᾱ_t)·noise,
   * one timestep per batch item.
   */
  addNoise(originalSamples: Float32Array, noise: Float32Array, timesteps: readonly number[]): Float32Array {
    return addNoiseWithAlphasCumprod(this.schedule.alphasCumprod, originalSamples, noise, timesteps);
  }

  scaleModelInput(sample: Float32Array, _timestep?: number): Float32Array {
    return sample;
  }

  /** One reverse step from `timestep` to `options.prevTimestep`, drawing noise unless this is t = 0. */
  step(
    modelOutput: Float32Array,
    timestep: number,
    sample: Float32Array,
    options: UnCLIPStepOptions,
  ): StepResult {
    const size = numel(options.shape);
    checkSameLength('sample', sample, size);
    checkSameLength('modelOutput', modelOutput, size);
    const { betas, alphas, alphasCumprod } = this.schedule;
    const t = timestep;
    const prevT = options.prevTimestep ?? t - 1;
    const alphaProdT = alphasCumprod[t];
    if (alphaProdT === undefined || prevT >= t) {
      throw new SchedulerError('invalid-argument', `Bad timestep pair t=${t} -> ${prevT}`);
    }
    const alphaProdPrev = prevT >= 0 ? (alphasCumprod[prevT] as number) : 1;
    const betaProdT = f32(1 - alphaProdT);
    const betaProdPrev = f32(1 - alphaProdPrev);
    let beta: number;
    let alpha: number;
    if (prevT === t - 1) {
      beta = betas[t] as number;
      alpha = alphas[t] as number;
    } else {
      beta = f32(1 - f32(alphaProdT / alphaProdPrev));
      alpha = f32(1 - beta);
    }

    let predOriginal: Float32Array;
    if (this.config.prediction_type === 'epsilon') {
      const sqrtBetaProdT = f32(Math.sqrt(betaProdT));
      const sqrtAlphaProdT = f32(Math.sqrt(alphaProdT));
      predOriginal = new Float32Array(size);
      for (let i = 0; i < size; i++) {
        predOriginal[i] = f32(
          f32((sample[i] as number) - f32(sqrtBetaProdT * (modelOutput[i] as number))) / sqrtAlphaProdT,
        );
      }
    } else {
      predOriginal = Float32Array.from(modelOutput);
    }
    if (this.config.clip_sample) {
      const range = f32(this.config.clip_sample_range);
      for (let i = 0; i < size; i++)
        predOriginal[i] = Math.min(Math.max(predOriginal[i] as number, -range), range);
    }

    const originalCoeff = f32(f32(f32(Math.sqrt(alphaProdPrev)) * beta) / betaProdT);
    const sampleCoeff = f32(f32(f32(Math.sqrt(alpha)) * betaProdPrev) / betaProdT);
    const prevSample = new Float32Array(size);
    for (let i = 0; i < size; i++) {
      prevSample[i] =
        f32(originalCoeff * (predOriginal[i] as number)) + f32(sampleCoeff * (sample[i] as number));
    }

    if (t > 0) {
      const noise = drawStepNoise(options.shape, options.generator, 'UnCLIPScheduler');
      // fixed_small_log: the posterior standard deviation, via log/exp as diffusers computes it.
      const variance = f32(f32(betaProdPrev / betaProdT) * beta);
      const logVariance = torchLogFloat32(Math.max(variance, f32(1e-20)));
      const std = torchExpFloat32(f32(0.5 * logVariance));
      for (let i = 0; i < size; i++)
        prevSample[i] = f32((prevSample[i] as number) + f32(std * (noise[i] as number)));
    }
    return { prevSample, predOriginalSample: predOriginal };
  }
}
