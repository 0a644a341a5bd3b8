/**
 * The depth recordings (models/fixtures/tiny/reference-depth/cases.json, made by
 * models/export/record_depth_reference.py): transformers' depth-estimation pipeline on photos, and
 * photo → depth → make_hint → prior (text, or Emb2Emb on the photo) → diffusers'
 * KandinskyV22ControlnetImg2ImgPipeline on one generator. Runtime-agnostic: the Node parity tests and
 * the browser harness share it.
 */

import type { PipelineHooks } from '../workers/engine/hooks';
import type { ModelSet } from '../workers/engine/model-set';
import type { PipelineResult } from '../workers/engine/pipeline';
import type { RgbaImage } from '../workers/engine/png';
import type { GenerationSettings } from '../workers/engine/settings';
import type { DepthEstimate } from '../workers/engine/stages/depth-estimator';
import { compareFloat32 } from './compare';
import {
  type CompareOptions,
  type DiffusersParams,
  type RecordedTensor,
  runAndCompare,
  settingsFromParams,
  type TensorCheck,
} from './reference-cases';

type Tensors = Readonly<Record<string, { readonly file: string; readonly shape: readonly number[] }>>;

export interface DepthEstimateCase {
  readonly name: string;
  readonly input: string;
  readonly width: number;
  readonly height: number;
  /** The processor's output [height, width]. */
  readonly processed: readonly [number, number];
  readonly tensors: Tensors;
}

export interface DepthPipelineCase {
  readonly name: string;
  readonly prior: 'text' | 'emb2emb';
  readonly params: DiffusersParams & { readonly strength: number; readonly prior_strength?: number };
  readonly inputs: { readonly photo: string };
  readonly rng_draws: readonly {
    readonly site: string;
    readonly tensor: string;
    readonly shape: readonly number[];
  }[];
  readonly tensors: Tensors;
}

export interface DepthReferenceIndex {
  readonly depth_image_processor: { readonly size: number };
  readonly estimate_cases: readonly DepthEstimateCase[];
  readonly cases: readonly DepthPipelineCase[];
}

/** Reads the depth recording's files: an input photo and a recorded tensor of a case folder. */
export interface DepthReferenceData {
  image(path: string): Promise<RgbaImage>;
  /** `folder` is `estimate/<name>` or a pipeline case's name; every tensor is `<name>.npy`. */
  tensor(folder: string, name: string): Promise<{ data: Float32Array; shape: readonly number[] }>;
}

export function depthSettingsOf(c: DepthPipelineCase): GenerationSettings {
  return {
    ...settingsFromParams('depth', c.params),
    ...(c.prior === 'emb2emb' ? { priorStrength: c.params.prior_strength as number } : {}),
  };
}

/** The engine's trace names that the recorder stored under another name. */
export const DEPTH_RECORDED_AS: Readonly<Record<string, string>> = {
  input_hint: 'depth_hint',
  image_encoder_image_embeds: 'photo_image_embeds',
  prior_0_prior_noise: 'prior_0_noise',
  prior_1_prior_noise: 'prior_1_noise',
};

/** Every stage that could go wrong, by the engine's trace name: all must have been compared. */
export function depthMustCompare(c: DepthPipelineCase): string[] {
  const steps = Array.from(
    { length: Math.floor(c.params.num_inference_steps * c.params.strength) },
    (_, i) => `decoder_latents_${i}`,
  );
  return [
    'depth_predicted_depth',
    'input_hint',
    'image_embeds',
    'negative_image_embeds',
    'input_image',
    'image_latents',
    'decoder_noise',
    ...steps,
    'movq_output',
    'output_image',
    ...(c.prior === 'emb2emb'
      ? ['image_encoder_image_embeds', 'prior_0_prior_noise', 'prior_1_prior_noise']
      : []),
  ];
}

/**
 * Runs a depth image-to-image case from its photo and compares every traced intermediate with the
 * recorded one (under its recorded name, DEPTH_RECORDED_AS); checks carry the engine's names.
 */
export async function checkDepthCase(
  models: ModelSet,
  c: DepthPipelineCase,
  data: DepthReferenceData,
  hooks: Omit<PipelineHooks, 'trace'> = {},
  options: CompareOptions = {},
): Promise<{ checks: TensorCheck[]; traced: string[]; result: PipelineResult }> {
  return runAndCompare(
    models,
    { settings: depthSettingsOf(c), initImage: await data.image(c.inputs.photo) },
    async (name): Promise<RecordedTensor | null> => {
      const recorded = DEPTH_RECORDED_AS[name] ?? name;
      return c.tensors[recorded] ? data.tensor(c.name, recorded) : null;
    },
    hooks,
    options,
  );
}

/** How an estimate compares with transformers' recorded prediction and uint8 depth map. */
export interface DepthEstimateCheck {
  readonly predictedMaxAbs: number;
  /** Relative to max(|expected|, 1e-2). */
  readonly predictedMaxRel: number;
  readonly predictedMagnitude: number;
  /** Pixels of the depth map that differ from the recorded one at all. */
  readonly pixelsOff: number;
  /** Pixels that differ by anything but one level (1, or 255: a wrap of the uint8 cast). */
  readonly pixelsOffByMore: number;
  readonly pixels: number;
  readonly sizeOk: boolean;
}

/** Compares an estimate of case `c`'s photo with the recording (NaN errors when shapes differ). */
export async function compareDepthEstimate(
  c: DepthEstimateCase,
  estimate: DepthEstimate,
  data: Pick<DepthReferenceData, 'tensor'>,
): Promise<DepthEstimateCheck> {
  const predicted = await data.tensor(`estimate/${c.name}`, 'predicted_depth');
  const depthMap = (await data.tensor(`estimate/${c.name}`, 'depth_map')).data;
  const predictedOk = predicted.data.length === estimate.predicted.data.length;
  const error = predictedOk
    ? compareFloat32(estimate.predicted.data, predicted.data, 1e-2)
    : { maxAbs: Number.NaN, maxRel: Number.NaN };
  const sizeOk =
    estimate.depthMap.width === c.width &&
    estimate.depthMap.height === c.height &&
    estimate.depthMap.data.length === depthMap.length * 4;
  let pixelsOff = 0;
  let pixelsOffByMore = 0;
  for (let i = 0; sizeOk && i < depthMap.length; i++) {
    const d = Math.abs((estimate.depthMap.data[i * 4] ?? 0) - (depthMap[i] ?? 0));
    if (d) pixelsOff++;
    if (d !== 0 && d !== 1 && d !== 255) pixelsOffByMore++;
  }
  return {
    predictedMaxAbs: error.maxAbs,
    predictedMaxRel: error.maxRel,
    predictedMagnitude: predicted.data.reduce((m, v) => Math.max(m, Math.abs(v)), 0),
    pixelsOff,
    pixelsOffByMore,
    pixels: depthMap.length,
    sizeOk,
  };
}

/**
 * ORT and torch differ by ~1e-7, which can move a value across an integer boundary of the uint8
 * cast: a level of difference is allowed at this many pixels of a depth map, never more.
 */
export function depthMapPixelsOffAllowed(pixels: number): number {
  return Math.ceil(pixels * 0.002);
}
