/**
 * Pieces shared by the schedulers: the training noise schedule, timestep spacings, float32 arithmetic,
 * and the step operations (x0 estimate, posterior mean, noise) that several schedulers perform alike.
 *
 * diffusers computes every scheduler coefficient as a float32 torch scalar and every update as float32
 * tensor ops, each rounded once. `f32` after each operation reproduces that rounding, so the schedulers
 * match diffusers to the last bit except where torch's vectorised log/exp differ by an ulp.
 */

import { numel, roundHalfEven } from '../math';
import { randnTensor, type TorchGenerator } from '../rng';
import type { NoiseCoefficients } from './step-coefficients';

export const f32 = Math.fround;

/**
 * `torch.exp` of a float32 tensor on the CPU, bit for bit: torch evaluates it (even for a 0-dim scalar)
 * with SLEEF's vectorised expf (Cody–Waite reduction by ln 2, degree-6 polynomial, FMAs), which is not
 * correctly rounded — it differs from fround(Math.exp(x)) by 1 ulp for about a third of DPM-Solver's
 * step sizes, enough to move its latents by ~1e-5 over 20 steps.
 * The FMAs are emulated as one rounding of the double result (exact product of two floats).
 */
export function torchExpFloat32(x: number): number {
  const d = f32(x);
  const fma = (a: number, b: number, c: number) => f32(a * b + c);
  const q = roundHalfEven(f32(d * LOG2_E_F32));
  let s = fma(q, -LN2_HIGH_F32, d);
  s = fma(q, -LN2_LOW_F32, s);
  let u = EXP_POLY_F32[0] as number;
  for (let i = 1; i < EXP_POLY_F32.length; i++) u = fma(u, s, EXP_POLY_F32[i] as number);
  u = f32(1 + fma(f32(s * s), u, s));
  if (d < -104) return 0;
  if (d > 1e10) return Number.POSITIVE_INFINITY;
  return f32(u * 2 ** q);
}

// SLEEF's float constants (ln 2 split in a high and a low part, then the polynomial), as float32 values.
const LOG2_E_F32 = f32(Math.LOG2E);
const LN2_HIGH_F32 = 0.693145751953125;
const LN2_LOW_F32 = 0.000001428606765330187;
const EXP_POLY_F32 = [
  0.00019852761761285365, 0.0013930435525253415, 0.008333360776305199, 0.041666485369205475,
  0.1666666716337204, 0.5,
].map(f32);

/**
 * `torch.log` of a float32 value. torch uses SLEEF's logf (1-ulp bound) here too; correctly rounded
 * fround(Math.log(x)) agreed with it on every value in the fixtures, so it is not emulated.
 */
export function torchLogFloat32(x: number): number {
  return f32(Math.log(x));
}

/** The config fields every diffusers scheduler understands; names as in scheduler_config.json. */
export interface NoiseScheduleConfig {
  num_train_timesteps?: number;
  beta_start?: number;
  beta_end?: number;
  beta_schedule?: 'linear' | 'scaled_linear' | 'squaredcos_cap_v2';
  trained_betas?: readonly number[] | null;
  rescale_betas_zero_snr?: boolean;
}

export type SchedulerErrorCode = 'unsupported-config' | 'invalid-argument' | 'missing-noise';

/** A scheduler was configured or called in a way this port does not (or cannot) reproduce. */
export class SchedulerError extends Error {
  override readonly name = 'SchedulerError';
  constructor(
    readonly code: SchedulerErrorCode,
    message: string,
  ) {
    super(message);
  }
}

/** Where step noise comes from: diffusers' generator(s), or noise the caller already drew. */
export type StepNoise = TorchGenerator | readonly TorchGenerator[];

export interface StepOptions {
  /** Shape of `sample` (e.g. [batch, 4, h/8, w/8] latents); model outputs share it except where noted. */
  shape: readonly number[];
  /** The pipeline's generator, for schedulers that add noise during a step (DDPM, UnCLIP, DDIM eta > 0). */
  generator?: StepNoise;
}

