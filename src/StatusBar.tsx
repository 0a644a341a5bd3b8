import type { GpuReport } from '../workers/api';
import type { WireError } from '../workers/errors';
import { formatBytes } from '../workers/format';
import type { SelfTest } from './App';
import { type ModelSetState, textToImageReady } from './models/use-model-set';

interface Props {
  readonly gpu: GpuReport | null;
  readonly selfTest: SelfTest;
  readonly workerError: WireError | null;
  readonly model: ModelSetState;
  readonly online: boolean;
  /** Opens the device report and the full model manager. */
  readonly onOpenModels: () => void;
}

type DeviceState = 'checking' | 'ok' | 'limited' | 'unavailable';

function deviceState(gpu: GpuReport | null, selfTest: SelfTest, workerError: WireError | null) {
  const state = (value: DeviceState, text: string) => ({ value, text });
  if (workerError) return state('unavailable', 'The generator could not start');
  if (!gpu || selfTest.state === 'running') return state('checking', 'Checking the GPU…');
  if (!gpu.available) return state('unavailable', 'No WebGPU here');
  if (selfTest.state === 'failed') return state('unavailable', 'The GPU check failed');
  if (!gpu.adapter.shaderF16) return state('limited', 'GPU works, limited: no fp16 (larger, slower models)');
  return state('ok', 'GPU ready');
}

function modelText(model: ModelSetState): string {
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
function connectionText(model: ModelSetState, online: boolean): string | null {
  const stored = textToImageReady(model.info);
  if (!online) {
    return stored
      ? 'Offline — using the stored model set.'
      : 'Offline — the model set can be downloaded once you are back online.';
  }
  const failure = model.info?.manifestRefreshFailure;
  return failure ? `Couldn't check for model updates: ${failure} Using the stored copy.` : null;
}

/**
 * One compact line for the device and the model set — GPU state, the set and what of it is
 * stored, storage used, the network — with the full report and manager a click away.
 */
export function StatusBar({ gpu, selfTest, workerError, model, online, onOpenModels }: Props) {
  const device = deviceState(gpu, selfTest, workerError);
  const connection = connectionText(model, online);
  const usage = model.info?.usageBytes;
  return (
    <section className="status-bar" aria-label="Device and model set">
      <ul className="status-items">
        <li data-testid="device-state" data-state={device.value} className={`status-${device.value}`}>
          {device.text}
        </li>
        <li data-testid="model-state">
          {modelText(model)}
          {model.info?.demo && <span className="badge warning"> demo: pictures are noise</span>}
        </li>
        {usage !== null && usage !== undefined && (
          <li data-testid="storage-state">{formatBytes(usage)} stored</li>
        )}
      </ul>
      <button type="button" className="secondary" aria-haspopup="dialog" onClick={onOpenModels}>
        Device and models
      </button>
      {connection && (
        <p className="status-connection" role="status" data-testid="connection-status">
          {connection}
        </p>
      )}
      {model.error && textToImageReady(model.info) && (
        <p className="error status-connection" role="alert" data-testid="status-model-error">
          {model.error.message}
        </p>
      )}
    </section>
  );
}
