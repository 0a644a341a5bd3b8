/**
 * DPMSolverMultistepScheduler with DPM-Solver++ (the "DPM++ 2M" sampler): deterministic, good images in
 * ~20 decoder steps. The scheduler is stateful: it keeps the previous x0 estimate and its step index, so
 * create (or setTimesteps) once per run.
 */

import { roundHalfEven } from '../math';
import { SchedulerBase } from './base';
import {
  arangeFloat64,
  checkStepCount,
  checkStepInputs,
  f32,
  linspaceFloat64,
  type NoiseScheduleConfig,
  requireOneOf,
  requireSetTimesteps,
  type StepOptions,
  type StepResult,
  type TimestepSpacing,
  torchExpFloat32,
  torchLogFloat32,
  unmix,
  unsupported,
} from './common';
import type { DPMSolverStepCoefficients, NoiseCoefficients } from './step-coefficients';

export interface DPMSolverMultistepSchedulerConfig extends NoiseScheduleConfig {
  solver_order?: 1 | 2;
  prediction_type?: 'epsilon';
  thresholding?: boolean;
  algorithm_type?: 'dpmsolver++';
  solver_type?: 'midpoint' | 'heun';
  lower_order_final?: boolean;
  euler_at_final?: boolean;
  use_karras_sigmas?: boolean | null;
  use_exponential_sigmas?: boolean | null;
  use_beta_sigmas?: boolean | null;
  use_lu_lambdas?: boolean | null;
  final_sigmas_type?: 'zero' | 'sigma_min' | null;
  /** null (JSON has no -Infinity) means the default, -∞: no clipping. */
  lambda_min_clipped?: number | null;
  variance_type?: null | 'fixed_small' | 'fixed_small_log' | 'fixed_large';
  timestep_spacing?: TimestepSpacing;
  steps_offset?: number;
}

/** DPM-Solver works in (α_t, σ_t) with α² + σ² = 1, derived from the VE sigma σ/α. */
function alphaSigma(sigma: number): { alpha: number; sigma: number } {
  const alpha = f32(1 / f32(Math.sqrt(f32(f32(sigma * sigma) + 1))));
  return { alpha, sigma: f32(sigma * alpha) };
}

/** λ = log α − log σ (half log-SNR); +∞ at the final σ = 0. */
function halfLogSnr(p: { alpha: number; sigma: number }): number {
  return f32(torchLogFloat32(p.alpha) - torchLogFloat32(p.sigma));
}

export class DPMSolverMultistepScheduler extends SchedulerBase {
  readonly config: Readonly<{
    num_train_timesteps: number;
    solver_order: 1 | 2;
    solver_type: 'midpoint' | 'heun';
    lower_order_final: boolean;
    euler_at_final: boolean;
    final_sigmas_type: 'zero' | 'sigma_min';
    lambda_min_clipped: number;
    timestep_spacing: TimestepSpacing;
    steps_offset: number;
  }>;
  /** σ_t = sqrt((1 − ᾱ_t) / ᾱ_t) for every training timestep, float32 like torch. */
  private readonly trainSigmas: Float32Array;
  /** σ per inference step plus the final σ (0 or σ_min). */
  private sigmas: Float32Array = new Float32Array(0);
  private previousX0: Float32Array | undefined;
  private lowerOrderCount = 0;
  private stepIndex: number | undefined;

