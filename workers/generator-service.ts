/**
 * What the generator worker does, without the worker: the job queue, the current model set and
 * its store, and generation through the engine. `generator.worker.ts` exposes it over comlink; a
 * Node test drives the same object with onnxruntime-node, fake-indexeddb and a local HTTP server.
 */
import { createStore, get, set, type UseStore } from 'idb-keyval';
import { FEATURE_COMPONENTS, type Feature, REQUIRED_COMPONENTS } from '../models/contract';
import { type Manifest, parseManifest } from '../models/manifest';
import type {
  GenerateRequest,
  GenerateResult,
  JobProgress,
  MaskImage,
  ModelApi,
  ModelDownloadProgress,
  ModelSetInfo,
  ModelSourceSpec,
  RgbaImage,
} from './api';
import { mixNeedsImageEncoder } from './engine/mix';
import { ModelSet } from './engine/model-set';
import type { DeviceTensors, InferenceSession, OrtRuntime } from './engine/ort';
import { componentsFor, depthInputOf, runPipeline, usesImagePrior } from './engine/pipeline';
import { type GenerationSettings, type SizeLimits, validateSettings } from './engine/settings';
import { sizeLimitsFor } from './engine/size-limits';
import { KandinskyError } from './errors';
import { JobQueue } from './job-queue';
import {
  type AdapterFeatures,
  assertRunnable,
  choosePrecision,
  manifestPrecision,
  type PrecisionChoice,
  precisionOptions,
  supports,
} from './precision';
import { FileSource, type ModelSource, type ModelStore, UrlSource } from './store';

export interface GeneratorServiceOptions {
  readonly ort: OrtRuntime;
  readonly store: ModelStore;
  /** Session options for every graph (the execution provider). */
  readonly sessionOptions: InferenceSession.SessionOptions;
  /** Where the last opened manifest is kept, so a reload works offline; idb-keyval store. */
  readonly settingsStore?: UseStore;
  readonly fetch?: typeof fetch;
  /** Release each stage's session before the next (devices with little memory). */
  readonly lowMemory?: boolean;
  /** GPU buffers for graph-capturing the UNet of each denoising loop (the WebGPU worker). */
  readonly deviceTensors?: DeviceTensors;
  /**
   * The adapter's features, which decide the precision a set opens in (workers/precision.ts).
   * Without it the service behaves as on an adapter without shader-f16.
   */
  readonly adapter?: () => Promise<AdapterFeatures | null>;
}

/**
 * The largest picture a request may carry, pixels (50 megapixels, as the UI's file picker allows).
 * Checked from the declared size before any pixel is read, so a hostile or buggy caller can't make
 * the worker touch gigabytes.
 */
export const MAX_REQUEST_IMAGE_PIXELS = 50_000_000;

interface CurrentSet {
  readonly source: ModelSource;
  readonly manifest: Manifest;
  /** Sessions live as long as the set is current, so later generations skip loading. */
  models: ModelSet | null;
  /** The precision variants the opened manifest publishes, and which one is current and why. */
  readonly precision: ModelSetInfo['precision'];
}

interface SavedManifest {
  readonly url: string;
  readonly json: unknown;
  /** The precision variant opened from it last time (its manifest), so offline reopening finds it. */
  readonly variant?: { readonly path: string; readonly json: unknown };
}

const SAVED_MANIFEST_KEY = 'current-manifest';

/** A set of random weights: its images are noise, and the UI must say so. */
function isDemo(manifest: Manifest): boolean {
  return manifest.source !== 'pretrained';
}

/** The components a generation of this request needs, beyond the required ones. */
function neededComponents(request: GenerateRequest): string[] {
  const imageEncoder =
    mixNeedsImageEncoder(request.mix) || usesImagePrior(request.settings) ? ['image_encoder'] : [];
  return [
    ...new Set([
      ...REQUIRED_COMPONENTS,
      ...componentsFor(request.settings.mode, depthInputOf(request)),
      ...imageEncoder,
    ]),
  ];
}

export class GeneratorService implements ModelApi {
  private current: CurrentSet | null = null;
  private download: AbortController | null = null;
  private readonly listeners = new Map<string, (progress: JobProgress) => void>();
  private readonly queue: JobQueue<GenerateRequest, GenerateResult>;
  private readonly settingsStore: UseStore;
  /**
   * Files whose stored bytes were re-hashed by this service (this worker's lifetime). A file is
   * verified the first time it is read for a session, so a chunk damaged in IndexedDB is caught
   * before onnxruntime sees it; later reads (low-memory reloads) skip the hash.
   */
  private readonly verifiedFiles = new Set<string>();
  /** Set once the GPU device is gone: every job fails fast until the worker is restarted. */
  private deviceLostError: KandinskyError | null = null;
  private readonly deviceLostController = new AbortController();

