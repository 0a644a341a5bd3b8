/**
 * What the scheduler classes share: diffusers' training noise schedule, the current timestep list,
 * identity input scaling, img2img's timestep tail, and add_noise as signal·x + noise·ε with the scalars of
 * `noiseCoefficients` (sqrt(ᾱ_t) and sqrt(1 − ᾱ_t) unless a scheduler overrides it).
 */

import {
  addNoisePerItem,
  checkStepCount,
  img2imgTimesteps,
  type NoiseSchedule,
  type NoiseScheduleConfig,
  SchedulerError,
  spacedTimesteps,
  type TimestepSpacing,
  trainingNoiseSchedule,
} from './common';
import { type NoiseCoefficients, noiseCoefficientsOf } from './step-coefficients';

/** Every training timestep, descending: the list before the first setTimesteps, as in diffusers. */
export function allTimestepsDescending(numTrainTimesteps: number): number[] {
  return Array.from({ length: numTrainTimesteps }, (_, i) => numTrainTimesteps - 1 - i);
}

export abstract class SchedulerBase {
  readonly order = 1;
  readonly initNoiseSigma = 1;
  readonly schedule: NoiseSchedule;
  protected timestepList: number[];

  protected constructor(
    scheduleConfig: NoiseScheduleConfig,
    defaultBetaSchedule: string,
    timesteps: number[],
  ) {
    this.schedule = trainingNoiseSchedule(scheduleConfig, defaultBetaSchedule);
    this.timestepList = timesteps;
  }

  /** Descending timesteps of the current schedule. */
  get timesteps(): readonly number[] {
    return this.timestepList;
  }

  abstract setTimesteps(numInferenceSteps: number): void;

  /** Image-to-image: the tail of the schedule to run and the timestep to noise the image to (timesteps[0]). */
  getTimesteps(numInferenceSteps: number, strength: number): { timesteps: number[]; startIndex: number } {
    this.setTimesteps(numInferenceSteps);
    return img2imgTimesteps(this.timestepList, numInferenceSteps, strength);
  }

  scaleModelInput(sample: Float32Array, _timestep?: number): Float32Array {
    return sample;
  }

  /** `timesteps`: one per batch item. */
  addNoise(originalSamples: Float32Array, noise: Float32Array, timesteps: readonly number[]): Float32Array {
    return addNoisePerItem(originalSamples, noise, timesteps, (t) => this.noiseCoefficients(t));
  }

  /** `addNoise` at `timestep` as two scalars (what the inpainting blend needs on the GPU). */
  noiseCoefficients(timestep: number): NoiseCoefficients {
    return noiseCoefficientsOf(this.schedule.alphasCumprod, timestep);
  }
}

/**
 * DDPM and DDIM: the timestep grid of `spacedTimesteps`, each step going back T / numInferenceSteps
 * training timesteps.
 */
export abstract class SpacedTimestepScheduler extends SchedulerBase {
  abstract readonly config: Readonly<{
    num_train_timesteps: number;
    timestep_spacing: TimestepSpacing;
    steps_offset: number;
  }>;
  protected numInferenceSteps: number | undefined;

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

  /**
   * ᾱ at `t` and at the step's target timestep, or `finalAlphaCumprod` where that target is below 0
   * (diffusers' alpha_prod_t and alpha_prod_t_prev).
   */
  protected alphaProducts(
    t: number,
    finalAlphaCumprod: number,
  ): { alphaProdT: number; alphaProdPrev: number } {
    const { alphasCumprod } = this.schedule;
    const numTrain = this.config.num_train_timesteps;
    const prevT = t - Math.floor(numTrain / (this.numInferenceSteps ?? numTrain));
    const alphaProdT = alphasCumprod[t];
    if (alphaProdT === undefined) throw new SchedulerError('invalid-argument', `timestep ${t} out of range`);
    const alphaProdPrev = prevT >= 0 ? (alphasCumprod[prevT] as number) : finalAlphaCumprod;
    return { alphaProdT, alphaProdPrev };
  }
}
