/**
 * DDIMScheduler: deterministic (eta = 0, the pipelines' default) sampling for fewer decoder steps.
 * Built from the Kandinsky decoder's config it picks up set_alpha_to_one=false and steps_offset=1.
 */

import {
  addNoiseWithAlphasCumprod,
  checkSameLength,
  checkStepCount,
  drawStepNoise,
  f32,
  img2imgTimesteps,
  type NoiseSchedule,
  type NoiseScheduleConfig,
  numel,
  requireOneOf,
  SchedulerError,
  type StepOptions,
  type StepResult,
  spacedTimesteps,
  type TimestepSpacing,
  trainingNoiseSchedule,
} from './common';
import { type DDIMStepCoefficients, type NoiseCoefficients, noiseCoefficientsOf } from './step-coefficients';

export interface DDIMSchedulerConfig extends NoiseScheduleConfig {
  clip_sample?: boolean;
  clip_sample_range?: number;
  set_alpha_to_one?: boolean;
  steps_offset?: number;
  prediction_type?: 'epsilon';
  thresholding?: boolean;
  timestep_spacing?: TimestepSpacing;
}

export interface DDIMStepOptions extends StepOptions {
  /** η of the DDIM paper: 0 is deterministic; > 0 draws noise from `generator`. */
  eta?: number;
  /** Recompute ε from the clipped x0 (diffusers' use_clipped_model_output). */
  useClippedModelOutput?: boolean;
}

export class DDIMScheduler {
  readonly order = 1;
  readonly initNoiseSigma = 1;
  readonly config: Readonly<{
    num_train_timesteps: number;
    clip_sample: boolean;
    clip_sample_range: number;
    set_alpha_to_one: boolean;
    steps_offset: number;
    timestep_spacing: TimestepSpacing;
  }>;
  readonly schedule: NoiseSchedule;
  /** ᾱ used when stepping past t = 0: 1, or ᾱ_0 when set_alpha_to_one is false (Kandinsky). */
  private readonly finalAlphaCumprod: number;
  private timestepList: number[];
  private numInferenceSteps: number | undefined;

  constructor(config: DDIMSchedulerConfig = {}) {
    if (config.thresholding) requireOneOf('thresholding', config.thresholding, [false]);
    requireOneOf('prediction_type', config.prediction_type ?? 'epsilon', ['epsilon']);
    this.config = {
      num_train_timesteps: config.num_train_timesteps ?? 1000,
      clip_sample: config.clip_sample ?? true,
      clip_sample_range: config.clip_sample_range ?? 1,
      set_alpha_to_one: config.set_alpha_to_one ?? true,
      steps_offset: config.steps_offset ?? 0,
      timestep_spacing: config.timestep_spacing ?? 'leading',
    };
    this.schedule = trainingNoiseSchedule(config, 'linear');
    this.finalAlphaCumprod = this.config.set_alpha_to_one ? 1 : (this.schedule.alphasCumprod[0] as number);
    const numTrain = this.config.num_train_timesteps;
    this.timestepList = Array.from({ length: numTrain }, (_, i) => numTrain - 1 - i);
  }

  get timesteps(): readonly number[] {
    return this.timestepList;
  }

  setTimesteps(numInferenceSteps: number): void {
    checkStepCount(numInferenceSteps, this.config.num_train_timesteps);
    this.numInferenceSteps = numInferenceSteps;
    this.timestepList = spacedTimesteps(
      this.config.timestep_spacing,
      this.config.num_train_timesteps,
      numInferenceSteps,
      this.config.steps_offset,
    );
  }

  getTimesteps(numInferenceSteps: number, strength: number): { timesteps: number[]; startIndex: number } {
    this.setTimesteps(numInferenceSteps);
    return img2imgTimesteps(this.timestepList, numInferenceSteps, strength);
  }

  scaleModelInput(sample: Float32Array, _timestep?: number): Float32Array {
    return sample;
  }

  addNoise(originalSamples: Float32Array, noise: Float32Array, timesteps: readonly number[]): Float32Array {
    return addNoiseWithAlphasCumprod(this.schedule.alphasCumprod, originalSamples, noise, timesteps);
  }

  /** `addNoise` at `timestep` as two scalars (what the inpainting blend needs on the GPU). */
  noiseCoefficients(timestep: number): NoiseCoefficients {
    return noiseCoefficientsOf(this.schedule.alphasCumprod, timestep);
  }

