/**
 * The decoder's denoising loop — one loop, in three forms:
 *
 * - host (`host-loop.ts`): latents in JavaScript arrays, guidance and the scheduler step in
 *   JavaScript; the reference every other form is checked against ('cpu' residency).
 * - resident (`resident-loop.ts`): UNet → step graph → UNet in ORT tensors, so on WebGPU the
 *   latents never leave the GPU ('gpu' residency).
 * - captured (`captured-loop.ts`): the resident loop on a graph-captured UNet, on fixed GPU
 *   buffers that the step graph refills (onnxruntime-web WebGPU).
 *
 * Each form does one step at a time; this file owns the loop itself: cancellation before each
 * step, the per-step callback, the final readback and inpainting's final blend.
 */
import type { GraphComponentId } from '../../../models/contract';
import type { ModelSet } from '../model-set';
import type { TorchGenerator } from '../rng';
import type { DecoderScheduler } from '../schedulers';
import { openCapturedLoop } from './captured-loop';
import { openHostLoop } from './host-loop';
import { blendKept, type InpaintState } from './inpaint-blend';
import { openResidentLoop } from './resident-loop';
import { stepGraphSpecFor } from './step-graphs';

export interface HostTensor {
  readonly data: Float32Array;
  readonly dims: readonly number[];
}

export interface DenoiseInput {
  readonly models: ModelSet;
  /** The UNet graph and the shapes of its inputs (what a captured session is recorded for). */
  readonly unet: GraphComponentId;
  readonly unetDims: Readonly<Record<string, readonly number[]>>;
  readonly scheduler: DecoderScheduler;
  readonly generator: TorchGenerator;
  readonly timesteps: readonly number[];
  /** Initial latents `[N, C, h, w]`, already noised / scaled. */
  readonly latents: HostTensor;
  /** `settings.guidance`: > 1 runs classifier-free guidance with a doubled UNet batch. */
  readonly guidance: number;
  /** The UNet's constant inputs (`image_embeds`, `hint`, `masked_image_latents`, `mask`), CFG-batched. */
  readonly unetConstants: Readonly<Record<string, HostTensor>>;
  readonly inpaint: InpaintState | null;
  /** Checked before each step; throws to stop. */
  readonly checkAborted: () => void;
  /** Read the latents back after every step (previews, traces): one readback per step on the GPU. */
  readonly readEveryStep: boolean;
  /** After each step; `latents` is null unless `readEveryStep`. */
  readonly onStep: (index: number, latents: Float32Array | null) => void;
}

/** One form of the loop, opened for one run. */
export interface LoopForm {
  /** Step `i` at timestep `t`: UNet, guidance, scheduler step, inpainting's blend. */
  step(i: number, t: number): Promise<void>;
  /** The current latents on the host (a readback where they live on the device). */
  read(): Promise<Float32Array>;
  /** Frees what the run made (not the sessions: the model set owns them). */
  close(): void;
}

/** Runs the loop; returns the final latents `[N, C, h, w]`, inpainting's kept region blended in. */
export async function denoise(input: DenoiseInput): Promise<Float32Array> {
  const form = await openForm(input);
  let latents: Float32Array;
  try {
    for (const [i, t] of input.timesteps.entries()) {
      input.checkAborted();
      await form.step(i, t);
      input.onStep(i, input.readEveryStep ? await form.read() : null);
    }
    latents = await form.read();
  } finally {
    form.close();
  }
  const { inpaint, scheduler } = input;
  return inpaint ? blendKept(scheduler, inpaint, latents, undefined, input.latents.dims) : latents;
}

async function openForm(input: DenoiseInput): Promise<LoopForm> {
  const { models } = input;
  if (models.residency !== 'gpu') return openHostLoop(input, await models.session(input.unet));
  const unet = await models.loopSession(input.unet, input.unetDims);
  const channels = input.latents.dims[1] ?? 4;
  const captured = unet.captured;
  const spec = stepGraphSpecFor(
    input.scheduler,
    input.guidance > 1,
    input.inpaint !== null,
    channels,
    !!captured,
  );
  return captured ? openCapturedLoop(input, captured, spec) : openResidentLoop(input, unet.session, spec);
}
