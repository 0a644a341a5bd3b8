/**
 * The open model set of the generator worker: opening one by URL or picked folder (in the
 * precision variant the adapter runs), keeping its manifest for offline reopening, its storage
 * status, downloads, deletion and verification, and the verified reads its sessions are made from.
 */
import { createStore, get, set, type UseStore } from 'idb-keyval';
import { FEATURES, REQUIRED_COMPONENTS } from '../models/contract';
import { type Manifest, type Precision, parseManifest } from '../models/manifest';
import type { ModelApi, ModelDownloadProgress, ModelSetInfo, ModelSourceSpec, QualitySample } from './api';
import { ModelSet } from './engine/model-set';
import type { DeviceTensors, InferenceSession, OrtRuntime } from './engine/ort';
import { featureComponents } from './engine/request';
import { ownDecoderScheduler, type SchedulerConfigJson } from './engine/schedulers';
import { sizeLimitsFor } from './engine/size-limits';
import { KandinskyError } from './errors';
import { formatBytes } from './format';
import {
  type AdapterFeatures,
  assertRunnable,
  choosePrecision,
  manifestPrecision,
  type PrecisionChoice,
  type PrecisionOption,
  precisionOptions,
  supports,
} from './precision';
import { readSamplePicture } from './quality-sample';
import { FileSource, type ModelSource, type ModelStore, type OriginPolicy, UrlSource } from './store';

export interface ModelSetSessionOptions {
  readonly ort: OrtRuntime;
  readonly store: ModelStore;
  /** Session options for every graph (the execution provider). */
  readonly sessionOptions: InferenceSession.SessionOptions;
  /** GPU buffers for graph-capturing the UNet of each denoising loop (the WebGPU worker). */
  readonly deviceTensors?: DeviceTensors;
  /** Where the last opened manifest is kept, so a reload works offline; idb-keyval store. */
  readonly settingsStore?: UseStore;
  readonly fetch?: typeof fetch;
  /** The origins the build allows sets from (the worker passes its build's); none: any. */
  readonly originPolicy?: OriginPolicy;
  /**
   * The adapter's features, which decide the precision a set opens in (workers/precision.ts).
   * Without it the session behaves as on an adapter without shader-f16.
   */
  readonly adapter?: () => Promise<AdapterFeatures | null>;
}

/** The set that is open: where its files come from and which of its precisions. */
export interface OpenSet {
  readonly source: ModelSource;
  readonly manifest: Manifest;
  /** What was opened (the URL or picked files): the other options' files are read from it. */
  readonly spec: ModelSourceSpec;
  /** The precision options of the manifest the person opened, with their variant manifests. */
  readonly options: readonly PrecisionOption[];
  /** The precision variants the opened manifest publishes, and which one is current and why. */
  readonly precision: ModelSetInfo['precision'];
  /** Sessions live as long as the set is open, so later generations skip loading. */
  models: ModelSet | null;
  /** Set when the manifest could not be fetched again and the saved copy stands in: why. */
  readonly manifestRefreshFailure: string | null;
}

/** The manifests opened last (the set's own and the variant's), kept so a reload works offline. */
interface SavedManifest {
  readonly url: string;
  readonly json: unknown;
  readonly variant?: { readonly path: string; readonly json: unknown };
}

const SAVED_MANIFEST_KEY = 'current-manifest';

/** A set of random weights: its images are noise, and the UI must say so. */
function isDemo(manifest: Manifest): boolean {
  return manifest.source !== 'pretrained';
}

export class ModelSetSession implements ModelApi {
  private current: OpenSet | null = null;
  private download: AbortController | null = null;
  private readonly settingsStore: UseStore;
  private adapterPromise: Promise<AdapterFeatures | null> | null = null;
  /**
   * Files whose stored bytes were re-hashed by this session (this worker's lifetime). A file is
   * verified the first time it is read for a session, so a chunk damaged in IndexedDB is caught
   * before onnxruntime sees it; later reads (low-memory reloads) skip the hash.
   */
  private readonly verifiedFiles = new Set<string>();
  /** Why the last manifest fetch fell back to the saved copy (null: it did not). */
  private manifestFallback: string | null = null;
  constructor(private readonly options: ModelSetSessionOptions) {
    this.settingsStore = options.settingsStore ?? createStore('kandinsky-web-settings', 'kv');
  }

