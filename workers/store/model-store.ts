import type { Feature } from '../../models/contract';
import {
  type Manifest,
  type ManifestComponent,
  ManifestError,
  manifestFromJson,
} from '../../models/manifest';
import {
  type ChunkDigest,
  chunkHashesFor,
  DEFAULT_RETRY,
  downloadFile,
  type FileStage,
  nativeChunkDigest,
  nobleSha256,
  type RetryPolicy,
  realSleep,
  type Sha256Factory,
  type Sleep,
  type StoredFile,
  toHex,
} from './file-download';
import { fileLockName, InProcessLocks, type LockManagerLike } from './file-locks';
import type { ModelSource } from './model-source';
import {
  type ComponentRecord,
  chunkCount,
  type FileRecord,
  openStoreDatabase,
  StoreDatabase,
  type UseStore,
} from './store-database';
import { abortedError, formatBytes, isStoreError, StoreError, throwIfAborted } from './store-error';

/** The parts of `navigator.storage` the store uses; each may be missing. */
export interface StorageManagerLike {
  estimate?(): Promise<{ usage?: number; quota?: number }>;
  persist?(): Promise<boolean>;
  persisted?(): Promise<boolean>;
}

export interface ModelStoreOptions {
  /** An idb-keyval custom store: `openStoreDatabase(indexedDB)`. */
  readonly database: UseStore;
  /** `navigator.storage`, for quota and persistence. */
  readonly storage?: StorageManagerLike;
  /** `navigator.locks`, so tabs share downloads; an in-process lock manager otherwise. */
  readonly locks?: LockManagerLike;
  /** Wall clock, ms: rates and ETAs. */
  readonly now?: () => number;
  /** Waits between retries; tests pass one that records and resolves at once. */
  readonly sleep?: Sleep;
  /** Size of one stored record, bytes (default 4 MiB). */
  readonly chunkBytes?: number;
  /** Files downloaded at once (default 3). */
  readonly concurrency?: number;
  readonly retry?: RetryPolicy;
  readonly createHash?: Sha256Factory;
  /**
   * Digests one chunk of a file whose manifest entry has per-chunk sha256s for this store's chunk
   * size (default: `crypto.subtle.digest`, run in parallel with the download); null: never use them.
   */
  readonly chunkDigest?: ChunkDigest | null;
  /** Least time between two 'downloading' events of one file, ms (default 200). */
  readonly progressIntervalMs?: number;
}

export const DEFAULT_CHUNK_BYTES = 4 * 1024 * 1024;

/** Which components to download: every required one, plus optional ones named or enabling a feature. */
export interface ComponentSelection {
  readonly components?: readonly string[];
  readonly features?: readonly Feature[];
}

export type PersistenceState = 'granted' | 'denied' | 'unsupported';

export interface DownloadProgress {
  /** 'stored' with `path` null: the component's completion record was written. */
  readonly stage: FileStage;
  readonly componentId: string;
  /** Manifest path of the file, or null for a component-level event. */
  readonly path: string | null;
  readonly fileBytesDone: number;
  readonly fileBytesTotal: number;
  readonly componentBytesDone: number;
  readonly componentBytesTotal: number;
  /** Across every selected component; files stored earlier count as done. */
  readonly totalBytesDone: number;
  readonly totalBytesTotal: number;
  /** Bytes received per second since this download started; null before the first byte. */
  readonly bytesPerSecond: number | null;
  /** Seconds left at the current rate; null while unknown. */
  readonly etaSeconds: number | null;
  readonly error?: { readonly code: string; readonly message: string };
}

export interface DownloadOptions extends ComponentSelection {
  /** Pause or cancel: everything verified so far stays stored, and a later call resumes. */
  readonly signal?: AbortSignal;
  readonly onProgress?: (event: DownloadProgress) => void;
}

export interface DownloadResult {
  readonly components: readonly string[];
  /** Bytes received from the source by this call. */
  readonly receivedBytes: number;
  /** Bytes of the selection already stored before this call (resumed or shared). */
  readonly reusedBytes: number;
  readonly persistence: PersistenceState;
}