  constructor(private readonly options: GeneratorServiceOptions) {
    this.settingsStore = options.settingsStore ?? createStore('kandinsky-web-settings', 'kv');
    this.queue = new JobQueue(
      (request, signal, jobId) => this.run(request, signal, jobId),
      (positions) => {
        for (const [jobId, position] of positions) this.listeners.get(jobId)?.({ stage: 'queued', position });
      },
    );
  }

  // --- generation --------------------------------------------------------------------------

  async generate(
    jobId: string,
    request: GenerateRequest,
    onProgress: (p: JobProgress) => void,
  ): Promise<GenerateResult> {
    this.listeners.set(jobId, onProgress);
    try {
      return await this.queue.submit(jobId, request);
    } finally {
      this.listeners.delete(jobId);
    }
  }

  async cancel(jobId: string): Promise<boolean> {
    return this.queue.cancel(jobId);
  }

  /**
   * The GPU device is gone (destroyed, reset, or removed): the running job fails with
   * WEBGPU_DEVICE_LOST at once — whether or not onnxruntime ever returns from the call it is in —
   * and so does every later job, because this worker's onnxruntime can't get a new device. The UI
   * restarts the worker.
   */
  deviceLost(detail: string): void {
    if (this.deviceLostError) return;
    this.deviceLostError = new KandinskyError(
      'WEBGPU_DEVICE_LOST',
      `The GPU was reset or lost (${detail}); the generator restarts.`,
    );
    this.deviceLostController.abort(this.deviceLostError);
    // The sessions lived on that device: drop them without waiting for a release that may never end.
    if (this.current) {
      const models = this.current.models;
      this.current.models = null;
      void models?.releaseAll().catch(() => {});
    }
  }

  private async run(request: GenerateRequest, signal: AbortSignal, jobId: string): Promise<GenerateResult> {
    if (this.deviceLostError) throw this.deviceLostError;
    const current = this.requireSet();
    const limits = sizeLimitsFor(current.manifest);
    const settings = validateSettings(request.settings, limits, {
      fromPhoto: request.initImage !== undefined,
    });
    checkRequestImages(request);
    await this.requireStored(current, neededComponents(request));
    current.models ??= new ModelSet(
      this.options.ort,
      current.manifest,
      { read: (path) => this.readVerified(current.manifest, path) },
      {
        sessionOptions: this.options.sessionOptions,
        ...(this.options.deviceTensors ? { deviceTensors: this.options.deviceTensors } : {}),
      },
    );
    const onProgress = this.listeners.get(jobId);
    const lost = this.deviceLostController.signal;
    let stopWaiting = () => {};
    const lostWhileRunning = new Promise<never>((_, reject) => {
      const onLost = () => reject(lost.reason);
      if (lost.aborted) onLost();
      lost.addEventListener('abort', onLost, { once: true });
      stopWaiting = () => lost.removeEventListener('abort', onLost);
    });
    try {
      const pipeline = runPipeline(
        current.models,
        {
          settings,
          ...(request.initImage ? { initImage: request.initImage } : {}),
          ...(request.mask ? { mask: request.mask } : {}),
          ...(request.depthMap ? { depthMap: request.depthMap } : {}),
          ...(request.mix ? { mix: request.mix } : {}),
        },
        {
          signal: AbortSignal.any([signal, lost]),
          previews: request.previews,
          lowMemory: request.lowMemory ?? this.options.lowMemory ?? false,
          ...(onProgress ? { onProgress } : {}),
        },
      );
      // A lost device can leave onnxruntime waiting forever on a GPU that will never answer.
      pipeline.catch(() => {});
      const result = await Promise.race([pipeline, lostWhileRunning]);
      return {
        jobId,
        images: result.images.map((image, index) => ({ image, settings, index })),
        timings: result.timings,
        ...(result.truncatedPrompt ? { truncatedPrompt: result.truncatedPrompt } : {}),
      };
    } catch (error) {
      if (this.deviceLostError) throw this.deviceLostError;
      throw classifyRuntimeError(error, settings, limits);
    } finally {
      stopWaiting();
    }
  }

