import { describe, expect, it } from 'vitest';
import type { JobProgress } from '../../workers/api';
import { describeProgress } from './progress';

describe('describeProgress', () => {
  it.each<[JobProgress, string, number | null]>([
    [{ stage: 'queued', position: 2 }, 'Waiting: 2 jobs ahead', null],
    [{ stage: 'queued', position: 0 }, 'Starting…', null],
    [{ stage: 'load', component: 'prior', index: 1, count: 4 }, 'Loading prior (1 of 4)', 0.25],
    [{ stage: 'encode' }, 'Reading the prompt', null],
    [{ stage: 'prior', step: 5, steps: 25 }, 'Imagining (prior): step 5 of 25', 0.2],
    [{ stage: 'denoise', step: 12, steps: 50 }, 'Painting (denoising): step 12 of 50', 0.24],
    [{ stage: 'decode', image: 1, images: 2 }, 'Decoding image 1 of 2', 0.5],
  ])('%o', (progress, label, fraction) => {
    expect(describeProgress(progress)).toEqual({ label, fraction });
  });
});