export type ComponentState = 'complete' | 'partial' | 'absent';

export interface ComponentStatus {
  readonly componentId: string;
  readonly optional: boolean;
  readonly enables: readonly string[];
  readonly state: ComponentState;
  /** The component's size, bytes. */
  readonly bytes: number;
  /** Bytes of it in storage (verified files, plus stored chunks of unfinished ones). */
  readonly storedBytes: number;
}

export interface CacheStatus {
  readonly modelId: string;
  readonly components: readonly ComponentStatus[];
  /** Origin-wide storage use and quota, bytes, when the browser says. */
  readonly usageBytes: number | null;
  readonly quotaBytes: number | null;
  /** Whether the browser promised not to evict this origin's storage; null when unknown. */
  readonly persisted: boolean | null;
}

export interface VerifyReport {
  readonly componentId: string;
  /** 'damaged': a file failed its hash or lost a chunk; it was removed, download again to repair. */
  readonly state: 'verified' | 'damaged' | 'absent';
  readonly damagedFiles: readonly string[];
}

/** What onnxruntime's `InferenceSession.create(model, { externalData })` takes. */
export interface OnnxModelBytes {
  readonly model: Uint8Array;
  /** `path` is the shard's name relative to the graph file, as the graph's external-data location says. */
  readonly externalData: readonly { readonly path: string; readonly data: Uint8Array }[];
}

export interface OpenOptions {
  /**
   * Re-hash the bytes while reading them: per chunk with the native digest, in parallel, when the
   * manifest has chunk hashes for the stored chunk size; otherwise the whole file in JS (about
   * 150 MB/s). A mismatch removes the file.
   */
  readonly verify?: boolean;
  readonly signal?: AbortSignal;
}

interface ComponentEntry {
  readonly id: string;
  readonly component: ManifestComponent;
}

function componentEntries(manifest: Manifest): ComponentEntry[] {
  return (Object.entries(manifest.components) as [string, ManifestComponent | undefined][]).flatMap(
    ([id, component]) => (component ? [{ id, component }] : []),
  );
}

function findComponent(manifest: Manifest, componentId: string): ManifestComponent {
  const component = (manifest.components as Record<string, ManifestComponent | undefined>)[componentId];
  if (!component) {
    throw new StoreError(
      'UNKNOWN_COMPONENT',
      `The model set "${manifest.modelId}" has no component "${componentId}".`,
    );
  }
  return component;
}

/** Required components first (manifest order), then the optional ones asked for. */
export function selectComponents(manifest: Manifest, selection: ComponentSelection = {}): string[] {
  const named = new Set(selection.components ?? []);
  const features = new Set<string>(selection.features ?? []);
  for (const id of named) findComponent(manifest, id);
  return componentEntries(manifest)
    .filter(
      ({ id, component }) =>
        !component.optional || named.has(id) || component.enables.some((feature) => features.has(feature)),
    )
    .map(({ id }) => id);
}

function filesOf(component: ManifestComponent): StoredFile[] {
  return component.files.map(({ path, sha256, bytes, chunks }) => ({ path, sha256, bytes, chunks }));
}

function storedBytesOf(file: StoredFile, record: FileRecord | undefined): number {
  if (!record || record.bytes !== file.bytes) return 0;
  return record.verified ? file.bytes : Math.min(file.bytes, record.storedChunks * record.chunkBytes);
}

function recordMatches(record: ComponentRecord | undefined, component: ManifestComponent): boolean {
  if (!record || record.files.length !== component.files.length) return false;
  return component.files.every((file, i) => {
    const stored = record.files[i];
    return stored?.path === file.path && stored.sha256 === file.sha256 && stored.bytes === file.bytes;
  });
}

/**
 * The model store: downloads (or imports) a model set's components into IndexedDB, verified
 * chunk by chunk, and hands the engine their bytes. Runs in a worker or in Node; every platform
 * service is injected.
 */
