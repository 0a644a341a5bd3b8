import type { SmokeTestResult } from '../workers/api';
import type { WireError } from '../workers/errors';

/** Where the start-up check of onnxruntime on WebGPU stands. */
export type SelfTest =
  | { readonly state: 'running' }
  | { readonly state: 'passed'; readonly result: SmokeTestResult }
  | { readonly state: 'failed'; readonly error: WireError }
  | { readonly state: 'skipped' };
