import type * as Comlink from 'comlink';
import { type ReactNode, useCallback, useEffect, useId, useRef, useState } from 'react';
import type { GenerationSettings, GeneratorApi } from '../../workers/api';
import {
  DECODER_SCHEDULERS,
  DEFAULT_SETTINGS,
  type DecoderSchedulerName,
  LIMITS,
  SEED_MODES,
  type SeedMode,
  SettingsError,
  type SizeLimits,
  validateSettings,
} from '../../workers/engine/settings';
import type { GalleryRecord, GalleryStore } from '../gallery/gallery-store';
import { ImagePicker } from '../image-input/ImagePicker';
import { fitToSize } from '../image-input/load-image';
import { MaskPainter } from '../inpaint/MaskPainter';
import { MixEditor } from '../mix/MixEditor';
import { PROMPT_FIELD_ID } from '../SkipLink';
import { parseBoolean, usePersistentState } from '../use-persistent-state';
import { buildRequest, type RequestCheck, TAB_LABELS, takesPictureLook } from './build-request';
import { type DeviceIdentity, jobShape, useDeviceDefaults } from './device-defaults';
import { ErrorNotice } from './ErrorNotice';
import { formatDuration } from './eta';
import { ModeTabs } from './ModeTabs';
import { memoryWarning } from './memory-estimate';
import { DepthMapView, ProgressPanel } from './ProgressPanel';
import { Results } from './Results';
import { SizePicker } from './SizePicker';
import { randomSeed } from './seed';
import { clampSize, sizeForAspect } from './size-presets';
import type { GenerateForm } from './use-generate-form';
import { useGeneration } from './use-generation';

const SCHEDULER_LABELS: Readonly<Record<DecoderSchedulerName, string>> = {
  ddpm: 'DDPM (the Kandinsky 2.2 decoder’s)',
  ddim: 'DDIM',
  'dpmpp-2m': 'DPM-Solver++ 2M (good in fewer steps)',
};

const SEED_MODE_LABELS: Readonly<Record<SeedMode, string>> = {
  combined: 'Combined: one generator through prior and decoder (diffusers’ combined pipelines)',
  separate: 'Separate: prior and decoder each seeded (diffusers’ prior + decoder pipelines)',
};

interface Props {
  readonly api: Comlink.Remote<GeneratorApi> | null;
  readonly form: GenerateForm;
  readonly limits: SizeLimits;
  readonly gallery: GalleryStore;
  readonly onSaved: (records: readonly GalleryRecord[]) => void;
  /**
   * Replace the worker with a fresh one: its GPU device was lost, or a cancelled job did not stop
   * in time (use-generation.ts). The app's one restart.
   */
  readonly onGeneratorLost?: () => void;
  /** The adapter and model set (deviceIdentity): what the learnt costs and defaults are for. */
  readonly device?: DeviceIdentity | null;
  /** A generation found stored model files damaged (and removed) or missing. */
  readonly onStoredModelsChanged?: () => void;
  /** The open set's own decoder scheduler (what runs when none is picked); null: no set open. */
  readonly setScheduler?: DecoderSchedulerName | null;
  /** What the device allows, to warn before a size that likely won't fit; null when unknown. */
  readonly memory?: { readonly maxBufferBytes: number; readonly bytesPerValue: number } | null;
  /** Shown where the pictures will appear before the first run (the first-run setup); null: a hint. */
  readonly emptyOutput?: ReactNode;
}

const LOW_MEMORY_KEY = 'kandinsky-web:low-memory';
const PREVIEWS_KEY = 'kandinsky-web:live-preview';

/** The settings error validateSettings reports for the current form, if any. */
function settingsProblem(settings: GenerationSettings, limits: SizeLimits): SettingsError | null {
  try {
    validateSettings(settings, limits);
    return null;
  } catch (error) {
    if (error instanceof SettingsError) return error;
    throw error;
  }
}

