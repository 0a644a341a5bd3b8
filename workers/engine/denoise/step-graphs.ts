/**
 * The graphs that keep denoising on the device: one "denoise step" graph per guidance mode and
 * scheduler (classifier-free guidance, the scheduler's step, the inpainting blend), and a copy
 * graph that moves a tensor onto or off the device. Dimensions are dynamic, so one graph serves
 * every batch and latent size and its session is reused across generations.
 *
 * Each step graph repeats the float32 operations of the CPU path in the same order (host-loop.ts's
 * `guide`, the scheduler's `step()`, `blendKept`) with the per-step scalars fed in `coefficients`,
 * so on onnxruntime's CPU provider it gives the CPU path's numbers; WebGPU shaders round differently.
 */
import {
  DDIMScheduler,
  DDPMScheduler,
  type DecoderScheduler,
  type NoiseCoefficients,
  type StepCoefficients,
} from '../schedulers';
import { GraphBuilder } from './onnx-builder';

export type StepGraphScheduler = StepCoefficients['kind'];

export interface StepGraphSpec {
  readonly scheduler: StepGraphScheduler;
  /** Classifier-free guidance: `noise_pred` has 2B rows (uncond first), `model_input_next` is output. */
  readonly guided: boolean;
  /** Inpainting: blend the kept region back after each step (models/CONTRACT.md, "Inpainting mask"). */
  readonly inpaint: boolean;
  /** DDPM/DDIM `clip_sample_range` when the config clips x0, else null. */
  readonly clipRange: number | null;
  /** Latent channels (4); the UNet's `noise_pred` has these first, then its variance channels. */
  readonly channels: number;
  /**
   * For a graph-captured UNet: the graph also writes the next UNet call's inputs into that UNet's
   * fixed buffers (as pre-allocated outputs): `model_input_next` always (a copy without guidance,
   * because a buffer can't be both a run's input and its output) and `timestep_next`, the copy of
   * the fed `next_timestep`. Omitted: false.
   */
  readonly capture?: boolean;
}

/** The step graph's input and output names, shared by the builder and the pipeline. */
export const STEP_GRAPH = {
  noisePred: 'noise_pred',
  latents: 'latents',
  noise: 'noise',
  coefficients: 'coefficients',
  previousX0: 'previous_x0',
  keep: 'keep',
  imageLatents: 'image_latents',
  initialNoise: 'initial_noise',
  nextTimestep: 'next_timestep',
  latentsNext: 'latents_next',
  timestepNext: 'timestep_next',
  modelInputNext: 'model_input_next',
  x0Next: 'x0_next',
} as const;

/** The copy graph's names: one float32 tensor of any shape in, the same values out. */
export const COPY_GRAPH = { input: 'value', output: 'copy' } as const;

/** Scalars per scheduler, in `coefficients` order after the guidance scale. */
const SCHEDULER_SCALARS = {
  ddpm: ['sqrtBetaProdT', 'sqrtAlphaProdT', 'originalCoeff', 'sampleCoeff', 'noiseStd'],
  ddim: ['sqrtBetaProdT', 'sqrtAlphaProdT', 'originalCoeff', 'directionCoeff'],
  'dpmpp-2m': ['sigma', 'alpha', 'sampleCoeff', 'x0Coeff', 'differenceRatio', 'differenceCoeff'],
} as const;

type ScalarName =
  | 'guidanceScale'
  | (typeof SCHEDULER_SCALARS)[StepGraphScheduler][number]
  | 'keptSignal'
  | 'keptNoise';

function scalarNames(spec: StepGraphSpec): ScalarName[] {
  return [
    'guidanceScale',
    ...SCHEDULER_SCALARS[spec.scheduler],
    ...(spec.inpaint ? (['keptSignal', 'keptNoise'] as const) : []),
  ];
}

/** A cache key: graphs differ only in these fields. */
export function stepGraphKey(spec: StepGraphSpec): string {
  return `step:${spec.scheduler}:${spec.guided ? 'cfg' : 'plain'}:${spec.inpaint ? 'inpaint' : 'full'}:${spec.clipRange ?? 'noclip'}:${spec.channels}${spec.capture ? ':capture' : ''}`;
}

/**
 * The `coefficients` input of one step. `kept`: the inpainting blend's noising of the image to the
 * next timestep, `{ signal: 1, noise: 0 }` after the last step (the clean image).
 */
