/**
 * Defaults that fit the device: the size and steps whose first picture comes in about a minute,
 * chosen from this device's earlier runs (job-estimate.ts), and before any run from what the
 * adapter is (a software one such as SwiftShader is hundreds of times slower than a GPU).
 *
 * The runs are kept in localStorage per device and model set (`DeviceIdentity.key`): the latest
 * cold and warm run of each size bucket (latent pixels × batch, in powers of two), so a new size
 * scales from the nearest.
 */
import { useCallback, useMemo, useState } from 'react';
import type { GpuReport, ModelSetInfo } from '../../workers/api';
import { type SizeLimits, validateSettings } from '../../workers/engine/settings';
import { estimateJob, type JobShape, type RunCosts } from './job-estimate';

/** What a first picture should cost, milliseconds. */
export const FIRST_PICTURE_TARGET_MS = 60_000;

export interface DeviceDefaults {
  readonly width: number;
  readonly height: number;
  readonly steps: number;
  readonly priorSteps: number;
}

/** Who is generating: the adapter and the set (costs are learnt per both). */
export interface DeviceIdentity {
  /** The adapter and the model set in its precision, as one storage key. */
  readonly key: string;
  /** A software adapter (SwiftShader, llvmpipe, WARP): a CPU pretending to be a GPU. */
  readonly software: boolean;
}

const SOFTWARE_ADAPTER = /swiftshader|llvmpipe|lavapipe|softpipe|software|basic render|warp/i;

/** The device identity of a WebGPU report and an open model set; null until both are known. */
export function deviceIdentity(gpu: GpuReport | null, modelSet: ModelSetInfo | null): DeviceIdentity | null {
  if (!gpu?.available || !modelSet) return null;
  const { adapter } = gpu;
  const name = [adapter.vendor, adapter.architecture, adapter.device, adapter.description].join('|');
  return {
    key: `${name}|${modelSet.modelId}|${modelSet.precision.current}`,
    software: SOFTWARE_ADAPTER.test(name),
  };
}

/** Steps to try, most first: fewer steps cost quality, so a size is only taken with at least 12. */
const STEP_CHOICES = [50, 30, 20, 12] as const;
const MIN_SIZE_STEP_CHOICES = [12, 8, 6, 4] as const;
/** Largest default side: a first picture larger than 512 px is rarely what a minute allows. */
const LARGEST_DEFAULT_SIDE = 512;

/**
 * The default size and steps for this device: with earlier runs, the largest square (up to 512 px)
 * and the most steps whose cold estimate fits `targetMs` (at the set's smallest size, down to 4
 * steps); without runs, 512 px and 25 steps on a GPU, the smallest size and 6 steps on a software
 * adapter. The prior takes as many steps as the decoder, at most 25 (its default).
 */
export function chooseDefaults(
  runs: readonly RunCosts[],
  software: boolean,
  limits: SizeLimits,
  targetMs: number = FIRST_PICTURE_TARGET_MS,
): DeviceDefaults {
  const sides = squareSides(limits);
  const smallest = sides[sides.length - 1] ?? limits.minSide;
  const withSteps = (side: number, steps: number): DeviceDefaults => ({
    width: side,
    height: side,
    steps,
    priorSteps: Math.min(25, steps),
  });
  if (runs.length === 0) {
    return software ? withSteps(smallest, 6) : withSteps(sides[0] ?? smallest, 25);
  }
  for (const side of sides) {
    const choices = side === smallest ? [...STEP_CHOICES, ...MIN_SIZE_STEP_CHOICES] : STEP_CHOICES;
    for (const steps of choices) {
      const defaults = withSteps(side, steps);
      const estimate = estimateJob(runs, shapeOf(defaults), { cold: true });
      if (estimate && estimate.totalMs <= targetMs) return defaults;
    }
  }
  return withSteps(smallest, 4);
}

/** Square sides the set allows, largest first, from LARGEST_DEFAULT_SIDE down to its smallest. */
function squareSides(limits: SizeLimits): number[] {
  const sides: number[] = [];
  const top = Math.min(LARGEST_DEFAULT_SIDE, limits.maxSide);
  for (let side = Math.floor(top / limits.multiple) * limits.multiple; side >= limits.minSide; side -= 64) {
    sides.push(side);
  }
  if (sides.length === 0) sides.push(limits.minSide);
  return sides;
}

/** The shape of default settings: one image, guided (the default guidance is 4). */
function shapeOf(defaults: DeviceDefaults): JobShape {
  return { ...defaults, numImages: 1, guided: true };
}