export function GenerateScreen({
  api,
  form,
  limits,
  gallery,
  onSaved,
  onGeneratorLost,
  onStoredModelsChanged,
  memory = null,
  setScheduler = null,
  device = null,
  emptyOutput = null,
}: Props) {
  const id = useId();
  const { tab, settings, update } = form;
  const [lowMemory, setLowMemory] = usePersistentState(LOW_MEMORY_KEY, false, parseBoolean);
  // On unless turned off: each step's preview costs one readback of the latents from the GPU.
  const [previews, setPreviews] = usePersistentState(PREVIEWS_KEY, true, parseBoolean);
  const sizeWarning = memory
    ? memoryWarning(
        {
          width: settings.width,
          height: settings.height,
          numImages: settings.numImages,
          guided: settings.guidance > 1,
          bytesPerValue: memory.bytesPerValue,
        },
        memory.maxBufferBytes,
      )
    : null;
  const profile = useDeviceDefaults(device, limits);
  const generation = useGeneration(api, gallery, onSaved, {
    ...(onGeneratorLost ? { restartGenerator: onGeneratorLost } : {}),
    ...(onStoredModelsChanged ? { onStoredModelsChanged } : {}),
    profile,
  });
  // While the form holds the app's own defaults, the device's take their place (once per device).
  const appliedDefaults = useRef<string | null>(null);
  useEffect(() => {
    const defaults = profile.defaults;
    if (!defaults || !device || appliedDefaults.current === device.key) return;
    // The app first fits the size to a newly opened set's range; decide after that.
    const fitted = clampSize(settings.width, settings.height, limits);
    if (fitted.width !== settings.width || fitted.height !== settings.height) return;
    appliedDefaults.current = device.key;
    const appSize = clampSize(DEFAULT_SETTINGS.width, DEFAULT_SETTINGS.height, limits);
    // Judged on the form as it is when the update lands, not as it was rendered.
    const untouched = (current: GenerationSettings) =>
      current.steps === DEFAULT_SETTINGS.steps &&
      current.priorSteps === DEFAULT_SETTINGS.priorSteps &&
      current.width === appSize.width &&
      current.height === appSize.height;
    form.updateIf(untouched, defaults);
  }, [profile.defaults, device, limits, settings, form.updateIf]);
  const shape = jobShape(settings, limits);
  const jobEstimate = shape ? generation.estimate(shape) : null;
  const [submitProblem, setSubmitProblem] = useState<Extract<RequestCheck, { ok: false }> | null>(null);
  const problem = settingsProblem(settings, limits);
  const running = generation.state.phase === 'running';

  const submit = useCallback(() => {
    if (running) return;
    const seed = form.randomSeed ? randomSeed() : null;
    const check = buildRequest(
      {
        tab,
        settings,
        randomSeed: seed,
        fitSource: (width, height) => (form.source ? fitToSize(form.source, width, height) : null),
        depthSource: form.depthSource,
        mask: form.mask,
        mixDrafts: form.mixDrafts,
      },
      limits,
    );
    if (!check.ok) {
      setSubmitProblem(check);
      return;
    }
    setSubmitProblem(null);
    if (seed !== null) update({ seed });
    void generation.start(
      { ...check.request, lowMemory, previews },
      jobShape(check.request.settings, limits),
    );
  }, [running, form, tab, settings, limits, update, generation, lowMemory, previews]);

  // Ctrl/Cmd+Enter generates from anywhere on the page, including inside the prompt.
  const submitRef = useRef(submit);
  submitRef.current = submit;
  useEffect(() => {
    const onKey = (event: KeyboardEvent) => {
      if (event.key === 'Enter' && (event.ctrlKey || event.metaKey)) {
        event.preventDefault();
        submitRef.current();
      }
    };
    window.addEventListener('keydown', onKey);
    return () => window.removeEventListener('keydown', onKey);
  }, []);

  const fieldError = (field: keyof GenerationSettings | 'image' | 'mask' | 'mix'): ReactNode => {
    const message =
      submitProblem?.field === field
        ? submitProblem.message
        : problem?.field === field
          ? problem.message
          : null;
    return message ? (
      <p className="field-error" role="alert" id={`${id}-${field}-error`} data-testid={`error-${field}`}>
        {message}
      </p>
    ) : null;
  };
  const describedBy = (field: keyof GenerationSettings) =>
    problem?.field === field || submitProblem?.field === field ? `${id}-${field}-error` : undefined;

  const numberField = (
    field: 'steps' | 'guidance' | 'priorSteps' | 'priorGuidance' | 'numImages',
    label: string,
    range: { min: number; max: number },
    step: number,
    hint?: string,
  ) => (
    <div className="field">
      <label htmlFor={`${id}-${field}`}>{label}</label>
      <input
        id={`${id}-${field}`}
        type="number"
        min={range.min}
        max={range.max}
        step={step}
        value={Number.isFinite(settings[field]) ? settings[field] : ''}
        aria-invalid={problem?.field === field}
        aria-describedby={describedBy(field)}
        onChange={(e) => update({ [field]: e.target.valueAsNumber })}
      />
      {hint && <small className="hint">{hint}</small>}
      {fieldError(field)}
    </div>
  );

  const usesPicture = tab === 'img2img' || tab === 'inpaint' || tab === 'depth';
  const state = generation.state;

  return (
    <section className="panel generate" aria-labelledby={`${id}-heading`}>
      <h2 id={`${id}-heading`}>Create</h2>
      <ModeTabs tab={tab} onTab={form.setTab} idPrefix={id} />
      <div
        className="generate-layout"
        role="tabpanel"
        id={`${id}-panel`}
        aria-labelledby={`${id}-tab-${tab}`}
      >
        <form
          className="generate-form"
          aria-label={`${TAB_LABELS[tab]} settings`}
          onSubmit={(event) => {
            event.preventDefault();
            submit();
          }}
        >
          {tab === 'mix' ? (
            <fieldset>
              <legend>What to mix</legend>
              <MixEditor drafts={form.mixDrafts} onDrafts={form.setMixDrafts} />
              {fieldError('mix')}
            </fieldset>
          ) : (
            <div className="field">
              <label htmlFor={PROMPT_FIELD_ID}>Prompt</label>
              <textarea
                id={PROMPT_FIELD_ID}
                rows={3}
                value={settings.prompt}
                placeholder="A lighthouse on a cliff at dusk, oil painting, dramatic sky"
                aria-invalid={problem?.field === 'prompt' || submitProblem?.field === 'prompt'}
                aria-describedby={describedBy('prompt')}
                onChange={(e) => update({ prompt: e.target.value })}
              />
              {fieldError('prompt')}
            </div>
          )}

          {usesPicture && (
            <fieldset>
              <legend>{tab === 'depth' ? 'Layout picture' : 'Starting picture'}</legend>
              {tab === 'depth' && (
                <div className="inline" role="radiogroup" aria-label="What the picture is">
                  <label>
                    <input
                      type="radio"
                      name={`${id}-depth-source`}
                      checked={form.depthSource === 'photo'}
                      onChange={() => form.setDepthSource('photo')}
                    />
                    A photo (its depth is estimated on your device)
                  </label>
                  <label>
                    <input
                      type="radio"
                      name={`${id}-depth-source`}
                      checked={form.depthSource === 'depth-map'}
                      onChange={() => form.setDepthSource('depth-map')}
                    />
                    A depth map (near is bright)
                  </label>
                </div>
              )}
              <ImagePicker
                label={tab === 'depth' ? 'Photo or depth map' : 'Picture'}
                source={form.source}
                onSource={form.setSource}
                width={settings.width}
                height={settings.height}
                showPreview={tab !== 'inpaint'}
              />
              {form.source && (
                <button
                  type="button"
                  className="link"
                  onClick={() => {
                    const bitmap = form.source?.bitmap;
                    if (bitmap) update(sizeForAspect(bitmap.width, bitmap.height, limits));
                  }}
                >
                  Match the picture’s shape
                </button>
              )}
              {tab === 'inpaint' && form.source && (
                <MaskPainter
                  source={form.source}
                  width={settings.width}
                  height={settings.height}
                  mask={form.mask}
                  onMask={form.setMask}
                />
              )}
              {fieldError('image')}
              {fieldError('mask')}
            </fieldset>
          )}

          <div className="generate-actions">
            <button
              type="submit"
              className="primary"
              disabled={running || !api}
              data-testid="generate"
              aria-keyshortcuts="Control+Enter Meta+Enter"
            >
              Generate
            </button>
            <span className="hint">or Ctrl/⌘ + Enter</span>
            {jobEstimate && (
              <span className="hint" data-testid="job-estimate" data-ms={Math.round(jobEstimate.totalMs)}>
                {formatDuration(jobEstimate.totalMs)} on this device
              </span>
            )}
          </div>
          {submitProblem && !['prompt', 'image', 'mask', 'mix'].includes(submitProblem.field) && (
            <p className="field-error" role="alert">
              {submitProblem.message}
            </p>
          )}
        </form>
        <div className="generate-output" aria-live="polite">
          {state.phase === 'idle' &&
            (emptyOutput ?? (
              <p className="empty-output">
                Your pictures appear here. They are made on this device and never uploaded.
              </p>
            ))}
          {state.phase === 'running' && (
            <ProgressPanel state={state} onCancel={() => void generation.cancel()} />
          )}
          {state.phase === 'cancelled' && (
            <p
              className="notice"
              role="status"
              data-testid="cancelled"
              data-restarted={state.restarted}
              data-latency-ms={Math.round(state.latencyMs)}
            >
              {state.restarted
                ? 'Cancelled — the engine was restarted to stop at once. Nothing was generated; your models and gallery are kept.'
                : 'Cancelled. Nothing was generated.'}
            </p>
          )}
          {state.phase === 'failed' && <ErrorNotice code={state.error.code} message={state.error.message} />}
          {state.phase === 'done' && (
            <>
              {state.truncatedPrompt && (
                <div className="notice" role="status" data-testid="truncated-prompt">
                  <strong>Your prompt was shortened.</strong> Kandinsky reads at most 77 tokens;{' '}
                  {state.truncatedPrompt.droppedTokens} were left out. It used: “
                  {state.truncatedPrompt.keptText}”
                </div>
              )}
              {state.saveError && (
                <ErrorNotice code={state.saveError.code} message={state.saveError.message} />
              )}
              {state.depthMap && <DepthMapView depthMap={state.depthMap} />}
              <Results
                images={state.images}
                onUseSeed={(seed) => {
                  form.setRandomSeed(false);
                  update({ seed });
                }}
              />
            </>
          )}
        </div>

        <form
          className="generate-settings"
          aria-label="More settings"
          onSubmit={(event) => {
            event.preventDefault();
            submit();
          }}
        >
          <div className="field">
            <label htmlFor={`${id}-negative`}>Negative prompt</label>
            <textarea
              id={`${id}-negative`}
              rows={2}
              value={settings.negativePrompt}
              placeholder="What to avoid: blurry, low quality"
              onChange={(e) => update({ negativePrompt: e.target.value })}
            />
            {fieldError('negativePrompt')}
          </div>

          <SizePicker
            width={settings.width}
            height={settings.height}
            limits={limits}
            onChange={(size) => update(size)}
          />
          {sizeWarning && (
            <p className="notice" role="status" data-testid="memory-warning">
              {sizeWarning} Low-memory mode (under Advanced) also helps.
            </p>
          )}

          {(tab === 'img2img' || tab === 'depth') && (
            <div className="field">
              <label htmlFor={`${id}-strength`}>
                Strength: <output htmlFor={`${id}-strength`}>{settings.strength.toFixed(2)}</output>
              </label>
              <input
                id={`${id}-strength`}
                type="range"
                min={0.05}
                max={1}
                step={0.05}
                value={settings.strength}
                aria-describedby={`${id}-strength-hint`}
                onChange={(e) => update({ strength: e.target.valueAsNumber })}
              />
              <small className="hint" id={`${id}-strength-hint`}>
                Low keeps the picture, 1 redraws it completely.
              </small>
              {fieldError('strength')}
            </div>
          )}

          {takesPictureLook(tab, form.depthSource) && (
            <div className="field">
              <label className="check">
                <input
                  type="checkbox"
                  checked={settings.priorStrength !== undefined}
                  onChange={(e) => update({ priorStrength: e.target.checked ? 0.85 : undefined })}
                />
                Also take the {tab === 'depth' ? 'photo' : 'picture'}’s look (image prompt)
              </label>
              {settings.priorStrength !== undefined && (
                <>
                  <label htmlFor={`${id}-prior-strength`}>
                    Image prompt strength:{' '}
                    <output htmlFor={`${id}-prior-strength`}>{settings.priorStrength.toFixed(2)}</output>
                  </label>
                  <input
                    id={`${id}-prior-strength`}
                    type="range"
                    min={0.05}
                    max={1}
                    step={0.05}
                    value={settings.priorStrength}
                    aria-describedby={`${id}-prior-strength-hint`}
                    onChange={(e) => update({ priorStrength: e.target.valueAsNumber })}
                  />
                  <small className="hint" id={`${id}-prior-strength-hint`}>
                    Low keeps the look of the {tab === 'depth' ? 'photo' : 'picture'}, 1 takes it all from the
                    prompt. Needs the image prompt component.
                  </small>
                </>
              )}
              {fieldError('priorStrength')}
            </div>
          )}

          <fieldset className="seed">
            <legend>Seed</legend>
            <label className="check">
              <input
                type="checkbox"
                checked={form.randomSeed}
                onChange={(e) => form.setRandomSeed(e.target.checked)}
              />
              New random seed each time
            </label>
            <label>
              {form.randomSeed ? 'Last seed' : 'Seed'}
              <input
                type="number"
                min={0}
                step={1}
                value={Number.isFinite(settings.seed) ? settings.seed : ''}
                disabled={form.randomSeed}
                aria-describedby={describedBy('seed')}
                onChange={(e) => update({ seed: e.target.valueAsNumber })}
              />
            </label>
            {fieldError('seed')}
          </fieldset>

          <div className="field-row">
            {numberField('numImages', 'Images', LIMITS.numImages, 1)}
            {numberField('steps', 'Steps', LIMITS.steps, 1, 'More is slower and finer.')}
            {numberField('guidance', 'Guidance', LIMITS.guidance, 0.5, 'How closely to follow the prompt.')}
          </div>

          <details className="advanced">
            <summary>Advanced</summary>
            <label className="check">
              <input type="checkbox" checked={lowMemory} onChange={(e) => setLowMemory(e.target.checked)} />
              Low-memory mode: load one stage at a time (slower, for GPUs with little memory)
            </label>
            <label className="check">
              <input type="checkbox" checked={previews} onChange={(e) => setPreviews(e.target.checked)} />
              Live preview while painting (off: no read-back from the GPU between steps, a little faster)
            </label>
            <div className="field">
              <label htmlFor={`${id}-scheduler`}>Scheduler</label>
              <select
                id={`${id}-scheduler`}
                value={settings.scheduler ?? ''}
                onChange={(e) =>
                  update({ scheduler: (e.target.value || undefined) as DecoderSchedulerName | undefined })
                }
              >
                <option value="">
                  {setScheduler ? `The set’s own: ${SCHEDULER_LABELS[setScheduler]}` : 'The set’s own'}
                </option>
                {DECODER_SCHEDULERS.map((name) => (
                  <option key={name} value={name}>
                    {SCHEDULER_LABELS[name]}
                  </option>
                ))}
              </select>
            </div>
            <div className="field">
              <label htmlFor={`${id}-seed-mode`}>Seed mode</label>
              <select
                id={`${id}-seed-mode`}
                value={settings.seedMode ?? 'combined'}
                onChange={(e) => {
                  const seedMode = e.target.value as SeedMode;
                  // 'combined' is the default: settings without the field read the same.
                  update(seedMode === 'separate' ? { seedMode } : { seedMode: undefined });
                }}
              >
                {SEED_MODES.map((mode) => (
                  <option key={mode} value={mode}>
                    {SEED_MODE_LABELS[mode]}
                  </option>
                ))}
              </select>
            </div>
            <div className="field-row">
              {numberField(
                'priorSteps',
                'Prior steps',
                LIMITS.priorSteps,
                1,
                'Text → image-embedding steps.',
              )}
              {numberField('priorGuidance', 'Prior guidance', LIMITS.guidance, 0.5)}
            </div>
          </details>

          <div className="button-row">
            <button type="button" className="secondary" onClick={form.reset} data-testid="reset-form">
              Reset settings to defaults
            </button>
          </div>
        </form>
      </div>
    </section>
  );
}
