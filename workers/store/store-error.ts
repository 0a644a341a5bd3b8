/**
 * The closed list of failures the model store can report. Each is something a person can act on;
 * the `code` crosses the worker boundary (comlink loses `instanceof`), the message tells the fix.
 */
export const STORE_ERROR_CODES = [
  /** manifest.json is not valid JSON, fails the schema, or names an unsafe/duplicate path. */
  'MANIFEST_INVALID',
  /** The source has no file the manifest names (404, or missing from the picked folder). */
  'SOURCE_FILE_MISSING',
  /** A file path or URL points outside the model set's origin and folder. */
  'SOURCE_FORBIDDEN',
  /**
   * The host answered without the CORS headers a cross-origin download needs
   * (Access-Control-Allow-Origin, or Content-Range not exposed); the message names them.
   */
  'SOURCE_NO_CORS',
  /** The network failed (offline, DNS, connection dropped) and retries ran out. */
  'SOURCE_UNREACHABLE',
  /** The server answered with an HTTP error status and retries (for 5xx) ran out. */
  'HTTP_ERROR',
  /** The server's body ended early or declared a length other than the manifest's, retries ran out. */
  'SIZE_MISMATCH',
  /** Bytes do not hash to the manifest's sha256 (after one refetch), or stored bytes went bad. */
  'INTEGRITY_MISMATCH',
  /** Not enough free storage to start: needs X, Y free. */
  'QUOTA_INSUFFICIENT',
  /** Storage filled up while writing; verified chunks are kept. */
  'QUOTA_EXCEEDED',
  /** IndexedDB failed for another reason (blocked, private mode, disk error). */
  'STORAGE_FAILED',
  /** Asked to open a component or file that is not completely stored and verified. */
  'NOT_CACHED',
  /** Asked for a component id or path the manifest does not have. */
  'UNKNOWN_COMPONENT',
  /** The caller's AbortSignal fired (pause or cancel); verified chunks are kept. */
  'ABORTED',
] as const;

export type StoreErrorCode = (typeof STORE_ERROR_CODES)[number];

export interface StoreErrorDetails {
  /** The manifest-relative file path the error is about, when there is one. */
  readonly path?: string;
  /** HTTP status, for HTTP_ERROR. */
  readonly status?: number;
  /** Bytes that are needed (QUOTA_*) or expected (SIZE_MISMATCH). */
  readonly neededBytes?: number;
  /** Bytes free (QUOTA_INSUFFICIENT) or received (SIZE_MISMATCH). */
  readonly availableBytes?: number;
  /** For MANIFEST_INVALID: the manifest validator's own code (models/manifest.ts) and field. */
  readonly manifestCode?: string;
  readonly field?: string;
  /** For INTEGRITY_MISMATCH of a file with per-chunk hashes: the bad chunk's index, from 0. */
  readonly chunk?: number;
}

export class StoreError extends Error {
  override readonly name = 'StoreError';
  readonly code: StoreErrorCode;
  readonly details: StoreErrorDetails;
  /**
   * True for transport faults worth another try after a backoff (network errors, 5xx, a body cut
   * short). Only the downloader reads it; it never decides what the user sees.
   */
  readonly retryable: boolean;

  constructor(
    code: StoreErrorCode,
    message: string,
    options: { cause?: unknown; details?: StoreErrorDetails; retryable?: boolean } = {},
  ) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.code = code;
    this.details = options.details ?? {};
    this.retryable = options.retryable ?? false;
  }
}

export function isStoreError(error: unknown, code?: StoreErrorCode): error is StoreError {
  return error instanceof StoreError && (code === undefined || error.code === code);
}

/** The error an aborted operation throws: ours with code ABORTED, whatever the signal's reason. */
export function abortedError(signal: AbortSignal | undefined): StoreError {
  return new StoreError(
    'ABORTED',
    'Stopped before finishing; what was verified is kept, start again to resume.',
    {
      cause: signal?.reason,
    },
  );
}

export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw abortedError(signal);
}

/** IndexedDB reports a full disk as a DOMException (or transaction error) named QuotaExceededError. */
export function isQuotaExceeded(error: unknown): boolean {
  return (
    typeof error === 'object' && error !== null && (error as { name?: unknown }).name === 'QuotaExceededError'
  );
}
