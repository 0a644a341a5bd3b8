import { sha256 } from '@noble/hashes/sha2.js';
import { formatBytes } from '../format';
import { unlessAborted } from './file-locks';
import type { ModelSource } from './model-source';
import { chunkCount, type FileRecord, type StoreDatabase } from './store-database';

/**
 * Where one file's chunks and progress record are kept while it downloads: the store's IndexedDB
 * (StoreDatabase), or the CLI's cache folder (scripts/model-cache.ts).
 */
export type FileDatabase = Pick<
  StoreDatabase,
  'getFile' | 'putFile' | 'getChunk' | 'putChunk' | 'deleteFile'
>;

import { abortedError, StoreError, throwIfAborted } from './store-error';

/** Incremental sha256: fed bytes in order, digested once. */
export interface Sha256Hasher {
  update(bytes: Uint8Array): unknown;
  digest(): Uint8Array;
}
export type Sha256Factory = () => Sha256Hasher;
export const nobleSha256: Sha256Factory = () => sha256.create();

/** SHA-256 of one chunk, natively where the platform has it; chunks are hashed in parallel. */
export type ChunkDigest = (bytes: Uint8Array) => Promise<Uint8Array>;

/** `crypto.subtle.digest` (workers, browsers, Node 20); undefined where the platform lacks it. */
export const nativeChunkDigest: ChunkDigest | undefined = globalThis.crypto?.subtle
  ? async (bytes) =>
      new Uint8Array(await globalThis.crypto.subtle.digest('SHA-256', bytes as Uint8Array<ArrayBuffer>))
  : undefined;

/** Chunk digests started ahead of the one being stored, at most (bounds memory to this many chunks). */
const CHUNKS_IN_FLIGHT = 4;

export function toHex(bytes: Uint8Array): string {
  let hex = '';
  for (const byte of bytes) hex += byte.toString(16).padStart(2, '0');
  return hex;
}

/**
 * How transport faults are retried. `attempts` counts consecutive failures that stored nothing new:
 * a flaky connection that keeps making progress is never given up on, a dead one is, after
 * `attempts` retries spaced baseDelayMs·2^n (capped at maxDelayMs).
 */
export interface RetryPolicy {
  readonly attempts: number;
  readonly baseDelayMs: number;
  readonly maxDelayMs: number;
}
export const DEFAULT_RETRY: RetryPolicy = { attempts: 6, baseDelayMs: 1000, maxDelayMs: 30_000 };

export function backoffDelayMs(policy: RetryPolicy, failure: number): number {
  return Math.min(policy.maxDelayMs, policy.baseDelayMs * 2 ** (failure - 1));
}

export type Sleep = (ms: number, signal?: AbortSignal) => Promise<void>;

export const realSleep: Sleep = (ms, signal) =>
  new Promise<void>((resolve, reject) => {
    if (signal?.aborted) {
      reject(abortedError(signal));
      return;
    }
    const onAbort = () => {
      clearTimeout(timer);
      reject(abortedError(signal));
    };
    const timer = setTimeout(() => {
      signal?.removeEventListener('abort', onAbort);
      resolve();
    }, ms);
    signal?.addEventListener('abort', onAbort, { once: true });
  });

export interface StoredFile {
  readonly path: string;
  readonly sha256: string;
  /** Size, bytes. */
  readonly bytes: number;
  /** The manifest's per-chunk sha256s, when it has them. */
  readonly chunks?: { readonly bytes: number; readonly sha256: readonly string[] } | undefined;
}

/**
 * The per-chunk sha256s to verify `file` with when it is stored in chunks of `chunkBytes`:
 * only when the manifest has them for exactly that chunk size and a native digest exists.
 */
export function chunkHashesFor(
  file: StoredFile,
  chunkBytes: number,
  digest: ChunkDigest | undefined,
): readonly string[] | undefined {
  const chunks = file.chunks;
  if (!digest || !chunks || chunks.bytes !== chunkBytes) return undefined;
  return chunks.sha256.length === chunkCount(file.bytes, chunkBytes) ? chunks.sha256 : undefined;
}

