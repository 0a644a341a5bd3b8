/**
 * The reference cases recorded from diffusers (models/fixtures/tiny/reference/cases.json) and how
 * each maps onto our settings. Runtime-agnostic: the Node parity test and the browser harness share it.
 */

import type { PipelineHooks } from '../workers/engine/hooks';
import type { ModelSet } from '../workers/engine/model-set';
import { type PipelineResult, runPipeline } from '../workers/engine/pipeline';
import type { RgbaImage } from '../workers/engine/png';
import type { PipelineRequest } from '../workers/engine/request';
import type { GenerationSettings } from '../workers/engine/settings';
import { KandinskyError } from '../workers/errors';
import { compareFloat32 } from './compare';

/** The diffusers call parameters a recorder stored with each case (snake_case, as diffusers names them). */
export interface DiffusersParams {
  readonly prompt: string;
  readonly negative_prompt: string | null;
  readonly seed: number;
  readonly height: number;
  readonly width: number;
  readonly prior_num_inference_steps: number;
  readonly num_inference_steps: number;
  readonly prior_guidance_scale: number;
  readonly guidance_scale: number;
  readonly num_images_per_prompt?: number;
  readonly strength?: number;
  /** How the seed was used: one generator through both pipelines, or each pipeline seeded. */
  readonly seed_mode?: 'combined' | 'separate';
  /** The decoder scheduler picked over the set's own (from_config); absent: the set's own. */
  readonly scheduler?: GenerationSettings['scheduler'];
}

export interface ReferenceCase {
  readonly name: string;
  readonly pipeline: 'txt2img' | 'img2img' | 'inpaint' | 'depth';
  readonly params: DiffusersParams;
  readonly inputs: { readonly image?: string; readonly mask?: string; readonly hint?: string };
  readonly tensors: Readonly<Record<string, { readonly file: string; readonly shape: readonly number[] }>>;
}

export interface ReferenceIndex {
  readonly cases: readonly ReferenceCase[];
  readonly tokenizer_cases: readonly { readonly text: string; readonly input_ids: readonly number[] }[];
}

/** Our settings for a diffusers call with these parameters (the set's own scheduler unless the case picked one). */
export function settingsFromParams(mode: GenerationSettings['mode'], p: DiffusersParams): GenerationSettings {
  return {
    mode,
    prompt: p.prompt,
    negativePrompt: p.negative_prompt ?? '',
    seed: p.seed,
    width: p.width,
    height: p.height,
    priorSteps: p.prior_num_inference_steps,
    priorGuidance: p.prior_guidance_scale,
    steps: p.num_inference_steps,
    guidance: p.guidance_scale,
    ...(p.scheduler ? { scheduler: p.scheduler } : {}),
    numImages: p.num_images_per_prompt ?? 1,
    strength: p.strength ?? 1,
    ...(p.seed_mode === 'separate' ? { seedMode: 'separate' as const } : {}),
  };
}

export function settingsOf(testCase: ReferenceCase): GenerationSettings {
  return settingsFromParams(testCase.pipeline, testCase.params);
}

/** What every case must have compared: each step's latents, both embeddings, the noise and the image. */
export const MUST_CHECK =
  /^(decoder|prior)_latents_\d+$|^(negative_)?image_embeds$|^output_image$|^(prior|decoder)_noise$/;

/**
 * Tolerances (max absolute error) for the WebGPU provider — onnxruntime-web's in the browser and
 * onnxruntime-node's on SwiftShader: shaders accumulate in other orders than torch's CPU kernels and
 * fuse multiply-adds, so errors are ~5× those of the CPU provider. The same numbers as
 * e2e/parity.spec.ts's browser tolerances (measured there: embeddings 2.5e-5, latents 2.9e-4, MoVQ
 * output 1.1e-4 of its magnitude, final image 2.0e-3).
 */
export function webGpuTolerance(name: string, magnitude: number): number {
  if (exactCheck(name)) return 0;
  if (name.endsWith('_noise')) return 1e-6; // drawn on the CPU by our torch-compatible generator
  if (name === 'output_image') return 1 / 255;
  if (name === 'movq_output') return 5e-4 * Math.max(1, magnitude);
  if (/^(decoder_latents_\d+|movq_input_latents)$/.test(name)) return 1e-3; // 2–4 UNet steps of drift
  return 1e-4;
}

export interface TensorCheck {
  readonly name: string;
  /** Largest |ours − reference|; NaN when the shapes differ. */
  readonly maxAbs: number;
  /** Largest |reference| value: float32 errors grow with it. */
  readonly magnitude: number;
  readonly shapeOk: boolean;
}

export interface ReferenceData {
  /** An input image of the case (`inputs/…png`), decoded. */
  image(path: string): Promise<RgbaImage>;
  /** A recorded tensor of the case, or null when the reference has none of that name. */
  tensor(
    testCase: ReferenceCase,
    name: string,
  ): Promise<{ data: ArrayLike<number | bigint>; shape: readonly number[] } | null>;
}

/** The pipeline request a reference case describes (a mask PNG's first channel is the mask). */
export async function requestOf(testCase: ReferenceCase, data: ReferenceData): Promise<PipelineRequest> {
  const { image, mask, hint } = testCase.inputs;
  const maskImage = mask ? await data.image(mask) : undefined;
  return {
    settings: settingsOf(testCase),
    ...(image ? { initImage: await data.image(image) } : {}),
    ...(maskImage
      ? {
          mask: {
            width: maskImage.width,
            height: maskImage.height,
            data: maskImage.data.filter((_, i) => i % 4 === 0),
          },
        }
      : {}),
    ...(hint ? { depthMap: await data.image(hint) } : {}),
  };
}

