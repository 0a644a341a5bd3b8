/**
 * One generation at a time from the UI's side: starts a job on the worker, follows its typed
 * progress (preview, an estimate of the time left learnt from this device's earlier runs), cancels
 * it, and saves every finished image to the gallery as a PNG that carries its settings.
 *
 * Cancel asks the worker to stop; the engine checks between steps and stages, so most jobs stop at
 * once. Where it can't within CANCEL_GRACE_MS (onnxruntime creating a session, a long GPU call, a
 * worker thread busy in WebAssembly), the worker is ended and a fresh one started — the same
 * restart as after a lost GPU (`restartGenerator`, App's one home for it). Nothing is lost: the
 * model store writes a component's completion record last (a file half-written when its worker
 * ends is resumed, never used), and the gallery is written here, on the page, in one transaction.
 * The page runs one job at a time, so no job waits behind a cancelled one; the new worker starts
 * with an empty queue and the next Generate runs on it.
 */
import * as Comlink from 'comlink';
import { useCallback, useEffect, useRef, useState } from 'react';
import type {
  GenerateRequest,
  GenerateResult,
  GeneratorApi,
  JobProgress,
  RgbaImage,
} from '../../workers/api';
import { toWireError, type WireError } from '../../workers/errors';
import { GalleryError, type GalleryRecord, type GalleryStore } from '../gallery/gallery-store';
import { changesStoredModels } from '../models/model-source';
import type { DeviceProfile } from './device-defaults';
import { StepTimer } from './eta';
import { costsOfRun, type JobEstimate, type JobShape, type StampedProgress } from './job-estimate';

/** How long a cancelled job may take to stop by itself before its worker is ended, ms. */
export const CANCEL_GRACE_MS = 1500;

export interface ResultImage {
  readonly key: string;
  readonly png: Blob;
  readonly settings: GenerateResult['images'][number]['settings'];
  readonly galleryId: string | null;
}

export type GenerationState =
  | { readonly phase: 'idle' }
  | {
      readonly phase: 'running';
      readonly jobId: string;
      readonly progress: JobProgress | null;
      /** When `progress` arrived (performance.now(), ms): the time spent in its stage so far. */
      readonly progressAtMs: number;
      readonly preview: RgbaImage | null;
      /** Depth mode with a photo: the depth map estimated from it, once the worker has it. */
      readonly depthMap: RgbaImage | null;
      /** What the job should cost on this device, from its earlier runs; null before any. */
      readonly estimate: JobEstimate | null;
      /** The current step loop's measured milliseconds per step, or null before two steps. */
      readonly liveMsPerStep: number | null;
      readonly cancelling: boolean;
      /** The images are made; they are being saved to the gallery (Cancel no longer applies). */
      readonly saving: boolean;
    }
  | {
      readonly phase: 'done';
      readonly images: readonly ResultImage[];
      readonly truncatedPrompt: GenerateResult['truncatedPrompt'];
      readonly timings: GenerateResult['timings'];
      /** The depth map the images followed, when one was estimated from a photo. */
      readonly depthMap: RgbaImage | null;
      /** Set when the images were made but the gallery could not keep them. */
      readonly saveError: GalleryError | null;
    }
  | {
      readonly phase: 'cancelled';
      /** The worker was ended (and a new one started) because the job did not stop in time. */
      readonly restarted: boolean;
      /** From pressing Cancel to the job having stopped (or its worker ended), ms. */
      readonly latencyMs: number;
    }
  | { readonly phase: 'failed'; readonly error: WireError };

export interface GenerationOptions {
  /**
   * Replaces the worker with a fresh one: after its GPU device was lost, or when a cancelled job
   * did not stop within CANCEL_GRACE_MS. Without it, Cancel only asks.
   */
  readonly restartGenerator?: () => void;
  /** Called when the job failed because stored model files were removed or are missing. */
  readonly onStoredModelsChanged?: () => void;
  /** This device's learnt costs: estimates before and during a job, and where finished runs go. */
  readonly profile?: DeviceProfile;
}

/** One job as this hook follows it (a ref: the cancel timer reads it after renders). */
interface Tracked {
  readonly jobId: string;
  /** The worker answered (result or error). */
  settled: boolean;
  /** The result is in: the images are being saved. */
  resultIn: boolean;
  /** Cancel pressed at (performance.now()), or null. */
  cancelAt: number | null;
  /** The worker was ended for this job: anything it still says is ignored. */
  abandoned: boolean;
}

/** Shapes are equal when they would reuse the same captured UNet (size, batch, guidance). */
const sessionKey = (shape: JobShape) => `${shape.width}x${shape.height}x${shape.numImages}x${shape.guided}`;