  /** A stored file's bytes, re-hashed against the manifest the first time this service reads it. */
  private async readVerified(manifest: Manifest, path: string): Promise<Uint8Array> {
    const componentId = componentOfPath(manifest, path);
    const sha256 = manifest.components[componentId as keyof Manifest['components']]?.files.find(
      (f) => f.path === path,
    )?.sha256;
    const verify = sha256 === undefined || !this.verifiedFiles.has(sha256);
    const bytes = await this.options.store.openFile(manifest, componentId, path, { verify });
    if (sha256 !== undefined) this.verifiedFiles.add(sha256);
    return bytes;
  }

  private requireSet(): CurrentSet {
    if (!this.current) {
      throw new KandinskyError('NOT_CACHED', 'No model set is open: choose one in the model manager.');
    }
    return this.current;
  }

  private async requireStored(current: CurrentSet, components: readonly string[]): Promise<void> {
    const status = await this.options.store.getCacheStatus(current.manifest);
    const missing = status.components.filter(
      (c) => components.includes(c.componentId) && c.state !== 'complete',
    );
    const absent = components.filter((id) => !status.components.some((c) => c.componentId === id));
    if (absent.length > 0) {
      throw new KandinskyError(
        'MODEL_COMPONENT_MISSING',
        `The model set "${current.manifest.modelId}" has no ${absent.join(', ')}: this mode needs a set that includes it.`,
      );
    }
    if (missing.length > 0) {
      const bytes = missing.reduce((n, c) => n + c.bytes - c.storedBytes, 0);
      throw new KandinskyError(
        'NOT_CACHED',
        `Download ${missing.map((c) => c.componentId).join(', ')} first (${formatMegabytes(bytes)} left) in the model manager.`,
      );
    }
  }

  // --- model sets --------------------------------------------------------------------------

  async openModelSet(spec: ModelSourceSpec, precision: PrecisionChoice = 'auto'): Promise<ModelSetInfo> {
    const source =
      spec.kind === 'url'
        ? new UrlSource(spec.url, this.options.fetch ? { fetch: this.options.fetch } : {})
        : new FileSource(new Map(spec.files.map(({ path, file }) => [path, file])));
    const url = spec.kind === 'url' ? spec.url : null;
    let manifest: Manifest;
    try {
      manifest = await this.options.store.loadManifest(source);
      if (url !== null)
        await set(SAVED_MANIFEST_KEY, { url, json: manifest } satisfies SavedManifest, this.settingsStore);
    } catch (error) {
      // Offline (or the host is down): the set opened last time from the same URL still works.
      const saved =
        url !== null ? await get<SavedManifest>(SAVED_MANIFEST_KEY, this.settingsStore) : undefined;
      const code = (error as { code?: unknown }).code;
      if (saved?.url !== url || (code !== 'SOURCE_UNREACHABLE' && code !== 'HTTP_ERROR')) throw error;
      manifest = parseManifest(saved.json);
    }
    const adapter = await this.adapterFeatures();
    const options = precisionOptions(manifest);
    // A set with no single precision of its own and no variants is checked as it is.
    const decision = options.length > 0 ? choosePrecision(options, adapter, precision) : null;
    let opened: { source: ModelSource; manifest: Manifest } = { source, manifest };
    if (decision?.option.manifest) opened = await this.openVariant(spec, decision.option.manifest);
    assertRunnable(opened.manifest, adapter);
    await this.closeModelSet();
    this.current = {
      ...opened,
      models: null,
      precision: {
        current: manifestPrecision(opened.manifest),
        choice: precision,
        reason: decision?.reason ?? 'the set has no single precision',
        options: options.map((o) => ({
          precision: o.precision,
          requiredFeatures: [...o.requiredFeatures],
          supported: supports(adapter, o),
          textToImageBytes: o.textToImageBytes,
          checkCosine: o.checkCosine,
        })),
      },
    };
    return this.modelSetInfo();
  }

  private adapterPromise: Promise<AdapterFeatures | null> | null = null;

  private adapterFeatures(): Promise<AdapterFeatures | null> {
    this.adapterPromise ??= (this.options.adapter?.() ?? Promise.resolve(null)).catch(() => null);
    return this.adapterPromise;
  }

