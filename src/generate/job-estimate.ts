/**
 * What a generation costs on this device, learnt from its earlier runs: each finished run's
 * progress events (stamped with the page's clock) become per-stage costs (`costsOfRun`); a job's
 * estimate scales the nearest run's costs by latent pixels and batch (`estimateJob`); a running
 * job's time left combines that estimate with the steps measured live (`remainingMs`).
 *
 * Pure: no clock, no storage (device-profile.ts keeps the runs).
 */
import type { JobProgress } from '../../workers/api';

/** What decides a job's cost. Sizes are pixels, as the engine runs them (multiples of 64). */
export interface JobShape {
  readonly width: number;
  readonly height: number;
  readonly numImages: number;
  /** Classifier-free guidance (guidance > 1) doubles the UNet's batch. */
  readonly guided: boolean;
  readonly steps: number;
  readonly priorSteps: number;
}

/** The stages a person sees, in order. */
export const STAGES = [
  'start',
  'load',
  'session',
  'encode',
  'prior',
  'prepare',
  'denoise',
  'decode',
  'png',
] as const;
export type Stage = (typeof STAGES)[number];

/** One finished run's costs, milliseconds of wall time. */
export interface RunCosts {
  readonly shape: JobShape;
  /** Checks before the first model loads (request, stored files). */
  readonly start: number;
  /** Reading components from storage. */
  readonly load: number;
  /** onnxruntime creating sessions (0 when every session was already made). */
  readonly session: number;
  /** Tokenizing and encoding the prompt. */
  readonly encode: number;
  /** The prior's first step (with shader compilation on a new session) and a later step. */
  readonly priorFirstStep: number;
  readonly priorStep: number;
  /** From the prior's last step to the denoising loop (latents, picture encoding). */
  readonly prepare: number;
  /** The first denoising step (shader compilation, graph capture) and a later step. */
  readonly denoiseFirstStep: number;
  readonly denoiseStep: number;
  /** MoVQ decoding of every image, and their PNG encoding. */
  readonly decode: number;
  readonly png: number;
  /** Sessions were created in this run (a first run, a new size): its load and first steps are slow. */
  readonly cold: boolean;
}

/** A progress event and when the page received it (ms, any monotonic clock). */
export interface StampedProgress {
  readonly progress: JobProgress;
  readonly atMs: number;
}

const latentPixels = (shape: JobShape) => Math.ceil(shape.width / 64) * 8 * Math.ceil(shape.height / 64) * 8;
const unetBatch = (shape: JobShape) => shape.numImages * (shape.guided ? 2 : 1);
const average = (values: readonly number[]) =>
  values.length === 0 ? null : values.reduce((sum, v) => sum + v, 0) / values.length;

/**
 * The costs of a run from its progress events, in the order received, between `startMs` (the job
 * was sent) and `endMs` (its result arrived). Each event marks the start of the work it names (a
 * step event: the step's end), so the time to the next event is that work's cost.
 */
export function costsOfRun(
  shape: JobShape,
  events: readonly StampedProgress[],
  startMs: number,
  endMs: number,
): RunCosts {
  const totals: Record<Stage, number> = {
    start: 0,
    load: 0,
    session: 0,
    encode: 0,
    prior: 0,
    prepare: 0,
    denoise: 0,
    decode: 0,
    png: 0,
  };
  const priorSteps: number[] = [];
  const denoiseSteps: number[] = [];
  let priorFirstStep = 0;
  let denoiseFirstStep = 0;
  let cold = false;
  let previousAt = startMs;
  // What the time since the previous event was spent on.
  let current: Stage | 'prior-first' | 'prior-step' | 'denoise-first' | 'denoise-step' = 'start';
  const spend = (ms: number) => {
    if (current === 'prior-first') priorFirstStep += ms;
    else if (current === 'prior-step') priorSteps.push(ms);
    else if (current === 'denoise-first') denoiseFirstStep += ms;
    else if (current === 'denoise-step') denoiseSteps.push(ms);
    else totals[current] += ms;
  };
  for (const { progress, atMs } of events) {
    spend(Math.max(0, atMs - previousAt));
    previousAt = atMs;
    current = stageAfter(progress, current);
    if (progress.stage === 'session') cold = true;
  }
  spend(Math.max(0, endMs - previousAt));
  const priorStep = average(priorSteps) ?? priorFirstStep;
  const denoiseStep = average(denoiseSteps) ?? denoiseFirstStep;
  return {
    shape,
    start: totals.start,
    load: totals.load,
    session: totals.session,
    encode: totals.encode,
    priorFirstStep,
    priorStep,
    prepare: totals.prepare,
    denoiseFirstStep,
    denoiseStep,
    decode: totals.decode,
    png: totals.png,
    cold,
  };
}

