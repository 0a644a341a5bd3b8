/**
 * A loaded model set: the manifest plus lazily created ONNX sessions, constants and the tokenizer.
 * It never fetches: bytes come from a `ModelFiles` reader (the IndexedDB store in the app, the file
 * system in Node), so every byte it sees has already been verified by whoever supplies it.
 */
import {
  CONTRACT_VERSION,
  GRAPH_CONTRACTS,
  type GraphComponentId,
  type TensorComponentId,
} from '../../models/contract';
import { checkFilePath, type Manifest, type ManifestComponent } from '../../models/manifest';
import { CapturedLoop } from './denoise/captured-loop';
import { externalDataLocations, OnnxFormatError } from './onnx-external-data';
import {
  type DeviceTensors,
  type InferenceSession,
  type OrtRuntime,
  releaseSession,
  trackSession,
} from './ort';
import { ClipTokenizer } from './tokenizer';

export interface ModelFiles {
  /** The bytes of a file named in the manifest (path relative to the set). */
  read(path: string): Promise<Uint8Array>;
  /**
   * Where a file named in the manifest lies on the local file system, verified, when it does
   * (Node: the CLI, tests, benchmarks; never in a browser). With every file of a component at
   * `<folder>/<manifest path>`, onnxruntime opens the graph itself and maps its external data from
   * the files: the weights are never copied into JS memory, so loading doesn't hold them twice.
   */
  localPath?(path: string): Promise<string>;
}