export interface StepResult {
  prevSample: Float32Array;
  /** The model's estimate of the clean sample (x0) at this step, where the scheduler computes one. */
  predOriginalSample?: Float32Array;
}

export function unsupported(field: string, value: unknown, supported: readonly unknown[]): never {
  throw new SchedulerError(
    'unsupported-config',
    `Scheduler config ${field}=${JSON.stringify(value)} is not supported (supported: ${supported.map((v) => JSON.stringify(v)).join(', ')})`,
  );
}

export function requireOneOf<T>(field: string, value: T, supported: readonly T[]): T {
  if (!supported.includes(value)) unsupported(field, value, supported);
  return value;
}

/**
 * `torch.linspace(start, end, steps, dtype=float32)` on the CPU, rounding included. torch counts the first
 * half up from `start` and the second half down from `end`; its AVX2 loop fills 16 floats at a time as two
 * vectors `base + k·step` (k = 0..7, base computed at the vector's first index), and only the last
 * `steps % 16` values come from the scalar formula. The compiler fuses `start + step·i` into one FMA
 * (a single rounding; GCC contracts by default in torch's AVX2 kernels), while the vector lanes round
 * `k·step` and the sum separately. Checked bit-exact against torch's betas.
 */
export function linspaceFloat32(start: number, end: number, steps: number): Float32Array {
  const out = new Float32Array(steps);
  if (steps === 1) {
    out[0] = start;
    return out;
  }
  const from = f32(start);
  const to = f32(end);
  const step = f32(f32(to - from) / (steps - 1));
  const halfway = Math.floor(steps / 2);
  // step·i is exact in double (24-bit × ≤ 31-bit), so rounding the double sum once is the FMA's result.
  const at = (i: number) => (i < halfway ? f32(from + step * i) : f32(to - step * (steps - i - 1)));
  const VECTOR = 8;
  const vectorised = Math.floor(steps / (2 * VECTOR)) * 2 * VECTOR;
  for (let base = 0; base < vectorised; base += VECTOR) {
    const first = at(base);
    for (let k = 0; k < VECTOR; k++) out[base + k] = f32(first + f32(k * step));
  }
  for (let i = vectorised; i < steps; i++) out[i] = at(i);
  return out;
}

/** diffusers' betas_for_alpha_bar (cosine): computed in double like Python, stored as float32. */
export function cosineBetas(numTrainTimesteps: number, maxBeta = 0.999): Float32Array {
  const alphaBar = (t: number) => Math.cos(((t + 0.008) / 1.008) * (Math.PI / 2)) ** 2;
  const betas = new Float32Array(numTrainTimesteps);
  for (let i = 0; i < numTrainTimesteps; i++) {
    const t1 = i / numTrainTimesteps;
    const t2 = (i + 1) / numTrainTimesteps;
    betas[i] = Math.min(1 - alphaBar(t2) / alphaBar(t1), maxBeta);
  }
  return betas;
}

export interface NoiseSchedule {
  readonly betas: Float32Array;
  readonly alphas: Float32Array;
  /** ᾱ_t; torch's cumprod accumulates in double and rounds each output to float32. */
  readonly alphasCumprod: Float32Array;
}

