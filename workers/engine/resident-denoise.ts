/**
 * The decoder's denoising loop with the latents kept in ORT tensors ('gpu' residency, see
 * model-set.ts): UNet → step graph → UNet, where the step graph (step-graphs.ts) does classifier-free
 * guidance, the scheduler step and the inpainting blend on the same device as the UNet. Per step
 * only small tensors go up (timestep, the step's scalars, the DDPM noise drawn by our torch
 * generator on the CPU); nothing comes down unless the caller wants every step's latents (previews,
 * traces). The final latents come down once for the MoVQ decoder.
 */
import type { ModelSet } from './model-set';
import { countGpuReadback, type InferenceSession, readFloat32, type Tensor, TensorScope } from './ort';
import { randnTensor, type TorchGenerator } from './rng';
import {
  DDIMScheduler,
  DDPMScheduler,
  type DecoderScheduler,
  type NoiseCoefficients,
  type StepCoefficients,
} from './schedulers';
import {
  buildCopyGraph,
  buildStepGraph,
  COPY_GRAPH,
  STEP_GRAPH,
  type StepGraphSpec,
  stepCoefficientVector,
  stepGraphKey,
} from './step-graphs';

export interface HostTensor {
  readonly data: Float32Array;
  readonly dims: readonly number[];
}

export interface ResidentDenoiseInput {
  readonly models: ModelSet;
  readonly unet: InferenceSession;
  readonly scheduler: DecoderScheduler;
  readonly generator: TorchGenerator;
  readonly timesteps: readonly number[];
  /** Initial latents `[N, 4, h, w]`, already noised / scaled by the caller. */
  readonly latents: HostTensor;
  /** `settings.guidance`: > 1 runs classifier-free guidance with a doubled UNet batch. */
  readonly guidance: number;
  /** The UNet's constant inputs (`image_embeds`, `hint`, `masked_image_latents`, `mask`), CFG-batched. */
  readonly unetConstants: Readonly<Record<string, HostTensor>>;
  /** Inpainting: keep mask `[h·w]`, image latents `[1, 4, h, w]`, initial noise `[N, 4, h, w]`. */
  readonly inpaint: { keep: Float32Array; imageLatents: Float32Array; noise: Float32Array } | null;
  /** Checked before each step; throws to stop. */
  readonly checkAborted: () => void;
  /** Read the latents back after every step (previews, traces): one readback per step. */
  readonly readEveryStep: boolean;
  /** After each step; `latents` is null unless `readEveryStep`. */
  readonly onStep: (index: number, latents: Float32Array | null) => void;
}

/** Which step graph a scheduler needs; its config decides the clipping. */
export function stepGraphSpecFor(
  scheduler: DecoderScheduler,
  guided: boolean,
  inpaint: boolean,
  channels: number,
): StepGraphSpec {
  if (scheduler instanceof DDPMScheduler || scheduler instanceof DDIMScheduler) {
    const { clip_sample: clip, clip_sample_range: range } = scheduler.config;
    return {
      scheduler: scheduler instanceof DDPMScheduler ? 'ddpm' : 'ddim',
      guided,
      inpaint,
      clipRange: clip ? range : null,
      channels,
    };
  }
  return { scheduler: 'dpmpp-2m', guided, inpaint, clipRange: null, channels };
}

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
    return required(out, COPY_GRAPH.output);
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
    return (await readFloat32(required(out, COPY_GRAPH.output))).slice();
  } finally {
    scope.disposeAll();
  }
}

function required(outputs: Record<string, Tensor>, name: string): Tensor {
  const tensor = outputs[name];
  if (!tensor) throw new Error(`The graph returned no "${name}" output.`);
  return tensor;
}