export class ModelStore {
  private readonly db: StoreDatabase;
  private readonly storage: StorageManagerLike | undefined;
  private readonly locks: LockManagerLike;
  private readonly now: () => number;
  private readonly sleep: Sleep;
  private readonly chunkBytes: number;
  private readonly concurrency: number;
  private readonly retry: RetryPolicy;
  private readonly createHash: Sha256Factory;
  private readonly chunkDigest: ChunkDigest | undefined;
  private readonly progressIntervalMs: number;
  private readonly running = new Set<AbortController>();

  constructor(options: ModelStoreOptions) {
    this.db = new StoreDatabase(options.database);
    this.storage = options.storage;
    this.locks = options.locks ?? new InProcessLocks();
    this.now = options.now ?? (() => Date.now());
    this.sleep = options.sleep ?? realSleep;
    this.chunkBytes = options.chunkBytes ?? DEFAULT_CHUNK_BYTES;
    this.concurrency = Math.max(1, options.concurrency ?? 3);
    this.retry = options.retry ?? DEFAULT_RETRY;
    this.createHash = options.createHash ?? nobleSha256;
    this.chunkDigest = options.chunkDigest === null ? undefined : (options.chunkDigest ?? nativeChunkDigest);
    this.progressIntervalMs = options.progressIntervalMs ?? 200;
    if (!Number.isSafeInteger(this.chunkBytes) || this.chunkBytes <= 0) {
      throw new RangeError(`chunkBytes must be a positive integer, got ${this.chunkBytes}`);
    }
  }

  /** Reads and validates a source's manifest.json; nothing is stored before this succeeds. */
  async loadManifest(source: ModelSource, signal?: AbortSignal): Promise<Manifest> {
    const text = await source.readManifestText(signal);
    try {
      // The same reading as the CLI's (manifestFromJson): sources hand over text decoded as fetch does.
      return manifestFromJson(text);
    } catch (error) {
      if (!(error instanceof ManifestError)) throw error;
      if (error.code === 'MANIFEST_NOT_JSON') {
        throw new StoreError(
          'MANIFEST_INVALID',
          `manifest.json from ${source.description} is not valid JSON.`,
          {
            cause: error,
          },
        );
      }
      throw new StoreError(
        'MANIFEST_INVALID',
        `manifest.json from ${source.description} can't be used: ${error.message} (${error.code}).`,
        { cause: error, details: { manifestCode: error.code, field: error.field } },
      );
    }
  }

  /** Asks the browser to keep this origin's storage under pressure; the answer is for the UI. */
  async requestPersistence(): Promise<PersistenceState> {
    if (!this.storage?.persist) return 'unsupported';
    try {
      if (this.storage.persisted && (await this.storage.persisted())) return 'granted';
      return (await this.storage.persist()) ? 'granted' : 'denied';
    } catch {
      return 'unsupported';
    }
  }

