/**
 * The CLI's copy of a hosted model set (a URL or a Hub repo id): downloaded into a cache folder by
 * the model store's own file download (workers/store/file-download.ts: resume from the chunks
 * already stored, each chunk or the whole file checked against the manifest's sha256, one refetch
 * on a mismatch), so a batch job uses the same hosted set as the browser with the same checks. A
 * file appears under its manifest path only once verified; the CLI's reader hashes it again
 * before onnxruntime gets a byte.
 */
import { createHash } from 'node:crypto';
import { mkdir, open, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import path from 'node:path';
import type { Manifest } from '../models/manifest';
import {
  DEFAULT_RETRY,
  downloadFile,
  type FileDatabase,
  nativeChunkDigest,
  nobleSha256,
  type RetryPolicy,
  realSleep,
  type StoredFile,
} from '../workers/store/file-download';
import type { ModelSource } from '../workers/store/model-source';
import type { FileRecord } from '../workers/store/store-database';

/** `$XDG_CACHE_HOME/kandinsky-web`, else `~/.cache/kandinsky-web`. */
export function defaultCacheRoot(env: Readonly<Record<string, string | undefined>>): string {
  const base =
    env.XDG_CACHE_HOME && env.XDG_CACHE_HOME.length > 0 ? env.XDG_CACHE_HOME : path.join(homedir(), '.cache');
  return path.join(base, 'kandinsky-web');
}

/** One folder per source: the first 16 hex digits of the manifest URL's sha256. */
export function cacheFolderFor(root: string, manifestUrl: string): string {
  return path.join(root, createHash('sha256').update(manifestUrl).digest('hex').slice(0, 16));
}

/** Folder where files being downloaded live: `<sha256>.part` (chunks in place) and `<sha256>.json` (progress). */
const PARTIAL = '.partial';

/**
 * The store's chunk database over a folder: a file's chunks are written in place into one `.part`
 * file, and its record (how many chunks are stored, verified or not) is replaced after them, so a
 * crash never leaves a record that claims a chunk that was not written.
 */
export class FolderFileDatabase implements FileDatabase {
  constructor(private readonly dir: string) {}

  private recordPath(sha256: string): string {
    return path.join(this.dir, `${sha256}.json`);
  }

  partPath(sha256: string): string {
    return path.join(this.dir, `${sha256}.part`);
  }

  async getFile(sha256: string): Promise<FileRecord | undefined> {
    try {
      return JSON.parse(await readFile(this.recordPath(sha256), 'utf8')) as FileRecord;
    } catch {
      return undefined; // none yet, or a torn write: the download starts this file again
    }
  }

  async putFile(record: FileRecord): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    const file = this.recordPath(record.sha256);
    await writeFile(`${file}.tmp`, JSON.stringify(record));
    await rename(`${file}.tmp`, file);
  }

  async getChunk(sha256: string, index: number): Promise<Uint8Array | undefined> {
    const record = await this.getFile(sha256);
    if (!record) return undefined;
    const offset = index * record.chunkBytes;
    const length = Math.min(record.chunkBytes, record.bytes - offset);
    if (length <= 0) return undefined;
    const handle = await open(this.partPath(sha256), 'r').catch(() => undefined);
    if (!handle) return undefined;
    try {
      const chunk = new Uint8Array(length);
      const { bytesRead } = await handle.read(chunk, 0, length, offset);
      return bytesRead === length ? chunk : undefined;
    } finally {
      await handle.close();
    }
  }

  async putChunk(sha256: string, index: number, bytes: Uint8Array, record: FileRecord): Promise<void> {
    await mkdir(this.dir, { recursive: true });
    const file = this.partPath(sha256);
    const handle = await open(file, 'r+').catch(() => open(file, 'w+'));
    try {
      await handle.write(bytes, 0, bytes.byteLength, index * record.chunkBytes);
      await handle.datasync();
    } finally {
      await handle.close();
    }
    await this.putFile(record);
  }

  async deleteFile(sha256: string): Promise<void> {
    await rm(this.recordPath(sha256), { force: true });
    await rm(this.partPath(sha256), { force: true });
  }
}

export interface CacheDownload {
  readonly source: ModelSource;
  readonly manifest: Manifest;
  /** manifest.json's text as the source sent it; written into the folder first. */
  readonly manifestText: string;
  /** Components whose files to bring (each file once, whatever components share it). */
  readonly components: readonly string[];
  /** The cache folder of this source (`cacheFolderFor`). */
  readonly dir: string;
  /** Chunk size for files not yet started, bytes (default 4 MiB, the browser store's). */
  readonly chunkBytes?: number;
  readonly retry?: RetryPolicy;
  readonly signal?: AbortSignal;
  /** A file is in the folder: fetched now, or there from an earlier run. */
  readonly onFile?: (path: string, bytes: number, fetched: boolean) => void;
}

export const CACHE_CHUNK_BYTES = 4 * 1024 * 1024;

/**
 * Brings the components' files into `dir` under their manifest paths, verified; resumes whatever
 * an interrupted run left. Returns the bytes received from the source by this call.
 */
export async function downloadToCache(options: CacheDownload): Promise<{ receivedBytes: number }> {
  const { dir, manifest } = options;
  await mkdir(dir, { recursive: true });
  await writeFile(path.join(dir, 'manifest.json.tmp'), options.manifestText);
  await rename(path.join(dir, 'manifest.json.tmp'), path.join(dir, 'manifest.json'));
  const db = new FolderFileDatabase(path.join(dir, PARTIAL));
  const files = new Map<string, StoredFile>();
  const components = manifest.components as Record<string, { files: readonly StoredFile[] } | undefined>;
  for (const id of options.components) {
    for (const { path: file, sha256, bytes, chunks } of components[id]?.files ?? []) {
      files.set(file, { path: file, sha256, bytes, chunks });
    }
  }
  let receivedBytes = 0;
  const signal = options.signal ?? new AbortController().signal;
  for (const file of files.values()) {
    const target = path.join(dir, file.path);
    const present = await stat(target).catch(() => undefined);
    if (present?.isFile() && present.size === file.bytes) {
      options.onFile?.(file.path, file.bytes, false);
      continue;
    }
    await downloadFile(
      {
        db,
        source: options.source,
        chunkBytes: options.chunkBytes ?? CACHE_CHUNK_BYTES,
        retry: options.retry ?? DEFAULT_RETRY,
        sleep: realSleep,
        createHash: nobleSha256,
        chunkDigest: nativeChunkDigest,
        signal,
        report: (_file, _stage, _stored, received) => {
          receivedBytes += received;
        },
      },
      file,
    );
    // Verified: the bytes take the manifest's name, and the progress record goes.
    await mkdir(path.dirname(target), { recursive: true });
    const part = db.partPath(file.sha256);
    if (file.bytes === 0) await writeFile(part, new Uint8Array(0));
    await rename(part, target);
    await db.deleteFile(file.sha256);
    options.onFile?.(file.path, file.bytes, true);
  }
  await rm(path.join(dir, PARTIAL), { recursive: true, force: true });
  return { receivedBytes };
}
