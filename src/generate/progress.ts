import type { JobProgress } from '../../workers/api';

export interface ProgressView {
  /** What is happening, for people: "Denoising: step 12 of 50". */
  readonly label: string;
  /** Fraction of the current stage done, 0…1, or null when it has no measure (encoding). */
  readonly fraction: number | null;
}

/** Turns a typed progress event into the label and bar the progress panel shows. */
export function describeProgress(progress: JobProgress): ProgressView {
  switch (progress.stage) {
    case 'queued':
      return {
        label:
          progress.position === 0
            ? 'Starting…'
            : `Waiting: ${progress.position} job${progress.position === 1 ? '' : 's'} ahead`,
        fraction: null,
      };
    case 'load':
      return {
        label: `Loading ${progress.component} (${progress.index} of ${progress.count})`,
        fraction: progress.count > 0 ? progress.index / progress.count : null,
      };
    case 'encode':
      return { label: 'Reading the prompt', fraction: null };
    case 'depth':
      return { label: 'Estimated the depth of the photo', fraction: null };
    case 'prior':
      return {
        label: `Imagining (prior): step ${progress.step} of ${progress.steps}`,
        fraction: progress.step / progress.steps,
      };
    case 'denoise':
      return {
        label: `Painting (denoising): step ${progress.step} of ${progress.steps}`,
        fraction: progress.step / progress.steps,
      };
    case 'decode':
      return {
        label: `Decoding image ${progress.image} of ${progress.images}`,
        fraction: progress.images > 0 ? progress.image / progress.images : null,
      };
  }
}
