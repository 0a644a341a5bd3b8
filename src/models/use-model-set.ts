import * as Comlink from 'comlink';
import { useCallback, useEffect, useMemo, useRef, useState } from 'react';
import type {
  GeneratorApi,
  ModelDownloadProgress,
  ModelSetInfo,
  Precision,
  PrecisionChoice,
  QualitySample,
} from '../../workers/api';
import { toWireError, type WireError } from '../../workers/errors';
import { PRECISION_CHOICES } from '../../workers/precision';
import {
  buildSourceConfig,
  pickedFolderFiles,
  savedModelSource,
  saveModelSource,
  sourceManifestUrl,
} from './model-source';

export type ModelBusy = 'opening' | 'downloading' | 'deleting' | 'verifying' | null;

const PRECISION_KEY = 'kandinsky-web:precision';

/** The user's precision override, kept across visits ('auto' unless they chose one). */
function savedPrecision(): PrecisionChoice {
  const value = localStorage.getItem(PRECISION_KEY);
  return (PRECISION_CHOICES as readonly string[]).includes(value ?? '') ? (value as PrecisionChoice) : 'auto';
}

/**
 * The open model set and what the person does with it (open a URL or folder, pick a precision,
 * download, pause, check, delete), shared by the status line, the first-run setup and the model
 * manager so they show one state. Opens the saved set as soon as a worker is there, and again in
 * a replaced worker.
 */
export function useModelSet(
  api: Comlink.Remote<GeneratorApi> | null,
  onChange: (info: ModelSetInfo | null) => void,
  /** Changes when something outside changed what is stored: the status is read again. */
  storeChanged = 0,
) {
  const [url, setUrl] = useState(() => savedModelSource(localStorage, document.baseURI));
  const [precision, setPrecision] = useState<PrecisionChoice>(savedPrecision);
  const [info, setInfo] = useState<ModelSetInfo | null>(null);
  const [wanted, setWanted] = useState<ReadonlySet<string>>(new Set(['text-to-image']));
  const [busy, setBusy] = useState<ModelBusy>(null);
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

  const run = useCallback(async (what: Exclude<ModelBusy, null>, task: () => Promise<void>) => {
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

  const importFolder = useCallback(
    (files: FileList) => {
      if (files.length === 0 || !api) return;
      const picked = pickedFolderFiles(files);
      void run('opening', async () => {
        show(await api.openModelSet({ kind: 'files', files: picked }, precision));
      });
    },
    [api, run, show, precision],
  );

  const choosePrecision = useCallback(
    (choice: PrecisionChoice) => {
      setPrecision(choice);
      localStorage.setItem(PRECISION_KEY, choice);
      void open(url, choice);
    },
    [open, url],
  );

  /** Bytes still to download for the required components and the wanted features. */
  const missingBytes = useMemo(() => {
    if (!info) return 0;
    const needed = info.components.filter((c) => !c.optional || c.enables.some((f) => wanted.has(f)));
    return needed.reduce((n, c) => n + c.bytes - c.storedBytes, 0);
  }, [info, wanted]);

  const download = useCallback(
    () =>
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
      }),
    [api, run, show, wanted],
  );

  const pause = useCallback(() => void api?.pauseDownload(), [api]);

  const verify = useCallback(
    () =>
      run('verifying', async () => {
        const reports = (await api?.verifyModels()) ?? [];
        const damaged = reports.filter((r) => r.state === 'damaged').map((r) => r.componentId);
        setNotice(
          damaged.length > 0
            ? `Damaged and removed: ${damaged.join(', ')}. Download again to repair.`
            : 'Every stored file matches its checksum.',
        );
        if (api) show(await api.modelSetInfo());
      }),
    [api, run, show],
  );

  /** Deletes the given components (all of the set when omitted). */
  const remove = useCallback(
    (componentIds?: readonly string[]) =>
      run('deleting', async () => {
        if (api) show(await api.deleteModels(componentIds));
      }),
    [api, run, show],
  );

  /** A precision option's quality sample pair, read on demand (not a busy state: nothing changes). */
  const readQualitySample = useCallback(
    async (option: Precision): Promise<QualitySample | null> => (api ? api.readQualitySample(option) : null),
    [api],
  );

  const toggleFeature = useCallback(
    (feature: string) =>
      setWanted((current) => {
        const next = new Set(current);
        if (next.has(feature)) next.delete(feature);
        else next.add(feature);
        return next;
      }),
    [],
  );

  return {
    ready: api !== null,
    url,
    setUrl,
    precision,
    info,
    wanted,
    busy,
    progress,
    error,
    notice,
    missingBytes,
    open,
    importFolder,
    choosePrecision,
    download,
    pause,
    verify,
    remove,
    readQualitySample,
    toggleFeature,
  };
}

export type ModelSetState = ReturnType<typeof useModelSet>;

/** Whether text → image, the feature every other one builds on, is stored and ready. */
export function textToImageReady(info: ModelSetInfo | null): boolean {
  return info?.features.find((f) => f.feature === 'text-to-image')?.ready === true;
}
