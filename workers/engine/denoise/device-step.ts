/**
 * What the two device forms of the loop (resident and captured) share: moving tensors on and off
 * the device through the copy graph, and what each step feeds the step graph besides the UNet's
 * output and the carried state.
 */
import type { ModelSet } from '../model-set';
import {
  countGpuReadback,
  type InferenceSession,
  readFloat32,
  requiredOutput,
  type Tensor,
  TensorScope,
} from '../ort';
import { randnTensor } from '../rng';
import type { NoiseCoefficients, StepCoefficients } from '../schedulers';
import type { DenoiseInput, HostTensor } from './loop';
import {
  buildCopyGraph,
  COPY_GRAPH,
  STEP_GRAPH,
  type StepGraphSpec,
  stepCoefficientVector,
} from './step-graphs';

function isOnCpu(tensor: Tensor): boolean {
  return tensor.location === 'cpu' || tensor.location === 'cpu-pinned';
}

function copySession(models: ModelSet, rank: number, outputs: 'device' | 'cpu'): Promise<InferenceSession> {
  return models.runtimeSession(`copy:${rank}`, () => buildCopyGraph(rank), outputs);
}

/** A constant made resident once per generation (a GPU buffer on WebGPU), owned by `scope`. */
export async function uploadResident(
  models: ModelSet,
  scope: TensorScope,
  host: HostTensor,
): Promise<Tensor> {
  const session = await copySession(models, host.dims.length, 'device');
  const input = scope.float32(host.data, host.dims);
  try {
    const out = await scope.run(session, { [COPY_GRAPH.input]: input });
    return requiredOutput(out, COPY_GRAPH.output);
  } finally {
    scope.dispose(input);
  }
}

/**
 * A tensor's values on the CPU. A GPU buffer comes down through the copy graph rather than
 * `getData()`, because onnxruntime-node 1.30 aborts the process when downloading a GPU output
 * (checked on its WebGPU provider); the same path in the browser keeps one code path. Counted.
 */
export async function downloadResident(models: ModelSet, tensor: Tensor): Promise<Float32Array> {
  if (isOnCpu(tensor)) return (await readFloat32(tensor)).slice();
  const session = await copySession(models, tensor.dims.length, 'cpu');
  const scope = new TensorScope(models.ort);
  try {
    const out = await scope.run(session, { [COPY_GRAPH.input]: tensor });
    countGpuReadback();
    return (await readFloat32(requiredOutput(out, COPY_GRAPH.output))).slice();
  } finally {
    scope.disposeAll();
  }
}

/** The loop's sizes: `[n, c, h, w]` latents, and the UNet batch (doubled under guidance). */
export function loopShape(input: DenoiseInput) {
  const shape = input.latents.dims;
  const [n = 1, channels = 4, h = 0, w = 0] = shape;
  const guided = input.guidance > 1;
  return { shape, n, channels, h, w, guided, batch: guided ? 2 * n : n };
}

/** The inpainting blend's constants `[1, c, h, w]` (keep mask `[1, 1, h, w]`), by step-graph input. */
export function inpaintConstants(input: DenoiseInput): Record<string, HostTensor> {
  const { inpaint } = input;
  if (!inpaint) return {};
  const { channels, h, w } = loopShape(input);
  return {
    [STEP_GRAPH.keep]: { data: inpaint.keep, dims: [1, 1, h, w] },
    [STEP_GRAPH.imageLatents]: { data: inpaint.imageLatents, dims: [1, channels, h, w] },
    // The host form noises the kept image with the first image's initial noise for every image.
    [STEP_GRAPH.initialNoise]: { data: inpaint.noise.slice(0, channels * h * w), dims: [1, channels, h, w] },
  };
}

/**
 * What step `i` (at timestep `t`) feeds the step graph besides the UNet's output and the carried
 * state: its scalars, the DDPM noise, and (captured loops) the next timestep. Made in `scope`.
 */
export function stepInputs(
  input: DenoiseInput,
  spec: StepGraphSpec,
  i: number,
  t: number,
  scope: TensorScope,
): Record<string, Tensor> {
  const { scheduler, timesteps, inpaint, guidance, generator } = input;
  const { shape, batch } = loopShape(input);
  const coefficients: StepCoefficients = scheduler.stepCoefficients(t);
  const next = timesteps[i + 1];
  const kept: NoiseCoefficients | undefined = inpaint
    ? next === undefined
      ? { signal: 1, noise: 0 }
      : scheduler.noiseCoefficients(next)
    : undefined;
  const scalars = stepCoefficientVector(spec, guidance, coefficients, kept);
  const feeds: Record<string, Tensor> = {
    [STEP_GRAPH.coefficients]: scope.float32(scalars, [scalars.length]),
  };
  if (coefficients.kind === 'ddpm') {
    // Drawn exactly where DDPMScheduler.step() draws it, so the generator stays in step with diffusers.
    const length = input.latents.data.length;
    const noise = coefficients.noiseStd !== null ? randnTensor(shape, generator) : new Float32Array(length);
    feeds[STEP_GRAPH.noise] = scope.float32(noise, shape);
  }
  // After the last step the captured UNet's timestep buffer gets 0: the next loop refills it.
  if (spec.capture) feeds[STEP_GRAPH.nextTimestep] = scope.float32(timestepsOf(batch, next ?? 0), [batch]);
  return feeds;
}

export function timestepsOf(batch: number, t: number): Float32Array {
  return new Float32Array(batch).fill(t);
}

/** `[x; x]`: the CFG batch of the first step. */
export function doubled(latents: Float32Array): Float32Array {
  const out = new Float32Array(2 * latents.length);
  out.set(latents);
  out.set(latents, latents.length);
  return out;
}
