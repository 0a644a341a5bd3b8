import type * as Comlink from 'comlink';
import { useCallback, useEffect, useMemo, useState } from 'react';
import type { GeneratorApi, GpuReport, ModelSetInfo } from '../workers/api';
import { KANDINSKY_SIZE_LIMITS, type SizeLimits } from '../workers/engine/settings';
import { toWireError, type WireError } from '../workers/errors';
import { DeviceStatus } from './DeviceStatus';
import { Gallery } from './gallery/Gallery';
import { GalleryStore } from './gallery/gallery-store';
import { useGallery } from './gallery/use-gallery';
import { deviceIdentity } from './generate/device-defaults';
import { GenerateScreen } from './generate/GenerateScreen';
import { clampSize } from './generate/size-presets';
import { useGenerateForm } from './generate/use-generate-form';
import { startGenerator, testHooksRequested } from './generator-client';
import { decodeImageFile } from './image-input/load-image';
import { FirstRunSetup } from './models/FirstRunSetup';
import { ModelManager } from './models/ModelManager';
import { ModelsDialog } from './models/ModelsDialog';
import { textToImageReady, useModelSet } from './models/use-model-set';
import { UpdatePrompt } from './pwa/UpdatePrompt';
import { SkipLink } from './SkipLink';
import { StatusBar } from './StatusBar';
import type { SelfTest } from './self-test';
import { useOnline } from './use-online';

/** The input the self-test feeds the smoke graph; tests compute the expected output from it. */
export const SMOKE_INPUT = Float32Array.from([1, 2, 3, -1, 0.5, 0.25]);