/** The cost-deciding shape of a request's settings, as the engine will run them (sizes rounded). */
export function jobShape(
  settings: Parameters<typeof validateSettings>[0],
  limits: SizeLimits,
): JobShape | null {
  try {
    const valid = validateSettings(settings, limits);
    const decoderSteps =
      valid.mode === 'img2img' || (valid.mode === 'depth' && valid.strength < 1)
        ? Math.max(1, Math.floor(valid.steps * valid.strength))
        : valid.steps;
    return {
      width: valid.width,
      height: valid.height,
      numImages: valid.numImages,
      guided: valid.guidance > 1,
      steps: decoderSteps,
      priorSteps: valid.priorSteps,
    };
  } catch {
    return null;
  }
}

// ---------------------------------------------------------------------------------------------
// The runs, kept per device
// ---------------------------------------------------------------------------------------------

const STORAGE_PREFIX = 'kandinsky-web:device-runs:';
/** Runs kept per device: the latest cold and warm run of each size bucket, at most this many. */
const MAX_RUNS = 16;

const sizeBucket = (shape: JobShape) =>
  Math.round(
    Math.log2(
      Math.ceil(shape.width / 64) * Math.ceil(shape.height / 64) * shape.numImages * (shape.guided ? 2 : 1),
    ),
  );

/** The runs recorded for a device, oldest first; [] when none or unreadable. */
export function loadRuns(storage: Pick<Storage, 'getItem'>, key: string): RunCosts[] {
  try {
    const parsed: unknown = JSON.parse(storage.getItem(STORAGE_PREFIX + key) ?? '[]');
    return Array.isArray(parsed) ? parsed.filter(isRunCosts) : [];
  } catch {
    return [];
  }
}

/** Adds a run, keeping the latest cold and warm ones of its size bucket and at most MAX_RUNS. */
export function saveRun(
  storage: Pick<Storage, 'getItem' | 'setItem'>,
  key: string,
  run: RunCosts,
): RunCosts[] {
  const bucket = sizeBucket(run.shape);
  const others = loadRuns(storage, key).filter(
    (r) => !(sizeBucket(r.shape) === bucket && r.cold === run.cold),
  );
  const kept = [...others, run].slice(-MAX_RUNS);
  try {
    storage.setItem(STORAGE_PREFIX + key, JSON.stringify(kept));
  } catch {
    // A full localStorage costs only the learning, never the picture.
  }
  return kept;
}

function isRunCosts(value: unknown): value is RunCosts {
  if (typeof value !== 'object' || value === null) return false;
  const run = value as Record<string, unknown>;
  const shape = run.shape as Record<string, unknown> | undefined;
  const finite = (v: unknown) => typeof v === 'number' && Number.isFinite(v) && v >= 0;
  return (
    typeof shape === 'object' &&
    shape !== null &&
    ['width', 'height', 'numImages', 'steps', 'priorSteps'].every(
      (k) => finite(shape[k]) && Number(shape[k]) > 0,
    ) &&
    typeof shape.guided === 'boolean' &&
    typeof run.cold === 'boolean' &&
    [
      'start',
      'load',
      'session',
      'encode',
      'priorFirstStep',
      'priorStep',
      'prepare',
      'denoiseFirstStep',
      'denoiseStep',
      'decode',
      'png',
    ].every((k) => finite(run[k]))
  );
}

// ---------------------------------------------------------------------------------------------
// The hook
// ---------------------------------------------------------------------------------------------

export interface DeviceProfile {
  /** The defaults for this device; null until the adapter and model set are known. */
  readonly defaults: DeviceDefaults | null;
  /** The learnt runs (oldest first). */
  readonly runs: readonly RunCosts[];
  /** What a job of `shape` will cost here; null before any run on this device. */
  estimate(shape: JobShape, options: { readonly cold: boolean }): ReturnType<typeof estimateJob>;
  /** Keeps a finished run's costs (nothing when the device is unknown). */
  record(run: RunCosts): void;
}

/**
 * This device's learnt costs and the defaults they give. `identity` from `deviceIdentity`; the
 * form applies `defaults` while it still holds the app's own defaults.
 */
export function useDeviceDefaults(identity: DeviceIdentity | null, limits: SizeLimits): DeviceProfile {
  const key = identity?.key ?? null;
  const software = identity?.software ?? false;
  // Read at once (not in an effect), so the first defaults for a device already know its runs.
  const stored = useMemo(() => (key ? loadRuns(localStorage, key) : []), [key]);
  const [recorded, setRecorded] = useState<{
    readonly key: string;
    readonly runs: readonly RunCosts[];
  } | null>(null);
  const runs = recorded && recorded.key === key ? recorded.runs : stored;
  const defaults = useMemo(
    () => (key ? chooseDefaults(runs, software, limits) : null),
    [key, runs, software, limits],
  );
  const estimate = useCallback(
    (shape: JobShape, options: { readonly cold: boolean }) => estimateJob(runs, shape, options),
    [runs],
  );
  const record = useCallback(
    (run: RunCosts) => {
      if (key) setRecorded({ key, runs: saveRun(localStorage, key, run) });
    },
    [key],
  );
  return useMemo(() => ({ defaults, runs, estimate, record }), [defaults, runs, estimate, record]);
}