export function trainingNoiseSchedule(config: NoiseScheduleConfig, defaultSchedule: string): NoiseSchedule {
  const numTrain = config.num_train_timesteps ?? 1000;
  if (config.rescale_betas_zero_snr) unsupported('rescale_betas_zero_snr', true, [false]);
  let betas: Float32Array;
  if (config.trained_betas) {
    betas = Float32Array.from(config.trained_betas);
  } else {
    const schedule = config.beta_schedule ?? defaultSchedule;
    const betaStart = config.beta_start ?? 0.0001;
    const betaEnd = config.beta_end ?? 0.02;
    if (schedule === 'linear') {
      betas = linspaceFloat32(betaStart, betaEnd, numTrain);
    } else if (schedule === 'scaled_linear') {
      betas = linspaceFloat32(Math.sqrt(betaStart), Math.sqrt(betaEnd), numTrain).map((b) => b * b);
    } else if (schedule === 'squaredcos_cap_v2') {
      betas = cosineBetas(numTrain);
    } else {
      unsupported('beta_schedule', schedule, ['linear', 'scaled_linear', 'squaredcos_cap_v2']);
    }
  }
  const alphas = betas.map((b) => 1 - b);
  const alphasCumprod = new Float32Array(alphas.length);
  let product = 1;
  for (let i = 0; i < alphas.length; i++) {
    product *= alphas[i] as number;
    alphasCumprod[i] = product;
  }
  return { betas, alphas, alphasCumprod };
}

/** `np.linspace(start, stop, num)` in double: i * step + start, with the last point set to stop. */
export function linspaceFloat64(start: number, stop: number, num: number): number[] {
  if (num === 1) return [start];
  const step = (stop - start) / (num - 1);
  const out: number[] = [];
  for (let i = 0; i < num; i++) out.push(i * step + start);
  out[num - 1] = stop;
  return out;
}

/** `np.arange(start, stop, step)` for float steps: ceil((stop - start) / step) points start + i * step. */
export function arangeFloat64(start: number, stop: number, step: number): number[] {
  const count = Math.max(0, Math.ceil((stop - start) / step));
  const out: number[] = [];
  for (let i = 0; i < count; i++) out.push(start + i * step);
  return out;
}

export type TimestepSpacing = 'leading' | 'trailing' | 'linspace';

/**
 * The inference timestep grid (descending) shared by DDPM and DDIM: "leading" (Kandinsky's decoder, with
 * steps_offset 1 gives 981, 961, ..., 1 for 50 steps), "trailing" or "linspace".
 */
export function spacedTimesteps(
  spacing: TimestepSpacing,
  numTrainTimesteps: number,
  numInferenceSteps: number,
  stepsOffset: number,
): number[] {
  if (spacing === 'linspace') {
    return linspaceFloat64(0, numTrainTimesteps - 1, numInferenceSteps)
      .map(roundHalfEven)
      .reverse();
  }
  if (spacing === 'leading') {
    const ratio = Math.floor(numTrainTimesteps / numInferenceSteps);
    const out: number[] = [];
    for (let i = numInferenceSteps - 1; i >= 0; i--) out.push(i * ratio + stepsOffset);
    return out;
  }
  if (spacing === 'trailing') {
    const ratio = numTrainTimesteps / numInferenceSteps;
    return arangeFloat64(numTrainTimesteps, 0, -ratio).map((t) => roundHalfEven(t) - 1);
  }
  return unsupported('timestep_spacing', spacing, ['leading', 'trailing', 'linspace']);
}

export function checkStepCount(numInferenceSteps: number, numTrainTimesteps: number): void {
  if (
    !Number.isInteger(numInferenceSteps) ||
    numInferenceSteps < 1 ||
    numInferenceSteps > numTrainTimesteps
  ) {
    throw new SchedulerError(
      'invalid-argument',
      `num_inference_steps must be an integer in 1..${numTrainTimesteps}, got ${numInferenceSteps}`,
    );
  }
}

export function checkSameLength(name: string, actual: Float32Array, expected: number): void {
  if (actual.length !== expected) {
    throw new SchedulerError(
      'invalid-argument',
      `${name} has ${actual.length} elements, expected ${expected}`,
    );
  }
}

/** Step noise drawn exactly as diffusers' randn_tensor(model_output.shape, generator=...) would. */
export function drawStepNoise(
  shape: readonly number[],
  generator: StepNoise | undefined,
  who: string,
): Float32Array {
  if (generator === undefined) {
    throw new SchedulerError(
      'missing-noise',
      `${who}.step adds noise at this timestep: pass the pipeline's generator so it matches diffusers`,
    );
  }
  return randnTensor(shape, generator);
}