  /** The open set; NOT_CACHED when none is. */
  requireSet(): OpenSet {
    if (!this.current) {
      throw new KandinskyError('NOT_CACHED', 'No model set is open: choose one in the model manager.');
    }
    return this.current;
  }

  /** Refuses a generation whose components are not all stored (or not in the set at all). */
  async requireStored(components: readonly string[]): Promise<void> {
    const { manifest } = this.requireSet();
    const status = await this.options.store.getCacheStatus(manifest);
    const absent = components.filter((id) => !status.components.some((c) => c.componentId === id));
    if (absent.length > 0) {
      throw new KandinskyError(
        'MODEL_COMPONENT_MISSING',
        `The model set "${manifest.modelId}" has no ${absent.join(', ')}: this mode needs a set that includes it.`,
      );
    }
    const missing = status.components.filter(
      (c) => components.includes(c.componentId) && c.state !== 'complete',
    );
    if (missing.length > 0) {
      const bytes = missing.reduce((n, c) => n + c.bytes - c.storedBytes, 0);
      throw new KandinskyError(
        'NOT_CACHED',
        `Download ${missing.map((c) => c.componentId).join(', ')} first (${formatBytes(bytes)} left) in the model manager.`,
      );
    }
  }

  /** The open set's sessions (made on first use), reading only verified stored bytes. */
  models(): ModelSet {
    const current = this.requireSet();
    current.models ??= new ModelSet(
      this.options.ort,
      current.manifest,
      { read: (path) => this.readVerified(current.manifest, path) },
      {
        sessionOptions: this.options.sessionOptions,
        ...(this.options.deviceTensors ? { deviceTensors: this.options.deviceTensors } : {}),
      },
    );
    return current.models;
  }

  /**
   * The GPU device is gone: drop the sessions without waiting for a release that may never end
   * (they lived on that device).
   */
  dropModels(): void {
    if (!this.current) return;
    const models = this.current.models;
    this.current.models = null;
    void models?.releaseAll().catch(() => {});
  }

  /** A stored file's bytes, re-hashed against the manifest the first time this session reads it. */
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