  /** A precision variant's manifest (a path relative to the opened one) and the source of its files. */
  private async openVariant(
    spec: ModelSourceSpec,
    path: string,
  ): Promise<{ source: ModelSource; manifest: Manifest }> {
    if (spec.kind === 'url') {
      const url = new URL(path, spec.url).href;
      const source = new UrlSource(url, this.options.fetch ? { fetch: this.options.fetch } : {});
      try {
        const manifest = await this.options.store.loadManifest(source);
        const saved = await get<SavedManifest>(SAVED_MANIFEST_KEY, this.settingsStore);
        if (saved?.url === spec.url)
          await set(SAVED_MANIFEST_KEY, { ...saved, variant: { path, json: manifest } }, this.settingsStore);
        return { source, manifest };
      } catch (error) {
        const saved = await get<SavedManifest>(SAVED_MANIFEST_KEY, this.settingsStore);
        const code = (error as { code?: unknown }).code;
        if (saved?.url !== spec.url || saved.variant?.path !== path) throw error;
        if (code !== 'SOURCE_UNREACHABLE' && code !== 'HTTP_ERROR') throw error;
        return { source, manifest: parseManifest(saved.variant.json) };
      }
    }
    // A picked folder: the variant's manifest stands in for manifest.json; files keep their paths.
    const files = new Map(spec.files.map(({ path: p, file }) => [p, file]));
    const variantFile = files.get(path);
    if (!variantFile) {
      throw new KandinskyError(
        'MODEL_COMPONENT_MISSING',
        `The picked folder has no ${path} (the set lists it as a precision variant).`,
      );
    }
    files.set('manifest.json', variantFile);
    const source = new FileSource(files);
    return { source, manifest: await this.options.store.loadManifest(source) };
  }

  private async closeModelSet(): Promise<void> {
    const models = this.current?.models;
    if (this.current) this.current.models = null;
    await models?.releaseAll();
  }

  async modelSetInfo(): Promise<ModelSetInfo> {
    const { manifest, source } = this.requireSet();
    const status = await this.options.store.getCacheStatus(manifest);
    const byId = new Map(status.components.map((c) => [c.componentId, c]));
    const missingBytes = (ids: readonly string[]) =>
      ids.reduce((n, id) => {
        const c = byId.get(id);
        return c && c.state !== 'complete' ? n + c.bytes - c.storedBytes : n;
      }, 0);
    const features = (Object.keys(FEATURE_COMPONENTS) as Feature[])
      .filter((feature) => FEATURE_COMPONENTS[feature].every((id) => byId.has(id)))
      .map((feature) => {
        const ids = [...REQUIRED_COMPONENTS, ...FEATURE_COMPONENTS[feature]];
        return {
          feature,
          ready: ids.every((id) => byId.get(id)?.state === 'complete'),
          missingBytes: missingBytes(ids),
        };
      });
    return {
      modelId: manifest.modelId,
      name: manifest.name,
      license: manifest.license,
      demo: isDemo(manifest),
      precision: this.requireSet().precision,
      sourceDescription: source.description,
      components: status.components.map((c) => ({
        id: c.componentId,
        optional: c.optional,
        enables: c.enables,
        state: c.state,
        bytes: c.bytes,
        storedBytes: c.storedBytes,
      })),
      features,
      sizeLimits: sizeLimitsFor(manifest),
      usageBytes: status.usageBytes,
      quotaBytes: status.quotaBytes,
      persisted: status.persisted,
    };
  }

  async downloadModels(
    features: readonly string[],
    onProgress: (progress: ModelDownloadProgress) => void,
  ): Promise<ModelSetInfo> {
    const { manifest, source } = this.requireSet();
    this.download?.abort();
    const controller = new AbortController();
    this.download = controller;
    try {
      await this.options.store.download(source, manifest, {
        features: features.filter((f): f is Feature => f in FEATURE_COMPONENTS),
        signal: controller.signal,
        onProgress: (p) =>
          onProgress({
            stage: p.stage,
            componentId: p.componentId,
            path: p.path,
            totalBytesDone: p.totalBytesDone,
            totalBytesTotal: p.totalBytesTotal,
            bytesPerSecond: p.bytesPerSecond,
            etaSeconds: p.etaSeconds,
          }),
      });
    } finally {
      if (this.download === controller) this.download = null;
    }
    return this.modelSetInfo();
  }

  async pauseDownload(): Promise<void> {
    this.download?.abort();
  }

  async deleteModels(componentIds?: readonly string[]): Promise<ModelSetInfo> {
    const current = this.requireSet();
    await this.closeModelSet();
    const ids = componentIds ?? Object.keys(current.manifest.components);
    for (const id of ids) await this.options.store.deleteComponent(current.manifest, id);
    return this.modelSetInfo();
  }

  async verifyModels() {
    const reports = await this.options.store.verify(this.requireSet().manifest);
    return reports.map((r) => ({ componentId: r.componentId, state: r.state }));
  }

  async requestPersistence() {
    return this.options.store.requestPersistence();
  }

  /** Releases every session (the worker is going away, or the GPU was lost). */
  async dispose(): Promise<void> {
    await this.closeModelSet();
  }
}