  /**
   * Downloads (or imports) the selected components, resuming whatever is stored. Resolves when
   * every selected component is complete; throws a StoreError otherwise, keeping what was verified.
   */
  async download(
    source: ModelSource,
    manifest: Manifest,
    options: DownloadOptions = {},
  ): Promise<DownloadResult> {
    const componentIds = selectComponents(manifest, options);
    const components = componentIds.map((id) => ({ id, files: filesOf(findComponent(manifest, id)) }));
    throwIfAborted(options.signal);

    // One task per distinct file: the same bytes named twice are fetched once.
    const files = new Map<string, StoredFile & { componentId: string }>();
    for (const { id, files: list } of components) {
      for (const file of list)
        if (!files.has(file.sha256)) files.set(file.sha256, { ...file, componentId: id });
    }
    const shas = [...files.keys()];
    const records = await this.db.getFiles(shas);
    const done = new Map<string, number>();
    let reusedBytes = 0;
    shas.forEach((sha, i) => {
      const stored = storedBytesOf(files.get(sha) as StoredFile, records[i]);
      done.set(sha, stored);
      reusedBytes += stored;
    });
    const totalBytes = [...files.values()].reduce((sum, file) => sum + file.bytes, 0);
    await this.checkQuota(totalBytes - reusedBytes);
    const persistence = await this.requestPersistence();

    const controller = new AbortController();
    const onAbort = () => controller.abort(options.signal?.reason);
    options.signal?.addEventListener('abort', onAbort, { once: true });
    this.running.add(controller);

    const startedAt = this.now();
    let receivedBytes = 0;
    const lastEmit = new Map<string, number>();
    const emit = (componentId: string, file: StoredFile | null, stage: FileStage, error?: StoreError) => {
      if (!options.onProgress) return;
      const component = components.find((c) => c.id === componentId);
      const componentFiles = component?.files ?? [];
      const componentBytesDone = componentFiles.reduce((sum, f) => sum + (done.get(f.sha256) ?? 0), 0);
      const totalBytesDone = [...done.values()].reduce((sum, bytes) => sum + bytes, 0);
      const seconds = (this.now() - startedAt) / 1000;
      const bytesPerSecond = seconds > 0 && receivedBytes > 0 ? receivedBytes / seconds : null;
      options.onProgress({
        stage,
        componentId,
        path: file?.path ?? null,
        fileBytesDone: file ? (done.get(file.sha256) ?? 0) : componentBytesDone,
        fileBytesTotal: file ? file.bytes : componentFiles.reduce((sum, f) => sum + f.bytes, 0),
        componentBytesDone,
        componentBytesTotal: componentFiles.reduce((sum, f) => sum + f.bytes, 0),
        totalBytesDone,
        totalBytesTotal: totalBytes,
        bytesPerSecond,
        etaSeconds: bytesPerSecond ? (totalBytes - totalBytesDone) / bytesPerSecond : null,
        ...(error ? { error: { code: error.code, message: error.message } } : {}),
      });
    };

    const context = {
      db: this.db,
      source,
      chunkBytes: this.chunkBytes,
      retry: this.retry,
      sleep: this.sleep,
      createHash: this.createHash,
      chunkDigest: this.chunkDigest,
      signal: controller.signal,
      report: (file: StoredFile, stage: FileStage, bytesDone: number, received: number) => {
        done.set(file.sha256, bytesDone);
        receivedBytes += received;
        if (stage === 'downloading') {
          const now = this.now();
          const last = lastEmit.get(file.sha256);
          if (last !== undefined && now - last < this.progressIntervalMs && bytesDone < file.bytes) return;
          lastEmit.set(file.sha256, now);
        }
        emit(files.get(file.sha256)?.componentId ?? '', file, stage);
      },
    };

    const verified = new Set<string>();
    const completed = new Set<string>();
    const completeReadyComponents = async () => {
      for (const component of components) {
        if (completed.has(component.id) || !component.files.every((f) => verified.has(f.sha256))) continue;
        completed.add(component.id);
        // Written last: only now is every chunk of every file of the component stored and verified.
        await this.db.putComponent({
          modelId: manifest.modelId,
          componentId: component.id,
          files: component.files.map(({ path, sha256, bytes }) => ({ path, sha256, bytes })),
          completedAt: this.now(),
        });
        emit(component.id, null, 'stored');
      }
    };

    for (const file of files.values()) emit(file.componentId, file, 'queued');
    const queue = [...files.values()];
    let firstError: unknown;
    const worker = async () => {
      for (let file = queue.shift(); file !== undefined && firstError === undefined; file = queue.shift()) {
        const current = file;
        try {
          await this.locks.request(
            fileLockName(current.sha256),
            { mode: 'exclusive', signal: controller.signal },
            () => downloadFile(context, current),
          );
          verified.add(current.sha256);
          await completeReadyComponents();
        } catch (error) {
          // Stopped because a sibling failed: that failure is the one to report.
          if (firstError !== undefined) break;
          const storeError = this.asStoreError(error, controller.signal);
          emit(current.componentId, current, 'failed', storeError);
          if (firstError === undefined) firstError = storeError;
          // One file failing stops the others: a full disk or a dead server won't get better.
          controller.abort(storeError);
        }
      }
    };
    try {
      await Promise.all(Array.from({ length: Math.min(this.concurrency, queue.length) }, worker));
      if (firstError === undefined) await completeReadyComponents();
    } finally {
      options.signal?.removeEventListener('abort', onAbort);
      this.running.delete(controller);
    }
    if (firstError !== undefined) {
      // What is really stored now (progress counted bytes still in flight, which were lost).
      const stillNeeded = await this.db.getFiles(shas).then(
        (now) =>
          totalBytes -
          shas.reduce((sum, sha, i) => sum + storedBytesOf(files.get(sha) as StoredFile, now[i]), 0),
        () => totalBytes,
      );
      throw this.explainFailure(firstError, stillNeeded, options);
    }
    return { components: componentIds, receivedBytes, reusedBytes, persistence };
  }

