/**
 * The reading side of the model store: what is stored (per component: complete, partial or
 * absent), the verified bytes of a stored file or ONNX component, re-verification, and deletion.
 * A component counts as stored only when its completion record names exactly the manifest's files
 * and each of them is verified.
 */
import type { Manifest, ManifestComponent } from '../../models/manifest';
import {
  type ChunkDigest,
  chunkHashesFor,
  type Sha256Factory,
  type StoredFile,
  toHex,
} from './file-download';
import { fileLockName, type LockManagerLike } from './file-locks';
import type { StorageManagerLike } from './model-store';
import { type ComponentRecord, chunkCount, type FileRecord, type StoreDatabase } from './store-database';
import { isStoreError, StoreError, throwIfAborted } from './store-error';

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

export function componentEntries(manifest: Manifest): ComponentEntry[] {
  return (Object.entries(manifest.components) as [string, ManifestComponent | undefined][]).flatMap(
    ([id, component]) => (component ? [{ id, component }] : []),
  );
}

export function findComponent(manifest: Manifest, componentId: string): ManifestComponent {
  const component = (manifest.components as Record<string, ManifestComponent | undefined>)[componentId];
  if (!component) {
    throw new StoreError(
      'UNKNOWN_COMPONENT',
      `The model set "${manifest.modelId}" has no component "${componentId}".`,
    );
  }
  return component;
}

export function filesOf(component: ManifestComponent): StoredFile[] {
  return component.files.map(({ path, sha256, bytes, chunks }) => ({ path, sha256, bytes, chunks }));
}

export function storedBytesOf(file: StoredFile, record: FileRecord | undefined): number {
  if (!record || record.bytes !== file.bytes) return 0;
  return record.verified ? file.bytes : Math.min(file.bytes, record.storedChunks * record.chunkBytes);
}

export function recordMatches(record: ComponentRecord | undefined, component: ManifestComponent): boolean {
  if (!record || record.files.length !== component.files.length) return false;
  return component.files.every((file, i) => {
    const stored = record.files[i];
    return stored?.path === file.path && stored.sha256 === file.sha256 && stored.bytes === file.bytes;
  });
}

/** What the reading side needs of the store. */
export interface StoredFilesContext {
  readonly db: StoreDatabase;
  readonly locks: LockManagerLike;
  readonly storage: StorageManagerLike | undefined;
  readonly createHash: Sha256Factory;
  readonly chunkDigest: ChunkDigest | undefined;
}

export class StoredFiles {
  constructor(private readonly context: StoredFilesContext) {}

  /** Per component of the manifest: complete, partial or absent, and bytes stored; plus quota. */
  async getCacheStatus(manifest: Manifest): Promise<CacheStatus> {
    const components: ComponentStatus[] = [];
    for (const { id, component } of componentEntries(manifest)) {
      const files = filesOf(component);
      const [record, fileRecords] = await Promise.all([
        this.context.db.getComponent(manifest.modelId, id),
        this.context.db.getFiles(files.map((f) => f.sha256)),
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
    const estimate = await this.context.storage?.estimate?.().catch(() => undefined);
    const persisted = this.context.storage?.persisted
      ? await this.context.storage.persisted().catch(() => null)
      : null;
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
    await this.context.db.deleteComponent(manifest.modelId, componentId);
    const stillUsed = new Set(
      (await this.context.db.listComponents()).flatMap((record) => record.files.map((file) => file.sha256)),
    );
    for (const file of filesOf(component)) {
      if (stillUsed.has(file.sha256)) continue;
      await this.context.locks.request(fileLockName(file.sha256), { mode: 'exclusive' }, () =>
        this.forgetFile(file.sha256),
      );
    }
  }

  private async forgetFile(sha256: string): Promise<void> {
    const record = await this.context.db.getFile(sha256);
    if (record) await this.context.db.deleteFile(sha256, chunkCount(record.bytes, record.chunkBytes));
  }

  /** Complete: the completion record names exactly the manifest's files, and each is verified. */
  private async isComplete(
    modelId: string,
    componentId: string,
    component: ManifestComponent,
  ): Promise<boolean> {
    const [record, fileRecords] = await Promise.all([
      this.context.db.getComponent(modelId, componentId),
      this.context.db.getFiles(component.files.map((f) => f.sha256)),
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
    const record = await this.context.db.getFile(file.sha256);
    if (!record?.verified) {
      throw new StoreError('NOT_CACHED', `"${file.path}" is not stored: download it before use.`, {
        details: { path: file.path },
      });
    }
    const bytes = new Uint8Array(file.bytes);
    const chunkHashes = options.verify
      ? chunkHashesFor(file, record.chunkBytes, this.context.chunkDigest)
      : undefined;
    const hasher = options.verify && !chunkHashes ? this.context.createHash() : undefined;
    const chunks = chunkCount(file.bytes, record.chunkBytes);
    // Per-chunk digests run while the next chunks are read; at most a few are pending at once.
    const pending: Promise<number | undefined>[] = [];
    const firstBad = async (): Promise<number | undefined> => {
      for (const index of await Promise.all(pending.splice(0))) if (index !== undefined) return index;
      return undefined;
    };
    for (let index = 0; index < chunks; index++) {
      throwIfAborted(options.signal);
      const chunk = await this.context.db.getChunk(file.sha256, index);
      const offset = index * record.chunkBytes;
      if (!chunk || chunk.byteLength !== Math.min(record.chunkBytes, file.bytes - offset)) {
        await Promise.allSettled(pending);
        await this.discardDamaged(file, `chunk ${index} is missing or has the wrong length`);
      } else {
        bytes.set(chunk, offset);
        hasher?.update(chunk);
        if (chunkHashes && this.context.chunkDigest) {
          const expected = chunkHashes[index];
          pending.push(
            this.context.chunkDigest(chunk).then((d) => (toHex(d) === expected ? undefined : index)),
          );
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
    const users = (await this.context.db.listComponents()).filter((record) =>
      record.files.some((f) => f.sha256 === file.sha256),
    );
    for (const record of users) await this.context.db.deleteComponent(record.modelId, record.componentId);
    await this.forgetFile(file.sha256);
    throw new StoreError(
      'INTEGRITY_MISMATCH',
      `The stored copy of "${file.path}" is damaged (${reason}) and was removed; download the model again to repair it.`,
      { details: { path: file.path } },
    );
  }
}
