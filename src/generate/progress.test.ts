import { describe, expect, it } from 'vitest';
import type { JobProgress } from '../../workers/api';
import { describeProgress } from './progress';

describe('describeProgress', () => {
  it.each<[JobProgress, string, number | null]>([
    [{ stage: 'queued', position: 2 }, 'Waiting: 2 jobs ahead', null],
    [{ stage: 'queued', position: 0 }, 'Starting…', null],
    [{ stage: 'load', component: 'prior', index: 1, count: 4 }, 'Loading prior from storage (2 of 4)', 0.25],
    [{ stage: 'session', component: 'unet' }, 'Preparing unet on the GPU (creating its session)', null],
    [{ stage: 'encode' }, 'Reading the prompt', null],
    [
      { stage: 'loop-start', loop: 'prior', steps: 25 },
      'Imagining (prior): first step (compiling GPU shaders)',
      0,
    ],
    [{ stage: 'prior', step: 5, steps: 25 }, 'Imagining (prior): step 5 of 25', 0.2],
    // After the prior's last step comes preparation, not "step 25 of 25" for minutes.
    [{ stage: 'prior', step: 25, steps: 25 }, 'Imagined; preparing to paint', null],
    [
      { stage: 'loop-start', loop: 'denoise', steps: 50 },
      'Painting (denoising): first step (compiling GPU shaders, capturing the graph)',
      0,
    ],
    [{ stage: 'denoise', step: 12, steps: 50 }, 'Painting (denoising): step 12 of 50', 0.24],
    [{ stage: 'denoise', step: 50, steps: 50 }, 'Painted (denoising done); decoding the picture', null],
    [{ stage: 'decode', image: 1, images: 2 }, 'Decoding image 1 of 2 (MoVQ)', 0],
    [{ stage: 'png', images: 1 }, 'Encoding 1 picture as PNG', null],
  ])('%o', (progress, label, fraction) => {
    expect(describeProgress(progress)).toEqual({ label, fraction });
  });
});
