import * as Comlink from 'comlink';
import { type ChangeEvent, useCallback, useEffect, useId, useMemo, useRef, useState } from 'react';
import type { GeneratorApi, ModelDownloadProgress, ModelSetInfo, PrecisionChoice } from '../../workers/api';
import { toWireError, type WireError } from '../../workers/errors';
import { formatBytes } from '../../workers/format';
import { formatCosine, PRECISION_CHOICES } from '../../workers/precision';
import {
  buildSourceConfig,
  FEATURE_LABELS,
  pickedFolderFiles,
  savedModelSource,
  saveModelSource,
  sourceManifestUrl,
} from './model-source';

interface Props {
  readonly api: Comlink.Remote<GeneratorApi> | null;
  /** Told whenever the open set or what is stored of it changes. */
  readonly onChange: (info: ModelSetInfo | null) => void;
  /**
   * Changes whenever something outside the manager changed what is stored (a generation found a
   * file damaged and removed it): the manager reads the cache status again.
   */
  readonly storeChanged?: number;
}

type Busy = 'opening' | 'downloading' | 'deleting' | 'verifying' | null;

const PRECISION_KEY = 'kandinsky-web:precision';

/** The user's precision override, kept across visits ('auto' unless they chose one). */
function savedPrecision(): PrecisionChoice {
  const value = localStorage.getItem(PRECISION_KEY);
  return (PRECISION_CHOICES as readonly string[]).includes(value ?? '') ? (value as PrecisionChoice) : 'auto';
}

const PRECISION_LABELS: Record<PrecisionChoice, string> = {
  auto: 'Automatic (from this GPU)',
  fp16: 'fp16 — half size, needs shader-f16',
  fp32: 'fp32 — runs everywhere, largest',
  int8: 'int8 weights — a quarter of fp32',
  int4: 'int4 weights — smallest, lower quality',
  int4c6: 'int4, 6-bit convolutions',
};

