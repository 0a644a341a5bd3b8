/**
 * DDIMScheduler: deterministic (eta = 0, the pipelines' default) sampling for fewer decoder steps.
 * Built from the Kandinsky decoder's config it picks up set_alpha_to_one=false and steps_offset=1.
 */

import { allTimestepsDescending, SpacedTimestepScheduler } from './base';
import {
  addScaledInPlace,
  axpby,
  checkStepInputs,
  drawStepNoise,
  f32,
  type NoiseScheduleConfig,
  predictOriginalSample,
  requireOneOf,
  requireSetTimesteps,
  type StepOptions,
  type StepResult,
  type TimestepSpacing,
  unmix,
} from './common';
import type { DDIMStepCoefficients } from './step-coefficients';

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

export class DDIMScheduler extends SpacedTimestepScheduler {
  readonly config: Readonly<{
    num_train_timesteps: number;
    clip_sample: boolean;
    clip_sample_range: number;
    set_alpha_to_one: boolean;
    steps_offset: number;
    timestep_spacing: TimestepSpacing;
  }>;
  /** ᾱ used when stepping past t = 0: 1, or ᾱ_0 when set_alpha_to_one is false (Kandinsky). */
  private readonly finalAlphaCumprod: number;

  constructor(config: DDIMSchedulerConfig = {}) {
    if (config.thresholding) requireOneOf('thresholding', config.thresholding, [false]);
    requireOneOf('prediction_type', config.prediction_type ?? 'epsilon', ['epsilon']);
    const resolved: DDIMScheduler['config'] = {
      num_train_timesteps: config.num_train_timesteps ?? 1000,
      clip_sample: config.clip_sample ?? true,
      clip_sample_range: config.clip_sample_range ?? 1,
      set_alpha_to_one: config.set_alpha_to_one ?? true,
      steps_offset: config.steps_offset ?? 0,
      timestep_spacing: config.timestep_spacing ?? 'leading',
    };
    super(config, 'linear', allTimestepsDescending(resolved.num_train_timesteps));
    this.config = resolved;
    this.finalAlphaCumprod = this.config.set_alpha_to_one ? 1 : (this.schedule.alphasCumprod[0] as number);
  }

  /** The step's scalars at noise level η, shared by `step()` and `stepCoefficients()`. */
  private coefficients(timestep: number, eta: number) {
    const { alphaProdT, alphaProdPrev } = this.alphaProducts(timestep, this.finalAlphaCumprod);
    const betaProdT = f32(1 - alphaProdT);
    const variance = f32(f32(f32(1 - alphaProdPrev) / betaProdT) * f32(1 - f32(alphaProdT / alphaProdPrev)));
    const stdDev = f32(f32(eta) * f32(Math.sqrt(variance)));
    return {
      sqrtBetaProdT: f32(Math.sqrt(betaProdT)),
      sqrtAlphaProdT: f32(Math.sqrt(alphaProdT)),
      originalCoeff: f32(Math.sqrt(alphaProdPrev)),
      directionCoeff: f32(Math.sqrt(f32(f32(1 - alphaProdPrev) - f32(stdDev * stdDev)))),
      stdDev,
    };
  }

  /** The scalars of `step(·, timestep, ·)` with η = 0 (the pipelines' setting), computed as `step()` does. */
  stepCoefficients(timestep: number): DDIMStepCoefficients {
    requireSetTimesteps(this.numInferenceSteps !== undefined, 'DDIMScheduler.stepCoefficients');
    const { sqrtBetaProdT, sqrtAlphaProdT, originalCoeff, directionCoeff } = this.coefficients(timestep, 0);
    return { kind: 'ddim', sqrtBetaProdT, sqrtAlphaProdT, originalCoeff, directionCoeff };
  }

  step(
    modelOutput: Float32Array,
    timestep: number,
    sample: Float32Array,
    options: DDIMStepOptions,
  ): StepResult {
    requireSetTimesteps(this.numInferenceSteps !== undefined, 'DDIMScheduler.step');
    checkStepInputs(modelOutput, sample, options.shape);
    const eta = options.eta ?? 0;
    const c = this.coefficients(timestep, eta);
    const predOriginal = predictOriginalSample(
      this.config,
      sample,
      modelOutput,
      c.sqrtBetaProdT,
      c.sqrtAlphaProdT,
    );
    // use_clipped_model_output: ε recomputed from the clipped x0.
    const predEpsilon = options.useClippedModelOutput
      ? unmix(sample, predOriginal, c.sqrtAlphaProdT, c.sqrtBetaProdT)
      : modelOutput;
    const prevSample = axpby(c.originalCoeff, predOriginal, c.directionCoeff, predEpsilon);
    if (eta > 0) {
      addScaledInPlace(
        prevSample,
        c.stdDev,
        drawStepNoise(options.shape, options.generator, 'DDIMScheduler'),
      );
    }
    return { prevSample, predOriginalSample: predOriginal };
  }
}
