/** The status line's words for the device, the model set and the network. */
import type { GpuReport } from '../workers/api';
import type { WireError } from '../workers/errors';
import { type ModelSetState, textToImageReady } from './models/use-model-set';
import type { SelfTest } from './self-test';

/** What of the model set's UI state the words depend on. */
export type ModelView = Pick<ModelSetState, 'info' | 'busy' | 'progress' | 'error'>;

type DeviceState = 'checking' | 'ok' | 'limited' | 'unavailable';

export function deviceState(gpu: GpuReport | null, selfTest: SelfTest, workerError: WireError | null) {
  const state = (value: DeviceState, text: string) => ({ value, text });
  if (workerError) return state('unavailable', 'The generator could not start');
  if (!gpu || selfTest.state === 'running') return state('checking', 'Checking the GPU…');
  if (!gpu.available) return state('unavailable', 'No WebGPU here');
  if (selfTest.state === 'failed') return state('unavailable', 'The GPU check failed');
  if (!gpu.adapter.shaderF16) return state('limited', 'GPU works, limited: no fp16 (larger, slower models)');
  return state('ok', 'GPU ready');
}

export function modelText(model: ModelView): string {
  const { info, busy, progress, error } = model;
  if (!info) return error ? 'The model set could not be opened' : 'Opening the model set…';
  if (busy === 'downloading') {
    const percent =
      progress && progress.totalBytesTotal > 0
        ? ` ${Math.floor((100 * progress.totalBytesDone) / progress.totalBytesTotal)}%`
        : '';
    return `${info.name}: downloading${percent}`;
  }
  if (textToImageReady(info)) {
    const ready = info.features.filter((f) => f.ready).length;
    return `${info.name}: ready (${ready} of ${info.features.length} modes stored)`;
  }
  return `${info.name}: not downloaded yet`;
}

/** What a refresh failure or lost network means for the person, or null when all is well. */
export function connectionText(model: ModelView, online: boolean): string | null {
  const stored = textToImageReady(model.info);
  if (!online) {
    return stored
      ? 'Offline — using the stored model set.'
      : 'Offline — the model set can be downloaded once you are back online.';
  }
  const failure = model.info?.manifestRefreshFailure;
  return failure ? `Couldn't check for model updates: ${failure} Using the stored copy.` : null;
}
