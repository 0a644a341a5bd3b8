/**
 * What a person reads when something fails: one line saying what happened and one saying what to
 * do. Keyed by the worker's stable error codes (the only thing that survives postMessage) and by
 * the UI's own failures (storage, image files).
 */
import type { ErrorCode } from '../../workers/errors';

export type UiErrorCode = 'STORAGE_FULL' | 'IMAGE_UNREADABLE' | 'IMAGE_TOO_LARGE';

export interface ErrorAdvice {
  readonly title: string;
  readonly advice: string;
}

const ADVICE: Readonly<Record<ErrorCode | UiErrorCode, ErrorAdvice>> = {
  WEBGPU_UNAVAILABLE: {
    title: 'WebGPU is not available',
    advice: 'Use a recent Chrome or Edge, or enable WebGPU in your browser (see “Your device” above).',
  },
  WEBGPU_NO_ADAPTER: {
    title: 'No usable GPU was found',
    advice: 'Update your graphics driver and make sure hardware acceleration is on.',
  },
  WEBGPU_FEATURE_MISSING: {
    title: 'This GPU can’t run these models',
    advice:
      'The fp16 models need 16-bit float shaders (shader-f16), which this GPU or browser lacks. Choose fp32 or int8 under Precision in the model manager.',
  },
  WEBGPU_DEVICE_LOST: {
    title: 'The GPU stopped responding',
    advice:
      'It probably ran out of memory. Try a smaller size or fewer images, close other GPU-heavy tabs, then generate again.',
  },
  GPU_OUT_OF_MEMORY: {
    title: 'The GPU ran out of memory',
    advice: 'Try a smaller size or fewer images, turn on low-memory mode, or close other GPU-heavy tabs.',
  },
  ORT_INIT_FAILED: {
    title: 'The inference runtime could not start',
    advice: 'Reload the page. If it keeps happening, your GPU driver may not support what the model needs.',
  },
  MODEL_LOAD_FAILED: {
    title: 'The model could not be loaded',
    advice: 'Open the model manager and check that every required component is downloaded and verified.',
  },
  MODEL_COMPONENT_MISSING: {
    title: 'A model component is missing',
    advice: 'This mode needs an optional component: download it in the model manager.',
  },
  INFERENCE_FAILED: {
    title: 'Generation failed on the GPU',
    advice: 'Try a smaller size or fewer steps. If it keeps happening, reload the page.',
  },
  NUMERIC_FAILURE: {
    title: 'The model produced invalid numbers',
    advice:
      'The picture would have come out black. Choose another precision (fp32 is safest) or another model set in the model manager.',
  },
  MANIFEST_INVALID: {
    title: 'The model set’s manifest is not valid',
    advice: 'Check the model source address, or choose another model set in the model manager.',
  },
  SOURCE_FILE_MISSING: {
    title: 'A model file is missing at the source',
    advice: 'The model source does not have every file its manifest lists. Choose another source.',
  },
  SOURCE_FORBIDDEN: {
    title: 'This app may not download from that source',
    advice:
      'The source (or where it redirects) is outside the origins this build allows (VITE_MODEL_ORIGINS), or a file points outside the set’s folder. Choose another source, or import the set as a folder.',
  },
  SOURCE_NO_CORS: {
    title: 'The model host does not allow this site to read its files',
    advice:
      'The host must send Access-Control-Allow-Origin (and expose Content-Range). Ask its owner, use another host, or import the set as a folder.',
  },
  SOURCE_UNREACHABLE: {
    title: 'The model source could not be reached',
    advice: 'Check your connection and try again; downloads resume where they stopped.',
  },
  HTTP_ERROR: {
    title: 'The model download failed',
    advice: 'The server answered with an error. Try again later; downloads resume where they stopped.',
  },
  SIZE_MISMATCH: {
    title: 'A downloaded model file has the wrong size',
    advice: 'It was not kept. Download it again; if it keeps happening, the model source is damaged.',
  },
  INTEGRITY_MISMATCH: {
    title: 'A downloaded model file failed verification',
    advice: 'Its checksum did not match, so it was not kept. Download it again.',
  },
  QUOTA_INSUFFICIENT: {
    title: 'Not enough storage for the model',
    advice: 'Free some space: delete some images or models, or free disk space on this device.',
  },
  QUOTA_EXCEEDED: {
    title: 'Storage full',
    advice: 'Storage full: delete some images or models, then try again.',
  },
  STORAGE_FAILED: {
    title: 'The browser refused to store data',
    advice: 'Private browsing can do this. Use a normal window, or download the image instead.',
  },
  NOT_CACHED: {
    title: 'The model is not downloaded yet',
    advice: 'Download the model set in the model manager first.',
  },
  UNKNOWN_COMPONENT: {
    title: 'Unknown model component',
    advice: 'The model set does not have that component. Choose another model set in the model manager.',
  },
  INVALID_INPUT: {
    title: 'A setting is not valid',
    advice: 'Correct the setting named in the message and generate again.',
  },
  CANCELLED: { title: 'Cancelled', advice: 'Nothing was generated.' },
  INTERNAL: {
    title: 'Something went wrong inside the app',
    advice: 'Reload the page and try again. The details below help when reporting it.',
  },
  STORAGE_FULL: {
    title: 'Storage full',
    advice: 'Storage full: delete some images or models, then try again.',
  },
  IMAGE_UNREADABLE: {
    title: 'That file could not be read as an image',
    advice: 'Use a PNG, JPEG or WebP picture.',
  },
  IMAGE_TOO_LARGE: {
    title: 'That image is too large',
    advice: 'Images over 50 megapixels are refused to protect memory. Resize it first.',
  },
};

export function adviceForError(code: ErrorCode | UiErrorCode): ErrorAdvice {
  return ADVICE[code];
}
