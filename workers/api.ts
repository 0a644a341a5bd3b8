/** The typed surface of the generator worker, shared by the worker and the UI client. */

import type { ManifestQuality, Precision } from '../models/manifest';
import type { PipelineProgress } from './engine/hooks';
import type { MaskImage } from './engine/image';
import type { RgbaImage } from './engine/png';
import type { PipelineRequest } from './engine/request';
import type { DecoderSchedulerName, GenerationSettings } from './engine/settings';
import type { MixItem } from './engine/stages/mix';
import type { PrecisionChoice } from './precision';

export type {
  GenerationSettings,
  MaskImage,
  MixItem,
  PipelineProgress,
  Precision,
  PrecisionChoice,
  RgbaImage,
};

export interface GpuAdapterReport {
  readonly vendor: string;
  readonly architecture: string;
  readonly device: string;
  readonly description: string;
  /** True when the adapter can run fp16 shaders; the fp16 model variants need it. */
  readonly shaderF16: boolean;
  /** Largest single GPU buffer, bytes. Bounds the biggest weight tensor and activation. */
  readonly maxBufferSize: number;
  /** Largest storage-buffer binding, bytes. */
  readonly maxStorageBufferBindingSize: number;
  readonly features: readonly string[];
}

export type GpuReport =
  | { readonly available: true; readonly adapter: GpuAdapterReport }
  | {
      readonly available: false;
      /** Why WebGPU can't be used: no API in this browser, or the API but no usable adapter. */
      readonly reason: 'no-api' | 'no-adapter' | 'insecure-context';
      readonly detail: string;
    };

export interface SmokeTestResult {
  /** The execution provider the session ran on. Always 'webgpu': there is no silent fallback. */
  readonly executionProvider: 'webgpu';
  readonly outputShape: readonly number[];
  readonly output: Float32Array;
  /** Wall time of session creation and of one run, milliseconds. */
  readonly createMs: number;
  readonly runMs: number;
}

export interface GeneratorApi extends ModelApi {
  /** Looks for a WebGPU adapter from inside the worker, where inference runs. */
  probeGpu(): Promise<GpuReport>;
  /**
   * Runs the bundled smoke graph y = sigmoid(x·W + b) on the WebGPU execution provider.
   * Throws a KandinskyError (`WEBGPU_*`, `ORT_INIT_FAILED`, `INFERENCE_FAILED`) when it can't.
   */
  runSmokeTest(input: Float32Array): Promise<SmokeTestResult>;
  /**
   * Queues a generation under a caller-chosen id and resolves with its images. Progress arrives
   * through `onProgress` (pass a `Comlink.proxy`). Rejects with a KandinskyError: `CANCELLED`,
   * `INVALID_INPUT` (with the field named), `MODEL_*`, `WEBGPU_*`, `INFERENCE_FAILED`.
   */
  generate(
    jobId: string,
    request: GenerateRequest,
    onProgress: (progress: JobProgress) => void,
  ): Promise<GenerateResult>;
  /** Cancels a queued or running job; resolves false when there is no such job. */
  cancel(jobId: string): Promise<boolean>;
}

// ---------------------------------------------------------------------------------------------
// Generation
// ---------------------------------------------------------------------------------------------

/**
 * A generation: the engine's request (settings; the input picture, mask or depth map the mode
 * needs; or a mix of prompts and pictures — engine/request.ts) and how to run it.
 */
export interface GenerateRequest extends PipelineRequest {
  /** Send a small RGB preview of the latents with every denoising step (costs one readback each). */
  readonly previews: boolean;
  /**
   * Low-memory mode: load one stage at a time and release it before the next, so the peak is the
   * largest component instead of the sum (slower: every generation loads the models again).
   */
  readonly lowMemory?: boolean;
}

/**
 * Typed progress of one job: its place in the queue, the pipeline's stages in order, then the
 * worker encoding the pictures as PNGs (with their settings inside).
 */
export type JobProgress =
  | { readonly stage: 'queued'; readonly position: number }
  | PipelineProgress
  | { readonly stage: 'png'; readonly images: number };

export interface GeneratedImage {
  /** The picture as a PNG with its settings inside (encoded in the worker, off the page's thread). */
  readonly png: Blob;
  readonly width: number;
  readonly height: number;
  /** The settings of the batch: the same settings and seed make the same batch again. */
  readonly settings: GenerationSettings;
  /** Which image of the batch this is, from 0. */
  readonly index: number;
}

export interface GenerateResult {
  readonly jobId: string;
  readonly images: readonly GeneratedImage[];
  /** Set when the prompt was longer than CLIP's 77 tokens: the part that was used. */
  readonly truncatedPrompt?: { readonly keptText: string; readonly droppedTokens: number };
  /** Wall time per stage, milliseconds. */
  readonly timings: Readonly<Record<'load' | 'encode' | 'prior' | 'denoise' | 'decode', number>>;
}

// ---------------------------------------------------------------------------------------------
// Model sets
// ---------------------------------------------------------------------------------------------

/** Where a model set comes from: a manifest URL (same origin or https), or files the user picked. */
export type ModelSourceSpec =
  | { readonly kind: 'url'; readonly url: string }
  | {
      readonly kind: 'files';
      /** Paths relative to the folder holding manifest.json (pickers' webkitRelativePath is lost in postMessage). */
      readonly files: readonly { readonly path: string; readonly file: Blob }[];
    };

export interface ModelComponentInfo {
  readonly id: string;
  readonly optional: boolean;
  /** Features this component is needed for. */
  readonly enables: readonly string[];
  readonly state: 'complete' | 'partial' | 'absent';
  /** Its size, and how much of it is stored, bytes. */
  readonly bytes: number;
  readonly storedBytes: number;
}

