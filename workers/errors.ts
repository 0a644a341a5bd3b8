import { STORE_ERROR_CODES, type StoreErrorCode } from './store/store-error';

/** The generator's own failures, besides the model store's. */
const GENERATOR_ERROR_CODES = [
  // the GPU
  'WEBGPU_UNAVAILABLE',
  'WEBGPU_NO_ADAPTER',
  'WEBGPU_DEVICE_LOST',
  /** The model set needs a WebGPU feature (shader-f16) the adapter lacks. */
  'WEBGPU_FEATURE_MISSING',
  'GPU_OUT_OF_MEMORY',
  // running models
  'ORT_INIT_FAILED',
  'MODEL_LOAD_FAILED',
  'MODEL_COMPONENT_MISSING',
  'INFERENCE_FAILED',
  /** A stage produced NaN or infinite values (broken weights or config, too low a precision). */
  'NUMERIC_FAILURE',
  // the request
  'INVALID_INPUT',
  'CANCELLED',
  'INTERNAL',
] as const;

/** The store's pause/cancel crosses the boundary as CANCELLED (see ALIASES). */
type StoreCode = Exclude<StoreErrorCode, 'ABORTED'>;

/**
 * The closed list of failures that cross the worker boundary: the generator's and the model
 * store's (workers/store/store-error.ts explains each). comlink loses `instanceof` across
 * postMessage, so the `code` string is the contract between the worker and the UI.
 */
export type ErrorCode = (typeof GENERATOR_ERROR_CODES)[number] | StoreCode;

export const ERROR_CODES: readonly ErrorCode[] = [
  ...GENERATOR_ERROR_CODES,
  ...STORE_ERROR_CODES.filter((code): code is StoreCode => code !== 'ABORTED'),
];

export class KandinskyError extends Error {
  override readonly name = 'KandinskyError';
  readonly code: ErrorCode;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.code = code;
  }
}

/** What a thrown error looks like after it crossed postMessage. */
export interface WireError {
  readonly code: ErrorCode;
  readonly message: string;
}

function isErrorCode(value: unknown): value is ErrorCode {
  return typeof value === 'string' && (ERROR_CODES as readonly string[]).includes(value);
}

/** Codes of lower layers that mean the same as one of ours. */
const ALIASES: Readonly<Record<string, ErrorCode>> = {
  ABORTED: 'CANCELLED', // the store's pause/cancel
};

/** Reads the stable code and message from anything thrown on either side of the boundary. */
export function toWireError(error: unknown): WireError {
  if (typeof error === 'object' && error !== null) {
    const { code, message } = error as { code?: unknown; message?: unknown };
    const text = typeof message === 'string' && message.length > 0 ? message : String(error);
    const known = typeof code === 'string' ? (ALIASES[code] ?? code) : code;
    return { code: isErrorCode(known) ? known : 'INTERNAL', message: text };
  }
  return { code: 'INTERNAL', message: String(error) };
}
