/**
 * The decoder's denoising loop with the latents kept in ORT tensors ('gpu' residency, see
 * model-set.ts): UNet → step graph → UNet, where the step graph (step-graphs.ts) does classifier-free
 * guidance, the scheduler step and the inpainting blend on the same device as the UNet. Per step
 * only small tensors go up (timestep, the step's scalars, the DDPM noise drawn by our torch
 * generator on the CPU); nothing comes down unless the caller wants every step's latents (previews,
 * traces). The final latents come down once for the MoVQ decoder.
 *
 * With a graph-captured UNet (LoopSession.captured, on onnxruntime-web WebGPU) the loop runs on
 * fixed GPU buffers instead: see `denoiseCaptured`.
 */
import type { CapturedLoop } from './captured-loop';
import type { LoopSession, ModelSet } from './model-set';
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
  readonly unet: LoopSession;
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
  capture = false,
): StepGraphSpec {
  const common = { guided, inpaint, channels, ...(capture ? { capture } : {}) };
  if (scheduler instanceof DDPMScheduler || scheduler instanceof DDIMScheduler) {
    const { clip_sample: clip, clip_sample_range: range } = scheduler.config;
    return {
      scheduler: scheduler instanceof DDPMScheduler ? 'ddpm' : 'ddim',
      clipRange: clip ? range : null,
      ...common,
    };
  }
  return { scheduler: 'dpmpp-2m', clipRange: null, ...common };
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
  const { unet, scheduler, guidance, inpaint } = input;
  const channels = input.latents.dims[1] ?? 4;
  const captured = unet.captured;
  const spec = stepGraphSpecFor(scheduler, guidance > 1, inpaint !== null, channels, captured !== null);
  return captured ? denoiseCaptured(input, captured, spec) : denoisePlain(input, spec);
}

/** The loop's sizes: `[n, c, h, w]` latents, and the UNet batch (doubled under guidance). */
function loopShape(input: ResidentDenoiseInput) {
  const shape = input.latents.dims;
  const [n = 1, channels = 4, h = 0, w = 0] = shape;
  const guided = input.guidance > 1;
  return { shape, n, channels, h, w, guided, batch: guided ? 2 * n : n };
}

/** The inpainting blend's constants `[1, c, h, w]` (keep mask `[1, 1, h, w]`), by step-graph input. */
function inpaintConstants(input: ResidentDenoiseInput): Record<string, HostTensor> {
  const { inpaint } = input;
  if (!inpaint) return {};
  const { channels, h, w } = loopShape(input);
  return {
    [STEP_GRAPH.keep]: { data: inpaint.keep, dims: [1, 1, h, w] },
    [STEP_GRAPH.imageLatents]: { data: inpaint.imageLatents, dims: [1, channels, h, w] },
    // The CPU path noises the kept image with the first image's initial noise for every image.
    [STEP_GRAPH.initialNoise]: { data: inpaint.noise.slice(0, channels * h * w), dims: [1, channels, h, w] },
  };
}

/**
 * What step `i` (at timestep `t`) feeds the step graph besides the UNet's output and the carried
 * state: its scalars, the DDPM noise, and (captured loops) the next timestep. Made in `scope`.
 */
