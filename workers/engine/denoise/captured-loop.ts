/**
 * The captured form of the denoising loop, and what it runs on. A graph-captured UNet loop owns (ModelSet.loopSession): the captured session, the GPU buffers
 * it and its companion graphs read and write, and those companion sessions (the step graphs and
 * the copies that fill the buffers).
 *
 * Why companions of their own: onnxruntime-web 1.30 registers each GPU-buffer input and output of
 * a session per (session, index), and refuses a registration that changes the buffer at an index
 * while the session run last was a captured one ("Registering a different external buffer under
 * graph capture mode is not supported yet"; it checks the last-run session, not the one being
 * registered). The step graph runs right after the UNet, so every buffer it touches must be the one
 * it had the step before: its latents alternate between two buffers, hence two step sessions
 * (even and odd steps), and each buffer is filled by a copy session that only ever writes it.
 */
import type { DeviceTensor, DeviceTensors, InferenceSession, Tensor } from '../ort';
import { releaseSession, requiredOutput, TensorScope } from '../ort';
import {
  doubled,
  downloadResident,
  inpaintConstants,
  loopShape,
  stepInputs,
  timestepsOf,
} from './device-step';
import type { DenoiseInput, HostTensor, LoopForm } from './loop';
import {
  buildCopyGraph,
  buildStepGraph,
  COPY_GRAPH,
  STEP_GRAPH,
  type StepGraphSpec,
  stepGraphKey,
} from './step-graphs';

export type CompanionFactory = (build: () => Uint8Array) => Promise<InferenceSession>;

export class CapturedLoop {
  private readonly buffers = new Map<string, DeviceTensor>();
  private readonly companions = new Map<string, Promise<InferenceSession>>();
  private released = false;

  constructor(
    /** The input shapes it was captured for. */
    readonly key: string,
    readonly session: InferenceSession,
    private readonly deviceTensors: DeviceTensors,
    private readonly createCompanion: CompanionFactory,
  ) {}

  /** The UNet's inputs: its fixed buffers, made by `bindInputs` before the first run. */
  readonly inputs: Record<string, Tensor> = {};

  /** Allocates one fixed buffer per UNet input, `inputDims` giving each one's shape. */
  async bindInputs(inputDims: Readonly<Record<string, readonly number[]>>): Promise<void> {
    for (const name of this.session.inputNames) {
      const dims = inputDims[name];
      if (!dims) throw new Error(`No shape given for the UNet input "${name}".`);
      this.inputs[name] = await this.buffer(`unet:${name}`, dims);
    }
  }

  /** The loop's buffer named `name` (allocated on first use with `dims`, then the same one). */
  async buffer(name: string, dims: readonly number[]): Promise<Tensor> {
    let made = this.buffers.get(name);
    if (!made) {
      made = await this.deviceTensors.float32(dims);
      this.buffers.set(name, made);
    }
    if (made.tensor.dims.join() !== dims.join()) {
      throw new Error(
        `The loop buffer ${name} is [${made.tensor.dims.join(', ')}], not [${dims.join(', ')}].`,
      );
    }
    return made.tensor;
  }

  /** The companion session named `key`, built by `build` on first use; released with the loop. */
  companion(key: string, build: () => Uint8Array): Promise<InferenceSession> {
    let pending = this.companions.get(key);
    if (!pending) {
      pending = this.createCompanion(build);
      this.companions.set(key, pending);
      pending.catch(() => this.companions.delete(key));
    }
    return pending;
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    const companions = [...this.companions.values()];
    this.companions.clear();
    await Promise.all(
      companions.map(async (pending) => {
        const session = await pending.catch(() => null);
        if (session) await releaseSession(session);
      }),
    );
    await releaseSession(this.session);
    // After the sessions: their recorded commands and bindings reference these buffers.
    for (const buffer of this.buffers.values()) buffer.destroy();
    this.buffers.clear();
  }
}

/**
 * The loop on a graph-captured UNet: every tensor the UNet and the step graph touch is one of the
 * loop's fixed buffers. Before the first step, copy sessions fill the UNet's inputs, the first
 * latents and the inpainting constants; at step i the step graph of parity i % 2 reads latents (and
 * DPM-Solver's previous x0) from buffer i % 2, writes them to the other, and writes the UNet's next
 * sample and timestep into its input buffers. Every write is an ORT run, so it is ordered with the
 * UNet's replays on the GPU queue.
 */
export async function openCapturedLoop(
  input: DenoiseInput,
  loop: CapturedLoop,
  spec: StepGraphSpec,
): Promise<LoopForm> {
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
  return {
    async step(i, t) {
      const next = 1 - current;
      const stepScope = new TensorScope(models.ort);
      try {
        const unetOut = await stepScope.run(loop.session, loop.inputs);
        const feeds: Record<string, Tensor> = {
          ...stepConstants,
          ...stepInputs(input, spec, i, t, stepScope),
          [STEP_GRAPH.noisePred]: requiredOutput(unetOut, 'noise_pred'),
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
    },
    read: () => downloadResident(models, latents[current] as Tensor),
    // The buffers and companions live as long as the captured session (CapturedLoop.release).
    close() {},
  };
}