  /** Per component of the manifest: complete, partial or absent, and bytes stored; plus quota. */
  async getCacheStatus(manifest: Manifest): Promise<CacheStatus> {
    const components: ComponentStatus[] = [];
    for (const { id, component } of componentEntries(manifest)) {
      const files = filesOf(component);
      const [record, fileRecords] = await Promise.all([
        this.db.getComponent(manifest.modelId, id),
        this.db.getFiles(files.map((f) => f.sha256)),
      ]);
      const storedBytes = files.reduce((sum, file, i) => sum + storedBytesOf(file, fileRecords[i]), 0);
      const complete = recordMatches(record, component) && fileRecords.every((r) => r?.verified === true);
      components.push({
        componentId: id,
        optional: component.optional,
        enables: component.enables,
        state: complete ? 'complete' : storedBytes > 0 ? 'partial' : 'absent',
        bytes: files.reduce((sum, f) => sum + f.bytes, 0),
        storedBytes,
      });
    }
    const estimate = await this.storage?.estimate?.().catch(() => undefined);
    const persisted = this.storage?.persisted ? await this.storage.persisted().catch(() => null) : null;
    return {
      modelId: manifest.modelId,
      components,
      usageBytes: estimate?.usage ?? null,
      quotaBytes: estimate?.quota ?? null,
      persisted,
    };
  }

  /**
   * The verified bytes of one file, assembled chunk by chunk into one buffer of the file's size:
   * the peak is the file plus one chunk. Throws NOT_CACHED unless its component is complete.
   */
  async openFile(
    manifest: Manifest,
    componentId: string,
    path: string,
    options: OpenOptions = {},
  ): Promise<Uint8Array> {
    const component = findComponent(manifest, componentId);
    const file = filesOf(component).find((f) => f.path === path);
    if (!file) {
      throw new StoreError('UNKNOWN_COMPONENT', `The component "${componentId}" has no file "${path}".`, {
        details: { path },
      });
    }
    await this.assertComplete(manifest, componentId, component);
    return this.readFile(file, options);
  }

  /** A complete ONNX component as onnxruntime takes it: the graph bytes and its external-data shards. */
  async openOnnxModel(
    manifest: Manifest,
    componentId: string,
    options: OpenOptions = {},
  ): Promise<OnnxModelBytes> {
    const component = findComponent(manifest, componentId);
    const graph = component.files.find((f) => f.role === 'graph');
    if (component.kind !== 'onnx' || !graph) {
      throw new StoreError(
        'UNKNOWN_COMPONENT',
        `"${componentId}" is not an ONNX component of "${manifest.modelId}".`,
      );
    }
    await this.assertComplete(manifest, componentId, component);
    const folder = graph.path.includes('/') ? graph.path.slice(0, graph.path.lastIndexOf('/') + 1) : '';
    const model = await this.readFile(graph, options);
    const externalData: { path: string; data: Uint8Array }[] = [];
    for (const shard of component.files.filter((f) => f.role === 'external-data')) {
      const relative = shard.path.startsWith(folder) ? shard.path.slice(folder.length) : shard.path;
      externalData.push({ path: relative, data: await this.readFile(shard, options) });
    }
    return { model, externalData };
  }

