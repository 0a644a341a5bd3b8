/**
 * DDPMScheduler as the Kandinsky 2.2 decoder uses it (ancestral sampling: fresh noise at every step,
 * including the last one, whose timestep is 1 with "leading" spacing and steps_offset 1).
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
  torchExpFloat32,
  torchLogFloat32,
  trainingNoiseSchedule,
  unsupported,
} from './common';
import { type DDPMStepCoefficients, type NoiseCoefficients, noiseCoefficientsOf } from './step-coefficients';

export type DDPMVarianceType = 'fixed_small' | 'fixed_small_log' | 'fixed_large' | 'learned_range';

export interface DDPMSchedulerConfig extends NoiseScheduleConfig {
  variance_type?: DDPMVarianceType;
  clip_sample?: boolean;
  clip_sample_range?: number;
  prediction_type?: 'epsilon' | 'sample';
  thresholding?: boolean;
  timestep_spacing?: TimestepSpacing;
  steps_offset?: number;
}

export class DDPMScheduler {
  readonly order = 1;
  readonly initNoiseSigma = 1;
  readonly config: Readonly<{
    num_train_timesteps: number;
    variance_type: DDPMVarianceType;
    clip_sample: boolean;
    clip_sample_range: number;
    prediction_type: 'epsilon' | 'sample';
    timestep_spacing: TimestepSpacing;
    steps_offset: number;
  }>;
  readonly schedule: NoiseSchedule;
  private timestepList: number[];
  private numInferenceSteps: number | undefined;

  /** Unknown fields (e.g. DDIM's set_alpha_to_one in Kandinsky's decoder config) are ignored, as in diffusers. */
  constructor(config: DDPMSchedulerConfig = {}) {
    if (config.thresholding) requireOneOf('thresholding', config.thresholding, [false]);
    this.config = {
      num_train_timesteps: config.num_train_timesteps ?? 1000,
      variance_type: requireOneOf('variance_type', config.variance_type ?? 'fixed_small', [
        'fixed_small',
        'fixed_small_log',
        'fixed_large',
        'learned_range',
      ]),
      clip_sample: config.clip_sample ?? true,
      clip_sample_range: config.clip_sample_range ?? 1,
      prediction_type: requireOneOf('prediction_type', config.prediction_type ?? 'epsilon', [
        'epsilon',
        'sample',
      ]),
      timestep_spacing: config.timestep_spacing ?? 'leading',
      steps_offset: config.steps_offset ?? 0,
    };
    this.schedule = trainingNoiseSchedule(config, 'linear');
    const numTrain = this.config.num_train_timesteps;
    this.timestepList = Array.from({ length: numTrain }, (_, i) => numTrain - 1 - i);
  }

  get timesteps(): readonly number[] {
    return this.timestepList;
  }

  /**
   * Whether step() wants the UNet's variance channels too: with "learned_range" the model output has
   * 2 × channels (noise, then variance); otherwise the pipeline drops the variance half before step().
   */
  get usesPredictedVariance(): boolean {
    return this.config.variance_type === 'learned_range';
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
    return addNoiseWithAlphasCumprod(this.schedule.alphasCumprod, originalSamples, noise, timesteps);
  }

  private previousTimestep(t: number): number {
    const steps = this.numInferenceSteps ?? this.config.num_train_timesteps;
    return t - Math.floor(this.config.num_train_timesteps / steps);
  }

  /** `addNoise` at `timestep` as two scalars (what the inpainting blend needs on the GPU). */
  noiseCoefficients(timestep: number): NoiseCoefficients {
    return noiseCoefficientsOf(this.schedule.alphasCumprod, timestep);
  }

  /**
   * The scalars of `step(·, timestep, ·)` (see DDPMStepCoefficients), computed exactly as `step()`
   * does. ε prediction and the fixed variance types only: the others need more than scalars.
   */
  stepCoefficients(timestep: number): DDPMStepCoefficients {
    if (this.config.prediction_type !== 'epsilon') {
      unsupported('prediction_type (step coefficients)', this.config.prediction_type, ['epsilon']);
    }
    const type = this.config.variance_type;
    if (type === 'learned_range') {
      unsupported('variance_type (step coefficients)', type, [
        'fixed_small',
        'fixed_small_log',
        'fixed_large',
      ]);
    }
    const t = timestep;
    const prevT = this.previousTimestep(t);
    const alphaProdT = this.schedule.alphasCumprod[t];
    if (alphaProdT === undefined) throw new SchedulerError('invalid-argument', `timestep ${t} out of range`);
    const alphaProdPrev = prevT >= 0 ? (this.schedule.alphasCumprod[prevT] as number) : 1;
    const betaProdT = f32(1 - alphaProdT);
    const betaProdPrev = f32(1 - alphaProdPrev);
    const currentAlpha = f32(alphaProdT / alphaProdPrev);
    const currentBeta = f32(1 - currentAlpha);
    let noiseStd: number | null = null;
    if (t > 0) {
      const variance = Math.max(f32(f32(betaProdPrev / betaProdT) * currentBeta), f32(1e-20));
      if (type === 'fixed_small') noiseStd = f32(Math.sqrt(variance));
      else if (type === 'fixed_small_log') noiseStd = torchExpFloat32(f32(0.5 * torchLogFloat32(variance)));
      else noiseStd = f32(Math.sqrt(currentBeta));
    }
    return {
      kind: 'ddpm',
      sqrtBetaProdT: f32(Math.sqrt(betaProdT)),
      sqrtAlphaProdT: f32(Math.sqrt(alphaProdT)),
      originalCoeff: f32(f32(f32(Math.sqrt(alphaProdPrev)) * currentBeta) / betaProdT),
      sampleCoeff: f32(f32(f32(Math.sqrt(currentAlpha)) * betaProdPrev) / betaProdT),
      noiseStd,
    };
  }

  /**
   * `modelOutput` has the sample's shape, or twice its channels (noise then variance, dim 1) when
   * variance_type is "learned_range".
   */
  step(modelOutput: Float32Array, timestep: number, sample: Float32Array, options: StepOptions): StepResult {
    const { shape } = options;
    const size = numel(shape);
    checkSameLength('sample', sample, size);
    const [batch = 1, channels = 1] = shape;
    const perChannelBlock = size / (batch * channels); // elements per (item, channel)
    let noisePrediction = modelOutput;
    let predictedVariance: Float32Array | undefined;
    if (modelOutput.length === 2 * size && this.config.variance_type === 'learned_range') {
      // torch.split along dim 1: per batch item, the first `channels` channels then the rest.
      noisePrediction = new Float32Array(size);
      predictedVariance = new Float32Array(size);
      const itemIn = 2 * channels * perChannelBlock;
      const itemOut = channels * perChannelBlock;
      for (let b = 0; b < batch; b++) {
        noisePrediction.set(modelOutput.subarray(b * itemIn, b * itemIn + itemOut), b * itemOut);
        predictedVariance.set(modelOutput.subarray(b * itemIn + itemOut, (b + 1) * itemIn), b * itemOut);
      }
    } else {
      checkSameLength('modelOutput', modelOutput, size);
      if (this.config.variance_type === 'learned_range') {
        throw new SchedulerError(
          'invalid-argument',
          'learned_range needs the model output with its variance channels',
        );
      }
    }

    const { alphasCumprod } = this.schedule;
    const t = timestep;
    const prevT = this.previousTimestep(t);
    const alphaProdT = alphasCumprod[t];
    if (alphaProdT === undefined) throw new SchedulerError('invalid-argument', `timestep ${t} out of range`);
    const alphaProdPrev = prevT >= 0 ? (alphasCumprod[prevT] as number) : 1;
    const betaProdT = f32(1 - alphaProdT);
    const betaProdPrev = f32(1 - alphaProdPrev);
    const currentAlpha = f32(alphaProdT / alphaProdPrev);
    const currentBeta = f32(1 - currentAlpha);

    let predOriginal: Float32Array;
    if (this.config.prediction_type === 'epsilon') {
      const sqrtBetaProdT = f32(Math.sqrt(betaProdT));
      const sqrtAlphaProdT = f32(Math.sqrt(alphaProdT));
      predOriginal = new Float32Array(size);
      for (let i = 0; i < size; i++) {
        predOriginal[i] = f32(
          f32((sample[i] as number) - f32(sqrtBetaProdT * (noisePrediction[i] as number))) / sqrtAlphaProdT,
        );
      }
    } else {
      predOriginal = Float32Array.from(noisePrediction);
    }
    if (this.config.clip_sample) {
      const range = f32(this.config.clip_sample_range);
      for (let i = 0; i < size; i++)
        predOriginal[i] = Math.min(Math.max(predOriginal[i] as number, -range), range);
    }

    const originalCoeff = f32(f32(f32(Math.sqrt(alphaProdPrev)) * currentBeta) / betaProdT);
    const sampleCoeff = f32(f32(f32(Math.sqrt(currentAlpha)) * betaProdPrev) / betaProdT);
    const prevSample = new Float32Array(size);
    for (let i = 0; i < size; i++) {
      prevSample[i] =
        f32(originalCoeff * (predOriginal[i] as number)) + f32(sampleCoeff * (sample[i] as number));
    }

    if (t > 0) {
      const noise = drawStepNoise(shape, options.generator, 'DDPMScheduler');
      // Posterior variance β̃_t, floored so its log is finite.
      const variance = Math.max(f32(f32(betaProdPrev / betaProdT) * currentBeta), f32(1e-20));
      const type = this.config.variance_type;
      if (type === 'learned_range') {
        const minLog = torchLogFloat32(variance);
        const maxLog = torchLogFloat32(currentBeta);
        const pv = predictedVariance as Float32Array;
        for (let i = 0; i < size; i++) {
          const frac = f32(f32((pv[i] as number) + 1) / 2);
          const logVariance = f32(f32(frac * maxLog) + f32(f32(1 - frac) * minLog));
          const std = torchExpFloat32(f32(0.5 * logVariance));
          prevSample[i] = f32((prevSample[i] as number) + f32(std * (noise[i] as number)));
        }
      } else {
        let std: number;
        if (type === 'fixed_small') std = f32(Math.sqrt(variance));
        // fixed_small_log reaches the same std through log/exp (so it can differ from fixed_small by an
        // ulp); fixed_large uses β_t itself instead of the posterior variance.
        else if (type === 'fixed_small_log') std = torchExpFloat32(f32(0.5 * torchLogFloat32(variance)));
        else std = f32(Math.sqrt(currentBeta));
        for (let i = 0; i < size; i++)
          prevSample[i] = f32((prevSample[i] as number) + f32(std * (noise[i] as number)));
      }
    }
    return { prevSample, predOriginalSample: predOriginal };
  }
}
