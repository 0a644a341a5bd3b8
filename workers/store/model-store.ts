/**
 * The model store: downloads (or imports) a model set's components into IndexedDB, verified
 * chunk by chunk (model-download.ts), and hands the engine their bytes (stored-files.ts). Runs in
 * a worker or in Node; every platform service is injected.
 */
import { type Manifest, ManifestError, manifestFromJson } from '../../models/manifest';
import {
  type ChunkDigest,
  DEFAULT_RETRY,
  nativeChunkDigest,
  nobleSha256,
  type RetryPolicy,
  realSleep,
  type Sha256Factory,
  type Sleep,
} from './file-download';
import { InProcessLocks, type LockManagerLike } from './file-locks';
import {
  type DownloadOptions,
  type DownloadResult,
  ModelDownloads,
  type PersistenceState,
} from './model-download';
import type { ModelSource } from './model-source';
import { openStoreDatabase, StoreDatabase, type UseStore } from './store-database';
import { abortedError, StoreError } from './store-error';
import {
  type CacheStatus,
  type OnnxModelBytes,
  type OpenOptions,
  StoredFiles,
  type VerifyReport,
} from './stored-files';

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

export class ModelStore {
  private readonly db: StoreDatabase;
  private readonly storage: StorageManagerLike | undefined;
  private readonly files: StoredFiles;
  private readonly downloads: ModelDownloads;

  constructor(options: ModelStoreOptions) {
    const chunkBytes = options.chunkBytes ?? DEFAULT_CHUNK_BYTES;
    if (!Number.isSafeInteger(chunkBytes) || chunkBytes <= 0) {
      throw new RangeError(`chunkBytes must be a positive integer, got ${chunkBytes}`);
    }
    this.db = new StoreDatabase(options.database);
    this.storage = options.storage;
    const locks = options.locks ?? new InProcessLocks();
    const createHash = options.createHash ?? nobleSha256;
    const chunkDigest = options.chunkDigest === null ? undefined : (options.chunkDigest ?? nativeChunkDigest);
    // What reading and downloading share: the database, locks, storage manager and hashing.
    const stored = { db: this.db, locks, storage: this.storage, createHash, chunkDigest };
    this.files = new StoredFiles(stored);
    this.downloads = new ModelDownloads({
      ...stored,
      now: options.now ?? (() => Date.now()),
      sleep: options.sleep ?? realSleep,
      chunkBytes,
      concurrency: Math.max(1, options.concurrency ?? 3),
      retry: options.retry ?? DEFAULT_RETRY,
      progressIntervalMs: options.progressIntervalMs ?? 200,
      requestPersistence: () => this.requestPersistence(),
    });
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
  download(source: ModelSource, manifest: Manifest, options: DownloadOptions = {}): Promise<DownloadResult> {
    return this.downloads.download(source, manifest, options);
  }

  /** Per component of the manifest: complete, partial or absent, and bytes stored; plus quota. */
  getCacheStatus(manifest: Manifest): Promise<CacheStatus> {
    return this.files.getCacheStatus(manifest);
  }

  /** The verified bytes of one file of a complete component (NOT_CACHED otherwise). */
  openFile(
    manifest: Manifest,
    componentId: string,
    path: string,
    options: OpenOptions = {},
  ): Promise<Uint8Array> {
    return this.files.openFile(manifest, componentId, path, options);
  }

  /** A complete ONNX component as onnxruntime takes it: the graph bytes and its external-data shards. */
  openOnnxModel(manifest: Manifest, componentId: string, options: OpenOptions = {}): Promise<OnnxModelBytes> {
    return this.files.openOnnxModel(manifest, componentId, options);
  }

  /** Re-hashes every stored file of the components (default: all of the manifest); damaged files are removed. */
  verify(
    manifest: Manifest,
    componentIds?: readonly string[],
    signal?: AbortSignal,
  ): Promise<VerifyReport[]> {
    return this.files.verify(manifest, componentIds, signal);
  }

  /** Removes a component; files another stored component also uses stay. */
  deleteComponent(manifest: Manifest, componentId: string): Promise<void> {
    return this.files.deleteComponent(manifest, componentId);
  }

  /** Removes every stored model. Downloads running in this store are stopped first. */
  async deleteAll(): Promise<void> {
    for (const controller of this.downloads.running) controller.abort(abortedError(undefined));
    await this.db.clear();
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