export function stepCoefficientVector(
  spec: StepGraphSpec,
  guidanceScale: number,
  step: StepCoefficients,
  kept?: NoiseCoefficients,
): Float32Array {
  if (step.kind !== spec.scheduler) {
    throw new Error(`Step coefficients of ${step.kind} given to a ${spec.scheduler} step graph.`);
  }
  if (spec.inpaint && !kept) throw new Error('An inpainting step graph needs the blend coefficients.');
  // Once per denoising step: a plain loop, no object spreads or per-element closures.
  const names = scalarNames(spec);
  const stepScalars = step as unknown as Readonly<Record<string, number | null | undefined>>;
  const vector = new Float32Array(names.length);
  for (const [i, name] of names.entries()) {
    // A DDPM step without noise (t = 0) is fed zero noise with a zero σ: 0·0 adds nothing.
    vector[i] =
      name === 'guidanceScale'
        ? guidanceScale
        : name === 'keptSignal'
          ? (kept?.signal ?? 0)
          : name === 'keptNoise'
            ? (kept?.noise ?? 0)
            : (stepScalars[name] ?? 0);
  }
  return vector;
}

export function buildStepGraph(spec: StepGraphSpec): Uint8Array {
  const g = new GraphBuilder(stepGraphKey(spec));
  const latentShape = ['batch', spec.channels, 'height', 'width'];
  const names = scalarNames(spec);
  const noisePred = g.input(STEP_GRAPH.noisePred, 'float32', [
    'model_batch',
    'unet_channels',
    'height',
    'width',
  ]);
  const x = g.input(STEP_GRAPH.latents, 'float32', latentShape);
  const coefficients = g.input(STEP_GRAPH.coefficients, 'float32', [names.length]);
  // One Gather per scalar, not one Split into k outputs: onnxruntime-web's JSEP Split gave wrong
  // values with the 8 scalars of the inpainting graphs (checked in Chromium; 6 were fine).
  const scalars = new Map<ScalarName, string>();
  const scalar = (name: ScalarName): string => {
    const at = names.indexOf(name);
    if (at < 0) throw new Error(`No ${name} in a ${stepGraphKey(spec)} graph.`);
    let value = scalars.get(name);
    if (!value) {
      const index = g.constant(BigInt64Array.of(BigInt(at)), []);
      value = g.node('Gather', [coefficients, index], 1, { axis: { int: 0 } })[0] as string;
      scalars.set(name, value);
    }
    return value;
  };

  // ε: the UNet's first `channels` channels; under guidance u + s·(c − u) with rows [uncond; cond].
  // The halves are Slices at row B (read from the latents' shape), not a Split: onnxruntime-web's
  // JSEP Split of `noise_pred` into two halves returned empty tensors (checked in Chromium).
  const int64 = (...values: number[]) => g.constant(BigInt64Array.from(values, BigInt), [values.length]);
  const epsilonRows = (rowStart: string, rowEnd: string): string => {
    const starts = g.node('Concat', [rowStart, int64(0)], 1, { axis: { int: 0 } })[0] as string;
    const ends = g.node('Concat', [rowEnd, int64(spec.channels)], 1, { axis: { int: 0 } })[0] as string;
    return g.node('Slice', [noisePred, starts, ends, int64(0, 1)], 1)[0] as string;
  };
  const rows = g.node('Shape', [x], 1, { start: { int: 0 }, end: { int: 1 } })[0] as string; // [B]
  let epsilon: string;
  if (spec.guided) {
    const u = epsilonRows(int64(0), rows);
    const c = epsilonRows(rows, g.add(rows, rows));
    epsilon = g.add(u, g.mul(scalar('guidanceScale'), g.sub(c, u)));
  } else {
    epsilon = epsilonRows(int64(0), rows);
  }

  let next: string;
  if (spec.scheduler === 'dpmpp-2m') {
    const previousX0 = g.input(STEP_GRAPH.previousX0, 'float32', latentShape);
    const x0 = g.div(g.sub(x, g.mul(scalar('sigma'), epsilon)), scalar('alpha'));
    const d1 = g.mul(scalar('differenceRatio'), g.sub(x0, previousX0));
    const base = g.sub(g.mul(scalar('sampleCoeff'), x), g.mul(scalar('x0Coeff'), x0));
    next = g.add(base, g.mul(scalar('differenceCoeff'), d1));
    g.output(x0, STEP_GRAPH.x0Next, 'float32', latentShape);
  } else {
    let x0 = g.div(g.sub(x, g.mul(scalar('sqrtBetaProdT'), epsilon)), scalar('sqrtAlphaProdT'));
    if (spec.clipRange !== null) {
      const range = Math.fround(spec.clipRange);
      x0 = g.node(
        'Clip',
        [x0, g.constant(Float32Array.of(-range), []), g.constant(Float32Array.of(range), [])],
        1,
      )[0] as string;
    }
    if (spec.scheduler === 'ddpm') {
      const noise = g.input(STEP_GRAPH.noise, 'float32', latentShape);
      const mean = g.add(g.mul(scalar('originalCoeff'), x0), g.mul(scalar('sampleCoeff'), x));
      next = g.add(mean, g.mul(scalar('noiseStd'), noise));
    } else {
      next = g.add(g.mul(scalar('originalCoeff'), x0), g.mul(scalar('directionCoeff'), epsilon));
    }
  }

  if (spec.inpaint) {
    const keep = g.input(STEP_GRAPH.keep, 'float32', [1, 1, 'height', 'width']);
    const image = g.input(STEP_GRAPH.imageLatents, 'float32', [1, spec.channels, 'height', 'width']);
    const initialNoise = g.input(STEP_GRAPH.initialNoise, 'float32', [1, spec.channels, 'height', 'width']);
    const kept = g.add(g.mul(scalar('keptSignal'), image), g.mul(scalar('keptNoise'), initialNoise));
    const one = g.constant(Float32Array.of(1), []);
    next = g.add(g.mul(keep, kept), g.mul(g.sub(one, keep), next));
  }

  g.output(next, STEP_GRAPH.latentsNext, 'float32', latentShape);
  const modelShape = ['model_batch', spec.channels, 'height', 'width'];
  if (spec.guided) {
    const doubled = g.node('Concat', [next, next], 1, { axis: { int: 0 } })[0] as string;
    g.output(doubled, STEP_GRAPH.modelInputNext, 'float32', modelShape);
  } else if (spec.capture) {
    g.output(exactCopy(g, next), STEP_GRAPH.modelInputNext, 'float32', modelShape);
  }
  if (spec.capture) {
    const timestep = g.input(STEP_GRAPH.nextTimestep, 'float32', ['model_batch']);
    g.output(exactCopy(g, timestep), STEP_GRAPH.timestepNext, 'float32', ['model_batch']);
  }
  return g.build();
}

