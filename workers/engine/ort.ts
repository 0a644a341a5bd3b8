/**
 * The engine's seam to onnxruntime. The engine never imports onnxruntime-web or -node: the caller
 * hands it either module (both satisfy OrtRuntime), so the same pipelines run in the browser worker,
 * in Node tests, in the CLI and in benchmarks.
 */
import type { InferenceSession, Tensor } from 'onnxruntime-common';
import { KandinskyError } from '../errors';

export type { InferenceSession, Tensor };

export interface OrtRuntime {
  readonly InferenceSession: {
    /** From the bytes of an ONNX graph, or (onnxruntime-node) the path of one on the file system. */
    create(model: Uint8Array | string, options?: InferenceSession.SessionOptions): Promise<InferenceSession>;
  };
  readonly Tensor: {
    new (type: 'float32', data: Float32Array, dims: readonly number[]): Tensor;
    new (type: 'int64', data: BigInt64Array, dims: readonly number[]): Tensor;
    new (type: 'int32', data: Int32Array, dims: readonly number[]): Tensor;
    new (type: 'bool', data: Uint8Array, dims: readonly number[]): Tensor;
  };
}

/** Counts of ORT objects the engine created and has not yet released; tests assert they return to 0. */
export interface LiveCounts {
  readonly tensors: number;
  readonly sessions: number;
  /** GPU buffers the engine allocated itself (DeviceTensors): a captured UNet's fixed inputs. */
  readonly deviceBuffers: number;
}

const live = { tensors: 0, sessions: 0, deviceBuffers: 0 };

export function liveOrtObjects(): LiveCounts {
  return { ...live };
}

let gpuReadbackCount = 0;

/**
 * How many GPU-located engine tensors have been read back to the CPU so far (a running total: take
 * differences). Each one stalls the pipeline on the GPU queue, which is why denoising avoids them.
 */
export function gpuReadbacks(): number {
  return gpuReadbackCount;
}

/** Records one GPU → CPU read; called by whoever performs it. */
export function countGpuReadback(): void {
  gpuReadbackCount++;
}

/** A float32 tensor in a GPU buffer the engine allocated itself; `destroy` frees the buffer once. */
export interface DeviceTensor {
  readonly tensor: Tensor;
  destroy(): void;
}

/**
 * Allocates GPU buffers as ORT tensors (onnxruntime-web's WebGPU provider; nothing in Node). A
 * graph-captured session replays the GPU commands recorded on its first run against the buffers
 * bound then, so its inputs must be buffers that outlive every run and that the engine refills in
 * place: these. Call only after a WebGPU session exists (onnxruntime creates its device then).
 */
export interface DeviceTensors {
  float32(dims: readonly number[]): Promise<DeviceTensor>;
  /**
   * Resolves once the device has done all the work queued on it so far (WebGPU:
   * `queue.onSubmittedWorkDone`). Creating a session queues the upload of every weight and returns
   * before the device has taken them; until it has, the bytes wait in upload staging memory.
   */
  queueIdle?(): Promise<void>;
}

/** Wraps a factory's buffers so that live counts include them (tests assert they return to 0). */
export function countedDeviceTensors(factory: DeviceTensors): DeviceTensors {
  return {
    async float32(dims) {
      const made = await factory.float32(dims);
      live.deviceBuffers++;
      let destroyed = false;
      return {
        tensor: made.tensor,
        destroy() {
          if (destroyed) return;
          destroyed = true;
          live.deviceBuffers--;
          made.destroy();
        },
      };
    },
    ...(factory.queueIdle ? { queueIdle: () => factory.queueIdle?.() ?? Promise.resolve() } : {}),
  };
}

/** Marks a session as created by the engine; release it with `releaseSession`. */
export function trackSession(session: InferenceSession): InferenceSession {
  live.sessions++;
  return session;
}

export async function releaseSession(session: InferenceSession): Promise<void> {
  live.sessions--;
  await session.release();
}

/**
 * Owns every tensor made within one unit of work (a denoising step, a stage) and disposes them
 * together, so an early return, an exception or a cancel can't leak GPU or wasm memory.
 */
export class TensorScope {
  private readonly owned = new Set<Tensor>();

  constructor(private readonly ort: OrtRuntime) {}

  float32(data: Float32Array, dims: readonly number[]): Tensor {
    return this.adopt(new this.ort.Tensor('float32', data, dims));
  }

  int64(data: BigInt64Array, dims: readonly number[]): Tensor {
    return this.adopt(new this.ort.Tensor('int64', data, dims));
  }

  bool(data: Uint8Array, dims: readonly number[]): Tensor {
    return this.adopt(new this.ort.Tensor('bool', data, dims));
  }

  /** Takes ownership of a tensor made elsewhere (a session output). */
  adopt(tensor: Tensor): Tensor {
    if (!this.owned.has(tensor)) {
      this.owned.add(tensor);
      live.tensors++;
    }
    return tensor;
  }

  /**
   * Runs a session and adopts the outputs it allocated. `into`: outputs to write into tensors the
   * caller owns (pre-allocated; they stay the caller's); the session's other outputs are then
   * still computed and returned.
   */
  async run(
    session: InferenceSession,
    feeds: Record<string, Tensor>,
    into?: Readonly<Record<string, Tensor>>,
  ): Promise<Record<string, Tensor>> {
    let outputs: Record<string, Tensor>;
    if (into) {
      const fetches: Record<string, Tensor | null> = {};
      for (const name of session.outputNames) fetches[name] = into[name] ?? null;
      outputs = (await session.run(feeds, fetches)) as Record<string, Tensor>;
    } else {
      outputs = await session.run(feeds);
    }
    const preallocated = new Set(into ? Object.values(into) : []);
    for (const tensor of Object.values(outputs)) if (!preallocated.has(tensor)) this.adopt(tensor);
    return outputs;
  }

  /** Hands a tensor over to another scope (e.g. latents that outlive a step). */
  transfer(tensor: Tensor, to: TensorScope): Tensor {
    if (this.owned.delete(tensor)) {
      live.tensors--;
    }
    return to.adopt(tensor);
  }

  /** Disposes one tensor early. */
  dispose(tensor: Tensor): void {
    if (this.owned.delete(tensor)) {
      live.tensors--;
      tensor.dispose();
    }
  }

  disposeAll(): void {
    for (const tensor of this.owned) tensor.dispose();
    live.tensors -= this.owned.size;
    this.owned.clear();
  }
}

/** Reads a float32 tensor's values to the CPU (downloads it when it lives on the GPU). */
export async function readFloat32(tensor: Tensor): Promise<Float32Array> {
  if (tensor.type !== 'float32') throw new Error(`Expected a float32 tensor, got ${tensor.type}.`);
  return (await tensor.getData()) as Float32Array;
}

/** The output `name` of a session run; a graph that lacks it breaks the contract (INFERENCE_FAILED). */
export function requiredOutput(outputs: Readonly<Record<string, Tensor>>, name: string): Tensor {
  const tensor = outputs[name];
  if (!tensor) throw new KandinskyError('INFERENCE_FAILED', `The graph returned no "${name}" output.`);
  return tensor;
}
