import type { JobProgress } from '../../workers/api';

export interface ProgressView {
  /** What is happening, for people: "Painting (denoising): step 12 of 50". */
  readonly label: string;
  /** Fraction of the current stage done, 0…1, or null when it has no measure (encoding). */
  readonly fraction: number | null;
}

const plural = (n: number, word: string) => `${n} ${word}${n === 1 ? '' : 's'}`;

/** Turns a typed progress event into the label and bar the progress panel shows. */
export function describeProgress(progress: JobProgress): ProgressView {
  switch (progress.stage) {
    case 'queued':
      return {
        label: progress.position === 0 ? 'Starting…' : `Waiting: ${plural(progress.position, 'job')} ahead`,
        fraction: null,
      };
    case 'load':
      return {
        label: `Loading ${progress.component} from storage (${progress.index + 1} of ${progress.count})`,
        fraction: progress.count > 0 ? progress.index / progress.count : null,
      };
    case 'session':
      return { label: `Preparing ${progress.component} on the GPU (creating its session)`, fraction: null };
    case 'encode':
      return { label: 'Reading the prompt', fraction: null };
    case 'depth':
      return { label: 'Estimated the depth of the photo', fraction: null };
    case 'loop-start':
      return progress.loop === 'prior'
        ? { label: 'Imagining (prior): first step (compiling GPU shaders)', fraction: 0 }
        : {
            label: 'Painting (denoising): first step (compiling GPU shaders, capturing the graph)',
            fraction: 0,
          };
    case 'prior':
      return progress.step >= progress.steps
        ? { label: 'Imagined; preparing to paint', fraction: null }
        : {
            label: `Imagining (prior): step ${progress.step} of ${progress.steps}`,
            fraction: progress.step / progress.steps,
          };
    case 'denoise':
      return progress.step >= progress.steps
        ? { label: 'Painted (denoising done); decoding the picture', fraction: null }
        : {
            label: `Painting (denoising): step ${progress.step} of ${progress.steps}`,
            fraction: progress.step / progress.steps,
          };
    case 'decode':
      return {
        label: `Decoding image ${progress.image} of ${progress.images} (MoVQ)`,
        fraction: progress.images > 0 ? (progress.image - 1) / progress.images : null,
      };
    case 'png':
      return { label: `Encoding ${plural(progress.images, 'picture')} as PNG`, fraction: null };
  }
}