export class ModelSetError extends Error {
  override readonly name = 'ModelSetError';
  constructor(
    readonly code: 'MODEL_COMPONENT_MISSING' | 'MODEL_LOAD_FAILED',
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/**
 * Where the decoder's latents live between denoising steps. 'gpu': in ORT tensors chained from UNet
 * to step graph to UNet (on the WebGPU provider those are GPU buffers, read back only for previews,
 * traces and the final decode); on the CPU provider the same loop runs with CPU tensors, which is
 * how the tests check its numbers. 'cpu': each UNet output is read into a Float32Array and guidance
 * and the scheduler step run in JavaScript — the reference path.
 */
export type Residency = 'gpu' | 'cpu';

export interface ModelSetOptions {
  /** Passed to every InferenceSession.create (execution providers, graph options...). */
  readonly sessionOptions?: InferenceSession.SessionOptions;
  /** Default: 'gpu' when the execution providers include 'webgpu', else 'cpu'. */
  readonly residency?: Residency;
  /**
   * GPU buffers the engine may allocate (onnxruntime-web). With them, 'gpu' residency on WebGPU
   * graph-captures the UNet of the denoising loop (`loopSession`); without them (Node, tests) the
   * UNet runs as a plain session. Their `queueIdle`, when given, is awaited after each new session,
   * so that its weights are on the device before the next component loads.
   */
  readonly deviceTensors?: DeviceTensors;
}

/**
 * The UNet session of one denoising loop. `captured`: for a graph-captured session, the loop's
 * fixed buffers and companion sessions (denoise/captured-loop.ts); fill its inputs in place and run it with
 * exactly `captured.inputs` (onnxruntime-web binds a captured session's inputs on its first run and
 * replays its recorded commands against them ever after). Null for a plain session.
 */
export interface LoopSession {
  readonly session: InferenceSession;
  readonly captured: CapturedLoop | null;
}

const UNET_IDS: ReadonlySet<GraphComponentId> = new Set(['unet', 'unet_inpaint', 'unet_depth']);

function usesWebGpu(options: InferenceSession.SessionOptions | undefined): boolean {
  return (options?.executionProviders ?? []).some(
    (provider) => (typeof provider === 'string' ? provider : provider.name) === 'webgpu',
  );
}

/**
 * Whether a failure to make a graph-captured session is onnxruntime's (it refused the options or
 * the graph, or the loop's buffers could not be bound), not the model files': onnxruntime's own
 * errors carry no `code`, and createSession wraps them as MODEL_LOAD_FAILED.
 */
function capturedRefusal(error: unknown): boolean {
  if (error instanceof ModelSetError) return error.code === 'MODEL_LOAD_FAILED';
  // (A DOMException's numeric `code` is not one of ours.)
  return !(
    typeof error === 'object' &&
    error !== null &&
    typeof (error as { code?: unknown }).code === 'string'
  );
}

export class ModelSet {
  private readonly sessions = new Map<GraphComponentId, Promise<InferenceSession>>();
  private readonly tensors = new Map<TensorComponentId, Promise<Float32Array>>();
  /** Graphs built at run time (step and copy graphs), by cache key. */
  private readonly runtimeSessions = new Map<string, Promise<InferenceSession>>();
  /** Graph-captured UNets, one per component, for the input shapes of their last loop. */
  private readonly captured = new Map<GraphComponentId, Promise<CapturedLoop>>();
  /** Why a component could not be graph-captured (it then runs as a plain session). */
  private readonly captureRefusals = new Map<GraphComponentId, string>();
  private tokenizerPromise: Promise<ClipTokenizer> | null = null;
  readonly residency: Residency;
  /**
   * Whether UNet and step-graph outputs are requested as GPU buffers (`preferredOutputLocation:
   * 'gpu-buffer'`, a session option): 'gpu' residency on the WebGPU provider.
   */
  readonly outputsOnGpu: boolean;

  constructor(
    readonly ort: OrtRuntime,
    readonly manifest: Manifest,
    private readonly files: ModelFiles,
    private readonly options: ModelSetOptions = {},
  ) {
    const webGpu = usesWebGpu(options.sessionOptions);
    this.residency = options.residency ?? (webGpu ? 'gpu' : 'cpu');
    this.outputsOnGpu = webGpu && this.residency === 'gpu';
  }

  /** Whether denoising loops graph-capture their UNet (WebGPU, 'gpu' residency, device buffers). */
  get graphCapture(): boolean {
    return this.outputsOnGpu && this.options.deviceTensors !== undefined;
  }

  has(id: GraphComponentId | TensorComponentId): boolean {
    return this.manifest.components[id] !== undefined;
  }

  private component(id: string): ManifestComponent {
    const component = this.manifest.components[id as keyof Manifest['components']];
    if (!component) {
      throw new ModelSetError(
        'MODEL_COMPONENT_MISSING',
        `The model set "${this.manifest.modelId}" has no ${id} component; download it in the model manager.`,
      );
    }
    return component;
  }

  tokenizer(): Promise<ClipTokenizer> {
    this.tokenizerPromise ??= (async () => {
      const files = this.component('tokenizer').files;
      const read = async (name: string) => {
        const file = files.find((f) => f.path.split('/').pop() === name);
        if (!file) throw new ModelSetError('MODEL_LOAD_FAILED', `The tokenizer has no ${name}.`);
        return { path: file.path, bytes: await this.files.read(file.path) };
      };
      // A damaged file is a coded error naming it, not a bare SyntaxError.
      return ClipTokenizer.fromFiles(await read('tokenizer.json'), await read('tokenizer_config.json'));
    })();
    return this.tokenizerPromise;
  }

  /** A float32 constant such as the prior's normalisation statistics. */
  tensor(id: TensorComponentId): Promise<Float32Array> {
    let pending = this.tensors.get(id);
    if (!pending) {
      const component = this.component(id);
      const file = component.files[0];
      if (!file) throw new ModelSetError('MODEL_LOAD_FAILED', `${id} lists no file.`);
      pending = this.files.read(file.path).then((bytes) => {
        // Copy into an aligned buffer: a Uint8Array view into a larger buffer may be misaligned.
        const copy = bytes.slice();
        return new Float32Array(copy.buffer, 0, copy.byteLength / 4);
      });
      this.tensors.set(id, pending);
    }
    return pending;
  }

  /**
   * The session of a graph component, created on first use and then reused. `onCreate` is called
   * when its files are read and onnxruntime starts creating it (not when it is reused): progress.
   */
  session(id: GraphComponentId, onCreate?: () => void): Promise<InferenceSession> {
    let pending = this.sessions.get(id);
    if (!pending) {
      pending = this.createSession(id, {}, onCreate);
      this.sessions.set(id, pending);
      // A failed creation must not poison the cache: the next call tries again.
      pending.catch(() => this.sessions.delete(id));
    }
    return pending;
  }

  /**
   * The UNet for a denoising loop whose inputs have `inputDims` (every graph input's shape). Where
   * `graphCapture` holds, a graph-captured session for exactly these shapes: created on the first
   * loop, reused while the shapes stay (same size, batch and guidance), recreated (weights loaded
   * again) when they change, because a captured session replays fixed shapes and buffers; only one
   * session of a component is held, so GPU memory holds its weights once. Otherwise, and where
   * onnxruntime refuses to capture the graph, the plain session of `session(id)`.
   */
  async loopSession(
    id: GraphComponentId,
    inputDims: Readonly<Record<string, readonly number[]>>,
    onCreate?: () => void,
  ): Promise<LoopSession> {
    const deviceTensors = this.options.deviceTensors;
    if (!this.graphCapture || !deviceTensors || this.captureRefusals.has(id)) {
      return { session: await this.session(id, onCreate), captured: null };
    }
    const key = JSON.stringify(Object.entries(inputDims).sort(([a], [b]) => a.localeCompare(b)));
    const cached = await this.captured.get(id)?.catch(() => null);
    if (cached?.key === key) return { session: cached.session, captured: cached };
    if (this.captured.has(id)) await this.releaseCaptured(id);
    // The plain session of the same weights would double the GPU memory the UNet takes.
    await this.releasePlain(id);
    const pending = this.createCaptured(id, key, inputDims, deviceTensors, onCreate);
    this.captured.set(id, pending);
    pending.catch(() => this.captured.delete(id));
    try {
      const captured = await pending;
      return { session: captured.session, captured };
    } catch (error) {
      // Only onnxruntime refusing the capture (a graph with control flow or a copy between
      // devices) falls back to a plain session. A coded failure from below (a stored file found
      // damaged and removed, storage lost, a missing component) fails the loop as it is: reading
      // the files again for a plain session would only turn it into another error (NOT_CACHED).
      if (!capturedRefusal(error)) throw error;
      this.captureRefusals.set(id, String(error));
      return { session: await this.session(id, onCreate), captured: null };
    }
  }

  /** The components that could not be graph-captured, with onnxruntime's reason. */
  captureRefused(): ReadonlyMap<GraphComponentId, string> {
    return this.captureRefusals;
  }

  private async createCaptured(
    id: GraphComponentId,
    key: string,
    inputDims: Readonly<Record<string, readonly number[]>>,
    deviceTensors: DeviceTensors,
    onCreate: (() => void) | undefined,
  ): Promise<CapturedLoop> {
    const session = await this.createSession(id, { enableGraphCapture: true }, onCreate);
    const loop = new CapturedLoop(key, session, deviceTensors, (build) =>
      this.createRuntimeSession(build, 'device'),
    );
    try {
      await loop.bindInputs(inputDims);
    } catch (error) {
      await loop.release();
      throw error;
    }
    return loop;
  }

  private async releaseCaptured(id: GraphComponentId): Promise<void> {
    const pending = this.captured.get(id);
    if (!pending) return;
    this.captured.delete(id);
    await (await pending.catch(() => null))?.release();
  }

  private async createSession(
    id: GraphComponentId,
    extra: InferenceSession.SessionOptions = {},
    onCreate?: () => void,
  ): Promise<InferenceSession> {
    const session = await this.openSession(id, extra, onCreate);
    // The session holds the weights now, but the device may not have taken them yet: wait, so that
    // their upload staging is freed before anything else loads (the next component's bytes would
    // otherwise pile up on top). The bytes read for it are unreferenced by now.
    const queueIdle = this.options.deviceTensors?.queueIdle;
    if (queueIdle) {
      try {
        await queueIdle();
      } catch (error) {
        await releaseSession(session);
        throw new ModelSetError('MODEL_LOAD_FAILED', `Could not load ${id}: ${String(error)}`, {
          cause: error,
        });
      }
    }
    return session;
  }

  /** Reads one component's files and creates its session (checked against the contract, tracked). */
  private async openSession(
    id: GraphComponentId,
    extra: InferenceSession.SessionOptions,
    onCreate: (() => void) | undefined,
  ): Promise<InferenceSession> {
    const [graph, ...shards] = this.component(id).files;
    if (!graph) throw new ModelSetError('MODEL_LOAD_FAILED', `${id} lists no graph file.`);
    const graphFile = await this.localGraph(graph.path, shards);
    const graphBytes = await this.checkedGraph(id, graph.path, shards, graphFile);
    const externalData = graphFile
      ? []
      : await Promise.all(
          shards.map(async (shard) => ({ path: shard.path, data: await this.files.read(shard.path) })),
        );
    let session: InferenceSession;
    try {
      const options = {
        ...this.options.sessionOptions,
        ...(externalData.length > 0 ? { externalData } : {}),
        // The UNet's output goes straight into the step graph: keep it where it was computed.
        ...(this.outputsOnGpu && UNET_IDS.has(id) ? { preferredOutputLocation: 'gpu-buffer' as const } : {}),
        ...extra,
      };
      onCreate?.();
      session = await this.ort.InferenceSession.create(graphBytes, options);
    } catch (error) {
      throw new ModelSetError('MODEL_LOAD_FAILED', `Could not load ${id}: ${String(error)}`, {
        cause: error,
      });
    }
    const mismatch = contractMismatch(id, session);
    if (mismatch) {
      await session.release();
      throw new ModelSetError(
        'MODEL_LOAD_FAILED',
        `${id} of "${this.manifest.modelId}" does not match model-set contract ${CONTRACT_VERSION}: ${mismatch}. Re-export the set with this version's export tool.`,
      );
    }
    return trackSession(session);
  }

  /**
   * What onnxruntime opens for a graph (its local path, else its bytes), once checkExternalData
   * passed. The bytes are read even where onnxruntime opens the file itself, to see which files it
   * would open (a graph with external data is small); they are dropped when this returns.
   */
  private async checkedGraph(
    id: GraphComponentId,
    graphPath: string,
    shards: readonly { path: string }[],
    graphFile: string | undefined,
  ): Promise<string | Uint8Array> {
    const bytes = await this.files.read(graphPath);
    this.checkExternalData(id, graphPath, shards, bytes);
    return graphFile ?? bytes;
  }

  /**
   * Refuses a graph that names external data its component does not list: onnxruntime would open
   * that file (by path in Node, from the mounted files in a browser) and nothing would have verified
   * it. A location is relative to the graph's folder, as onnxruntime resolves it.
   */
  private checkExternalData(
    id: GraphComponentId,
    graphPath: string,
    shards: readonly { path: string }[],
    graphBytes: Uint8Array,
  ): void {
    let locations: string[];
    try {
      locations = externalDataLocations(graphBytes);
    } catch (error) {
      if (!(error instanceof OnnxFormatError)) throw error;
      throw new ModelSetError(
        'MODEL_LOAD_FAILED',
        `Could not load ${id}: ${graphPath} is not a well-formed ONNX model (${error.message}). Download the set again.`,
        { cause: error },
      );
    }
    const folder = graphPath.includes('/') ? graphPath.slice(0, graphPath.lastIndexOf('/') + 1) : '';
    const listed = new Set(shards.map((shard) => shard.path));
    for (const location of locations) {
      if (checkFilePath(location) === null && listed.has(folder + location)) continue;
      throw new ModelSetError(
        'MODEL_LOAD_FAILED',
        `Could not load ${id}: ${graphPath} reads external data from ${JSON.stringify(location.slice(0, 200))}, which the manifest does not list for ${id}, so nothing has verified it. The model set is damaged or unsafe: get it again from a source you trust.`,
      );
    }
  }

  /**
   * The graph's local path when the reader has one for it and for every shard, each beside it as
   * the graph names them (`<folder>/<manifest path>`); otherwise undefined (bytes are read instead).
   */
  private async localGraph(
    graphPath: string,
    shards: readonly { path: string }[],
  ): Promise<string | undefined> {
    if (!this.files.localPath) return undefined;
    const graphFile = await this.files.localPath(graphPath);
    if (!graphFile.endsWith(graphPath)) return undefined;
    const folder = graphFile.slice(0, graphFile.length - graphPath.length);
    for (const shard of shards) {
      if ((await this.files.localPath(shard.path)) !== folder + shard.path) return undefined;
    }
    return graphFile;
  }

  /**
   * A session for a graph the engine builds itself (`build` runs on first use; `key` names the
   * graph), on the set's execution provider. `outputs: 'device'` keeps its outputs where they were
   * computed (GPU buffers on WebGPU); 'cpu' returns them in CPU memory (a download).
   */
  runtimeSession(key: string, build: () => Uint8Array, outputs: 'device' | 'cpu'): Promise<InferenceSession> {
    const cacheKey = `${key}@${outputs}`;
    let pending = this.runtimeSessions.get(cacheKey);
    if (!pending) {
      pending = this.createRuntimeSession(build, outputs).catch((error: unknown) => {
        throw new ModelSetError('MODEL_LOAD_FAILED', `Could not create the ${key} graph: ${String(error)}`, {
          cause: error,
        });
      });
      this.runtimeSessions.set(cacheKey, pending);
      pending.catch(() => this.runtimeSessions.delete(cacheKey));
    }
    return pending;
  }

  private async createRuntimeSession(
    build: () => Uint8Array,
    outputs: 'device' | 'cpu',
  ): Promise<InferenceSession> {
    const session = await this.ort.InferenceSession.create(build(), {
      ...this.options.sessionOptions,
      // These graphs are a few element-wise ops on the latents, run between two UNet calls. With
      // worker threads of their own (onnxruntime-node's CPU provider), those threads spin after
      // each run and take cores from the next UNet call. The web backends ignore this option.
      intraOpNumThreads: 1,
      ...(outputs === 'device' && this.outputsOnGpu
        ? { preferredOutputLocation: 'gpu-buffer' as const }
        : {}),
    });
    return trackSession(session);
  }

  /** Releases one component's session (low-memory mode frees each stage before the next). */
  async release(id: GraphComponentId): Promise<void> {
    await this.releaseCaptured(id);
    await this.releasePlain(id);
  }

  private async releasePlain(id: GraphComponentId): Promise<void> {
    const pending = this.sessions.get(id);
    if (!pending) return;
    this.sessions.delete(id);
    const session = await pending.catch(() => null);
    if (session) await releaseSession(session);
  }

  async releaseAll(): Promise<void> {
    const runtime = [...this.runtimeSessions.values()];
    this.runtimeSessions.clear();
    const ids = new Set([...this.sessions.keys(), ...this.captured.keys()]);
    await Promise.all([
      ...[...ids].map((id) => this.release(id)),
      ...runtime.map(async (pending) => {
        const session = await pending.catch(() => null);
        if (session) await releaseSession(session);
      }),
    ]);
  }
}

/**
 * Why a graph's input and output names differ from the contract, or null when they match. Checked
 * when a session is created, so a wrong graph fails at load with its names, never mid-generation.
 */
export function contractMismatch(
  id: GraphComponentId,
  session: Pick<InferenceSession, 'inputNames' | 'outputNames'>,
): string | null {
  const contract = GRAPH_CONTRACTS[id];
  const expectedInputs = contract.inputs.map((t) => t.name).sort();
  const inputs = [...session.inputNames].sort();
  if (expectedInputs.join() !== inputs.join()) {
    return `its inputs are [${inputs.join(', ')}], the contract's are [${expectedInputs.join(', ')}]`;
  }
  const missing = contract.outputs.map((t) => t.name).filter((name) => !session.outputNames.includes(name));
  return missing.length > 0 ? `it has no output ${missing.join(', ')}` : null;
}
