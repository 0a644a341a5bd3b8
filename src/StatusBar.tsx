import type { GpuReport } from '../workers/api';
import type { WireError } from '../workers/errors';
import { formatBytes } from '../workers/format';
import { type ModelSetState, textToImageReady } from './models/use-model-set';
import type { SelfTest } from './self-test';
import { connectionText, deviceState, modelText } from './status-text';

interface Props {
  readonly gpu: GpuReport | null;
  readonly selfTest: SelfTest;
  readonly workerError: WireError | null;
  readonly model: ModelSetState;
  readonly online: boolean;
  /** Opens the device report and the full model manager. */
  readonly onOpenModels: () => void;
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