export function ModelManager({ api, onChange, storeChanged = 0 }: Props) {
  const ids = { url: useId(), folder: useId(), heading: useId() };
  const [url, setUrl] = useState(() => savedModelSource(localStorage, document.baseURI));
  const [precision, setPrecision] = useState<PrecisionChoice>(savedPrecision);
  const [info, setInfo] = useState<ModelSetInfo | null>(null);
  const [wanted, setWanted] = useState<ReadonlySet<string>>(new Set(['text-to-image']));
  const [busy, setBusy] = useState<Busy>(null);
  const [progress, setProgress] = useState<ModelDownloadProgress | null>(null);
  const [error, setError] = useState<WireError | null>(null);
  const [notice, setNotice] = useState<string | null>(null);
  /** The worker the set was opened in: a restarted worker (after a lost GPU) opens it again. */
  const opened = useRef<Comlink.Remote<GeneratorApi> | null>(null);

  const show = useCallback(
    (next: ModelSetInfo) => {
      setInfo(next);
      onChange(next);
    },
    [onChange],
  );

  const run = useCallback(async (what: Exclude<Busy, null>, task: () => Promise<void>) => {
    setBusy(what);
    setError(null);
    setNotice(null);
    try {
      await task();
    } catch (e) {
      const wire = toWireError(e);
      // A pause is the user's choice, not a failure.
      if (wire.code === 'CANCELLED') setNotice('Download paused: everything verified so far is kept.');
      else setError(wire);
    } finally {
      setBusy(null);
    }
  }, []);

  const open = useCallback(
    (source: string, choice: PrecisionChoice = precision) =>
      run('opening', async () => {
        if (!api) return;
        const resolved = sourceManifestUrl(source, buildSourceConfig(), document.baseURI);
        if ('error' in resolved) {
          setError(resolved.error);
          return;
        }
        show(await api.openModelSet({ kind: 'url', url: resolved.manifestUrl }, choice));
        saveModelSource(localStorage, source.trim());
      }),
    [api, run, show, precision],
  );

  useEffect(() => {
    if (api && opened.current !== api) {
      opened.current = api;
      void open(url);
    }
  }, [api, open, url]);

  // The stored files changed under the manager: show what is stored now (what to download again).
  useEffect(() => {
    if (storeChanged === 0 || !api || opened.current !== api) return;
    let live = true;
    api
      .modelSetInfo()
      .then((next) => {
        if (live) show(next);
      })
      .catch(() => {}); // no set open (any more): nothing to refresh
    return () => {
      live = false;
    };
  }, [storeChanged, api, show]);

  const importFolder = (event: ChangeEvent<HTMLInputElement>) => {
    const files = event.target.files;
    if (!files || files.length === 0 || !api) return;
    void run('opening', async () => {
      show(await api.openModelSet({ kind: 'files', files: pickedFolderFiles(files) }, precision));
    });
    event.target.value = '';
  };

  const features = info?.features ?? [];
  const missingBytes = useMemo(() => {
    if (!info) return 0;
    const needed = new Set<string>();
    for (const c of info.components) {
      if (!c.optional || c.enables.some((f) => wanted.has(f))) needed.add(c.id);
    }
    return info.components.filter((c) => needed.has(c.id)).reduce((n, c) => n + c.bytes - c.storedBytes, 0);
  }, [info, wanted]);

  const download = () =>
    run('downloading', async () => {
      if (!api) return;
      setProgress(null);
      show(
        await api.downloadModels(
          [...wanted],
          Comlink.proxy((p: ModelDownloadProgress) => setProgress(p)),
        ),
      );
      const persistence = await api.requestPersistence();
      if (persistence === 'denied') {
        setNotice(
          'Stored. The browser may clear it under storage pressure (persistent storage was not granted).',
        );
      }
    });

  const toggle = (feature: string) =>
    setWanted((current) => {
      const next = new Set(current);
      if (next.has(feature)) next.delete(feature);
      else next.add(feature);
      return next;
    });

  return (
    <section className="panel model-manager" aria-labelledby={ids.heading} data-slot="model-manager">
      <h2 id={ids.heading}>Models</h2>
      <form
        className="model-source"
        onSubmit={(event) => {
          event.preventDefault();
          void open(url);
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
            onChange={(e) => setUrl(e.target.value)}
            required
          />
          <button type="submit" disabled={!api || busy !== null}>
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
            onChange={importFolder}
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
                disabled={!api || busy !== null || info.sourceDescription === 'the picked folder'}
                onChange={(event) => {
                  const choice = event.target.value as PrecisionChoice;
                  setPrecision(choice);
                  localStorage.setItem(PRECISION_KEY, choice);
                  void open(url, choice);
                }}
              >
                {PRECISION_CHOICES.filter(
                  (choice) => choice === 'auto' || info.precision.options.some((o) => o.precision === choice),
                ).map((choice) => {
                  const option = info.precision.options.find((o) => o.precision === choice);
                  return (
                    <option key={choice} value={choice} disabled={option !== undefined && !option.supported}>
                      {PRECISION_LABELS[choice]}
                      {option?.textToImageBytes ? ` · ${formatBytes(option.textToImageBytes)}` : ''}
                      {typeof option?.checkCosine === 'number'
                        ? ` · checked: cosine ${formatCosine(option.checkCosine)}`
                        : ''}
                      {option && !option.supported ? ' (not on this GPU)' : ''}
                    </option>
                  );
                })}
              </select>
            </label>{' '}
            <span className="detail">Using {info.precision.reason}</span>
          </p>

          <fieldset className="features">
            <legend>What to download</legend>
            {features.map((f) => (
              <label key={f.feature}>
                <input
                  type="checkbox"
                  checked={f.feature === 'text-to-image' || wanted.has(f.feature)}
                  disabled={f.feature === 'text-to-image'}
                  onChange={() => toggle(f.feature)}
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
              <button type="button" onClick={() => void api?.pauseDownload()}>
                Pause
              </button>
            ) : (
              <button
                type="button"
                onClick={download}
                disabled={!api || busy !== null || missingBytes === 0}
                data-testid="download-models"
              >
                {missingBytes === 0 ? 'Downloaded' : `Download ${formatBytes(missingBytes)}`}
              </button>
            )}
            <button
              type="button"
              className="secondary"
              disabled={!api || busy !== null}
              onClick={() =>
                void run('verifying', async () => {
                  const reports = (await api?.verifyModels()) ?? [];
                  const damaged = reports.filter((r) => r.state === 'damaged').map((r) => r.componentId);
                  setNotice(
                    damaged.length > 0
                      ? `Damaged and removed: ${damaged.join(', ')}. Download again to repair.`
                      : 'Every stored file matches its checksum.',
                  );
                  if (api) show(await api.modelSetInfo());
                })
              }
            >
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
                        disabled={!api || busy !== null}
                        aria-label={`Delete ${c.id}`}
                        onClick={() =>
                          void run('deleting', async () => {
                            if (api) show(await api.deleteModels([c.id]));
                          })
                        }
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
            disabled={!api || busy !== null}
            onClick={() => {
              if (!window.confirm(`Delete every stored file of ${info.name}?`)) return;
              void run('deleting', async () => {
                if (api) show(await api.deleteModels());
              });
            }}
          >
            Delete all
          </button>
        </div>
      )}
    </section>
  );
}

function DownloadBar({ progress }: { readonly progress: ModelDownloadProgress }) {
  const fraction = progress.totalBytesTotal > 0 ? progress.totalBytesDone / progress.totalBytesTotal : 0;
  return (
    <div className="download-progress" data-testid="download-progress">
      <progress value={fraction} max={1} aria-label="Download progress" />
      <span className="detail">
        {formatBytes(progress.totalBytesDone)} of {formatBytes(progress.totalBytesTotal)}
        {progress.bytesPerSecond !== null && ` · ${formatBytes(progress.bytesPerSecond)}/s`}
        {progress.etaSeconds !== null && ` · ${Math.ceil(progress.etaSeconds)} s left`} ·{' '}
        {progress.componentId}
      </span>
    </div>
  );
}