export type FileStage = 'queued' | 'downloading' | 'verifying' | 'stored' | 'failed';

export interface FileDownloadContext {
  readonly db: FileDatabase;
  readonly source: ModelSource;
  /** Chunk size for files not yet started, bytes. */
  readonly chunkBytes: number;
  readonly retry: RetryPolicy;
  readonly sleep: Sleep;
  readonly createHash: Sha256Factory;
  /** Verifies chunks of files whose manifest entry has per-chunk sha256s; none: always hash the whole file. */
  readonly chunkDigest: ChunkDigest | undefined;
  readonly signal: AbortSignal;
  /**
   * Called on every stage change and after every network read: `storedBytes` of the file are in
   * the database, `receivedBytes` arrived from the source since the last call.
   */
  report(file: StoredFile, stage: FileStage, storedBytes: number, receivedBytes: number): void;
}

/** What one file's download left in the database, chunks and a prefix hash kept in step. */
interface ResumeState {
  chunkBytes: number;
  storedChunks: number;
  /** Feeds on stored chunks in order; unused when `chunkHashes` verify each chunk instead. */
  hasher: Sha256Hasher;
  /** Per-chunk sha256s: each chunk is verified before it is stored, the whole-file hash is skipped. */
  chunkHashes: readonly string[] | undefined;
}

/** The bytes did not hash (or measure) to what the manifest says: discard and refetch, once. */
class ContentMismatch extends Error {
  constructor(readonly reason: string) {
    super(reason);
  }
}

/**
 * Brings one file into the database, verified: resumes from the last stored chunk, retries
 * transport faults with backoff, refetches once on a hash mismatch. Returns when the file's record
 * says verified; throws a StoreError otherwise. The caller holds the file's lock.
 */
export async function downloadFile(ctx: FileDownloadContext, file: StoredFile): Promise<void> {
  const state = await resumeState(ctx, file);
  if (state === 'verified') {
    ctx.report(file, 'stored', file.bytes, 0);
    return;
  }
  let contentMismatches = 0;
  let failuresWithoutProgress = 0;
  for (;;) {
    throwIfAborted(ctx.signal);
    const chunksBefore = state.storedChunks;
    try {
      const outcome = await receive(ctx, file, state);
      if (outcome instanceof ContentMismatch) throw outcome;
      if (!state.chunkHashes) {
        ctx.report(file, 'verifying', file.bytes, 0);
        const digest = toHex(state.hasher.digest());
        if (digest !== file.sha256) {
          throw new ContentMismatch(`its sha256 is ${digest}, the manifest says ${file.sha256}`);
        }
      }
      // With chunk hashes, every stored chunk was verified before it was stored.
      await ctx.db.putFile({ ...fileRecord(file, state), verified: true });
      ctx.report(file, 'stored', file.bytes, 0);
      return;
    } catch (error) {
      if (error instanceof ContentMismatch) {
        // Which chunk is wrong can't be known: the whole file goes, nothing else does.
        await ctx.db.deleteFile(file.sha256, chunkCount(file.bytes, state.chunkBytes));
        state.storedChunks = 0;
        state.hasher = ctx.createHash();
        state.chunkBytes = ctx.chunkBytes;
        state.chunkHashes = chunkHashesFor(file, state.chunkBytes, ctx.chunkDigest);
        contentMismatches++;
        if (contentMismatches > 1) {
          throw new StoreError(
            'INTEGRITY_MISMATCH',
            `"${file.path}" from ${ctx.source.description} is not the file the manifest describes (${error.reason}), ` +
              'even after downloading it again. The model set on the server is damaged or mid-update: try later or another source.',
            { details: { path: file.path } },
          );
        }
        continue;
      }
      if (!(error instanceof StoreError) || !error.retryable) throw error;
      failuresWithoutProgress = state.storedChunks > chunksBefore ? 1 : failuresWithoutProgress + 1;
      if (failuresWithoutProgress > ctx.retry.attempts) {
        throw new StoreError(
          error.code,
          `${error.message} Gave up after ${ctx.retry.attempts} retries without progress; what was verified is kept, start again to resume.`,
          { cause: error, details: error.details },
        );
      }
      await ctx.sleep(backoffDelayMs(ctx.retry, failuresWithoutProgress), ctx.signal);
    }
  }
}

