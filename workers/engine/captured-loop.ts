/**
 * What a graph-captured UNet loop owns (ModelSet.loopSession): the captured session, the GPU buffers
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
import type { DeviceTensor, DeviceTensors, InferenceSession, Tensor } from './ort';
import { releaseSession } from './ort';

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
