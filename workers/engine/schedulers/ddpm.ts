/**
 * DDPMScheduler as the Kandinsky 2.2 decoder uses it (ancestral sampling: fresh noise at every step,
 * including the last one, whose timestep is 1 with "leading" spacing and steps_offset 1).
 */

import { numel } from '../math';
import { allTimestepsDescending, SpacedTimestepScheduler } from './base';
import {
  addScaledInPlace,
  checkSameLength,
  drawStepNoise,
  f32,
  type NoiseScheduleConfig,
  originalSampleConfig,
  posteriorCoefficients,
  posteriorMean,
  requireOneOf,
  SchedulerError,
  type StepOptions,
  type StepResult,
  stdViaLog,
  type TimestepSpacing,
  torchExpFloat32,
  torchLogFloat32,
  unsupported,
} from './common';
import type { DDPMStepCoefficients } from './step-coefficients';

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

export class DDPMScheduler extends SpacedTimestepScheduler {
  readonly config: Readonly<{
    num_train_timesteps: number;
    variance_type: DDPMVarianceType;
    clip_sample: boolean;
    clip_sample_range: number;
    prediction_type: 'epsilon' | 'sample';
    timestep_spacing: TimestepSpacing;
    steps_offset: number;
  }>;

  /** Unknown fields (e.g. DDIM's set_alpha_to_one in Kandinsky's decoder config) are ignored, as in diffusers. */
  constructor(config: DDPMSchedulerConfig = {}) {
    if (config.thresholding) requireOneOf('thresholding', config.thresholding, [false]);
    const resolved: DDPMScheduler['config'] = {
      num_train_timesteps: config.num_train_timesteps ?? 1000,
      variance_type: requireOneOf('variance_type', config.variance_type ?? 'fixed_small', [
        'fixed_small',
        'fixed_small_log',
        'fixed_large',
        'learned_range',
      ]),
      ...originalSampleConfig(config),
      timestep_spacing: config.timestep_spacing ?? 'leading',
      steps_offset: config.steps_offset ?? 0,
    };
    super(config, 'linear', allTimestepsDescending(resolved.num_train_timesteps));
    this.config = resolved;
  }

  /**
   * Whether step() wants the UNet's variance channels too: with "learned_range" the model output has
   * 2 × channels (noise, then variance); otherwise the pipeline drops the variance half before step().
   */
  get usesPredictedVariance(): boolean {
    return this.config.variance_type === 'learned_range';
  }

  /** The step's scalars, shared by `step()` and `stepCoefficients()`; β_t is the step's own (1 − ᾱ_t/ᾱ_prev). */
  private posterior(t: number) {
    const { alphaProdT, alphaProdPrev } = this.alphaProducts(t, 1);
    const currentAlpha = f32(alphaProdT / alphaProdPrev);
    const currentBeta = f32(1 - currentAlpha);
    return { ...posteriorCoefficients(alphaProdT, alphaProdPrev, currentAlpha, currentBeta), currentBeta };
  }

  /**
   * σ of the step noise for the fixed variance types: fixed_small_log reaches fixed_small's std through
   * log/exp (so it can differ by an ulp); fixed_large uses β_t itself instead of the posterior variance.
   */
  private fixedNoiseStd(variance: number, currentBeta: number): number {
    const type = this.config.variance_type;
    if (type === 'fixed_small') return f32(Math.sqrt(variance));
    if (type === 'fixed_small_log') return stdViaLog(variance);
    return f32(Math.sqrt(currentBeta));
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
    const p = this.posterior(timestep);
    return {
      kind: 'ddpm',
      sqrtBetaProdT: p.sqrtBetaProdT,
      sqrtAlphaProdT: p.sqrtAlphaProdT,
      originalCoeff: p.originalCoeff,
      sampleCoeff: p.sampleCoeff,
      noiseStd: timestep > 0 ? this.fixedNoiseStd(p.variance, p.currentBeta) : null,
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

    const p = this.posterior(timestep);
    const { predOriginal, prevSample } = posteriorMean(this.config, sample, noisePrediction, p);

    if (timestep > 0) {
      const noise = drawStepNoise(shape, options.generator, 'DDPMScheduler');
      if (this.config.variance_type === 'learned_range') {
        const minLog = torchLogFloat32(p.variance);
        const maxLog = torchLogFloat32(p.currentBeta);
        const pv = predictedVariance as Float32Array;
        for (let i = 0; i < size; i++) {
          const frac = f32(f32((pv[i] as number) + 1) / 2);
          const logVariance = f32(f32(frac * maxLog) + f32(f32(1 - frac) * minLog));
          const std = torchExpFloat32(f32(0.5 * logVariance));
          prevSample[i] = f32((prevSample[i] as number) + f32(std * (noise[i] as number)));
        }
      } else {
        addScaledInPlace(prevSample, this.fixedNoiseStd(p.variance, p.currentBeta), noise);
      }
    }
    return { prevSample, predOriginalSample: predOriginal };
  }
}
