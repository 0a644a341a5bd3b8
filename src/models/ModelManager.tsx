import { useId } from 'react';
import type { PrecisionChoice } from '../../workers/api';
import { formatBytes } from '../../workers/format';
import { PRECISION_CHOICES } from '../../workers/precision';
import { DownloadBar } from './DownloadBar';
import { FEATURE_LABELS } from './model-source';
import { precisionOptionLabel } from './precision-label';
import { QualityCompare } from './QualityCompare';
import type { ModelSetState } from './use-model-set';

interface Props {
  readonly model: ModelSetState;
}

/**
 * The full model manager: the set's source (URL or folder), precision, features to download,
 * every component with its size and state, storage, integrity check and deletion.
 */
export function ModelManager({ model }: Props) {
  const ids = { url: useId(), folder: useId(), heading: useId() };
  const { info, busy, error, notice, progress, missingBytes, wanted, precision, url } = model;
  const idle = model.ready && busy === null;
  const features = info?.features ?? [];
  // The option in use: what the menu chose (auto's pick included) once the set reopened.
  const inUse = info?.precision.options.find((o) => o.precision === info.precision.current);

  return (
    <section className="panel model-manager" aria-labelledby={ids.heading} data-slot="model-manager">
      <h2 id={ids.heading}>Models</h2>
      <form
        className="model-source"
        onSubmit={(event) => {
          event.preventDefault();
          void model.open(url);
        }}
      >
        <label htmlFor={ids.url}>Model set (manifest URL or Hugging Face repo id)</label>
        <div className="row">
          <input
            id={ids.url}
            type="text"
            placeholder="https://host/set/manifest.json or owner/name@revision"
            spellCheck={false}
            value={url}
            onChange={(e) => model.setUrl(e.target.value)}
            required
          />
          <button type="submit" disabled={!idle}>
            Open
          </button>
          <label className="button secondary" htmlFor={ids.folder}>
            Import folder…
          </label>
          <input
            id={ids.folder}
            className="visually-hidden"
            type="file"
            multiple
            // Folder pick: no bytes leave the device and no network is used.
            {...{ webkitdirectory: '' }}
            onChange={(event) => {
              if (event.target.files) model.importFolder(event.target.files);
              event.target.value = '';
            }}
          />
        </div>
      </form>

      {error && (
        <p className="error" role="alert" data-testid="model-error" data-code={error.code}>
          {error.message}
        </p>
      )}
      {notice && (
        <p className="detail" role="status">
          {notice}
        </p>
      )}

      {info && (
        <div data-testid="model-set" data-model-id={info.modelId}>
          <p>
            <strong>{info.name}</strong> · license {info.license}
            {info.demo && (
              <span className="badge warning" data-testid="demo-badge">
                {' '}
                Demo model: random weights, its pictures are noise
              </span>
            )}
          </p>

          <p className="row precision" data-testid="precision" data-precision={info.precision.current}>
            <label>
              Precision{' '}
              <select
                value={precision}
                disabled={!idle || info.sourceDescription === 'the picked folder'}
                onChange={(event) => model.choosePrecision(event.target.value as PrecisionChoice)}
              >
                {PRECISION_CHOICES.filter(
                  (choice) => choice === 'auto' || info.precision.options.some((o) => o.precision === choice),
                ).map((choice) => {
                  const option = info.precision.options.find((o) => o.precision === choice);
                  return (
                    <option key={choice} value={choice} disabled={option !== undefined && !option.supported}>
                      {precisionOptionLabel(choice, option)}
                    </option>
                  );
                })}
              </select>
            </label>{' '}
            <span className="detail">Using {info.precision.reason}</span>
          </p>
          {inUse?.quality?.sample && (
            <QualityCompare
              key={`${info.modelId}:${inUse.precision}`}
              precision={inUse.precision}
              quality={inUse.quality}
              load={model.readQualitySample}
              disabled={!model.ready}
            />
          )}

          <fieldset className="features">
            <legend>What to download</legend>
            {features.map((f) => (
              <label key={f.feature}>
                <input
                  type="checkbox"
                  checked={f.feature === 'text-to-image' || wanted.has(f.feature)}
                  disabled={f.feature === 'text-to-image'}
                  onChange={() => model.toggleFeature(f.feature)}
                />
                {FEATURE_LABELS[f.feature] ?? f.feature}{' '}
                <span className="detail">
                  {f.ready ? '· ready' : `· ${formatBytes(f.missingBytes)} to download`}
                </span>
              </label>
            ))}
          </fieldset>

          <div className="row">
            {busy === 'downloading' ? (
              <button type="button" onClick={model.pause}>
                Pause
              </button>
            ) : (
              <button
                type="button"
                onClick={() => void model.download()}
                disabled={!idle || missingBytes === 0}
                data-testid="download-models"
              >
                {missingBytes === 0 ? 'Downloaded' : `Download ${formatBytes(missingBytes)}`}
              </button>
            )}
            <button type="button" className="secondary" disabled={!idle} onClick={() => void model.verify()}>
              Check integrity
            </button>
          </div>

          {progress && busy === 'downloading' && <DownloadBar progress={progress} />}

          <table className="components" data-testid="model-components">
            <caption className="visually-hidden">Components of the model set</caption>
            <thead>
              <tr>
                <th scope="col">Component</th>
                <th scope="col">Size</th>
                <th scope="col">Status</th>
                <th scope="col">
                  <span className="visually-hidden">Actions</span>
                </th>
              </tr>
            </thead>
            <tbody>
              {info.components.map((c) => (
                <tr key={c.id} data-component={c.id} data-state={c.state}>
                  <th scope="row">
                    {c.id}
                    {c.optional && <span className="detail"> (optional)</span>}
                  </th>
                  <td>{formatBytes(c.bytes)}</td>
                  <td>
                    {c.state === 'complete'
                      ? 'stored'
                      : c.state === 'partial'
                        ? `${formatBytes(c.storedBytes)} stored`
                        : 'not downloaded'}
                  </td>
                  <td>
                    {c.state !== 'absent' && (
                      <button
                        type="button"
                        className="link"
                        disabled={!idle}
                        aria-label={`Delete ${c.id}`}
                        onClick={() => void model.remove([c.id])}
                      >
                        Delete
                      </button>
                    )}
                  </td>
                </tr>
              ))}
            </tbody>
          </table>

          <p className="detail" data-testid="storage-usage">
            Storage used: {info.usageBytes === null ? 'unknown' : formatBytes(info.usageBytes)}
            {info.quotaBytes !== null && ` of ${formatBytes(info.quotaBytes)} available to this site`} ·
            persistent storage:{' '}
            {info.persisted === null ? 'unknown' : info.persisted ? 'granted' : 'not granted'}
          </p>
          <button
            type="button"
            className="secondary danger"
            disabled={!idle}
            onClick={() => {
              if (!window.confirm(`Delete every stored file of ${info.name}?`)) return;
              void model.remove();
            }}
          >
            Delete all
          </button>
        </div>
      )}
    </section>
  );
}