  constructor(config: DPMSolverMultistepSchedulerConfig = {}) {
    if (config.thresholding) requireOneOf('thresholding', config.thresholding, [false]);
    requireOneOf('prediction_type', config.prediction_type ?? 'epsilon', ['epsilon']);
    requireOneOf('algorithm_type', config.algorithm_type ?? 'dpmsolver++', ['dpmsolver++']);
    // diffusers only acts on "learned"/"learned_range" (dropping variance channels); any other value,
    // such as the Kandinsky decoder config's DDPM "fixed_small", behaves as None.
    requireOneOf('variance_type', config.variance_type ?? null, [
      null,
      'fixed_small',
      'fixed_small_log',
      'fixed_large',
    ]);
    for (const field of [
      'use_karras_sigmas',
      'use_exponential_sigmas',
      'use_beta_sigmas',
      'use_lu_lambdas',
    ] as const) {
      if (config[field]) unsupported(field, config[field], [false]);
    }
    const resolved: DPMSolverMultistepScheduler['config'] = {
      num_train_timesteps: config.num_train_timesteps ?? 1000,
      solver_order: requireOneOf('solver_order', config.solver_order ?? 2, [1, 2]),
      solver_type: requireOneOf('solver_type', config.solver_type ?? 'midpoint', ['midpoint', 'heun']),
      lower_order_final: config.lower_order_final ?? true,
      euler_at_final: config.euler_at_final ?? false,
      final_sigmas_type: requireOneOf('final_sigmas_type', config.final_sigmas_type ?? 'zero', [
        'zero',
        'sigma_min',
      ]),
      lambda_min_clipped: config.lambda_min_clipped ?? Number.NEGATIVE_INFINITY,
      timestep_spacing: config.timestep_spacing ?? 'linspace',
      steps_offset: config.steps_offset ?? 0,
    };
    super(config, 'linear', []);
    this.config = resolved;
    this.trainSigmas = this.schedule.alphasCumprod.map((a) => Math.sqrt(f32(f32(1 - a) / a)));
  }

  /** Also resets the multistep history: one call per generation. */
  setTimesteps(numInferenceSteps: number): void {
    const numTrain = this.config.num_train_timesteps;
    checkStepCount(numInferenceSteps, numTrain);
    // Timesteps whose λ falls below lambda_min_clipped are cut from the top of the range.
    const lambdas = this.schedule.alphasCumprod.map((a) =>
      f32(torchLogFloat32(f32(Math.sqrt(a))) - torchLogFloat32(f32(Math.sqrt(f32(1 - a))))),
    );
    let clipped = 0;
    for (let i = lambdas.length - 1; i >= 0 && (lambdas[i] as number) < this.config.lambda_min_clipped; i--)
      clipped++;
    const lastTimestep = numTrain - clipped;

    let timesteps: number[];
    const spacing = this.config.timestep_spacing;
    if (spacing === 'linspace') {
      timesteps = linspaceFloat64(0, lastTimestep - 1, numInferenceSteps + 1)
        .map(roundHalfEven)
        .reverse()
        .slice(0, -1);
    } else if (spacing === 'leading') {
      const ratio = Math.floor(lastTimestep / (numInferenceSteps + 1));
      timesteps = [];
      for (let i = numInferenceSteps; i >= 1; i--) timesteps.push(i * ratio + this.config.steps_offset);
    } else if (spacing === 'trailing') {
      timesteps = arangeFloat64(lastTimestep, 0, -numTrain / numInferenceSteps).map(
        (t) => roundHalfEven(t) - 1,
      );
    } else {
      unsupported('timestep_spacing', spacing, ['linspace', 'leading', 'trailing']);
    }

    const sigmas = new Float32Array(timesteps.length + 1);
    timesteps.forEach((t, i) => {
      sigmas[i] = this.trainSigmas[t] as number;
    });
    sigmas[timesteps.length] = this.config.final_sigmas_type === 'zero' ? 0 : (this.trainSigmas[0] as number);
    this.timestepList = timesteps;
    this.sigmas = sigmas;
    this.previousX0 = undefined;
    this.lowerOrderCount = 0;
    this.stepIndex = undefined;
  }

  /**
   * diffusers looks a timestep up in the schedule; a repeated timestep resolves to its second occurrence
   * so that img2img starting mid-schedule does not skip a step; an unknown one to the last step.
   */
  private indexForTimestep(timestep: number): number {
    const matches: number[] = [];
    this.timestepList.forEach((t, i) => {
      if (t === timestep) matches.push(i);
    });
    if (matches.length === 0) return this.timestepList.length - 1;
    return (matches.length > 1 ? matches[1] : matches[0]) as number;
  }

  /**
   * `addNoise` at `timestep` as two scalars: α_t and σ_t of the schedule's own σ grid, so only its
   * timesteps (what the inpainting blend needs on the GPU).
   */
  override noiseCoefficients(timestep: number): NoiseCoefficients {
    const { alpha, sigma } = alphaSigma(this.sigmas[this.indexForTimestep(timestep)] as number);
    return { signal: alpha, noise: sigma };
  }

