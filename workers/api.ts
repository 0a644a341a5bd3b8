/** The typed surface of the generator worker, shared by the worker and the UI client. */

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
}
