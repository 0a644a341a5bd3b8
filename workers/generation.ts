/**
 * Generation jobs on the open model set: the queue, cancellation, a lost GPU, the checks a request
 * passes before any model loads, and turning onnxruntime's failures into errors a person can act on.
 */
import type { GenerateRequest, GenerateResult, JobProgress, MaskImage, RgbaImage } from './api';
import { runPipeline } from './engine/pipeline';
import { encodeImagePng } from './engine/png-settings';
import { componentsFor } from './engine/request';
import { type GenerationSettings, type SizeLimits, validateSettings } from './engine/settings';
import { sizeLimitsFor } from './engine/size-limits';
import { webZlib } from './engine/web-zlib';
import { KandinskyError } from './errors';
import { JobQueue } from './job-queue';
import type { ModelSetSession } from './model-set-session';

/**
 * The largest picture a request may carry, pixels (50 megapixels, as the UI's file picker allows).
 * Checked from the declared size before any pixel is read, so a hostile or buggy caller can't make
 * the worker touch gigabytes.
 */
export const MAX_REQUEST_IMAGE_PIXELS = 50_000_000;

export class GenerationJobs {
  private readonly listeners = new Map<string, (progress: JobProgress) => void>();
  private readonly queue: JobQueue<GenerateRequest, GenerateResult>;
  /** Set once the GPU device is gone: every job fails fast until the worker is restarted. */
  private deviceLostError: KandinskyError | null = null;
  private readonly deviceLostController = new AbortController();

  constructor(
    private readonly session: ModelSetSession,
    /** Release each stage's session before the next when a request doesn't say (little memory). */
    private readonly lowMemory = false,
  ) {
    this.queue = new JobQueue(
      (request, signal, jobId) => this.run(request, signal, jobId),
      (positions) => {
        for (const [jobId, position] of positions) this.listeners.get(jobId)?.({ stage: 'queued', position });
      },
    );
  }

  async generate(
    jobId: string,
    request: GenerateRequest,
    onProgress: (p: JobProgress) => void,
  ): Promise<GenerateResult> {
    this.listeners.set(jobId, onProgress);
    try {
      return await this.queue.submit(jobId, request);
    } finally {
      this.listeners.delete(jobId);
    }
  }

  async cancel(jobId: string): Promise<boolean> {
    return this.queue.cancel(jobId);
  }

  /**
   * The GPU device is gone (destroyed, reset, or removed): the running job fails with
   * WEBGPU_DEVICE_LOST at once — whether or not onnxruntime ever returns from the call it is in —
   * and so does every later job, because this worker's onnxruntime can't get a new device. The UI
   * restarts the worker.
   */
  deviceLost(detail: string): void {
    if (this.deviceLostError) return;
    this.deviceLostError = new KandinskyError(
      'WEBGPU_DEVICE_LOST',
      `The GPU was reset or lost (${detail}); the generator restarts.`,
    );
    this.deviceLostController.abort(this.deviceLostError);
    this.session.dropModels();
  }

  private async run(request: GenerateRequest, signal: AbortSignal, jobId: string): Promise<GenerateResult> {
    if (this.deviceLostError) throw this.deviceLostError;
    const { manifest } = this.session.requireSet();
    const limits = sizeLimitsFor(manifest);
    const settings = validateSettings(request.settings, limits, {
      fromPhoto: request.initImage !== undefined,
    });
    checkRequestImages(request);
    await this.session.requireStored(componentsFor(request));
    const models = this.session.models();
    const onProgress = this.listeners.get(jobId);
    const lost = this.deviceLostController.signal;
    let stopWaiting = () => {};
    const lostWhileRunning = new Promise<never>((_, reject) => {
      const onLost = () => reject(lost.reason);
      if (lost.aborted) onLost();
      lost.addEventListener('abort', onLost, { once: true });
      stopWaiting = () => lost.removeEventListener('abort', onLost);
    });
    try {
      const pipeline = runPipeline(
        models,
        { ...request, settings },
        {
          signal: AbortSignal.any([signal, lost]),
          previews: request.previews,
          lowMemory: request.lowMemory ?? this.lowMemory,
          ...(onProgress ? { onProgress } : {}),
        },
      );
      // A lost device can leave onnxruntime waiting forever on a GPU that will never answer.
      pipeline.catch(() => {});
      const result = await Promise.race([pipeline, lostWhileRunning]);
      onProgress?.({ stage: 'png', images: result.images.length });
      const images = await Promise.all(
        result.images.map(async (image, index) => {
          const bytes = await encodeImagePng(image, settings, webZlib);
          const png = new Blob([bytes as Uint8Array<ArrayBuffer>], { type: 'image/png' });
          return { png, width: image.width, height: image.height, settings, index };
        }),
      );
      return {
        jobId,
        images,
        timings: result.timings,
        ...(result.truncatedPrompt ? { truncatedPrompt: result.truncatedPrompt } : {}),
      };
    } catch (error) {
      if (this.deviceLostError) throw this.deviceLostError;
      throw classifyRuntimeError(error, settings, limits);
    } finally {
      stopWaiting();
    }
  }
}