  async openModelSet(spec: ModelSourceSpec, precision: PrecisionChoice = 'auto'): Promise<ModelSetInfo> {
    const source = this.sourceOf(spec, null);
    const url = spec.kind === 'url' ? spec.url : null;
    this.manifestFallback = null;
    const manifest = await this.loadManifest(source, url, null);
    const adapter = await this.adapterFeatures();
    const options = precisionOptions(manifest);
    // A set with no single precision of its own and no variants is checked as it is.
    const decision = options.length > 0 ? choosePrecision(options, adapter, precision) : null;
    let opened: { source: ModelSource; manifest: Manifest } = { source, manifest };
    if (decision?.option.manifest) opened = await this.openVariant(spec, decision.option.manifest);
    assertRunnable(opened.manifest, adapter);
    await this.close();
    this.current = {
      ...opened,
      spec,
      options,
      models: null,
      manifestRefreshFailure: this.manifestFallback,
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
          quality: o.quality,
        })),
      },
    };
    return this.modelSetInfo();
  }

  async readQualitySample(precision: Precision): Promise<QualitySample | null> {
    const { spec, options } = this.requireSet();
    const option = options.find((o) => o.precision === precision);
    if (!option) {
      throw new KandinskyError(
        'INVALID_INPUT',
        `This model set publishes no ${precision} precision; choose one its Precision menu lists.`,
      );
    }
    const sample = option.quality?.sample;
    if (!option.quality || !sample) return null;
    // Sample paths are relative to the manifest that lists them: the variant's, or the opened one.
    const source = this.sourceOf(spec, option.manifest);
    const reference = await readSamplePicture(source, sample.reference);
    const picture = await readSamplePicture(source, sample.picture);
    return {
      precision,
      prompt: sample.prompt,
      seed: sample.seed,
      psnr: option.quality.psnr,
      reference,
      picture,
    };
  }

  private sourceOf(spec: ModelSourceSpec, variantPath: string | null): ModelSource {
    if (spec.kind === 'url') {
      const url = variantPath === null ? spec.url : new URL(variantPath, spec.url).href;
      return new UrlSource(url, {
        ...(this.options.fetch ? { fetch: this.options.fetch } : {}),
        ...(this.options.originPolicy ? { policy: this.options.originPolicy } : {}),
      });
    }
    return new FileSource(new Map(spec.files.map(({ path, file }) => [path, file])));
  }

  /**
   * A manifest from its source, saved for offline use when it came from `url`; offline (or with
   * the host down) the one saved from the same URL (and variant path) stands in.
   */
  private async loadManifest(
    source: ModelSource,
    url: string | null,
    variant: string | null,
  ): Promise<Manifest> {
    try {
      const manifest = await this.options.store.loadManifest(source);
      if (url !== null && variant === null) {
        await set(SAVED_MANIFEST_KEY, { url, json: manifest } satisfies SavedManifest, this.settingsStore);
      } else if (url !== null) {
        const saved = await get<SavedManifest>(SAVED_MANIFEST_KEY, this.settingsStore);
        const record: SavedManifest | null =
          saved?.url === url ? { ...saved, variant: { path: variant ?? '', json: manifest } } : null;
        if (record) await set(SAVED_MANIFEST_KEY, record, this.settingsStore);
      }
      return manifest;
    } catch (error) {
      const code = (error as { code?: unknown }).code;
      if (url === null || (code !== 'SOURCE_UNREACHABLE' && code !== 'HTTP_ERROR')) throw error;
      const saved = await get<SavedManifest>(SAVED_MANIFEST_KEY, this.settingsStore);
      if (saved?.url !== url) throw error;
      if (variant !== null && saved.variant?.path !== variant) throw error;
      this.manifestFallback ??= error instanceof Error ? error.message : String(error);
      return parseManifest(variant === null ? saved.json : (saved.variant?.json ?? null));
    }
  }

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
      const source = this.sourceOf(spec, path);
      return { source, manifest: await this.loadManifest(source, spec.url, path) };
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

  async modelSetInfo(): Promise<ModelSetInfo> {
    const { manifest, source, precision, manifestRefreshFailure } = this.requireSet();
    const status = await this.options.store.getCacheStatus(manifest);
    const byId = new Map(status.components.map((c) => [c.componentId, c]));
    // A feature is offered when the set has every component it needs.
    const features = FEATURES.map((feature) => ({ feature, needs: featureComponents(feature) }))
      .filter(({ needs }) => needs.every((id) => byId.has(id)))
      .map(({ feature, needs }) => {
        const ids = [...new Set([...REQUIRED_COMPONENTS, ...needs])];
        return {
          feature,
          ready: ids.every((id) => byId.get(id)?.state === 'complete'),
          missingBytes: ids.reduce((n, id) => {
            const c = byId.get(id);
            return c && c.state !== 'complete' ? n + c.bytes - c.storedBytes : n;
          }, 0),
        };
      });
    return {
      modelId: manifest.modelId,
      name: manifest.name,
      license: manifest.license,
      demo: isDemo(manifest),
      precision,
      sourceDescription: source.description,
      manifestRefreshFailure,
      components: status.components.map((c) => ({
        id: c.componentId,
        optional: c.optional,
        enables: c.enables,
        state: c.state,
        bytes: c.bytes,
        storedBytes: c.storedBytes,
      })),
      features,
      decoderScheduler: ownDecoderScheduler(manifest.schedulers.decoder as SchedulerConfigJson),
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
        features: FEATURES.filter((f) => features.includes(f)),
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
    await this.close();
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

  /** Releases the open set's sessions (before it changes, loses files, or the worker goes). */
  async close(): Promise<void> {
    const models = this.current?.models;
    if (this.current) this.current.models = null;
    await models?.releaseAll();
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