export function App() {
  const [api, setApi] = useState<Comlink.Remote<GeneratorApi> | null>(null);
  const [modelSet, setModelSet] = useState<ModelSetInfo | null>(null);
  // Output sizes the open model set supports (the tiny demo set works from 64 px).
  const limits: SizeLimits = modelSet?.sizeLimits ?? KANDINSKY_SIZE_LIMITS;
  const [gpu, setGpu] = useState<GpuReport | null>(null);
  const [selfTest, setSelfTest] = useState<SelfTest>({ state: 'running' });
  const [workerError, setWorkerError] = useState<WireError | null>(null);
  const galleryStore = useMemo(() => new GalleryStore(), []);
  const gallery = useGallery(galleryStore);
  const form = useGenerateForm();
  // Bumped to replace the worker: after its GPU device was lost, its onnxruntime can't run again.
  const [generatorEpoch, setGeneratorEpoch] = useState(0);
  const restartGenerator = useCallback(() => setGeneratorEpoch((epoch) => epoch + 1), []);
  // Bumped when a generation found stored model files damaged or missing: the manager re-reads them.
  const [storedModelsChanged, setStoredModelsChanged] = useState(0);
  const onStoredModelsChanged = useCallback(() => setStoredModelsChanged((n) => n + 1), []);
  const model = useModelSet(api, setModelSet, storedModelsChanged);
  const [modelsOpen, setModelsOpen] = useState(false);
  const openModels = useCallback(() => setModelsOpen(true), []);
  const online = useOnline();

  // Runs again (a new worker) whenever generatorEpoch changes; it also reads it for the test hooks.
  useEffect(() => {
    const generator = startGenerator({ testHooks: testHooksRequested(location.search) });
    setApi(() => generator.api);
    setGpu(null);
    setSelfTest({ state: 'running' });
    setWorkerError(null);
    const hooks = generator.testHooks;
    if (hooks) {
      // For end-to-end tests only (a `?test-hooks` URL): which worker this is, and its hooks.
      (globalThis as { kandinskyTestHooks?: unknown }).kandinskyTestHooks = {
        generatorEpoch,
        liveOrtObjects: () => hooks.liveOrtObjects(),
        destroyGpuDevice: () => hooks.destroyGpuDevice(),
        blockThread: (ms: number) => hooks.blockThread(ms),
      };
    }
    let live = true;
    (async () => {
      try {
        const report = await generator.api.probeGpu();
        if (!live) return;
        setGpu(report);
        if (!report.available) {
          setSelfTest({ state: 'skipped' });
          return;
        }
        try {
          const result = await generator.api.runSmokeTest(SMOKE_INPUT);
          if (live) setSelfTest({ state: 'passed', result });
        } catch (error) {
          if (live) setSelfTest({ state: 'failed', error: toWireError(error) });
        }
      } catch (error) {
        if (live) setWorkerError(toWireError(error));
      }
    })();
    return () => {
      live = false;
      setApi(null);
      generator.terminate();
    };
  }, [generatorEpoch]);

  const { refresh } = gallery;
  const onSaved = useCallback(() => void refresh(), [refresh]);
  const { reuseSettings, setSource, setTab, update } = form;

  // A newly opened model set may not take the current size (the demo set stops at 512 px). Until
  // a set is open its range is unknown: a size kept from the last visit waits for it.
  const { width, height } = form.settings;
  useEffect(() => {
    if (!modelSet) return;
    const fitted = clampSize(width, height, limits);
    if (fitted.width !== width || fitted.height !== height) update(fitted);
  }, [modelSet, limits, width, height, update]);

  const deviceProblem =
    workerError || (gpu && !gpu.available) || selfTest.state === 'failed' ? (
      workerError ? (
        <section className="panel error" role="alert">
          <h2>The generator could not start</h2>
          <p>
            <code>{workerError.code}</code>: {workerError.message}
          </p>
          <p>Reload the page. If it happens again, your browser may block module workers.</p>
        </section>
      ) : (
        <DeviceStatus gpu={gpu} selfTest={selfTest} userAgent={navigator.userAgent} />
      )
    ) : null;

  return (
    <div className="app">
      <SkipLink />
      <header className="app-header">
        <h1>Kandinsky Web</h1>
        <p className="tagline">
          Kandinsky 2.2 image generation on your device. Prompts and pictures never leave it.
        </p>
      </header>
      <StatusBar
        gpu={gpu}
        selfTest={selfTest}
        workerError={workerError}
        model={model}
        online={online}
        onOpenModels={openModels}
      />
      <UpdatePrompt />
      <ModelsDialog open={modelsOpen} onClose={() => setModelsOpen(false)}>
        {!deviceProblem && <DeviceStatus gpu={gpu} selfTest={selfTest} userAgent={navigator.userAgent} />}
        <ModelManager model={model} />
      </ModelsDialog>
      <main>
        {deviceProblem}
        <GenerateScreen
          memory={
            gpu?.available && modelSet && !modelSet.demo
              ? {
                  maxBufferBytes: gpu.adapter.maxBufferSize,
                  bytesPerValue: modelSet.precision.current === 'fp16' ? 2 : 4,
                }
              : null
          }
          api={api}
          form={form}
          limits={limits}
          setScheduler={modelSet?.decoderScheduler ?? null}
          gallery={galleryStore}
          onSaved={onSaved}
          onGeneratorLost={restartGenerator}
          onStoredModelsChanged={onStoredModelsChanged}
          device={deviceIdentity(gpu, modelSet)}
          emptyOutput={
            model.info && textToImageReady(model.info) ? null : (
              <FirstRunSetup model={model} onMoreChoices={openModels} />
            )
          }
        />
        <Gallery
          store={galleryStore}
          records={gallery.records}
          error={gallery.error}
          limits={limits}
          onDelete={gallery.remove}
          onReuseSettings={(settings) => {
            reuseSettings(settings);
            document.querySelector('.generate')?.scrollIntoView({ behavior: 'smooth' });
          }}
          onUseAsInput={async (png, record, tab) => {
            setSource(await decodeImageFile(png, `gallery picture (seed ${record.settings.seed})`));
            update({ width: record.width, height: record.height, prompt: record.settings.prompt });
            setTab(tab);
            document.querySelector('.generate')?.scrollIntoView({ behavior: 'smooth' });
          }}
        />
      </main>
    </div>
  );
}
