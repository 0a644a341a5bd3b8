/**
 * The closed list of failures that cross the worker boundary. comlink loses `instanceof` across
 * postMessage, so the `code` string is the contract between the worker and the UI.
 */
export const ERROR_CODES = [
  'WEBGPU_UNAVAILABLE',
  'WEBGPU_NO_ADAPTER',
  'WEBGPU_DEVICE_LOST',
  'ORT_INIT_FAILED',
  'MODEL_LOAD_FAILED',
  'INFERENCE_FAILED',
  'INVALID_INPUT',
  'CANCELLED',
  'INTERNAL',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

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

/** Reads the stable code and message from anything thrown on either side of the boundary. */
export function toWireError(error: unknown): WireError {
  if (typeof error === 'object' && error !== null) {
    const { code, message } = error as { code?: unknown; message?: unknown };
    const text = typeof message === 'string' && message.length > 0 ? message : String(error);
    return { code: isErrorCode(code) ? code : 'INTERNAL', message: text };
  }
  return { code: 'INTERNAL', message: String(error) };
}
