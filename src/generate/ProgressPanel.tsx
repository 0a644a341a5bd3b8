import { useEffect, useRef, useState } from 'react';
import type { RgbaImage } from '../../workers/api';
import { drawRgba } from '../image-input/rgba-canvas';
import { formatDuration } from './eta';
import { remainingMs } from './job-estimate';
import { describeProgress } from './progress';
import type { GenerationState } from './use-generation';

/** The time-left line: re-read every second, so a long stage counts down between events. */
function useNow(intervalMs: number): number {
  const [now, setNow] = useState(() => performance.now());
  useEffect(() => {
    const id = setInterval(() => setNow(performance.now()), intervalMs);
    return () => clearInterval(id);
  }, [intervalMs]);
  return now;
}

/** "about 40 s left", "taking longer than this device's earlier runs", or why there is no estimate. */
export function timeLeftText(state: Extract<GenerationState, { phase: 'running' }>, nowMs: number): string {
  if (state.saving) return 'Saving to the gallery';
  if (!state.progress) return state.estimate ? `${formatDuration(state.estimate.totalMs)} in all` : '\u00a0';
  const left = remainingMs(
    state.estimate,
    state.progress,
    Math.max(0, nowMs - state.progressAtMs),
    state.liveMsPerStep,
  );
  if (left === null) return 'No estimate yet: the first run on this device measures its speed';
  // The estimate ran out with the stage still going: say so rather than "less than a second".
  if (left < 1000 && nowMs - state.progressAtMs > 2000) return 'Taking longer than on earlier runs';
  return `${formatDuration(left)} left`;
}

interface Props {
  readonly state: Extract<GenerationState, { phase: 'running' }>;
  readonly onCancel: () => void;
}

/** The running job: live preview of the latents, stage and step, time left, Cancel. */
export function ProgressPanel({ state, onCancel }: Props) {
  const canvas = useRef<HTMLCanvasElement>(null);
  const now = useNow(1000);
  useEffect(() => {
    if (canvas.current && state.preview) drawRgba(canvas.current, state.preview);
  }, [state.preview]);
  const view = state.saving
    ? { label: 'Saving to the gallery', fraction: null }
    : state.progress
      ? describeProgress(state.progress)
      : { label: 'Sending the job to the generator…', fraction: null };
  return (
    <section className="progress-panel" aria-label="Generation progress" data-testid="progress">
      <div className="preview-frame">
        {state.preview ? (
          <canvas ref={canvas} className="preview" aria-label="Live preview of the image being painted" />
        ) : (
          <div className="preview placeholder" aria-hidden="true" />
        )}
      </div>
      {state.depthMap && <DepthMapView depthMap={state.depthMap} />}
      <p className="progress-label" aria-live="polite" data-testid="progress-label">
        {view.label}
      </p>
      <progress
        max={1}
        value={view.fraction ?? undefined}
        aria-label={view.label}
        data-stage={state.progress?.stage ?? 'starting'}
      />
      <p className="eta" data-testid="eta">
        {timeLeftText(state, now)}
      </p>
      {!state.saving && (
        <button type="button" className="secondary" onClick={onCancel} disabled={state.cancelling}>
          {state.cancelling ? 'Cancelling…' : 'Cancel'}
        </button>
      )}
    </section>
  );
}

/** The depth map estimated from the photo: the layout the picture will follow. */
export function DepthMapView({ depthMap }: { readonly depthMap: RgbaImage }) {
  const canvas = useRef<HTMLCanvasElement>(null);
  useEffect(() => {
    if (canvas.current) drawRgba(canvas.current, depthMap);
  }, [depthMap]);
  return (
    <figure
      className="depth-map"
      data-testid="depth-preview"
      data-width={depthMap.width}
      data-height={depthMap.height}
    >
      <canvas ref={canvas} aria-label="Depth map estimated from the photo (near is bright)" />
      <figcaption className="detail">Depth estimated from the photo (near is bright)</figcaption>
    </figure>
  );
}
