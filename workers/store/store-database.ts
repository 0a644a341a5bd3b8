import { clear, del, delMany, get, getMany, promisifyRequest, setMany, type UseStore } from 'idb-keyval';
import { isQuotaExceeded, StoreError } from './store-error';

/**
 * The IndexedDB layout: one idb-keyval store, three kinds of record under array keys.
 *
 *  ['chunk', sha256, index]          → ArrayBuffer, `chunkBytes` long (the last one shorter)
 *  ['file', sha256]                  → FileRecord: how many leading chunks are stored, verified or not
 *  ['component', modelId, component] → ComponentRecord: written last, only when every file is verified
 *
 * Chunks and file records are keyed by the file's sha256, not its path: the same bytes in another
 * manifest version (or another precision's shared tokenizer) are stored once, and a changed file
 * can never be mistaken for the old one. Whoever writes chunks of a sha256 holds that file's lock.
 */

export type ChunkKey = ['chunk', string, number];
export type FileKey = ['file', string];
export type ComponentKey = ['component', string, string];

export interface FileRecord {
  readonly sha256: string;
  /** The file's size, bytes. */
  readonly bytes: number;
  /** Chunk size this file was stored with, bytes (a later build may use another for new files). */
  readonly chunkBytes: number;
  /** Chunks 0..storedChunks-1 are in the database, in order; nothing after them counts. */
  readonly storedChunks: number;
  /** True once every chunk is stored and the whole file hashed to `sha256` (or every chunk to its manifest hash). */
  readonly verified: boolean;
  /** Each stored chunk matched the manifest's per-chunk sha256 before it was stored: resume re-hashes none. */
  readonly chunksVerified?: boolean;
}

export interface ComponentRecord {
  readonly modelId: string;
  readonly componentId: string;
  /** The files (as the manifest named them) whose verified chunks make the component present. */
  readonly files: readonly { readonly path: string; readonly sha256: string; readonly bytes: number }[];
  /** Clock time the record was written, ms. */
  readonly completedAt: number;
}

export const chunkKey = (sha256: string, index: number): ChunkKey => ['chunk', sha256, index];
export const fileKey = (sha256: string): FileKey => ['file', sha256];
export const componentKey = (modelId: string, componentId: string): ComponentKey => [
  'component',
  modelId,
  componentId,
];

export function chunkCount(bytes: number, chunkBytes: number): number {
  return Math.ceil(bytes / chunkBytes);
}

/**
 * An idb-keyval custom store on an injected IDBFactory (the worker's `indexedDB`, or
 * fake-indexeddb's in Node). idb-keyval's own createStore reads the global, which tests can't swap.
 */
export function openStoreDatabase(
  factory: IDBFactory,
  dbName = 'kandinsky-models',
  storeName = 'records',
): UseStore {
  let opening: Promise<IDBDatabase> | undefined;
  const database = (): Promise<IDBDatabase> => {
    if (opening) return opening;
    const request = factory.open(dbName);
    request.onupgradeneeded = () => request.result.createObjectStore(storeName);
    opening = promisifyRequest(request).then(
      (db) => {
        // Another tab deleting or upgrading the database must not be blocked by this connection.
        db.onversionchange = () => {
          db.close();
          opening = undefined;
        };
        db.onclose = () => {
          opening = undefined;
        };
        return db;
      },
      (error: unknown) => {
        opening = undefined;
        throw error;
      },
    );
    return opening;
  };
  return (mode, callback) =>
    database().then((db) => callback(db.transaction(storeName, mode).objectStore(storeName)));
}

/** Typed access to the records; every IndexedDB failure leaves as a StoreError with a code. */
export class StoreDatabase {
  constructor(private readonly store: UseStore) {}

  getFile(sha256: string): Promise<FileRecord | undefined> {
    return this.guard(() => get<FileRecord>(fileKey(sha256), this.store));
  }

  getFiles(sha256s: readonly string[]): Promise<(FileRecord | undefined)[]> {
    return this.guard(() =>
      getMany<FileRecord>(
        sha256s.map((sha) => fileKey(sha)),
        this.store,
      ),
    );
  }

  async getChunk(sha256: string, index: number): Promise<Uint8Array | undefined> {
    const value = await this.guard(() => get<ArrayBuffer | Uint8Array>(chunkKey(sha256, index), this.store));
    if (value === undefined) return undefined;
    return value instanceof Uint8Array ? value : new Uint8Array(value);
  }

  /**
   * Stores one chunk and the file's progress in one transaction, so a crash or a full disk never
   * leaves a record claiming a chunk that isn't there.
   */
  putChunk(sha256: string, index: number, bytes: Uint8Array, record: FileRecord): Promise<void> {
    // A view would be cloned with its whole underlying buffer: store exactly the chunk's bytes.
    const value =
      bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength
        ? bytes.buffer
        : bytes.slice().buffer;
    return this.guard(() =>
      setMany(
        [
          [chunkKey(sha256, index), value],
          [fileKey(sha256), record],
        ],
        this.store,
      ),
    );
  }

  putFile(record: FileRecord): Promise<void> {
    return this.guard(() => setMany([[fileKey(record.sha256), record]], this.store));
  }

  /** Forgets a file: its record first (in the same transaction as its chunks), so nothing half-deleted counts. */
  deleteFile(sha256: string, chunks: number): Promise<void> {
    const keys: IDBValidKey[] = [fileKey(sha256)];
    for (let index = 0; index < chunks; index++) keys.push(chunkKey(sha256, index));
    return this.guard(() => delMany(keys, this.store));
  }

  getComponent(modelId: string, componentId: string): Promise<ComponentRecord | undefined> {
    return this.guard(() => get<ComponentRecord>(componentKey(modelId, componentId), this.store));
  }

  putComponent(record: ComponentRecord): Promise<void> {
    return this.guard(() =>
      setMany([[componentKey(record.modelId, record.componentId), record]], this.store),
    );
  }

  deleteComponent(modelId: string, componentId: string): Promise<void> {
    return this.guard(() => del(componentKey(modelId, componentId), this.store));
  }

  /** Every completion record, of every model: needed to know which files another component still uses. */
  listComponents(): Promise<ComponentRecord[]> {
    return this.guard(() => this.componentEntries());
  }

  clear(): Promise<void> {
    return this.guard(() => clear(this.store));
  }

  private async componentEntries(): Promise<ComponentRecord[]> {
    // Only keys are listed first so chunk payloads (megabytes each) are never read here.
    const allKeys = await this.store('readonly', (store) => promisifyRequest(store.getAllKeys()));
    const keys = allKeys.filter((key): key is IDBValidKey[] => Array.isArray(key) && key[0] === 'component');
    if (keys.length === 0) return [];
    return (await getMany<ComponentRecord>(keys, this.store)).filter(
      (record): record is ComponentRecord => record !== undefined,
    );
  }

  private async guard<T>(operation: () => Promise<T>): Promise<T> {
    try {
      return await operation();
    } catch (error) {
      if (error instanceof StoreError) throw error;
      if (isQuotaExceeded(error)) {
        throw new StoreError('QUOTA_EXCEEDED', 'Storage is full.', { cause: error });
      }
      const reason = error instanceof Error ? `${error.name}: ${error.message}` : String(error);
      throw new StoreError(
        'STORAGE_FAILED',
        `The browser's storage (IndexedDB) failed: ${reason}. Private windows and some privacy settings block it.`,
        { cause: error },
      );
    }
  }
}

// Re-exported so callers (and tests that wrap the store to inject faults) need one import.
export type { UseStore };