  /** The scalars of `step(·, timestep, ·)` with η = 0 (the pipelines' setting), computed as `step()` does. */
  stepCoefficients(timestep: number): DDIMStepCoefficients {
    if (this.numInferenceSteps === undefined) {
      throw new SchedulerError('invalid-argument', 'DDIMScheduler.stepCoefficients before setTimesteps');
    }
    const eta = 0;
    const { alphasCumprod } = this.schedule;
    const prevT = timestep - Math.floor(this.config.num_train_timesteps / this.numInferenceSteps);
    const alphaProdT = alphasCumprod[timestep];
    if (alphaProdT === undefined)
      throw new SchedulerError('invalid-argument', `timestep ${timestep} out of range`);
    const alphaProdPrev = prevT >= 0 ? (alphasCumprod[prevT] as number) : this.finalAlphaCumprod;
    const betaProdT = f32(1 - alphaProdT);
    const variance = f32(f32(f32(1 - alphaProdPrev) / betaProdT) * f32(1 - f32(alphaProdT / alphaProdPrev)));
    const stdDev = f32(f32(eta) * f32(Math.sqrt(variance)));
    return {
      kind: 'ddim',
      sqrtBetaProdT: f32(Math.sqrt(betaProdT)),
      sqrtAlphaProdT: f32(Math.sqrt(alphaProdT)),
      originalCoeff: f32(Math.sqrt(alphaProdPrev)),
      directionCoeff: f32(Math.sqrt(f32(f32(1 - alphaProdPrev) - f32(stdDev * stdDev)))),
    };
  }

  step(
    modelOutput: Float32Array,
    timestep: number,
    sample: Float32Array,
    options: DDIMStepOptions,
  ): StepResult {
    if (this.numInferenceSteps === undefined) {
      throw new SchedulerError('invalid-argument', 'DDIMScheduler.step before setTimesteps');
    }
    const size = numel(options.shape);
    checkSameLength('sample', sample, size);
    checkSameLength('modelOutput', modelOutput, size);
    const eta = options.eta ?? 0;
    const { alphasCumprod } = this.schedule;
    const prevT = timestep - Math.floor(this.config.num_train_timesteps / this.numInferenceSteps);
    const alphaProdT = alphasCumprod[timestep];
    if (alphaProdT === undefined)
      throw new SchedulerError('invalid-argument', `timestep ${timestep} out of range`);
    const alphaProdPrev = prevT >= 0 ? (alphasCumprod[prevT] as number) : this.finalAlphaCumprod;
    const betaProdT = f32(1 - alphaProdT);
    const sqrtAlphaProdT = f32(Math.sqrt(alphaProdT));
    const sqrtBetaProdT = f32(Math.sqrt(betaProdT));

    const predOriginal = new Float32Array(size);
    for (let i = 0; i < size; i++) {
      predOriginal[i] = f32(
        f32((sample[i] as number) - f32(sqrtBetaProdT * (modelOutput[i] as number))) / sqrtAlphaProdT,
      );
    }
    if (this.config.clip_sample) {
      const range = f32(this.config.clip_sample_range);
      for (let i = 0; i < size; i++)
        predOriginal[i] = Math.min(Math.max(predOriginal[i] as number, -range), range);
    }
    let predEpsilon = modelOutput;
    if (options.useClippedModelOutput) {
      predEpsilon = new Float32Array(size);
      for (let i = 0; i < size; i++) {
        predEpsilon[i] = f32(
          f32((sample[i] as number) - f32(sqrtAlphaProdT * (predOriginal[i] as number))) / sqrtBetaProdT,
        );
      }
    }

    const variance = f32(f32(f32(1 - alphaProdPrev) / betaProdT) * f32(1 - f32(alphaProdT / alphaProdPrev)));
    const stdDev = f32(f32(eta) * f32(Math.sqrt(variance)));
    const directionCoeff = f32(Math.sqrt(f32(f32(1 - alphaProdPrev) - f32(stdDev * stdDev))));
    const originalCoeff = f32(Math.sqrt(alphaProdPrev));
    const prevSample = new Float32Array(size);
    for (let i = 0; i < size; i++) {
      prevSample[i] =
        f32(originalCoeff * (predOriginal[i] as number)) + f32(directionCoeff * (predEpsilon[i] as number));
    }
    if (eta > 0) {
      const noise = drawStepNoise(options.shape, options.generator, 'DDIMScheduler');
      for (let i = 0; i < size; i++)
        prevSample[i] = f32((prevSample[i] as number) + f32(stdDev * (noise[i] as number)));
    }
    return { prevSample, predOriginalSample: predOriginal };
  }
}