type Activity = Stage | 'prior-first' | 'prior-step' | 'denoise-first' | 'denoise-step';

/** What runs after `progress` arrives. */
function stageAfter(progress: JobProgress, current: Activity): Activity {
  switch (progress.stage) {
    case 'queued':
      return 'start';
    case 'load':
      return 'load';
    case 'session':
      return 'session';
    case 'encode':
      return 'encode';
    case 'depth':
      return 'prepare';
    case 'loop-start':
      return progress.loop === 'prior' ? 'prior-first' : 'denoise-first';
    case 'prior':
      return progress.step < progress.steps ? 'prior-step' : 'prepare';
    case 'denoise':
      return progress.step < progress.steps ? 'denoise-step' : 'decode';
    case 'decode':
      return 'decode';
    case 'png':
      return 'png';
  }
  return current;
}

/** Estimated milliseconds per stage of a job, and their sum. */
export interface JobEstimate {
  readonly totalMs: number;
  readonly stages: Readonly<Record<Stage, number>>;
  /** Per step of the prior and of the denoising loop, after the first. */
  readonly priorStepMs: number;
  readonly denoiseStepMs: number;
  /** The first denoising step (with shader compilation and graph capture when cold). */
  readonly denoiseFirstStepMs: number;
  readonly priorFirstStepMs: number;
}

/**
 * The estimate of `shape` from earlier runs on this device (most recent last), or null without
 * any. `cold`: the sessions must be created (a first job, a new size: the UNet is captured for
 * one shape); its load and first-step costs come from the latest cold run.
 */
export function estimateJob(
  runs: readonly RunCosts[],
  shape: JobShape,
  options: { readonly cold: boolean },
): JobEstimate | null {
  const nearest = nearestRun(runs, shape);
  if (!nearest) return null;
  const coldRun = [...runs].reverse().find((run) => run.cold) ?? null;
  const warmRun = [...runs].reverse().find((run) => !run.cold) ?? null;
  // Per-step and per-image costs scale with the work: latent pixels × UNet batch for the UNet,
  // output pixels × images for MoVQ and PNG; the prior's with the number of images.
  const unet =
    (latentPixels(shape) * unetBatch(shape)) / (latentPixels(nearest.shape) * unetBatch(nearest.shape));
  const pixels =
    (latentPixels(shape) * shape.numImages) / (latentPixels(nearest.shape) * nearest.shape.numImages);
  const prior = shape.numImages / nearest.shape.numImages;
  const priorStepMs = nearest.priorStep * prior;
  const denoiseStepMs = nearest.denoiseStep * unet;
  // A first step's extra (compilation, capture) is paid again only when sessions are new.
  const firstExtra = (run: RunCosts | null, first: number, step: number) =>
    run ? Math.max(0, first - step) : 0;
  const priorFirstStepMs =
    priorStepMs +
    (options.cold
      ? firstExtra(coldRun, coldRun?.priorFirstStep ?? 0, coldRun?.priorStep ?? 0)
      : firstExtra(warmRun, warmRun?.priorFirstStep ?? 0, warmRun?.priorStep ?? 0));
  const coldDenoiseExtra = coldRun
    ? firstExtra(coldRun, coldRun.denoiseFirstStep, coldRun.denoiseStep) *
      ((latentPixels(shape) * unetBatch(shape)) / (latentPixels(coldRun.shape) * unetBatch(coldRun.shape)))
    : 0;
  const denoiseFirstStepMs =
    denoiseStepMs +
    (options.cold
      ? coldDenoiseExtra
      : firstExtra(warmRun, warmRun?.denoiseFirstStep ?? 0, warmRun?.denoiseStep ?? 0) * unet);
  const loadRun = options.cold ? (coldRun ?? nearest) : (warmRun ?? null);
  const stages: Record<Stage, number> = {
    start: nearest.start,
    load: loadRun?.load ?? 0,
    session: loadRun?.session ?? 0,
    encode: nearest.encode,
    prior: shape.priorSteps > 0 ? priorFirstStepMs + (shape.priorSteps - 1) * priorStepMs : 0,
    prepare: nearest.prepare * pixels,
    denoise: shape.steps > 0 ? denoiseFirstStepMs + (shape.steps - 1) * denoiseStepMs : 0,
    decode: nearest.decode * pixels,
    png: nearest.png * pixels,
  };
  return {
    totalMs: STAGES.reduce((sum, stage) => sum + stages[stage], 0),
    stages,
    priorStepMs,
    denoiseStepMs,
    denoiseFirstStepMs,
    priorFirstStepMs,
  };
}

