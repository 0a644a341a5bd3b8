/**
 * The gallery: every generated image kept in IndexedDB across reloads, as a PNG Blob (settings
 * embedded) plus a small record for listing without reading image bytes.
 *
 * One object store, two keys per image, written in one transaction: `record:<id>` and `png:<id>`.
 * A failure part-way (QuotaExceededError) aborts the transaction, so there is never a record
 * without its PNG or a PNG nobody lists.
 */
import { createStore, promisifyRequest, type UseStore } from 'idb-keyval';
import type { GenerationSettings } from '../../workers/api';

export interface GalleryRecord {
  readonly id: string;
  /** Milliseconds since the Unix epoch. */
  readonly createdAt: number;
  readonly settings: GenerationSettings;
  /** Pixels. */
  readonly width: number;
  readonly height: number;
  /** Size of the PNG, bytes. */
  readonly bytes: number;
}

export class GalleryError extends Error {
  override readonly name = 'GalleryError';
  readonly code: 'STORAGE_FULL' | 'STORAGE_FAILED';

  constructor(code: 'STORAGE_FULL' | 'STORAGE_FAILED', message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

const RECORD_PREFIX = 'record:';
const PNG_PREFIX = 'png:';

function isQuotaError(error: unknown): boolean {
  return (
    typeof error === 'object' &&
    error !== null &&
    'name' in error &&
    (error.name === 'QuotaExceededError' ||
      // Firefox before 2023 named it differently.
      error.name === 'NS_ERROR_DOM_QUOTA_REACHED')
  );
}

function storageError(error: unknown): GalleryError {
  if (error instanceof GalleryError) return error;
  if (isQuotaError(error)) {
    return new GalleryError('STORAGE_FULL', 'Storage full: delete some images or models.', { cause: error });
  }
  return new GalleryError('STORAGE_FAILED', `The gallery could not be written: ${String(error)}`, {
    cause: error,
  });
}

export function openGalleryDatabase(): UseStore {
  return createStore('kandinsky-gallery', 'images');
}

export class GalleryStore {
  private readonly withStore: UseStore;
  private readonly newId: () => string;

  constructor(useStore: UseStore = openGalleryDatabase(), newId: () => string = () => crypto.randomUUID()) {
    this.withStore = useStore;
    this.newId = newId;
  }

  /** Saves one image atomically; throws GalleryError('STORAGE_FULL') when the quota is exhausted. */
  async save(
    png: Blob,
    settings: GenerationSettings,
    size: { readonly width: number; readonly height: number },
    createdAt = Date.now(),
  ): Promise<GalleryRecord> {
    const record: GalleryRecord = {
      id: this.newId(),
      createdAt,
      settings,
      width: size.width,
      height: size.height,
      bytes: png.size,
    };
    try {
      await this.withStore('readwrite', (store) => {
        try {
          store.put(record, RECORD_PREFIX + record.id);
          store.put(png, PNG_PREFIX + record.id);
        } catch (error) {
          // A put can also fail synchronously; without the abort, the puts already queued
          // would still commit when the transaction auto-commits.
          store.transaction.abort();
          throw error;
        }
        return promisifyRequest(store.transaction);
      });
    } catch (error) {
      throw storageError(error);
    }
    return record;
  }

  /** Every record, newest first. Reads no image bytes. */
  async list(): Promise<GalleryRecord[]> {
    const records = await this.withStore('readonly', (store) =>
      promisifyRequest(store.getAll(IDBKeyRange.bound(RECORD_PREFIX, `${RECORD_PREFIX}\uffff`))),
    );
    return (records as GalleryRecord[]).sort((a, b) => b.createdAt - a.createdAt);
  }

  /** The PNG of an image, or undefined when it was deleted. */
  async png(id: string): Promise<Blob | undefined> {
    return this.withStore('readonly', (store) => promisifyRequest(store.get(PNG_PREFIX + id))) as Promise<
      Blob | undefined
    >;
  }

  async delete(id: string): Promise<void> {
    try {
      await this.withStore('readwrite', (store) => {
        store.delete(RECORD_PREFIX + id);
        store.delete(PNG_PREFIX + id);
        return promisifyRequest(store.transaction);
      });
    } catch (error) {
      throw storageError(error);
    }
  }
}