  /**
   * The next step's scalars, advancing the multistep state (step index, solver order) as a step does.
   * Second order needs the previous x0: `step()` has one exactly when it has stepped before.
   */
  private advance(
    timestep: number,
    hasPreviousX0: boolean,
  ): { coefficients: DPMSolverStepCoefficients; secondOrder: boolean } {
    if (this.stepIndex === undefined) this.stepIndex = this.indexForTimestep(timestep);
    const index = this.stepIndex;
    const stepCount = this.timestepList.length;
    const { lower_order_final: lowerOrderFinal, solver_order: solverOrder } = this.config;
    const finalStepFirstOrder =
      index === stepCount - 1 &&
      (this.config.euler_at_final ||
        (lowerOrderFinal && stepCount < 15) ||
        this.config.final_sigmas_type === 'zero');
    const current = alphaSigma(this.sigmas[index] as number);
    const target = alphaSigma(this.sigmas[index + 1] as number);
    const lambdaTarget = halfLogSnr(target);
    const lambdaCurrent = halfLogSnr(current);
    const h = f32(lambdaTarget - lambdaCurrent);
    const expm1 = f32(torchExpFloat32(-h) - 1);
    const x0Coeff = f32(target.alpha * expm1);
    const secondOrder =
      solverOrder === 2 && this.lowerOrderCount >= 1 && !finalStepFirstOrder && hasPreviousX0;
    let differenceRatio = 0;
    let differenceCoeff = 0;
    if (secondOrder) {
      // A finite difference of the last two x0 estimates, scaled by the step-size ratio.
      const previous = alphaSigma(this.sigmas[index - 1] as number);
      const h0 = f32(lambdaCurrent - halfLogSnr(previous));
      differenceRatio = f32(1 / f32(h0 / h));
      differenceCoeff =
        this.config.solver_type === 'midpoint'
          ? -f32(0.5 * x0Coeff)
          : f32(target.alpha * f32(f32(expm1 / h) + 1));
    }
    if (this.lowerOrderCount < solverOrder) this.lowerOrderCount++;
    this.stepIndex = index + 1;
    const coefficients: DPMSolverStepCoefficients = {
      kind: 'dpmpp-2m',
      sigma: current.sigma,
      alpha: current.alpha,
      sampleCoeff: f32(target.sigma / current.sigma),
      x0Coeff,
      differenceRatio,
      differenceCoeff,
    };
    return { coefficients, secondOrder };
  }

  /**
   * The scalars of the next `step(·, timestep, ·)`, computed as `step()` does, and the same advance
   * of the multistep state (step index, solver order); the previous x0 stays with the caller, who
   * feeds each step's x0 to the next. Use either this or `step()` for a whole run, never both.
   */
  stepCoefficients(timestep: number): DPMSolverStepCoefficients {
    requireSetTimesteps(this.timestepList.length > 0, 'DPMSolverMultistepScheduler.stepCoefficients');
    return this.advance(timestep, true).coefficients;
  }

  step(modelOutput: Float32Array, timestep: number, sample: Float32Array, options: StepOptions): StepResult {
    requireSetTimesteps(this.timestepList.length > 0, 'DPMSolverMultistepScheduler.step');
    const size = checkStepInputs(modelOutput, sample, options.shape);
    const previousX0 = this.previousX0;
    const { coefficients: c, secondOrder } = this.advance(timestep, previousX0 !== undefined);
    // Data prediction: x0 = (x_t − σ_t ε) / α_t.
    const x0 = unmix(sample, modelOutput, c.sigma, c.alpha);
    const prevSample = new Float32Array(size);
    for (let i = 0; i < size; i++) {
      prevSample[i] = f32(c.sampleCoeff * (sample[i] as number)) - f32(c.x0Coeff * (x0[i] as number));
    }
    if (secondOrder && previousX0 !== undefined) {
      // Plus the signed second-order term, a finite difference of the last two x0 estimates.
      for (let i = 0; i < size; i++) {
        const d1 = f32(c.differenceRatio * f32((x0[i] as number) - (previousX0[i] as number)));
        prevSample[i] = (prevSample[i] as number) + f32(c.differenceCoeff * d1);
      }
    }
    this.previousX0 = x0;
    return { prevSample, predOriginalSample: x0 };
  }
}