/** `a * x + b * y` elementwise with float32 rounding after each operation, as torch evaluates it. */
export function axpby(a: number, x: Float32Array, b: number, y: Float32Array): Float32Array {
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = f32(a * (x[i] as number)) + f32(b * (y[i] as number));
  return out;
}

/**
 * diffusers' add_noise, signal·x + noise·ε with the scalars of each batch item's timestep (one timestep
 * per item, along the leading dimension).
 */
export function addNoisePerItem(
  originalSamples: Float32Array,
  noise: Float32Array,
  timesteps: readonly number[],
  coefficientsAt: (timestep: number) => NoiseCoefficients,
): Float32Array {
  checkSameLength('noise', noise, originalSamples.length);
  const batch = timesteps.length;
  if (batch === 0 || originalSamples.length % batch !== 0) {
    throw new SchedulerError('invalid-argument', 'addNoise needs one timestep per batch item');
  }
  const itemSize = originalSamples.length / batch;
  const out = new Float32Array(originalSamples.length);
  for (let b = 0; b < batch; b++) {
    const c = coefficientsAt(timesteps[b] as number);
    for (let i = b * itemSize; i < (b + 1) * itemSize; i++) {
      out[i] = f32(c.signal * (originalSamples[i] as number)) + f32(c.noise * (noise[i] as number));
    }
  }
  return out;
}

/** Checks a step's sample and model output against `shape`; returns their element count. */
export function checkStepInputs(
  modelOutput: Float32Array,
  sample: Float32Array,
  shape: readonly number[],
): number {
  const size = numel(shape);
  checkSameLength('sample', sample, size);
  checkSameLength('modelOutput', modelOutput, size);
  return size;
}

/** For methods that need the inference schedule: `method` names the call in the error. */
export function requireSetTimesteps(ready: boolean, method: string): void {
  if (!ready) throw new SchedulerError('invalid-argument', `${method} before setTimesteps`);
}

/**
 * `(x − scale·known) / divisor` elementwise, rounded as torch does: the other term of
 * x = divisor·unknown + scale·known. With (sqrt(1 − ᾱ), sqrt(ᾱ)) or DPM-Solver's (σ, α) it turns ε into
 * x0; with the two swapped, x0 back into ε.
 */
export function unmix(x: Float32Array, known: Float32Array, scale: number, divisor: number): Float32Array {
  const out = new Float32Array(x.length);
  for (let i = 0; i < x.length; i++) {
    out[i] = f32(f32((x[i] as number) - f32(scale * (known[i] as number))) / divisor);
  }
  return out;
}

/** `values += scale·other` in place, float32 rounding after each operation (how steps add their noise). */
export function addScaledInPlace(values: Float32Array, scale: number, other: Float32Array): void {
  for (let i = 0; i < values.length; i++)
    values[i] = f32((values[i] as number) + f32(scale * (other[i] as number)));
}

/** DDPM's and UnCLIP's x0 settings with their diffusers defaults: ε prediction, clipped to ±1. */
export function originalSampleConfig(config: {
  clip_sample?: boolean;
  clip_sample_range?: number | null;
  prediction_type?: 'epsilon' | 'sample';
}): { clip_sample: boolean; clip_sample_range: number; prediction_type: 'epsilon' | 'sample' } {
  return {
    clip_sample: config.clip_sample ?? true,
    clip_sample_range: config.clip_sample_range ?? 1,
    prediction_type: requireOneOf('prediction_type', config.prediction_type ?? 'epsilon', [
      'epsilon',
      'sample',
    ]),
  };
}

/**
 * The model's x0 estimate in DDPM, DDIM and UnCLIP: from ε (or the output itself for "sample"
 * prediction), clamped to ±clip_sample_range when clip_sample is set.
 */