function fileRecord(file: StoredFile, state: ResumeState): FileRecord {
  return {
    sha256: file.sha256,
    bytes: file.bytes,
    chunkBytes: state.chunkBytes,
    storedChunks: state.storedChunks,
    verified: false,
    ...(state.chunkHashes ? { chunksVerified: true } : {}),
  };
}

/**
 * Re-hashes the chunks an earlier session stored (reading them back one at a time), so the
 * download continues where it stopped without trusting anything it can't re-check at the end.
 */
async function resumeState(ctx: FileDownloadContext, file: StoredFile): Promise<ResumeState | 'verified'> {
  const record = await ctx.db.getFile(file.sha256);
  if (record && record.bytes !== file.bytes) {
    // Same hash, other size: a record from a broken manifest. Start clean.
    await ctx.db.deleteFile(file.sha256, chunkCount(record.bytes, record.chunkBytes));
  } else if (record?.verified) {
    return 'verified';
  }
  const chunkBytes = record && record.bytes === file.bytes ? record.chunkBytes : ctx.chunkBytes;
  const state: ResumeState = {
    chunkBytes,
    storedChunks: 0,
    hasher: ctx.createHash(),
    chunkHashes: chunkHashesFor(file, chunkBytes, ctx.chunkDigest),
  };
  if (!record || record.bytes !== file.bytes || record.storedChunks === 0) return state;
  if (state.chunkHashes && record.chunksVerified) {
    // Each of these chunks was verified before it was stored: nothing to re-hash. The last one is
    // looked at (not hashed) in case the database lost chunks under its record.
    const last = record.storedChunks - 1;
    const chunk = await ctx.db.getChunk(file.sha256, last);
    if (chunk && chunk.byteLength === chunkLength(file.bytes, state.chunkBytes, last)) {
      state.storedChunks = record.storedChunks;
      return state;
    }
  }
  ctx.report(file, 'verifying', 0, 0);
  for (let index = 0; index < record.storedChunks; index++) {
    throwIfAborted(ctx.signal);
    const chunk = await ctx.db.getChunk(file.sha256, index);
    if (!chunk || chunk.byteLength !== chunkLength(file.bytes, state.chunkBytes, index)) break;
    if (state.chunkHashes && ctx.chunkDigest) {
      // Stored by a build that verified the whole file only at the end: check each chunk now.
      if (toHex(await ctx.chunkDigest(chunk)) !== state.chunkHashes[index]) break;
    } else {
      state.hasher.update(chunk);
    }
    state.storedChunks = index + 1;
  }
  if (state.storedChunks !== record.storedChunks || (state.chunkHashes && !record.chunksVerified))
    await ctx.db.putFile(fileRecord(file, state));
  return state;
}

function chunkLength(fileBytes: number, chunkBytes: number, index: number): number {
  return Math.min(chunkBytes, fileBytes - index * chunkBytes);
}

/**
 * One request from the first chunk not yet stored: checks where and how long the body says it
 * is, then receives it chunk by chunk (`receiveChunks`), verified per chunk where the manifest has
 * chunk hashes, else hashed as a whole. Returns when every chunk is stored.
 */