/** Runs the loop; returns the latents after the last step (before inpainting's final blend). */
export async function denoiseResident(input: ResidentDenoiseInput): Promise<Float32Array> {
  const { models, unet, scheduler, generator, timesteps, guidance, inpaint } = input;
  const { data: initial, dims: shape } = input.latents;
  const [n = 1, channels = 4, h = 0, w = 0] = shape;
  const guided = guidance > 1;
  const batch = guided ? 2 * n : n;
  const spec = stepGraphSpecFor(scheduler, guided, inpaint !== null, channels);
  const stepSession = await models.runtimeSession(stepGraphKey(spec), () => buildStepGraph(spec), 'device');

  // Lives for the whole loop: constants and the state carried from step to step.
  const scope = new TensorScope(models.ort);
  try {
    const unetConstants: Record<string, Tensor> = {};
    for (const [name, host] of Object.entries(input.unetConstants)) {
      unetConstants[name] = await uploadResident(models, scope, host);
    }
    const stepConstants: Record<string, Tensor> = {};
    if (inpaint) {
      const perImage = channels * h * w;
      stepConstants[STEP_GRAPH.keep] = await uploadResident(models, scope, {
        data: inpaint.keep,
        dims: [1, 1, h, w],
      });
      stepConstants[STEP_GRAPH.imageLatents] = await uploadResident(models, scope, {
        data: inpaint.imageLatents,
        dims: [1, channels, h, w],
      });
      // The CPU path noises the kept image with the first image's initial noise for every image.
      stepConstants[STEP_GRAPH.initialNoise] = await uploadResident(models, scope, {
        data: inpaint.noise.slice(0, perImage),
        dims: [1, channels, h, w],
      });
    }

    // The first step's inputs go up as CPU tensors (ORT copies them); later ones are step outputs.
    let latents = scope.float32(initial, shape);
    let modelInput = guided ? scope.float32(doubled(initial), [batch, channels, h, w]) : latents;
    let previousX0 =
      spec.scheduler === 'dpmpp-2m' ? scope.float32(new Float32Array(initial.length), shape) : null;

    for (const [i, t] of timesteps.entries()) {
      input.checkAborted();
      const stepScope = new TensorScope(models.ort);
      try {
        // scaleModelInput is the identity for DDPM, DDIM and DPM-Solver++, so the sample goes as is.
        const unetOut = await stepScope.run(unet, {
          ...unetConstants,
          sample: modelInput,
          timestep: stepScope.float32(new Float32Array(batch).fill(t), [batch]),
        });
        const coefficients: StepCoefficients = scheduler.stepCoefficients(t);
        const next = timesteps[i + 1];
        const kept: NoiseCoefficients | undefined = inpaint
          ? next === undefined
            ? { signal: 1, noise: 0 }
            : scheduler.noiseCoefficients(next)
          : undefined;
        const scalars = stepCoefficientVector(spec, guidance, coefficients, kept);
        const feeds: Record<string, Tensor> = {
          ...stepConstants,
          [STEP_GRAPH.noisePred]: required(unetOut, 'noise_pred'),
          [STEP_GRAPH.latents]: latents,
          [STEP_GRAPH.coefficients]: stepScope.float32(scalars, [scalars.length]),
        };
        if (coefficients.kind === 'ddpm') {
          // Drawn exactly where DDPMScheduler.step() draws it, so the generator stays in step with diffusers.
          const noise =
            coefficients.noiseStd !== null ? randnTensor(shape, generator) : new Float32Array(initial.length);
          feeds[STEP_GRAPH.noise] = stepScope.float32(noise, shape);
        }
        if (previousX0) feeds[STEP_GRAPH.previousX0] = previousX0;
        const stepOut = await stepScope.run(stepSession, feeds);

        // Hand the new state to the loop's scope and drop the old one.
        const old = [latents, modelInput, previousX0];
        latents = stepScope.transfer(required(stepOut, STEP_GRAPH.latentsNext), scope);
        modelInput = guided
          ? stepScope.transfer(required(stepOut, STEP_GRAPH.modelInputNext), scope)
          : latents;
        if (previousX0) previousX0 = stepScope.transfer(required(stepOut, STEP_GRAPH.x0Next), scope);
        for (const tensor of new Set(old)) if (tensor) scope.dispose(tensor);
      } finally {
        stepScope.disposeAll();
      }
      input.onStep(i, input.readEveryStep ? await downloadResident(models, latents) : null);
    }
    return await downloadResident(models, latents);
  } finally {
    scope.disposeAll();
  }
}

/** `[x; x]`: the CFG batch of the first step. */
function doubled(latents: Float32Array): Float32Array {
  const out = new Float32Array(2 * latents.length);
  out.set(latents);
  out.set(latents, latents.length);
  return out;
}