  /** Re-hashes every stored file of the components (default: all of the manifest); damaged files are removed. */
  async verify(
    manifest: Manifest,
    componentIds?: readonly string[],
    signal?: AbortSignal,
  ): Promise<VerifyReport[]> {
    const ids = componentIds ?? componentEntries(manifest).map((entry) => entry.id);
    const reports: VerifyReport[] = [];
    const checked = new Map<string, boolean>();
    for (const id of ids) {
      const component = findComponent(manifest, id);
      if (!(await this.isComplete(manifest.modelId, id, component))) {
        reports.push({ componentId: id, state: 'absent', damagedFiles: [] });
        continue;
      }
      const damagedFiles: string[] = [];
      for (const file of filesOf(component)) {
        let intact = checked.get(file.sha256);
        if (intact === undefined) {
          try {
            await this.readFile(file, { verify: true, ...(signal ? { signal } : {}) });
            intact = true;
          } catch (error) {
            if (!isStoreError(error, 'INTEGRITY_MISMATCH')) throw error;
            intact = false;
          }
          checked.set(file.sha256, intact);
        }
        if (!intact) damagedFiles.push(file.path);
      }
      reports.push({
        componentId: id,
        state: damagedFiles.length > 0 ? 'damaged' : 'verified',
        damagedFiles,
      });
    }
    return reports;
  }

  /** Removes a component; files another stored component also uses stay. */
  async deleteComponent(manifest: Manifest, componentId: string): Promise<void> {
    const component = findComponent(manifest, componentId);
    await this.db.deleteComponent(manifest.modelId, componentId);
    const stillUsed = new Set(
      (await this.db.listComponents()).flatMap((record) => record.files.map((file) => file.sha256)),
    );
    for (const file of filesOf(component)) {
      if (stillUsed.has(file.sha256)) continue;
      await this.locks.request(fileLockName(file.sha256), { mode: 'exclusive' }, () =>
        this.forgetFile(file.sha256),
      );
    }
  }

  /** Removes every stored model. Downloads running in this store are stopped first. */
  async deleteAll(): Promise<void> {
    for (const controller of this.running) controller.abort(abortedError(undefined));
    await this.db.clear();
  }

  private async forgetFile(sha256: string): Promise<void> {
    const record = await this.db.getFile(sha256);
    if (record) await this.db.deleteFile(sha256, chunkCount(record.bytes, record.chunkBytes));
  }

  /** Complete: the completion record names exactly the manifest's files, and each is verified. */
  private async isComplete(
    modelId: string,
    componentId: string,
    component: ManifestComponent,
  ): Promise<boolean> {
    const [record, fileRecords] = await Promise.all([
      this.db.getComponent(modelId, componentId),
      this.db.getFiles(component.files.map((f) => f.sha256)),
    ]);
    return recordMatches(record, component) && fileRecords.every((r) => r?.verified === true);
  }

  private async assertComplete(
    manifest: Manifest,
    componentId: string,
    component: ManifestComponent,
  ): Promise<void> {
    if (!(await this.isComplete(manifest.modelId, componentId, component))) {
      throw new StoreError(
        'NOT_CACHED',
        `"${componentId}" of "${manifest.modelId}" is not completely downloaded: download it before use.`,
      );
    }
  }

  private async readFile(file: StoredFile, options: OpenOptions): Promise<Uint8Array> {
    const record = await this.db.getFile(file.sha256);
    if (!record?.verified) {
      throw new StoreError('NOT_CACHED', `"${file.path}" is not stored: download it before use.`, {
        details: { path: file.path },
      });
    }
    const bytes = new Uint8Array(file.bytes);
    const chunkHashes = options.verify
      ? chunkHashesFor(file, record.chunkBytes, this.chunkDigest)
      : undefined;
    const hasher = options.verify && !chunkHashes ? this.createHash() : undefined;
    const chunks = chunkCount(file.bytes, record.chunkBytes);
    // Per-chunk digests run while the next chunks are read; at most a few are pending at once.
    const pending: Promise<number | undefined>[] = [];
    const firstBad = async (): Promise<number | undefined> => {
      for (const index of await Promise.all(pending.splice(0))) if (index !== undefined) return index;
      return undefined;
    };
    for (let index = 0; index < chunks; index++) {
      throwIfAborted(options.signal);
      const chunk = await this.db.getChunk(file.sha256, index);
      const offset = index * record.chunkBytes;
      if (!chunk || chunk.byteLength !== Math.min(record.chunkBytes, file.bytes - offset)) {
        await Promise.allSettled(pending);
        await this.discardDamaged(file, `chunk ${index} is missing or has the wrong length`);
      } else {
        bytes.set(chunk, offset);
        hasher?.update(chunk);
        if (chunkHashes && this.chunkDigest) {
          const expected = chunkHashes[index];
          pending.push(this.chunkDigest(chunk).then((d) => (toHex(d) === expected ? undefined : index)));
          if (pending.length >= 8) {
            const bad = await firstBad();
            if (bad !== undefined) await this.discardDamaged(file, `chunk ${bad} does not match its sha256`);
          }
        }
      }
    }
    const bad = await firstBad();
    if (bad !== undefined) await this.discardDamaged(file, `chunk ${bad} does not match its sha256`);
    if (hasher) {
      const digest = toHex(hasher.digest());
      if (digest !== file.sha256) await this.discardDamaged(file, `its bytes hash to ${digest}`);
    }
    return bytes;
  }