async function receive(
  ctx: FileDownloadContext,
  file: StoredFile,
  state: ResumeState,
): Promise<ContentMismatch | undefined> {
  const totalChunks = chunkCount(file.bytes, state.chunkBytes);
  if (state.storedChunks === totalChunks) return undefined; // every chunk was stored before a fault
  const offset = state.storedChunks * state.chunkBytes;
  const range = await ctx.source.openRange(file.path, offset, ctx.signal);
  const reader = range.body.getReader();
  try {
    if (range.start !== offset) {
      if (range.start !== 0) {
        throw new StoreError(
          'HTTP_ERROR',
          `${ctx.source.description} sent "${file.path}" from byte ${range.start}, not ${offset}.`,
          {
            details: { path: file.path },
            retryable: true,
          },
        );
      }
      // The server ignored Range and sends the whole file: start this file over, cleanly.
      state.storedChunks = 0;
      state.hasher = ctx.createHash();
      await ctx.db.putFile(fileRecord(file, state));
    }
    const expectedBytes = file.bytes - range.start;
    if (range.declaredBytes !== null && range.declaredBytes !== expectedBytes) {
      throw new StoreError(
        'SIZE_MISMATCH',
        `${ctx.source.description} announced ${range.declaredBytes} bytes of "${file.path}" from byte ${range.start}; ` +
          `the manifest says ${expectedBytes} (${formatBytes(file.bytes)} in all).`,
        {
          details: { path: file.path, neededBytes: expectedBytes, availableBytes: range.declaredBytes },
          retryable: true,
        },
      );
    }
    ctx.report(file, 'downloading', state.storedChunks * state.chunkBytes, 0);
    const sink = state.chunkHashes
      ? verifyingSink(ctx, file, state, state.chunkHashes)
      : hashingSink(ctx, file, state);
    return await receiveChunks(ctx, file, state, reader, sink);
  } finally {
    await cancelBody(reader);
  }
}

/** Where the chunks of a body go, in order (`receiveChunks`). */
interface ChunkSink {
  /**
   * Whether each chunk is checked against its own manifest hash: then bytes past the file's size
   * are not even read (every chunk already matched); otherwise they mean the file is not the one
   * the manifest describes.
   */
  readonly verifiesChunks: boolean;
  /** A buffer for chunk `index`; `filled` is the one just handed to `chunk`, free to reuse or not. */
  buffer(index: number, filled: Uint8Array | null): Uint8Array;
  /** Chunk `index` is complete. May return before it is stored (a pipeline), never out of order. */
  chunk(index: number, bytes: Uint8Array): Promise<void>;
  /** Waits until every chunk handed over is stored (throws what storing one threw). */
  flush(): Promise<void>;
}

/**
 * The body of `reader` cut into chunk-sized buffers from chunk `state.storedChunks` on, each handed
 * to `sink` as soon as it is full. Returns when every chunk of the file is stored; a body that ends
 * early is a retryable SIZE_MISMATCH, one that runs long (and isn't verified per chunk) a mismatch.
 */
async function receiveChunks(
  ctx: FileDownloadContext,
  file: StoredFile,
  state: ResumeState,
  reader: ReadableStreamDefaultReader<Uint8Array>,
  sink: ChunkSink,
): Promise<ContentMismatch | undefined> {
  const totalChunks = chunkCount(file.bytes, state.chunkBytes);
  let next = state.storedChunks;
  let chunk = sink.buffer(next, null);
  let filled = 0;
  try {
    while (!(sink.verifiesChunks && next === totalChunks)) {
      const value = await read(ctx, file, reader);
      if (value === undefined) break;
      let consumed = 0;
      while (consumed < value.byteLength) {
        if (next === totalChunks) {
          if (sink.verifiesChunks) break;
          return new ContentMismatch(`the server sent more than the manifest's ${file.bytes} bytes`);
        }
        const take = Math.min(value.byteLength - consumed, chunk.byteLength - filled);
        chunk.set(value.subarray(consumed, consumed + take), filled);
        filled += take;
        consumed += take;
        if (filled === chunk.byteLength) {
          await sink.chunk(next, chunk);
          next++;
          filled = 0;
          if (next < totalChunks) chunk = sink.buffer(next, chunk);
        }
      }
      ctx.report(
        file,
        'downloading',
        Math.min(file.bytes, next * state.chunkBytes + filled),
        value.byteLength,
      );
    }
  } finally {
    // Whatever was verified before a fault is stored before the caller retries from there.
    await sink.flush().catch(() => undefined);
  }
  await sink.flush();
  if (next < totalChunks) {
    const received = next * state.chunkBytes + filled;
    throw new StoreError(
      'SIZE_MISMATCH',
      `The body of "${file.path}" ended after ${received} of ${file.bytes} bytes.`,
      { details: { path: file.path, neededBytes: file.bytes, availableBytes: received }, retryable: true },
    );
  }
  return undefined;
}