/** The run whose UNet work (latent pixels × batch) is nearest, on a log scale; the latest on ties. */
function nearestRun(runs: readonly RunCosts[], shape: JobShape): RunCosts | null {
  const work = Math.log(latentPixels(shape) * unetBatch(shape));
  let best: RunCosts | null = null;
  let bestDistance = Number.POSITIVE_INFINITY;
  for (const run of runs) {
    const distance = Math.abs(Math.log(latentPixels(run.shape) * unetBatch(run.shape)) - work);
    if (distance <= bestDistance) {
      best = run;
      bestDistance = distance;
    }
  }
  return best;
}

/**
 * Milliseconds left in a running job: what is left of the current stage (the live step time where
 * the loop has measured one, else the estimate less the time already spent in it) plus every later
 * stage's estimate. Null without an estimate and without a live measure.
 */
export function remainingMs(
  estimate: JobEstimate | null,
  progress: JobProgress,
  sinceEventMs: number,
  liveMsPerStep: number | null,
): number | null {
  const stage = stageOf(progress);
  if (!estimate) {
    if (liveMsPerStep !== null && (progress.stage === 'prior' || progress.stage === 'denoise')) {
      return Math.max(0, (progress.steps - progress.step) * liveMsPerStep - sinceEventMs);
    }
    return null;
  }
  const later = STAGES.slice(STAGES.indexOf(stage) + 1).reduce((sum, s) => sum + estimate.stages[s], 0);
  return Math.max(0, currentLeft(estimate, progress, sinceEventMs, liveMsPerStep)) + later;
}

function currentLeft(
  estimate: JobEstimate,
  progress: JobProgress,
  sinceEventMs: number,
  liveMsPerStep: number | null,
): number {
  switch (progress.stage) {
    case 'loop-start':
      return (
        (progress.loop === 'prior' ? estimate.priorFirstStepMs : estimate.denoiseFirstStepMs) +
        (progress.steps - 1) * (progress.loop === 'prior' ? estimate.priorStepMs : estimate.denoiseStepMs) -
        sinceEventMs
      );
    case 'prior':
    case 'denoise': {
      const perStep =
        liveMsPerStep ?? (progress.stage === 'prior' ? estimate.priorStepMs : estimate.denoiseStepMs);
      const after = progress.stage === 'prior' ? estimate.stages.prepare : estimate.stages.decode;
      // The loop's last step leads into the next stage: count it from there.
      return progress.step >= progress.steps
        ? after - sinceEventMs
        : (progress.steps - progress.step) * perStep - sinceEventMs;
    }
    case 'load':
      return (
        ((estimate.stages.load + estimate.stages.session) * (progress.count - progress.index)) /
          Math.max(1, progress.count) -
        sinceEventMs
      );
    case 'decode':
      return (
        (estimate.stages.decode * (progress.images - progress.image + 1)) / progress.images - sinceEventMs
      );
    default:
      return estimate.stages[stageOf(progress)] - sinceEventMs;
  }
}

/** The stage a progress event belongs to (a loop's last step: the stage it leads into). */
export function stageOf(progress: JobProgress): Stage {
  switch (progress.stage) {
    case 'queued':
      return 'start';
    case 'load':
      // Load and session creation alternate per component: their estimate is counted together.
      return 'session';
    case 'session':
      return 'session';
    case 'encode':
      return 'encode';
    case 'depth':
      return 'prepare';
    case 'loop-start':
      return progress.loop;
    case 'prior':
      return progress.step >= progress.steps ? 'prepare' : 'prior';
    case 'denoise':
      return progress.step >= progress.steps ? 'decode' : 'denoise';
    case 'decode':
      return 'decode';
    case 'png':
      return 'png';
  }
}