  /** Stored bytes went bad (disk error, eviction, tampering): remove the file so a download repairs it. */
  private async discardDamaged(file: StoredFile, reason: string): Promise<never> {
    const users = (await this.db.listComponents()).filter((record) =>
      record.files.some((f) => f.sha256 === file.sha256),
    );
    for (const record of users) await this.db.deleteComponent(record.modelId, record.componentId);
    await this.forgetFile(file.sha256);
    throw new StoreError(
      'INTEGRITY_MISMATCH',
      `The stored copy of "${file.path}" is damaged (${reason}) and was removed; download the model again to repair it.`,
      { details: { path: file.path } },
    );
  }

  private async checkQuota(neededBytes: number): Promise<void> {
    if (neededBytes <= 0 || !this.storage?.estimate) return;
    let estimate: { usage?: number; quota?: number };
    try {
      estimate = await this.storage.estimate();
    } catch {
      return; // no estimate: the write itself will tell
    }
    if (estimate.quota === undefined) return;
    const freeBytes = Math.max(0, estimate.quota - (estimate.usage ?? 0));
    if (neededBytes > freeBytes) {
      throw new StoreError(
        'QUOTA_INSUFFICIENT',
        `This download needs ${formatBytes(neededBytes)}, but only ${formatBytes(freeBytes)} of browser storage is free. ` +
          'Free disk space, or delete components or other sites\u2019 data, then try again.',
        { details: { neededBytes, availableBytes: freeBytes } },
      );
    }
  }

  private asStoreError(error: unknown, signal: AbortSignal): StoreError {
    if (error instanceof StoreError) return error;
    if (signal.aborted) return abortedError(signal);
    const reason = error instanceof Error ? error.message : String(error);
    return new StoreError('STORAGE_FAILED', `The download failed unexpectedly: ${reason}`, { cause: error });
  }

  private explainFailure(error: unknown, remainingBytes: number, options: DownloadOptions): unknown {
    if (isStoreError(error, 'QUOTA_EXCEEDED')) {
      return new StoreError(
        'QUOTA_EXCEEDED',
        `Browser storage filled up: ${formatBytes(remainingBytes)} more are needed to finish. ` +
          'What was downloaded and verified is kept; free that much space (delete components or other sites\u2019 data) and resume.',
        { cause: error.cause ?? error, details: { neededBytes: remainingBytes } },
      );
    }
    // When the caller paused or cancelled, siblings fail with ABORTED: report the pause, not a sibling.
    if (options.signal?.aborted && !(error instanceof StoreError && error.code === 'ABORTED'))
      return abortedError(options.signal);
    return error;
  }
}

/** A store on this worker's IndexedDB, storage manager and Web Locks (each overridable). */
export function createWorkerModelStore(options: Partial<ModelStoreOptions> = {}): ModelStore {
  const nav = (globalThis as { navigator?: { storage?: StorageManagerLike; locks?: LockManagerLike } })
    .navigator;
  return new ModelStore({
    ...(nav?.storage ? { storage: nav.storage } : {}),
    ...(nav?.locks ? { locks: nav.locks } : {}),
    ...options,
    database: options.database ?? openStoreDatabase(indexedDB),
  });
}
