import { useEffect, useRef } from 'react';
import type { RgbaImage } from '../../workers/api';
import { drawRgba } from '../image-input/rgba-canvas';
import { formatDuration } from './eta';
import { describeProgress } from './progress';
import type { GenerationState } from './use-generation';

interface Props {
  readonly state: Extract<GenerationState, { phase: 'running' }>;
  readonly onCancel: () => void;
}

/** The running job: live preview of the latents, stage and step, time left, Cancel. */
export function ProgressPanel({ state, onCancel }: Props) {
  const canvas = useRef<HTMLCanvasElement>(null);
  useEffect(() => {
    if (canvas.current && state.preview) drawRgba(canvas.current, state.preview);
  }, [state.preview]);
  const view = state.progress
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
        {state.remainingMs === null ? '\u00a0' : `${formatDuration(state.remainingMs)} left in this stage`}
      </p>
      <button type="button" className="secondary" onClick={onCancel} disabled={state.cancelling}>
        {state.cancelling ? 'Cancelling…' : 'Cancel'}
      </button>
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
