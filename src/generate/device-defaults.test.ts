import { describe, expect, it } from 'vitest';
import type { GpuReport, ModelSetInfo } from '../../workers/api';
import { KANDINSKY_SIZE_LIMITS, type SizeLimits } from '../../workers/engine/settings';
import {
  chooseDefaults,
  deviceIdentity,
  FIRST_PICTURE_TARGET_MS,
  jobShape,
  loadRuns,
  saveRun,
} from './device-defaults';
import { estimateJob, type JobShape, type RunCosts } from './job-estimate';

const DEMO_LIMITS: SizeLimits = { minSide: 64, maxSide: 512, multiple: 64, maxAspect: 4 };

/** A cold run at 64 px where a UNet step costs `unetStepMs` and everything else is fixed. */
function run(unetStepMs: number, shape: Partial<JobShape> = {}): RunCosts {
  return {
    shape: { width: 64, height: 64, numImages: 1, guided: true, steps: 4, priorSteps: 4, ...shape },
    start: 10,
    load: 500,
    session: 5000,
    encode: 300,
    priorFirstStep: 2000,
    priorStep: 100,
    prepare: 20,
    denoiseFirstStep: 4 * unetStepMs,
    denoiseStep: unetStepMs,
    decode: 40 * unetStepMs,
    png: 5,
    cold: true,
  };
}

const cost = (runs: RunCosts[], d: { width: number; height: number; steps: number; priorSteps: number }) =>
  estimateJob(runs, { ...d, numImages: 1, guided: true }, { cold: true })?.totalMs ?? Number.NaN;

describe('chooseDefaults', () => {
  it('before any run: 512 px and 25 steps on a GPU, the smallest size and 6 steps on a software adapter', () => {
    expect(chooseDefaults([], false, KANDINSKY_SIZE_LIMITS)).toEqual({
      width: 512,
      height: 512,
      steps: 25,
      priorSteps: 25,
    });
    expect(chooseDefaults([], true, DEMO_LIMITS)).toEqual({ width: 64, height: 64, steps: 6, priorSteps: 6 });
    expect(chooseDefaults([], true, KANDINSKY_SIZE_LIMITS)).toMatchObject({ width: 256, height: 256 });
  });

  it('a fast device gets 512 px at 50 steps; a slow one the largest size that fits a minute', () => {
    expect(chooseDefaults([run(1)], true, DEMO_LIMITS)).toEqual({
      width: 512,
      height: 512,
      steps: 50,
      priorSteps: 25,
    });
    for (const unetStepMs of [30, 120, 400, 1000]) {
      const runs = [run(unetStepMs)];
      const chosen = chooseDefaults(runs, true, DEMO_LIMITS);
      expect(cost(runs, chosen), `${unetStepMs} ms per step`).toBeLessThanOrEqual(FIRST_PICTURE_TARGET_MS);
      // The next size up would not fit at the fewest steps a size above the smallest takes.
      if (chosen.width < 512) {
        const bigger = chosen.width + 64;
        expect(cost(runs, { width: bigger, height: bigger, steps: 12, priorSteps: 12 })).toBeGreaterThan(
          FIRST_PICTURE_TARGET_MS,
        );
      }
    }
  });

  it('falls back to the smallest size and 4 steps when even that is over a minute', () => {
    expect(chooseDefaults([run(60_000)], true, DEMO_LIMITS)).toEqual({
      width: 64,
      height: 64,
      steps: 4,
      priorSteps: 4,
    });
  });
});

describe('jobShape', () => {
  it('rounds sizes up as the engine does, and counts img2img’s steps after strength', () => {
    const settings = {
      mode: 'img2img' as const,
      prompt: 'x',
      negativePrompt: '',
      seed: 1,
      width: 100,
      height: 64,
      priorSteps: 10,
      priorGuidance: 4,
      steps: 20,
      guidance: 1,
      scheduler: 'ddpm' as const,
      numImages: 2,
      strength: 0.5,
    };
    expect(jobShape(settings, DEMO_LIMITS)).toEqual({
      width: 128,
      height: 64,
      numImages: 2,
      guided: false,
      steps: 10,
      priorSteps: 10,
    });
    expect(jobShape({ ...settings, steps: Number.NaN }, DEMO_LIMITS)).toBeNull();
  });
});

describe('the runs kept per device', () => {
  class MemoryStorage {
    readonly items = new Map<string, string>();
    getItem(key: string) {
      return this.items.get(key) ?? null;
    }
    setItem(key: string, value: string) {
      this.items.set(key, value);
    }
  }

  it('keep the latest cold and warm run of each size bucket, per device, and survive bad data', () => {
    const storage = new MemoryStorage();
    saveRun(storage, 'a', run(10));
    saveRun(storage, 'a', run(20));
    saveRun(storage, 'a', { ...run(30), cold: false });
    saveRun(storage, 'a', run(40, { width: 512, height: 512 }));
    saveRun(storage, 'b', run(50));
    expect(loadRuns(storage, 'a').map((r) => r.denoiseStep)).toEqual([20, 30, 40]);
    expect(loadRuns(storage, 'b').map((r) => r.denoiseStep)).toEqual([50]);

    storage.setItem('kandinsky-web:device-runs:c', '{not json');
    expect(loadRuns(storage, 'c')).toEqual([]);
    storage.setItem('kandinsky-web:device-runs:d', JSON.stringify([run(5), { ...run(6), decode: -1 }, 7]));
    expect(loadRuns(storage, 'd').map((r) => r.denoiseStep)).toEqual([5]);
  });
});

describe('deviceIdentity', () => {
  const set = { modelId: 'tiny', precision: { current: 'fp32' } } as unknown as ModelSetInfo;
  const gpu = (description: string): GpuReport => ({
    available: true,
    adapter: {
      vendor: 'google',
      architecture: '',
      device: '',
      description,
      shaderF16: false,
      maxBufferSize: 1,
      maxStorageBufferBindingSize: 1,
      features: [],
    },
  });

  it('tells a software adapter from a GPU, and keys costs by adapter and set', () => {
    expect(deviceIdentity(gpu('SwiftShader Device (Subzero)'), set)).toEqual({
      key: 'google|||SwiftShader Device (Subzero)|tiny|fp32',
      software: true,
    });
    expect(deviceIdentity(gpu('NVIDIA GeForce RTX 4090'), set)?.software).toBe(false);
    expect(deviceIdentity(null, set)).toBeNull();
    expect(deviceIdentity(gpu('x'), null)).toBeNull();
  });
});