/** A recorded tensor as parsed from its .npy file. */
export interface RecordedTensor {
  readonly data: ArrayLike<number | bigint>;
  readonly shape: readonly number[];
}

/**
 * The check that the untraced run gave the traced run's final pixels bit for bit: its `maxAbs` is
 * the largest difference, or infinity where values differ only in their bits (-0 and 0, NaNs).
 * Every tolerance is 0 for it (`exactCheck`).
 */
export const UNTRACED_CHECK = 'untraced_output_image';

/** Checks that must match exactly, whatever the runtime: the untraced run's pixels, CLIP's pixel values. */
export function exactCheck(name: string): boolean {
  return name === UNTRACED_CHECK || name === 'image_encoder_pixel_values';
}

function untracedCheck(untraced: Float32Array, traced: Float32Array): TensorCheck {
  const shapeOk = untraced.length === traced.length;
  const a = new Uint32Array(untraced.buffer, untraced.byteOffset, untraced.length);
  const b = new Uint32Array(traced.buffer, traced.byteOffset, traced.length);
  let maxAbs = 0;
  for (let i = 0; shapeOk && i < a.length; i++) {
    if (a[i] === b[i]) continue;
    const difference = Math.abs((untraced[i] ?? 0) - (traced[i] ?? 0));
    maxAbs = Math.max(maxAbs, difference > 0 ? difference : Number.POSITIVE_INFINITY);
  }
  return { name: UNTRACED_CHECK, maxAbs: shapeOk ? maxAbs : Number.NaN, magnitude: 1, shapeOk };
}

/** How runAndCompare runs a request. */
export interface CompareOptions {
  /**
   * Decode once, in the untraced run: the traced run stops where MoVQ would start (its trace then
   * ends at `movq_input_latents`), and the untraced run's pixels are compared with the recorded
   * `output_image` in place of the traced run's (no UNTRACED_CHECK, no `movq_output`). Where the
   * decoder dominates, as MoVQ on SwiftShader does, this halves its cost; the pixels checked are
   * those of the shipped path.
   */
  readonly decodeOnce?: boolean;
}

/**
 * Runs `request` through the engine twice: untraced, as the worker and the CLI run it, then tracing
 * every intermediate. Compares each traced one with the recorded tensor `recorded(name)` returns
 * (null: not recorded, not compared), and the untraced run's pixels with the traced run's
 * (UNTRACED_CHECK). Shared by every recording set (pipeline cases, mixing, depth), in Node and in
 * the browser harness. `result` is the traced run's, or with `decodeOnce` the untraced one's.
 */
export async function runAndCompare(
  models: ModelSet,
  request: PipelineRequest,
  recorded: (name: string) => Promise<RecordedTensor | null>,
  hooks: Omit<PipelineHooks, 'trace'> = {},
  { decodeOnce = false }: CompareOptions = {},
): Promise<{
  checks: TensorCheck[];
  traced: string[];
  result: PipelineResult;
  untracedResult: PipelineResult;
}> {
  // The shipped path first: no trace attached, as the worker and the CLI run it.
  const { onProgress: _progressOfTracedRun, ...untracedHooks } = hooks;
  const untraced = await runPipeline(models, request, untracedHooks);
  const traced = new Map<string, { data: Float32Array | BigInt64Array; dims: readonly number[] }>();
  const trace = (name: string, values: Float32Array | BigInt64Array, dims: readonly number[]) =>
    traced.set(name, { data: values.slice(), dims: [...dims] });
  let result = untraced;
  const checks: TensorCheck[] = [];
  if (decodeOnce) {
    const atDecode = new AbortController();
    const signal = hooks.signal ? AbortSignal.any([hooks.signal, atDecode.signal]) : atDecode.signal;
    try {
      await runPipeline(models, request, {
        ...hooks,
        signal,
        onProgress: (progress) => {
          hooks.onProgress?.(progress);
          if (progress.stage === 'decode') atDecode.abort();
        },
        trace,
      });
      throw new Error('The traced run went past the decoder’s start: it was to stop there');
    } catch (error) {
      if (!(atDecode.signal.aborted && isCancelled(error))) throw error;
    }
    const [first] = untraced.images;
    traced.set('output_image', {
      data: untraced.floatImages,
      dims: [untraced.images.length, first?.height ?? 0, first?.width ?? 0, 3],
    });
  } else {
    result = await runPipeline(models, request, { ...hooks, trace });
    checks.push(untracedCheck(untraced.floatImages, result.floatImages));
  }
  for (const [name, { data: values, dims }] of traced) {
    const expected = await recorded(name);
    if (!expected) continue;
    const shapeOk = dims.length === expected.shape.length && dims.every((d, i) => d === expected.shape[i]);
    const reference = Array.from(expected.data, Number);
    checks.push({
      name,
      maxAbs: shapeOk ? compareFloat32(Array.from(values, Number), reference).maxAbs : Number.NaN,
      magnitude: reference.reduce((m, v) => Math.max(m, Math.abs(v)), 0),
      shapeOk,
    });
  }
  return { checks, traced: [...traced.keys()], result, untracedResult: untraced };
}

function isCancelled(error: unknown): boolean {
  return error instanceof KandinskyError && error.code === 'CANCELLED';
}

/**
 * Runs one reference case through the engine and compares every intermediate the engine traces
 * with the recorded one of the same name.
 */
export async function checkReferenceCase(
  models: ModelSet,
  testCase: ReferenceCase,
  data: ReferenceData,
  options: CompareOptions = {},
): ReturnType<typeof runAndCompare> {
  return runAndCompare(
    models,
    await requestOf(testCase, data),
    (name) => data.tensor(testCase, name),
    {},
    options,
  );
}