export interface ModelFeatureInfo {
  readonly feature: string;
  /** Every component it needs is stored and verified. */
  readonly ready: boolean;
  /** Bytes still to download before it can run. */
  readonly missingBytes: number;
}

export interface ModelSetInfo {
  readonly modelId: string;
  readonly name: string;
  readonly license: string;
  /** A random-weight set makes noise, not pictures: the UI says so. */
  readonly demo: boolean;
  readonly sourceDescription: string;
  /**
   * Set when the manifest could not be fetched again (offline, the host down) and the copy saved
   * on the last visit was opened instead: the reason, for the UI to show. Null when it was fetched.
   */
  readonly manifestRefreshFailure: string | null;
  /** The precision the set was opened in, the variants it publishes, and which this adapter runs. */
  readonly precision: {
    readonly current: Precision | 'mixed';
    readonly choice: PrecisionChoice;
    /** Why this precision, e.g. "fp16: this GPU has shader-f16". */
    readonly reason: string;
    readonly options: readonly {
      readonly precision: Precision;
      readonly requiredFeatures: readonly string[];
      readonly supported: boolean;
      /** Text-to-image download at this precision, bytes. */
      readonly textToImageBytes: number;
      /** The worst `--check` cosine of its text-to-image graphs against PyTorch fp32; null: not recorded. */
      readonly checkCosine: number | null;
      /** Its end-to-end figure against PyTorch fp32 (export `--quality`); null: not recorded. */
      readonly quality: ManifestQuality | null;
    }[];
  };
  readonly components: readonly ModelComponentInfo[];
  readonly features: readonly ModelFeatureInfo[];
  /** The set's own decoder scheduler (its checkpoint's), what runs when a person picks none. */
  readonly decoderScheduler: DecoderSchedulerName;
  /** Output sizes this set supports, pixels. */
  readonly sizeLimits: {
    readonly minSide: number;
    readonly maxSide: number;
    readonly multiple: number;
    readonly maxAspect: number;
  };
  readonly usageBytes: number | null;
  readonly quotaBytes: number | null;
  readonly persisted: boolean | null;
}

export interface ModelDownloadProgress {
  readonly stage: 'queued' | 'downloading' | 'verifying' | 'stored' | 'failed';
  readonly componentId: string;
  readonly path: string | null;
  readonly totalBytesDone: number;
  readonly totalBytesTotal: number;
  readonly bytesPerSecond: number | null;
  readonly etaSeconds: number | null;
}

/**
 * A precision option's quality sample (models/CONTRACT.md, `quality.sample`): the first
 * calibration run of the export's `--quality` as two verified PNGs, for the model manager's
 * side-by-side comparison. The buffers are transferred, not copied.
 */
export interface QualitySample {
  readonly precision: Precision;
  /** The calibration prompt and seed both pictures were made from. */
  readonly prompt: string;
  readonly seed: number;
  /** The option's PSNR against fp32 over all calibration runs, dB (its `quality.psnr`). */
  readonly psnr: number;
  /** The fp32 PyTorch (diffusers) picture, PNG bytes. */
  readonly reference: Uint8Array<ArrayBuffer>;
  /** The option's own picture (the engine on its graphs), PNG bytes. */
  readonly picture: Uint8Array<ArrayBuffer>;
}

export interface ModelApi {
  /**
   * Reads and validates a model set's manifest and makes it the current set; nothing is downloaded.
   * `precision` picks one of the precision variants it publishes ('auto', the default: from the
   * adapter — fp16 with shader-f16, else int8, else fp32). Rejects with WEBGPU_FEATURE_MISSING
   * when the set (or the named precision) needs shader-f16 and the adapter lacks it.
   */
  openModelSet(source: ModelSourceSpec, precision?: PrecisionChoice): Promise<ModelSetInfo>;
  /** The current set's storage status. */
  modelSetInfo(): Promise<ModelSetInfo>;
  /**
   * Downloads (or imports) the required components plus those the features need, resuming what is
   * stored. Pause with `pauseDownload`; calling again resumes.
   */
  downloadModels(
    features: readonly string[],
    onProgress: (progress: ModelDownloadProgress) => void,
  ): Promise<ModelSetInfo>;
  pauseDownload(): Promise<void>;
  /** Deletes the given components of the current set (all when omitted). */
  deleteModels(componentIds?: readonly string[]): Promise<ModelSetInfo>;
  /** Re-hashes stored files; damaged ones are removed so the next download repairs them. */
  verifyModels(): Promise<
    { readonly componentId: string; readonly state: 'verified' | 'damaged' | 'absent' }[]
  >;
  /**
   * The quality sample of one of the open set's precision options (`precision.options`), read on
   * demand through the set's source; null when that option records no sample (no `quality`, or a
   * `quality` without `sample`). Rejects with INVALID_INPUT when the set publishes no such
   * precision, NOT_CACHED when no set is open, SIZE_MISMATCH or INTEGRITY_MISMATCH when the
   * served bytes are not the listed ones, MANIFEST_INVALID when they are no PNG, and the
   * source's own codes (SOURCE_FORBIDDEN, SOURCE_FILE_MISSING, SOURCE_UNREACHABLE, HTTP_ERROR).
   */
  readQualitySample(precision: Precision): Promise<QualitySample | null>;
  /** Asks the browser to keep our storage under pressure; returns what it answered. */
  requestPersistence(): Promise<'granted' | 'denied' | 'unsupported'>;
}
