/**
 * The downloading side of the model store: fetches (or imports) the selected components' files
 * into IndexedDB, several at once, each resumable and verified (file-download.ts), and writes a
 * component's completion record only when every one of its files is verified.
 */
import type { Feature } from '../../models/contract';
import type { Manifest } from '../../models/manifest';
import { formatBytes } from '../format';
import {
  downloadFile,
  type FileDownloadContext,
  type FileStage,
  type RetryPolicy,
  type Sleep,
  type StoredFile,
} from './file-download';
import { fileLockName } from './file-locks';
import type { ModelSource } from './model-source';
import { abortedError, isStoreError, StoreError, throwIfAborted } from './store-error';
import {
  componentEntries,
  filesOf,
  findComponent,
  type StoredFilesContext,
  storedBytesOf,
} from './stored-files';

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

/** What the downloading side needs of the store. */
export interface ModelDownloadsContext extends StoredFilesContext {
  readonly now: () => number;
  readonly sleep: Sleep;
  readonly chunkBytes: number;
  readonly concurrency: number;
  readonly retry: RetryPolicy;
  readonly progressIntervalMs: number;
  readonly requestPersistence: () => Promise<PersistenceState>;
}

export class ModelDownloads {
  /** The downloads running now, so deleting everything can stop them first. */
  readonly running = new Set<AbortController>();

  constructor(private readonly context: ModelDownloadsContext) {}

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
    const records = await this.context.db.getFiles(shas);
    const done = new Map<string, number>();
    let reusedBytes = 0;
    shas.forEach((sha, i) => {
      const stored = storedBytesOf(files.get(sha) as StoredFile, records[i]);
      done.set(sha, stored);
      reusedBytes += stored;
    });
    const totalBytes = [...files.values()].reduce((sum, file) => sum + file.bytes, 0);
    await this.checkQuota(totalBytes - reusedBytes);
    const persistence = await this.context.requestPersistence();

    const controller = new AbortController();
    const onAbort = () => controller.abort(options.signal?.reason);
    options.signal?.addEventListener('abort', onAbort, { once: true });
    this.running.add(controller);

    const startedAt = this.context.now();
    let receivedBytes = 0;
    const lastEmit = new Map<string, number>();
    const emit = (componentId: string, file: StoredFile | null, stage: FileStage, error?: StoreError) => {
      if (!options.onProgress) return;
      const component = components.find((c) => c.id === componentId);
      const componentFiles = component?.files ?? [];
      const componentBytesDone = componentFiles.reduce((sum, f) => sum + (done.get(f.sha256) ?? 0), 0);
      const totalBytesDone = [...done.values()].reduce((sum, bytes) => sum + bytes, 0);
      const seconds = (this.context.now() - startedAt) / 1000;
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

    const fileContext: FileDownloadContext = {
      db: this.context.db,
      source,
      chunkBytes: this.context.chunkBytes,
      retry: this.context.retry,
      sleep: this.context.sleep,
      createHash: this.context.createHash,
      chunkDigest: this.context.chunkDigest,
      signal: controller.signal,
      report: (file: StoredFile, stage: FileStage, bytesDone: number, received: number) => {
        done.set(file.sha256, bytesDone);
        receivedBytes += received;
        if (stage === 'downloading') {
          const now = this.context.now();
          const last = lastEmit.get(file.sha256);
          if (last !== undefined && now - last < this.context.progressIntervalMs && bytesDone < file.bytes)
            return;
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
        await this.context.db.putComponent({
          modelId: manifest.modelId,
          componentId: component.id,
          files: component.files.map(({ path, sha256, bytes }) => ({ path, sha256, bytes })),
          completedAt: this.context.now(),
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
          await this.context.locks.request(
            fileLockName(current.sha256),
            { mode: 'exclusive', signal: controller.signal },
            () => downloadFile(fileContext, current),
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
      await Promise.all(Array.from({ length: Math.min(this.context.concurrency, queue.length) }, worker));
      if (firstError === undefined) await completeReadyComponents();
    } finally {
      options.signal?.removeEventListener('abort', onAbort);
      this.running.delete(controller);
    }
    if (firstError !== undefined) {
      // What is really stored now (progress counted bytes still in flight, which were lost).
      const stillNeeded = await this.context.db.getFiles(shas).then(
        (now) =>
          totalBytes -
          shas.reduce((sum, sha, i) => sum + storedBytesOf(files.get(sha) as StoredFile, now[i]), 0),
        () => totalBytes,
      );
      throw this.explainFailure(firstError, stillNeeded, options);
    }
    return { components: componentIds, receivedBytes, reusedBytes, persistence };
  }

  private async checkQuota(neededBytes: number): Promise<void> {
    if (neededBytes <= 0 || !this.context.storage?.estimate) return;
    let estimate: { usage?: number; quota?: number };
    try {
      estimate = await this.context.storage.estimate();
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
