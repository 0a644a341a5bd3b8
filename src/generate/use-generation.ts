/**
 * One generation at a time from the UI's side: starts a job on the worker, follows its typed
 * progress (preview, step timing for the ETA), cancels it, and saves every finished image to the
 * gallery as a PNG that carries its settings.
 */
import * as Comlink from 'comlink';
import { useCallback, useRef, useState } from 'react';
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
import { StepTimer } from './eta';

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
      readonly preview: RgbaImage | null;
      /** Depth mode with a photo: the depth map estimated from it, once the worker has it. */
      readonly depthMap: RgbaImage | null;
      /** Milliseconds left in the current step loop, or null before it can be estimated. */
      readonly remainingMs: number | null;
      readonly cancelling: boolean;
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
  | { readonly phase: 'cancelled' }
  | { readonly phase: 'failed'; readonly error: WireError };

export function useGeneration(
  api: Comlink.Remote<GeneratorApi> | null,
  gallery: GalleryStore,
  onSaved: (records: readonly GalleryRecord[]) => void,
  /** Called when the job failed because the worker's GPU device is gone (it must be replaced). */
  onGeneratorLost?: () => void,
  /** Called when the job failed because stored model files were removed or are missing. */
  onStoredModelsChanged?: () => void,
) {
  const [state, setState] = useState<GenerationState>({ phase: 'idle' });
  const timer = useRef(new StepTimer());

  const start = useCallback(
    async (request: GenerateRequest) => {
      if (!api) return;
      const jobId = crypto.randomUUID();
      timer.current = new StepTimer();
      setState({
        phase: 'running',
        jobId,
        progress: null,
        preview: null,
        depthMap: null,
        remainingMs: null,
        cancelling: false,
      });
      let depthMap: RgbaImage | null = null;
      const onProgress = (progress: JobProgress) => {
        if (progress.stage === 'depth') depthMap = progress.depthMap;
        let remainingMs: number | null = null;
        if (progress.stage === 'prior' || progress.stage === 'denoise') {
          timer.current.record(progress.stage, progress.step, performance.now());
          remainingMs = timer.current.remainingMs(progress.step, progress.steps);
        }
        setState((previous) =>
          previous.phase === 'running' && previous.jobId === jobId
            ? {
                ...previous,
                progress,
                remainingMs,
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
        const wire = toWireError(error);
        setState(wire.code === 'CANCELLED' ? { phase: 'cancelled' } : { phase: 'failed', error: wire });
        if (wire.code === 'WEBGPU_DEVICE_LOST') onGeneratorLost?.();
        if (changesStoredModels(wire.code)) onStoredModelsChanged?.();
        return;
      }
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
    [api, gallery, onSaved, onGeneratorLost, onStoredModelsChanged],
  );

  const cancel = useCallback(async () => {
    if (!api || state.phase !== 'running') return;
    setState({ ...state, cancelling: true });
    await api.cancel(state.jobId);
  }, [api, state]);

  return { state, start, cancel };
}