export function predictOriginalSample(
  config: Readonly<{
    prediction_type?: 'epsilon' | 'sample';
    clip_sample: boolean;
    clip_sample_range: number;
  }>,
  sample: Float32Array,
  modelOutput: Float32Array,
  sqrtBetaProdT: number,
  sqrtAlphaProdT: number,
): Float32Array {
  const x0 =
    config.prediction_type === 'sample'
      ? Float32Array.from(modelOutput)
      : unmix(sample, modelOutput, sqrtBetaProdT, sqrtAlphaProdT);
  if (config.clip_sample) {
    const range = f32(config.clip_sample_range);
    for (let i = 0; i < x0.length; i++) x0[i] = Math.min(Math.max(x0[i] as number, -range), range);
  }
  return x0;
}

/**
 * The scalars of a DDPM-style posterior step t → t' (DDPM, UnCLIP): x' = originalCoeff·x0 + sampleCoeff·x
 * plus noise of `variance`, the posterior variance β̃ floored so its log is finite.
 */
export interface PosteriorCoefficients {
  readonly sqrtBetaProdT: number;
  readonly sqrtAlphaProdT: number;
  readonly originalCoeff: number;
  readonly sampleCoeff: number;
  readonly variance: number;
}

/** PosteriorCoefficients from ᾱ_t, ᾱ_t' and the step's own α and β (each scheduler derives those its way). */
export function posteriorCoefficients(
  alphaProdT: number,
  alphaProdPrev: number,
  alpha: number,
  beta: number,
): PosteriorCoefficients {
  const betaProdT = f32(1 - alphaProdT);
  const betaProdPrev = f32(1 - alphaProdPrev);
  return {
    sqrtBetaProdT: f32(Math.sqrt(betaProdT)),
    sqrtAlphaProdT: f32(Math.sqrt(alphaProdT)),
    originalCoeff: f32(f32(f32(Math.sqrt(alphaProdPrev)) * beta) / betaProdT),
    sampleCoeff: f32(f32(f32(Math.sqrt(alpha)) * betaProdPrev) / betaProdT),
    variance: Math.max(f32(f32(betaProdPrev / betaProdT) * beta), f32(1e-20)),
  };
}

/** The noiseless part of a DDPM-style step: the x0 estimate, and the posterior mean it gives. */
export function posteriorMean(
  config: Parameters<typeof predictOriginalSample>[0],
  sample: Float32Array,
  modelOutput: Float32Array,
  p: PosteriorCoefficients,
): { predOriginal: Float32Array; prevSample: Float32Array } {
  const predOriginal = predictOriginalSample(config, sample, modelOutput, p.sqrtBetaProdT, p.sqrtAlphaProdT);
  return { predOriginal, prevSample: axpby(p.originalCoeff, predOriginal, p.sampleCoeff, sample) };
}

/** sqrt(variance) the "fixed_small_log" way, through torch's log and exp (it can differ by an ulp). */
export function stdViaLog(variance: number): number {
  return torchExpFloat32(f32(0.5 * torchLogFloat32(variance)));
}

/**
 * Timesteps an image-to-image run keeps (the decoder pipelines' get_timesteps): the last
 * int(numInferenceSteps * strength) steps of the full schedule. `timesteps[0]` is where the image is noised.
 */
export function img2imgTimesteps(
  fullTimesteps: readonly number[],
  numInferenceSteps: number,
  strength: number,
): { timesteps: number[]; startIndex: number } {
  if (!(strength >= 0 && strength <= 1)) {
    throw new SchedulerError('invalid-argument', `strength must be in [0, 1], got ${strength}`);
  }
  // Python's int() truncates the double product, e.g. int(100 * 0.333) = 33.
  const initTimestep = Math.min(Math.trunc(numInferenceSteps * strength), numInferenceSteps);
  const startIndex = Math.max(numInferenceSteps - initTimestep, 0);
  return { timesteps: fullTimesteps.slice(startIndex), startIndex };
}
