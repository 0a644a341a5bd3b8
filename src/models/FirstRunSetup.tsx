import { useId } from 'react';
import { formatBytes } from '../../workers/format';
import { DownloadBar } from './DownloadBar';
import type { ModelSetState } from './use-model-set';

interface Props {
  readonly model: ModelSetState;
  /** Opens the full model manager (precision, a folder, other modes). */
  readonly onMoreChoices: () => void;
}

/**
 * What a first visit needs instead of the component table: what will download, how big, and one
 * button to start. Shown where the pictures will appear until text → image is stored.
 */
export function FirstRunSetup({ model, onMoreChoices }: Props) {
  const { info, busy, progress, error, notice, missingBytes } = model;
  const downloading = busy === 'downloading';
  const headingId = useId();
  return (
    <section className="first-run" aria-labelledby={headingId} data-testid="first-run-setup">
      <h3 id={headingId}>One download, then it all runs here</h3>
      {info ? (
        <p>
          To make pictures, this browser stores the model set <strong>{info.name}</strong> once:{' '}
          <strong data-testid="setup-size">{formatBytes(missingBytes)}</strong> for text → image. After that
          it works offline, and nothing you write or make leaves this device.
          {info.demo && (
            <span className="detail"> This is the demo set: random weights, so its pictures are noise.</span>
          )}
        </p>
      ) : (
        !error && <p>Reading the model set’s list of files…</p>
      )}
      {error && (
        <p className="error" role="alert" data-testid="setup-error" data-code={error.code}>
          {error.message}
        </p>
      )}
      {notice && (
        <p className="detail" role="status">
          {notice}
        </p>
      )}
      <div className="button-row">
        {downloading ? (
          <button type="button" onClick={model.pause}>
            Pause
          </button>
        ) : (
          <button
            type="button"
            className="primary"
            disabled={!info || !model.ready || busy !== null || missingBytes === 0}
            onClick={() => void model.download()}
            data-testid="setup-download"
          >
            {info ? `Download ${formatBytes(missingBytes)}` : 'Download'}
          </button>
        )}
        <button type="button" className="link" onClick={onMoreChoices} aria-haspopup="dialog">
          More choices: precision, a folder, other modes
        </button>
      </div>
      {downloading && progress && <DownloadBar progress={progress} />}
    </section>
  );
}
