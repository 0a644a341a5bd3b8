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
  ModelApi,
  ModelDownloadProgress,
  ModelSetInfo,
  ModelSourceSpec,
} from './api';
import { mixNeedsImageEncoder } from './engine/mix';
import { ModelSet } from './engine/model-set';
import type { InferenceSession, OrtRuntime } from './engine/ort';
import { componentsFor, runPipeline } from './engine/pipeline';
import { validateSettings } from './engine/settings';
import { sizeLimitsFor } from './engine/size-limits';
import { KandinskyError } from './errors';
import { JobQueue } from './job-queue';
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
}

interface CurrentSet {
  readonly source: ModelSource;
  readonly manifest: Manifest;
  /** Sessions live as long as the set is current, so later generations skip loading. */
  models: ModelSet | null;
}

interface SavedManifest {
  readonly url: string;
  readonly json: unknown;
}

const SAVED_MANIFEST_KEY = 'current-manifest';

/** A set of random weights: its images are noise, and the UI must say so. */
function isDemo(manifest: Manifest): boolean {
  return manifest.source !== 'pretrained';
}

/** The components a generation of this request needs, beyond the required ones. */
function neededComponents(request: GenerateRequest): string[] {
  const imageEncoder = mixNeedsImageEncoder(request.mix) ? ['image_encoder'] : [];
  return [...new Set([...REQUIRED_COMPONENTS, ...componentsFor(request.settings.mode), ...imageEncoder])];
}

export class GeneratorService implements ModelApi {
  private current: CurrentSet | null = null;
  private download: AbortController | null = null;
  private readonly listeners = new Map<string, (progress: JobProgress) => void>();
  private readonly queue: JobQueue<GenerateRequest, GenerateResult>;
  private readonly settingsStore: UseStore;

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

  private async run(request: GenerateRequest, signal: AbortSignal, jobId: string): Promise<GenerateResult> {
    const current = this.requireSet();
    const settings = validateSettings(request.settings, sizeLimitsFor(current.manifest));
    await this.requireStored(current, neededComponents(request));
    current.models ??= new ModelSet(
      this.options.ort,
      current.manifest,
      {
        read: (path) =>
          this.options.store.openFile(current.manifest, componentOfPath(current.manifest, path), path),
      },
      { sessionOptions: this.options.sessionOptions },
    );
    const onProgress = this.listeners.get(jobId);
    try {
      const result = await runPipeline(
        current.models,
        {
          settings,
          ...(request.initImage ? { initImage: request.initImage } : {}),
          ...(request.mask ? { mask: request.mask } : {}),
          ...(request.depthMap ? { depthMap: request.depthMap } : {}),
          ...(request.mix ? { mix: request.mix } : {}),
        },
        {
          signal,
          previews: request.previews,
          lowMemory: this.options.lowMemory ?? false,
          ...(onProgress ? { onProgress } : {}),
        },
      );
      return {
        jobId,
        images: result.images.map((image, index) => ({ image, settings, index })),
        timings: result.timings,
        ...(result.truncatedPrompt ? { truncatedPrompt: result.truncatedPrompt } : {}),
      };
    } catch (error) {
      throw classifyRuntimeError(error);
    }
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

  async openModelSet(spec: ModelSourceSpec): Promise<ModelSetInfo> {
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
    await this.closeModelSet();
    this.current = { source, manifest, models: null };
    return this.modelSetInfo();
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

function formatMegabytes(bytes: number): string {
  return bytes >= 1e9 ? `${(bytes / 1e9).toFixed(2)} GB` : `${(bytes / 1e6).toFixed(1)} MB`;
}

/**
 * onnxruntime reports GPU trouble as plain errors; give the ones a person can act on their code.
 */
function classifyRuntimeError(error: unknown): unknown {
  if (error instanceof KandinskyError || (typeof error === 'object' && error !== null && 'code' in error))
    return error;
  const text = String(error);
  if (/out of memory|OOM|failed to allocate|allocation/i.test(text)) {
    return new KandinskyError(
      'GPU_OUT_OF_MEMORY',
      'The GPU ran out of memory: try a smaller size, fewer images, or low-memory mode.',
      { cause: error },
    );
  }
  if (/device (was )?lost|GPUDevice.*lost|device is lost/i.test(text)) {
    return new KandinskyError('WEBGPU_DEVICE_LOST', 'The GPU was reset or lost; the generator restarts.', {
      cause: error,
    });
  }
  return new KandinskyError('INFERENCE_FAILED', `The model failed to run: ${text}`, { cause: error });
}