function componentOfPath(manifest: Manifest, path: string): string {
  for (const [id, component] of Object.entries(manifest.components)) {
    if (component?.files.some((f) => f.path === path)) return id;
  }
  throw new KandinskyError(
    'UNKNOWN_COMPONENT',
    `No component of "${manifest.modelId}" has the file ${path}.`,
  );
}

/**
 * Checks the pictures a request carries before anything reads their pixels: a declared size of
 * whole pixels within MAX_REQUEST_IMAGE_PIXELS, and exactly that many pixels of data. (The engine
 * then checks each against the output size.)
 */
function checkRequestImages(request: GenerateRequest): void {
  const images: [string, RgbaImage | MaskImage | undefined, number][] = [
    ['The input image', request.initImage, 4],
    ['The mask', request.mask, 1],
    ['The depth map', request.depthMap, 4],
    ...(request.mix ?? []).flatMap((item, index): [string, RgbaImage, number][] =>
      item.kind === 'image' ? [[`Mix item ${index + 1}’s picture`, item.image, 4]] : [],
    ),
  ];
  for (const [what, image, channels] of images) {
    if (!image) continue;
    const { width, height } = image;
    if (!Number.isSafeInteger(width) || !Number.isSafeInteger(height) || width < 1 || height < 1) {
      throw new KandinskyError('INVALID_INPUT', `${what} has no valid size (${width}×${height}).`);
    }
    if (width * height > MAX_REQUEST_IMAGE_PIXELS) {
      throw new KandinskyError(
        'INVALID_INPUT',
        `${what} is ${width}×${height} (${((width * height) / 1e6).toFixed(1)} megapixels); the limit is ${MAX_REQUEST_IMAGE_PIXELS / 1e6} megapixels. Resize it first.`,
      );
    }
    const expected = width * height * channels;
    if (!(image.data instanceof Uint8Array) || image.data.length !== expected) {
      throw new KandinskyError(
        'INVALID_INPUT',
        `${what} says ${width}×${height} but holds ${image.data?.length ?? 0} bytes instead of ${expected}; send it again at its real size.`,
      );
    }
  }
}

function formatMegabytes(bytes: number): string {
  return bytes >= 1e9 ? `${(bytes / 1e9).toFixed(2)} GB` : `${(bytes / 1e6).toFixed(1)} MB`;
}

/**
 * A concrete request that needs about half the GPU memory of this one: each side × 1/√2, rounded
 * down to the set's multiple (aspect kept as near as the grid allows), else fewer images.
 */
export function smallerRequestAdvice(settings: GenerationSettings, limits: SizeLimits): string {
  const shrink = (side: number) =>
    Math.max(limits.minSide, Math.floor((side * Math.SQRT1_2) / limits.multiple) * limits.multiple);
  let width = shrink(settings.width);
  let height = shrink(settings.height);
  // Rounding the short side down can push the aspect past the limit: shorten the long side to fit.
  const longest = (short: number) =>
    Math.floor((short * limits.maxAspect) / limits.multiple) * limits.multiple;
  if (width > height) width = Math.min(width, longest(height));
  else height = Math.min(height, longest(width));
  const options: string[] = [];
  if (width !== settings.width || height !== settings.height) options.push(`${width}×${height}`);
  if (settings.numImages > 1) options.push('1 image at a time');
  const what = `${settings.width}×${settings.height}${settings.numImages > 1 ? ` with ${settings.numImages} images` : ''}`;
  if (options.length === 0) {
    return `${what} is too large for this device: this model set needs more GPU memory than it has, even at its smallest size. Close other GPU-heavy tabs and apps, or use a device with more GPU memory.`;
  }
  return `${what} is too large for this device: try ${options.join(', or ')}.`;
}

/**
 * onnxruntime reports GPU trouble as plain errors; give the ones a person can act on their code.
 */
function classifyRuntimeError(error: unknown, settings: GenerationSettings, limits: SizeLimits): unknown {
  if (error instanceof KandinskyError || (typeof error === 'object' && error !== null && 'code' in error))
    return error;
  const text = String(error);
  if (/out of memory|OOM|failed to allocate|allocation/i.test(text)) {
    return new KandinskyError('GPU_OUT_OF_MEMORY', smallerRequestAdvice(settings, limits), { cause: error });
  }
  if (/device (was )?lost|GPUDevice.*lost|device is lost/i.test(text)) {
    return new KandinskyError('WEBGPU_DEVICE_LOST', 'The GPU was reset or lost; the generator restarts.', {
      cause: error,
    });
  }
  return new KandinskyError('INFERENCE_FAILED', `The model failed to run: ${text}`, { cause: error });
}
