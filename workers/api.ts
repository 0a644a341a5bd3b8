/** The typed surface of the generator worker, shared by the worker and the UI client. */

import type { RgbaImage } from './engine/png';
import type { GenerationSettings } from './engine/settings';

export type { GenerationSettings, RgbaImage };

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

export interface GeneratorApi {
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

/** An 8-bit single-channel mask at the output size; ≥ 128 means "repaint", < 128 "keep". */
export interface MaskImage {
  readonly width: number;
  readonly height: number;
  readonly data: Uint8Array;
}

export interface GenerateRequest {
  readonly settings: GenerationSettings;
  /** img2img, inpaint: the picture to start from; depth: the photo to estimate depth from. */
  readonly initImage?: RgbaImage;
  /** inpaint: what to repaint (white) and keep (black). */
  readonly mask?: MaskImage;
  /** depth: a ready depth map (near = bright) used instead of estimating one from `initImage`. */
  readonly depthMap?: RgbaImage;
  /** Send a small RGB preview of the latents with every denoising step (costs one readback each). */
  readonly previews: boolean;
}

/** Typed progress of one job, in pipeline order. */
export type JobProgress =
  | { readonly stage: 'queued'; readonly position: number }
  | {
      readonly stage: 'download';
      readonly component: string;
      readonly bytesDone: number;
      readonly bytesTotal: number;
    }
  | { readonly stage: 'load'; readonly component: string; readonly index: number; readonly count: number }
  | { readonly stage: 'encode' }
  | { readonly stage: 'prior'; readonly step: number; readonly steps: number }
  | { readonly stage: 'denoise'; readonly step: number; readonly steps: number; readonly preview?: RgbaImage }
  | { readonly stage: 'decode'; readonly image: number; readonly images: number };

export interface GeneratedImage {
  readonly image: RgbaImage;
  /** The settings that reproduce exactly this image (its own seed when several were made). */
  readonly settings: GenerationSettings;
}

export interface GenerateResult {
  readonly jobId: string;
  readonly images: readonly GeneratedImage[];
  /** Set when the prompt was longer than CLIP's 77 tokens: the part that was used. */
  readonly truncatedPrompt?: { readonly keptText: string; readonly droppedTokens: number };
  /** Wall time per stage, milliseconds. */
  readonly timings: Readonly<Record<'load' | 'encode' | 'prior' | 'denoise' | 'decode', number>>;
}