/**
 * Without per-chunk hashes: each chunk is stored (with the file's progress, in one transaction)
 * and only then joins the whole-file hash, so the hash always covers exactly the stored prefix.
 */
function hashingSink(ctx: FileDownloadContext, file: StoredFile, state: ResumeState): ChunkSink {
  return {
    verifiesChunks: false,
    // IndexedDB cloned the buffer during put(): reuse it unless the last chunk is shorter.
    buffer: (index, filled) => {
      const length = chunkLength(file.bytes, state.chunkBytes, index);
      return filled?.byteLength === length ? filled : new Uint8Array(length);
    },
    async chunk(index, bytes) {
      await ctx.db.putChunk(file.sha256, index, bytes, {
        ...fileRecord(file, state),
        storedChunks: index + 1,
      });
      state.hasher.update(bytes);
      state.storedChunks = index + 1;
    },
    flush: async () => undefined,
  };
}

/**
 * With per-chunk hashes: each chunk is digested (natively, several at once) as soon as it is
 * complete and stored, in order, only once it matched its manifest hash: a stored chunk is always
 * a verified one. A chunk that doesn't match is fetched again on its own, once.
 */
function verifyingSink(
  ctx: FileDownloadContext,
  file: StoredFile,
  state: ResumeState,
  hashes: readonly string[],
): ChunkSink {
  const digest = ctx.chunkDigest as ChunkDigest;
  const ignore = () => undefined;
  // Full-size chunk buffers are recycled once stored (IndexedDB cloned them at put()): a fresh
  // multi-megabyte buffer per chunk costs page faults, zeroing and collections on every chunk.
  const spare: Uint8Array[] = [];
  const recycle = (bytes: Uint8Array) => {
    if (bytes.byteLength === state.chunkBytes && spare.length <= CHUNKS_IN_FLIGHT) spare.push(bytes);
  };
  // Chunks in order: each waits for its digest, then for the one before it to be stored.
  let tail: Promise<void> = Promise.resolve();
  const inFlight: Promise<void>[] = [];
  return {
    verifiesChunks: true,
    // Always another buffer: the one just filled is still being hashed and stored.
    buffer: (index) => {
      const length = chunkLength(file.bytes, state.chunkBytes, index);
      return length === state.chunkBytes ? (spare.pop() ?? new Uint8Array(length)) : new Uint8Array(length);
    },
    async chunk(index, bytes) {
      const hashed = digest(bytes).then(toHex);
      hashed.catch(ignore);
      tail = tail
        .then(() => storeVerifiedChunk(ctx, file, state, index, bytes, hashed, hashes))
        .then(() => recycle(bytes));
      tail.catch(ignore);
      inFlight.push(tail);
      if (inFlight.length > CHUNKS_IN_FLIGHT) await inFlight.shift();
    },
    flush: () => tail,
  };
}