function stepInputs(
  input: ResidentDenoiseInput,
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

function timestepsOf(batch: number, t: number): Float32Array {
  return new Float32Array(batch).fill(t);
}

/** The loop with a plain UNet session: each step's tensors are new ORT tensors, passed along. */
async function denoisePlain(input: ResidentDenoiseInput, spec: StepGraphSpec): Promise<Float32Array> {
  const { models, unet, timesteps } = input;
  const { shape, channels, h, w, guided, batch } = loopShape(input);
  const initial = input.latents.data;
  const stepSession = await models.runtimeSession(stepGraphKey(spec), () => buildStepGraph(spec), 'device');

  // Lives for the whole loop: constants and the state carried from step to step.
  const scope = new TensorScope(models.ort);
  try {
    const unetConstants: Record<string, Tensor> = {};
    for (const [name, host] of Object.entries(input.unetConstants)) {
      unetConstants[name] = await uploadResident(models, scope, host);
    }
    const stepConstants: Record<string, Tensor> = {};
    for (const [name, host] of Object.entries(inpaintConstants(input))) {
      stepConstants[name] = await uploadResident(models, scope, host);
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
        const unetOut = await stepScope.run(unet.session, {
          ...unetConstants,
          sample: modelInput,
          timestep: stepScope.float32(timestepsOf(batch, t), [batch]),
        });
        const feeds: Record<string, Tensor> = {
          ...stepConstants,
          ...stepInputs(input, spec, i, t, stepScope),
          [STEP_GRAPH.noisePred]: required(unetOut, 'noise_pred'),
          [STEP_GRAPH.latents]: latents,
        };
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

/**
 * The loop with a graph-captured UNet (captured-loop.ts): every tensor the UNet and the step graph
 * touch is one of the loop's fixed buffers. Before the first step, copy sessions fill the UNet's
 * inputs, the first latents and the inpainting constants; at step i the step graph of parity i % 2
 * reads latents (and DPM-Solver's previous x0) from buffer i % 2, writes them to the other, and
 * writes the UNet's next sample and timestep into its input buffers. Every write is an ORT run, so
 * it is ordered with the UNet's replays on the GPU queue.
 */
async function denoiseCaptured(
  input: ResidentDenoiseInput,
  loop: CapturedLoop,
  spec: StepGraphSpec,
): Promise<Float32Array> {
  const { models, timesteps } = input;
  const { shape, channels, h, w, guided, batch } = loopShape(input);
  const initial = input.latents.data;
  const fill = async (name: string, host: HostTensor): Promise<Tensor> => {
    const target = await loop.buffer(name, host.dims);
    const session = await loop.companion(`fill:${name}`, () => buildCopyGraph(host.dims.length));
    const scope = new TensorScope(models.ort);
    try {
      await scope.run(
        session,
        { [COPY_GRAPH.input]: scope.float32(host.data, host.dims) },
        { [COPY_GRAPH.output]: target },
      );
    } finally {
      scope.disposeAll();
    }
    return target;
  };

  for (const [name, host] of Object.entries(input.unetConstants)) await fill(`unet:${name}`, host);
  const sample = await fill('unet:sample', {
    data: guided ? doubled(initial) : initial,
    dims: [batch, channels, h, w],
  });
  const timestep = await fill('unet:timestep', {
    data: timestepsOf(batch, timesteps[0] ?? 0),
    dims: [batch],
  });
  const stepConstants: Record<string, Tensor> = {};
  for (const [name, host] of Object.entries(inpaintConstants(input))) {
    stepConstants[name] = await fill(`step:${name}`, host);
  }
  const latents = [
    await fill('latents:0', { data: initial, dims: shape }),
    await loop.buffer('latents:1', shape),
  ];
  const previousX0 =
    spec.scheduler === 'dpmpp-2m'
      ? [
          await fill('x0:0', { data: new Float32Array(initial.length), dims: shape }),
          await loop.buffer('x0:1', shape),
        ]
      : null;
  const stepSession = (parity: number) =>
    loop.companion(`${stepGraphKey(spec)}:${parity}`, () => buildStepGraph(spec));

  let current = 0;
  for (const [i, t] of timesteps.entries()) {
    input.checkAborted();
    const next = 1 - current;
    const stepScope = new TensorScope(models.ort);
    try {
      const unetOut = await stepScope.run(loop.session, loop.inputs);
      const feeds: Record<string, Tensor> = {
        ...stepConstants,
        ...stepInputs(input, spec, i, t, stepScope),
        [STEP_GRAPH.noisePred]: required(unetOut, 'noise_pred'),
        [STEP_GRAPH.latents]: latents[current] as Tensor,
      };
      const into: Record<string, Tensor> = {
        [STEP_GRAPH.latentsNext]: latents[next] as Tensor,
        [STEP_GRAPH.modelInputNext]: sample,
        [STEP_GRAPH.timestepNext]: timestep,
      };
      if (previousX0) {
        feeds[STEP_GRAPH.previousX0] = previousX0[current] as Tensor;
        into[STEP_GRAPH.x0Next] = previousX0[next] as Tensor;
      }
      await stepScope.run(await stepSession(current), feeds, into);
    } finally {
      stepScope.disposeAll();
    }
    current = next;
    input.onStep(i, input.readEveryStep ? await downloadResident(models, latents[current] as Tensor) : null);
  }
  return await downloadResident(models, latents[current] as Tensor);
}

/** `[x; x]`: the CFG batch of the first step. */
function doubled(latents: Float32Array): Float32Array {
  const out = new Float32Array(2 * latents.length);
  out.set(latents);
  out.set(latents, latents.length);
  return out;
}
