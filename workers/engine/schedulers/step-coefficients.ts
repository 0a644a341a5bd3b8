/**
 * A decoder scheduler step as per-step scalars, for running the step elsewhere than in these classes'
 * `step()` (the engine's step graphs keep latents on the GPU between UNet calls). Each form repeats
 * the float32 operations of its `step()` in the same order, so a graph that applies them with float32
 * kernels reproduces `step()`: exactly on onnxruntime's CPU provider, to shader rounding on WebGPU.
 */

import { SchedulerError } from './common';

/**
 * DDPM (ε prediction, every fixed variance type):
 * x0 = (x − sqrtBetaProdT·ε) / sqrtAlphaProdT, clipped when the config says so, then
 * x' = originalCoeff·x0 + sampleCoeff·x + noiseStd·noise.
 */
export interface DDPMStepCoefficients {
  readonly kind: 'ddpm';
  readonly sqrtBetaProdT: number;
  readonly sqrtAlphaProdT: number;
  readonly originalCoeff: number;
  readonly sampleCoeff: number;
  /** σ of the step's fresh noise; null at t = 0, where diffusers draws none (nor may we: seed order). */
  readonly noiseStd: number | null;
}

/** DDIM with η = 0: x0 as DDPM, then x' = originalCoeff·x0 + directionCoeff·ε. */
export interface DDIMStepCoefficients {
  readonly kind: 'ddim';
  readonly sqrtBetaProdT: number;
  readonly sqrtAlphaProdT: number;
  readonly originalCoeff: number;
  readonly directionCoeff: number;
}

/**
 * DPM-Solver++ 2M: x0 = (x − sigma·ε) / alpha; x' = (sampleCoeff·x − x0Coeff·x0)
 * + differenceCoeff·(differenceRatio·(x0 − x0_previous)). First-order steps have differenceCoeff 0
 * (the previous x0 may then be anything finite); the new x0 is the next step's x0_previous.
 */
export interface DPMSolverStepCoefficients {
  readonly kind: 'dpmpp-2m';
  readonly sigma: number;
  readonly alpha: number;
  readonly sampleCoeff: number;
  readonly x0Coeff: number;
  readonly differenceRatio: number;
  /** Signed: negative for the midpoint solver, positive for Heun. */
  readonly differenceCoeff: number;
}

export type StepCoefficients = DDPMStepCoefficients | DDIMStepCoefficients | DPMSolverStepCoefficients;

/** `add_noise` at one timestep as two scalars: signal·x + noise·ε. */
export interface NoiseCoefficients {
  readonly signal: number;
  readonly noise: number;
}

/**
 * `addNoise` at `timestep` as two scalars, sqrt(ᾱ) and sqrt(1 − ᾱ), rounded as the schedulers'
 * float32 `addNoise` rounds them (DDPM and DDIM share this noise schedule form).
 */
export function noiseCoefficientsOf(alphasCumprod: Float32Array, timestep: number): NoiseCoefficients {
  const alphaProd = alphasCumprod[timestep];
  if (alphaProd === undefined)
    throw new SchedulerError('invalid-argument', `timestep ${timestep} out of range`);
  return {
    signal: Math.fround(Math.sqrt(alphaProd)),
    noise: Math.fround(Math.sqrt(Math.fround(1 - alphaProd))),
  };
}