/**
 * Neg(Neg(x)): an exact copy in a buffer of its own. Not Identity: onnxruntime kernels may register
 * Identity as aliasing its input, and a fed input's buffer is freed after the run.
 */
function exactCopy(g: GraphBuilder, value: string): string {
  const negated = g.node('Neg', [value], 1)[0] as string;
  return g.node('Neg', [negated], 1)[0] as string;
}

/**
 * A copy of one float32 tensor of rank `rank` (any sizes): run with device outputs it uploads,
 * with CPU outputs it downloads, with a pre-allocated output it fills that buffer. One graph per
 * rank because ONNX wants every graph input's rank. The copy is `exactCopy`.
 */
export function buildCopyGraph(rank: number): Uint8Array {
  const g = new GraphBuilder(`copy_rank${rank}`);
  const shape = Array.from({ length: rank }, (_, i) => `d${i}`);
  const value = g.input(COPY_GRAPH.input, 'float32', shape);
  g.output(exactCopy(g, value), COPY_GRAPH.output, 'float32', shape);
  return g.build();
}

/** Which step graph a scheduler needs; its config decides the clipping. */
export function stepGraphSpecFor(
  scheduler: DecoderScheduler,
  guided: boolean,
  inpaint: boolean,
  channels: number,
  capture = false,
): StepGraphSpec {
  const common = { guided, inpaint, channels, ...(capture ? { capture } : {}) };
  if (scheduler instanceof DDPMScheduler || scheduler instanceof DDIMScheduler) {
    const { clip_sample: clip, clip_sample_range: range } = scheduler.config;
    return {
      scheduler: scheduler instanceof DDPMScheduler ? 'ddpm' : 'ddim',
      clipRange: clip ? range : null,
      ...common,
    };
  }
  return { scheduler: 'dpmpp-2m', clipRange: null, ...common };
}