/**
 * Checks the pictures a request carries before anything reads their pixels: a declared size of
 * whole pixels within MAX_REQUEST_IMAGE_PIXELS, and exactly that many pixels of data. (The engine
 * then checks each against the output size.)
 */
function checkRequestImages(request: GenerateRequest): void {
  const images: [string, RgbaImage | MaskImage | undefined, number][] = [
    ['The input image', request.initImage, 4],
    ['The mask', request.mask, 1],
    ['The depth map', request.depthMap, 4],
    ...(request.mix ?? []).flatMap((item, index): [string, RgbaImage, number][] =>
      item.kind === 'image' ? [[`Mix item ${index + 1}’s picture`, item.image, 4]] : [],
    ),
  ];
  for (const [what, image, channels] of images) {
    if (!image) continue;
    const { width, height } = image;
    if (!Number.isSafeInteger(width) || !Number.isSafeInteger(height) || width < 1 || height < 1) {
      throw new KandinskyError('INVALID_INPUT', `${what} has no valid size (${width}×${height}).`);
    }
    if (width * height > MAX_REQUEST_IMAGE_PIXELS) {
      throw new KandinskyError(
        'INVALID_INPUT',
        `${what} is ${width}×${height} (${((width * height) / 1e6).toFixed(1)} megapixels); the limit is ${MAX_REQUEST_IMAGE_PIXELS / 1e6} megapixels. Resize it first.`,
      );
    }
    const expected = width * height * channels;
    if (!(image.data instanceof Uint8Array) || image.data.length !== expected) {
      throw new KandinskyError(
        'INVALID_INPUT',
        `${what} says ${width}×${height} but holds ${image.data?.length ?? 0} bytes instead of ${expected}; send it again at its real size.`,
      );
    }
  }
}

/**
 * A concrete request that needs about half the GPU memory of this one: each side × 1/√2, rounded
 * down to the set's multiple (aspect kept as near as the grid allows), else fewer images.
 */
export function smallerRequestAdvice(settings: GenerationSettings, limits: SizeLimits): string {
  const shrink = (side: number) =>
    Math.max(limits.minSide, Math.floor((side * Math.SQRT1_2) / limits.multiple) * limits.multiple);
  let width = shrink(settings.width);
  let height = shrink(settings.height);
  // Rounding the short side down can push the aspect past the limit: shorten the long side to fit.
  const longest = (short: number) =>
    Math.floor((short * limits.maxAspect) / limits.multiple) * limits.multiple;
  if (width > height) width = Math.min(width, longest(height));
  else height = Math.min(height, longest(width));
  const options: string[] = [];
  if (width !== settings.width || height !== settings.height) options.push(`${width}×${height}`);
  if (settings.numImages > 1) options.push('1 image at a time');
  const what = `${settings.width}×${settings.height}${settings.numImages > 1 ? ` with ${settings.numImages} images` : ''}`;
  if (options.length === 0) {
    return `${what} is too large for this device: this model set needs more GPU memory than it has, even at its smallest size. Close other GPU-heavy tabs and apps, or use a device with more GPU memory.`;
  }
  return `${what} is too large for this device: try ${options.join(', or ')}.`;
}

/**
 * onnxruntime reports GPU trouble as plain errors; give the ones a person can act on their code.
 */
function classifyRuntimeError(error: unknown, settings: GenerationSettings, limits: SizeLimits): unknown {
  if (error instanceof KandinskyError || (typeof error === 'object' && error !== null && 'code' in error))
    return error;
  const text = String(error);
  if (/out of memory|OOM|failed to allocate|allocation/i.test(text)) {
    return new KandinskyError('GPU_OUT_OF_MEMORY', smallerRequestAdvice(settings, limits), { cause: error });
  }
  if (/device (was )?lost|GPUDevice.*lost|device is lost/i.test(text)) {
    return new KandinskyError('WEBGPU_DEVICE_LOST', 'The GPU was reset or lost; the generator restarts.', {
      cause: error,
    });
  }
  return new KandinskyError('INFERENCE_FAILED', `The model failed to run: ${text}`, { cause: error });
}
