import { describe, expect, it } from 'vitest';
import type { JobProgress } from '../../workers/api';
import {
  costsOfRun,
  estimateJob,
  type JobShape,
  type RunCosts,
  remainingMs,
  type StampedProgress,
} from './job-estimate';

const SHAPE: JobShape = { width: 64, height: 64, numImages: 1, guided: true, steps: 3, priorSteps: 2 };

/** Events `[progress, ms after the previous one]`, stamped from 1000 ms. */
function stamped(list: readonly (readonly [JobProgress, number])[]): StampedProgress[] {
  let at = 1000;
  return list.map(([progress, after]) => {
    at += after;
    return { progress, atMs: at };
  });
}

/** A cold run of SHAPE as the worker reports it; each number is the time its work took. */
const COLD_EVENTS = stamped([
  [{ stage: 'queued', position: 0 }, 5], // 5 ms to send the job
  [{ stage: 'load', component: 'text_encoder', index: 0, count: 2 }, 10], // checks: 10
  [{ stage: 'session', component: 'text_encoder' }, 300], // reading: 300
  [{ stage: 'load', component: 'unet', index: 1, count: 2 }, 2000], // session: 2000
  [{ stage: 'session', component: 'unet' }, 500], // reading: 500
  [{ stage: 'encode' }, 4000], // session: 4000
  [{ stage: 'loop-start', loop: 'prior', steps: 2 }, 700], // encoding: 700
  [{ stage: 'prior', step: 1, steps: 2 }, 3000], // first prior step: 3000
  [{ stage: 'prior', step: 2, steps: 2 }, 100], // prior step: 100
  [{ stage: 'loop-start', loop: 'denoise', steps: 3 }, 50], // prepare: 50
  [{ stage: 'denoise', step: 1, steps: 3 }, 20_000], // first step (capture): 20000
  [{ stage: 'denoise', step: 2, steps: 3 }, 1000],
  [{ stage: 'denoise', step: 3, steps: 3 }, 1000],
  [{ stage: 'decode', image: 1, images: 1 }, 200], // readback: 200 (decode)
  [{ stage: 'png', images: 1 }, 4000], // decode: 4000
]);
const COLD_END = (COLD_EVENTS.at(-1)?.atMs ?? 0) + 30; // png: 30

describe('costsOfRun', () => {
  it('gives each stage the time from its event to the next, first steps apart from later ones', () => {
    const costs = costsOfRun(SHAPE, COLD_EVENTS, 1000, COLD_END);
    expect(costs).toEqual({
      shape: SHAPE,
      start: 15,
      load: 800,
      session: 6000,
      encode: 700,
      priorFirstStep: 3000,
      priorStep: 100,
      prepare: 50,
      denoiseFirstStep: 20_000,
      denoiseStep: 1000,
      decode: 4200,
      png: 30,
      cold: true,
    });
  });

  it('calls a run without session events warm', () => {
    const events = COLD_EVENTS.filter((e) => e.progress.stage !== 'session');
    expect(costsOfRun(SHAPE, events, 1000, COLD_END).cold).toBe(false);
  });
});

describe('estimateJob', () => {
  const cold = costsOfRun(SHAPE, COLD_EVENTS, 1000, COLD_END);
  const warm: RunCosts = {
    ...cold,
    load: 5,
    session: 0,
    priorFirstStep: 120,
    denoiseFirstStep: 1100,
    cold: false,
  };

  it('has no estimate before a run on this device', () => {
    expect(estimateJob([], SHAPE, { cold: true })).toBeNull();
  });

  it('repeats a run of the same shape: cold with the first-run costs, warm without them', () => {
    const again = estimateJob([cold], SHAPE, { cold: true });
    expect(again?.totalMs).toBeCloseTo(COLD_END - 1000);
    const quick = estimateJob([cold, warm], SHAPE, { cold: false });
    // Warm: no session creation, no capture; the steps and decode as measured.
    expect(quick?.stages.session).toBe(0);
    expect(quick?.stages.denoise).toBeCloseTo(1100 + 2 * 1000);
    expect(quick?.stages.prior).toBeCloseTo(120 + 100);
  });

  it('scales the UNet steps by latent pixels × batch, decoding by pixels × images, the prior by images', () => {
    const big: JobShape = { width: 128, height: 128, numImages: 2, guided: true, steps: 10, priorSteps: 4 };
    const estimate = estimateJob([warm], big, { cold: false });
    // 4× the latent pixels, 2× the batch.
    expect(estimate?.denoiseStepMs).toBeCloseTo(1000 * 8);
    expect(estimate?.stages.denoise).toBeCloseTo((1100 - 1000) * 8 + 10 * 8000);
    expect(estimate?.stages.decode).toBeCloseTo(4200 * 8);
    expect(estimate?.priorStepMs).toBeCloseTo(200);
    // Without guidance the UNet batch halves.
    const unguided = estimateJob([warm], { ...big, guided: false }, { cold: false });
    expect(unguided?.denoiseStepMs).toBeCloseTo(4000);
  });

  it('scales from the nearest run', () => {
    const far: RunCosts = { ...warm, shape: { ...SHAPE, width: 512, height: 512 }, denoiseStep: 64_000 };
    const estimate = estimateJob([warm, far], { ...SHAPE, width: 128, height: 64 }, { cold: false });
    expect(estimate?.denoiseStepMs).toBeCloseTo(2000);
  });
});

describe('remainingMs', () => {
  const cold = costsOfRun(SHAPE, COLD_EVENTS, 1000, COLD_END);
  const estimate = estimateJob([cold], SHAPE, { cold: true });

  it('after the prior’s last step still counts the first denoising step, decoding and PNG', () => {
    // The issue: "prior step 25 of 25 — less than a second left" for minutes.
    const left = remainingMs(estimate, { stage: 'prior', step: 2, steps: 2 }, 0, 100);
    expect(left).toBeCloseTo(50 + 20_000 + 2000 + 4200 + 30);
  });

  it('counts down within a stage and never below zero', () => {
    const progress: JobProgress = { stage: 'loop-start', loop: 'denoise', steps: 3 };
    const atStart = remainingMs(estimate, progress, 0, null) ?? 0;
    expect(remainingMs(estimate, progress, 5000, null)).toBeCloseTo(atStart - 5000);
    expect(remainingMs(estimate, { stage: 'png', images: 1 }, 60_000, null)).toBe(0);
  });

  it('uses the live step time in a loop, and is null with neither an estimate nor a live time', () => {
    const left = remainingMs(estimate, { stage: 'denoise', step: 1, steps: 3 }, 0, 3000);
    expect(left).toBeCloseTo(2 * 3000 + 4200 + 30);
    expect(remainingMs(null, { stage: 'encode' }, 0, null)).toBeNull();
    expect(remainingMs(null, { stage: 'denoise', step: 1, steps: 3 }, 0, 500)).toBe(1000);
  });
});
