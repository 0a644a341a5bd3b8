/**
 * What the generator worker adds to its API for end-to-end tests, and only for them: a worker gets
 * these methods when the page starts it under TEST_HOOKS_WORKER_NAME, which the UI does only when
 * its URL has `?test-hooks` (src/generator-client.ts). Nothing here reads user data: counters, and
 * a way to destroy the worker's own GPU device to prove the app recovers from a lost device, and a
 * way to keep the worker's thread busy, as onnxruntime does while it creates a session or waits on
 * a long GPU call, to prove Cancel still stops at once.
 */
import type { LiveCounts } from './engine/ort';

export const TEST_HOOKS_WORKER_NAME = 'generator+test-hooks';

export interface TestHooksApi {
  /** onnxruntime tensors and sessions the engine created and has not released. */
  liveOrtObjects(): Promise<LiveCounts>;
  /** Destroys onnxruntime's GPUDevice (as a driver reset would); false before WebGPU started. */
  destroyGpuDevice(): Promise<boolean>;
  /**
   * Occupies the worker's thread for `ms` milliseconds without yielding (no message, no cancel is
   * read meanwhile). Resolves when it is over, if the worker still exists.
   */
  blockThread(ms: number): Promise<void>;
}
