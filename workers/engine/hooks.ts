/**
 * What a caller of the pipeline gives and gets besides the request: cancellation, typed progress,
 * live previews, low-memory mode and a trace of every intermediate (the parity tests' window).
 */
import type { GraphComponentId } from '../../models/contract';
import { KandinskyError } from '../errors';
import type { RgbaImage } from './png';

/**
 * The pipeline's progress, in stage order; each event says what starts now (a step event: that the
 * step ended), so the time between two events is the cost of the first one's work. The worker adds
 * 'queued' and 'png' (api.ts JobProgress).
 */
export type PipelineProgress =
  /** Reading a component's files from storage (or finding its session already made). */
  | {
      readonly stage: 'load';
      readonly component: GraphComponentId;
      readonly index: number;
      readonly count: number;
    }
  /** onnxruntime creating the session of the component last loaded (its files are read). */
  | { readonly stage: 'session'; readonly component: GraphComponentId }
  /** Tokenizing and encoding the prompt(s). */
  | { readonly stage: 'encode' }
  /**
   * A step loop begins: its first step includes shader compilation and, for a graph-captured
   * UNet, recording the graph (several times a later step).
   */
  | { readonly stage: 'loop-start'; readonly loop: 'prior' | 'denoise'; readonly steps: number }
  /** depth mode with a photo: the depth map estimated from it (grey, near = bright), output size. */
  | { readonly stage: 'depth'; readonly depthMap: RgbaImage }
  | { readonly stage: 'prior'; readonly step: number; readonly steps: number }
  | { readonly stage: 'denoise'; readonly step: number; readonly steps: number; readonly preview?: RgbaImage }
  | { readonly stage: 'decode'; readonly image: number; readonly images: number };

/** A recorded intermediate, named as in the reference fixtures (models/CONTRACT.md). */
export type TraceFn = (name: string, data: Float32Array | BigInt64Array, dims: readonly number[]) => void;

export interface PipelineHooks {
  readonly signal?: AbortSignal;
  readonly onProgress?: (progress: PipelineProgress) => void;
  /** Send a latent preview with every denoising step (one readback per step on the GPU). */
  readonly previews?: boolean;
  /** Release each stage's session before the next: the peak is the largest component. */
  readonly lowMemory?: boolean;
  readonly trace?: TraceFn;
}

/** Wall time per stage, milliseconds. */
export type StageTimings = Record<'load' | 'encode' | 'prior' | 'denoise' | 'decode', number>;

export function checkAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw new KandinskyError('CANCELLED', 'The generation was cancelled.');
}

/** `trace` with every name prefixed (`prefix_name`), or none when there is no trace. */
export function prefixedTrace(trace: TraceFn | undefined, prefix: string): TraceFn | undefined {
  return trace ? (name, data, dims) => trace(`${prefix}_${name}`, data, dims) : undefined;
}