export function useGeneration(
  api: Comlink.Remote<GeneratorApi> | null,
  gallery: GalleryStore,
  onSaved: (records: readonly GalleryRecord[]) => void,
  options: GenerationOptions = {},
) {
  const { restartGenerator, onStoredModelsChanged, profile } = options;
  const [state, setState] = useState<GenerationState>({ phase: 'idle' });
  const timer = useRef(new StepTimer());
  const current = useRef<Tracked | null>(null);
  // The sessions of this worker were made for the last finished job's shape: the same shape runs warm.
  const warmSessions = useRef<string | null>(null);
  useEffect(() => {
    // A new worker (restart, first start) has no sessions.
    if (api) warmSessions.current = null;
  }, [api]);

  const start = useCallback(
    async (request: GenerateRequest, shape: JobShape | null = null) => {
      if (!api) return;
      const jobId = crypto.randomUUID();
      const tracked: Tracked = { jobId, settled: false, resultIn: false, cancelAt: null, abandoned: false };
      current.current = tracked;
      timer.current = new StepTimer();
      const cold = shape === null || warmSessions.current !== sessionKey(shape);
      const estimate = shape && profile ? profile.estimate(shape, { cold }) : null;
      const startMs = performance.now();
      setState({
        phase: 'running',
        jobId,
        progress: null,
        progressAtMs: startMs,
        preview: null,
        depthMap: null,
        estimate,
        liveMsPerStep: null,
        cancelling: false,
        saving: false,
      });
      const events: StampedProgress[] = [];
      let depthMap: RgbaImage | null = null;
      const onProgress = (progress: JobProgress) => {
        if (tracked.abandoned) return;
        const atMs = performance.now();
        events.push({ progress, atMs });
        if (progress.stage === 'depth') depthMap = progress.depthMap;
        if (progress.stage === 'prior' || progress.stage === 'denoise') {
          timer.current.record(progress.stage, progress.step, atMs);
        }
        const liveMsPerStep =
          progress.stage === 'prior' || progress.stage === 'denoise' ? timer.current.msPerStep() : null;
        setState((previous) =>
          previous.phase === 'running' && previous.jobId === jobId
            ? {
                ...previous,
                progress,
                progressAtMs: atMs,
                liveMsPerStep,
                preview:
                  progress.stage === 'denoise' && progress.preview ? progress.preview : previous.preview,
                depthMap: progress.stage === 'depth' ? progress.depthMap : previous.depthMap,
              }
            : previous,
        );
      };
      let result: GenerateResult;
      try {
        result = await api.generate(jobId, request, Comlink.proxy(onProgress));
      } catch (error) {
        tracked.settled = true;
        if (tracked.abandoned) return;
        const wire = toWireError(error);
        setState(
          wire.code === 'CANCELLED'
            ? {
                phase: 'cancelled',
                restarted: false,
                latencyMs: tracked.cancelAt === null ? 0 : performance.now() - tracked.cancelAt,
              }
            : { phase: 'failed', error: wire },
        );
        if (wire.code === 'WEBGPU_DEVICE_LOST') restartGenerator?.();
        if (changesStoredModels(wire.code)) onStoredModelsChanged?.();
        return;
      }
      tracked.settled = true;
      if (tracked.abandoned) return;
      tracked.resultIn = true;
      const endMs = performance.now();
      if (shape && profile) {
        profile.record(costsOfRun(shape, events, startMs, endMs));
        warmSessions.current = sessionKey(shape);
      }
      setState((previous) =>
        previous.phase === 'running' && previous.jobId === jobId
          ? { ...previous, saving: true, cancelling: false }
          : previous,
      );
      const images: ResultImage[] = [];
      const saved: GalleryRecord[] = [];
      let saveError: GalleryError | null = null;
      for (const [index, generated] of result.images.entries()) {
        const { png } = generated;
        let galleryId: string | null = null;
        if (!saveError) {
          try {
            const record = await gallery.save(png, generated.settings, generated);
            saved.push(record);
            galleryId = record.id;
          } catch (error) {
            saveError =
              error instanceof GalleryError ? error : new GalleryError('STORAGE_FAILED', String(error));
          }
        }
        images.push({ key: `${jobId}-${index}`, png, settings: generated.settings, galleryId });
      }
      if (saved.length > 0) onSaved(saved);
      setState({
        phase: 'done',
        images,
        truncatedPrompt: result.truncatedPrompt,
        timings: result.timings,
        depthMap,
        saveError,
      });
    },
    [api, gallery, onSaved, restartGenerator, onStoredModelsChanged, profile],
  );

  const cancel = useCallback(() => {
    const tracked = current.current;
    if (!api || !tracked || tracked.settled || tracked.resultIn || tracked.cancelAt !== null) return;
    tracked.cancelAt = performance.now();
    setState((previous) =>
      previous.phase === 'running' && previous.jobId === tracked.jobId
        ? { ...previous, cancelling: true }
        : previous,
    );
    // A worker busy in WebAssembly doesn't even read this message until it is done.
    api.cancel(tracked.jobId).catch(() => {});
    if (!restartGenerator) return;
    setTimeout(() => {
      if (tracked.settled || tracked.abandoned) return;
      tracked.abandoned = true;
      setState({
        phase: 'cancelled',
        restarted: true,
        latencyMs: performance.now() - (tracked.cancelAt ?? performance.now()),
      });
      restartGenerator();
    }, CANCEL_GRACE_MS);
  }, [api, restartGenerator]);

  /** What a job of `shape` will cost now: warm when this worker's sessions fit it. */
  const estimate = useCallback(
    (shape: JobShape) =>
      profile ? profile.estimate(shape, { cold: warmSessions.current !== sessionKey(shape) }) : null,
    [profile],
  );

  return { state, start, cancel, estimate };
}
