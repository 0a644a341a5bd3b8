import { sha256 } from '@noble/hashes/sha2.js';
import type { ModelSource } from './model-source';
import { chunkCount, type FileRecord, type StoreDatabase } from './store-database';
import { abortedError, formatBytes, StoreError, throwIfAborted } from './store-error';

/** Incremental sha256: fed bytes in order, digested once. */
export interface Sha256Hasher {
  update(bytes: Uint8Array): unknown;
  digest(): Uint8Array;
}
export type Sha256Factory = () => Sha256Hasher;
export const nobleSha256: Sha256Factory = () => sha256.create();

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
}

export type FileStage = 'queued' | 'downloading' | 'verifying' | 'stored' | 'failed';

export interface FileDownloadContext {
  readonly db: StoreDatabase;
  readonly source: ModelSource;
  /** Chunk size for files not yet started, bytes. */
  readonly chunkBytes: number;
  readonly retry: RetryPolicy;
  readonly sleep: Sleep;
  readonly createHash: Sha256Factory;
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
  hasher: Sha256Hasher;
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
      ctx.report(file, 'verifying', file.bytes, 0);
      const digest = toHex(state.hasher.digest());
      if (digest !== file.sha256) {
        throw new ContentMismatch(`its sha256 is ${digest}, the manifest says ${file.sha256}`);
      }
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
  const state: ResumeState = {
    chunkBytes: record && record.bytes === file.bytes ? record.chunkBytes : ctx.chunkBytes,
    storedChunks: 0,
    hasher: ctx.createHash(),
  };
  if (!record || record.bytes !== file.bytes || record.storedChunks === 0) return state;
  ctx.report(file, 'verifying', 0, 0);
  for (let index = 0; index < record.storedChunks; index++) {
    throwIfAborted(ctx.signal);
    const chunk = await ctx.db.getChunk(file.sha256, index);
    if (!chunk || chunk.byteLength !== chunkLength(file.bytes, state.chunkBytes, index)) break;
    state.hasher.update(chunk);
    state.storedChunks = index + 1;
  }
  if (state.storedChunks !== record.storedChunks) await ctx.db.putFile(fileRecord(file, state));
  return state;
}

function chunkLength(fileBytes: number, chunkBytes: number, index: number): number {
  return Math.min(chunkBytes, fileBytes - index * chunkBytes);
}

/**
 * One request: streams the body into chunk-sized buffers, storing each (with the file's progress,
 * in one transaction) before it joins the hash. Returns when every chunk is stored.
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
    let chunk = new Uint8Array(chunkLength(file.bytes, state.chunkBytes, state.storedChunks));
    let filled = 0;
    for (;;) {
      const value = await read(ctx, file, reader);
      if (value === undefined) break;
      let consumed = 0;
      while (consumed < value.byteLength) {
        if (state.storedChunks === totalChunks) {
          return new ContentMismatch(`the server sent more than the manifest's ${file.bytes} bytes`);
        }
        const take = Math.min(value.byteLength - consumed, chunk.byteLength - filled);
        chunk.set(value.subarray(consumed, consumed + take), filled);
        filled += take;
        consumed += take;
        if (filled === chunk.byteLength) {
          const next = { ...fileRecord(file, state), storedChunks: state.storedChunks + 1 };
          await ctx.db.putChunk(file.sha256, state.storedChunks, chunk, next);
          // Hashed only once stored, so the hash always covers exactly the stored prefix.
          state.hasher.update(chunk);
          state.storedChunks++;
          filled = 0;
          if (state.storedChunks < totalChunks) {
            const length = chunkLength(file.bytes, state.chunkBytes, state.storedChunks);
            // IndexedDB cloned the buffer during put(): reuse it unless the last chunk is shorter.
            if (length !== chunk.byteLength) chunk = new Uint8Array(length);
          }
        }
      }
      ctx.report(file, 'downloading', state.storedChunks * state.chunkBytes + filled, value.byteLength);
    }
    if (state.storedChunks < totalChunks) {
      const received = state.storedChunks * state.chunkBytes + filled;
      throw new StoreError(
        'SIZE_MISMATCH',
        `The body of "${file.path}" ended after ${received} of ${file.bytes} bytes.`,
        { details: { path: file.path, neededBytes: file.bytes, availableBytes: received }, retryable: true },
      );
    }
    return undefined;
  } finally {
    await reader.cancel().catch(() => undefined);
  }
}

async function read(
  ctx: FileDownloadContext,
  file: StoredFile,
  reader: ReadableStreamDefaultReader<Uint8Array>,
): Promise<Uint8Array | undefined> {
  try {
    const { done, value } = await reader.read();
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