async function storeVerifiedChunk(
  ctx: FileDownloadContext,
  file: StoredFile,
  state: ResumeState,
  index: number,
  bytes: Uint8Array,
  hashed: Promise<string>,
  hashes: readonly string[],
): Promise<void> {
  let chunk = bytes;
  const got = await hashed;
  if (got !== hashes[index]) {
    chunk = await refetchChunk(ctx, file, state, index);
    const again = toHex(await (ctx.chunkDigest as ChunkDigest)(chunk));
    if (again !== hashes[index]) {
      throw new StoreError(
        'INTEGRITY_MISMATCH',
        `Chunk ${index} of ${hashes.length} of "${file.path}" from ${ctx.source.description} is not what the manifest describes ` +
          `(its sha256 is ${again}, the manifest says ${hashes[index]}), even after downloading it again. ` +
          'The model set on the server is damaged or mid-update: try later or another source.',
        { details: { path: file.path, chunk: index } },
      );
    }
  }
  // Stored even after an abort: a verified chunk that arrived is kept for the resume.
  await ctx.db.putChunk(file.sha256, index, chunk, { ...fileRecord(file, state), storedChunks: index + 1 });
  state.storedChunks = index + 1;
}

/** One chunk again, on a request of its own (Range from its first byte, read to its last). */
async function refetchChunk(
  ctx: FileDownloadContext,
  file: StoredFile,
  state: ResumeState,
  index: number,
): Promise<Uint8Array> {
  const offset = index * state.chunkBytes;
  const chunk = new Uint8Array(chunkLength(file.bytes, state.chunkBytes, index));
  const range = await ctx.source.openRange(file.path, offset, ctx.signal);
  const reader = range.body.getReader();
  try {
    // A server that ignores Range sends the file from its start: skip to the chunk.
    let skip = offset - range.start;
    if (skip < 0) {
      throw new StoreError(
        'HTTP_ERROR',
        `${ctx.source.description} sent "${file.path}" from byte ${range.start}, not ${offset}.`,
        { details: { path: file.path }, retryable: true },
      );
    }
    let filled = 0;
    while (filled < chunk.byteLength) {
      const value = await read(ctx, file, reader);
      if (value === undefined) {
        throw new StoreError('SIZE_MISMATCH', `The body of "${file.path}" ended inside chunk ${index}.`, {
          details: { path: file.path },
          retryable: true,
        });
      }
      const start = Math.min(skip, value.byteLength);
      skip -= start;
      const take = Math.min(value.byteLength - start, chunk.byteLength - filled);
      chunk.set(value.subarray(start, start + take), filled);
      filled += take;
      ctx.report(file, 'downloading', state.storedChunks * state.chunkBytes, take);
    }
    return chunk;
  } finally {
    await cancelBody(reader);
  }
}

/** How long a cancelled body may take to confirm before the download moves on without it. */
const CANCEL_WAIT_MS = 1000;

/**
 * Cancels a response body (closing its connection) and waits for that, but not forever: the file's
 * lock is held until this returns, and a runtime that never settles the cancel (Node's fetch after
 * an abort, nodejs/undici#4089) would otherwise hold it, and every later download of the file, for good.
 */
async function cancelBody(reader: ReadableStreamDefaultReader<Uint8Array>): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([
    reader.cancel().catch(() => undefined),
    new Promise<void>((resolve) => {
      timer = setTimeout(resolve, CANCEL_WAIT_MS);
    }),
  ]);
  clearTimeout(timer);
}

async function read(
  ctx: FileDownloadContext,
  file: StoredFile,
  reader: ReadableStreamDefaultReader<Uint8Array>,
): Promise<Uint8Array | undefined> {
  try {
    // A pause or a failed sibling ends the read at once (as ABORTED, below), even where the runtime
    // would leave it pending; the body is cancelled on the way out.
    const { done, value } = await unlessAborted(reader.read(), ctx.signal);
    return done ? undefined : value;
  } catch (error) {
    throwIfAborted(ctx.signal);
    throw new StoreError('SOURCE_UNREACHABLE', `The connection dropped while downloading "${file.path}".`, {
      cause: error,
      details: { path: file.path },
      retryable: true,
    });
  }
}
