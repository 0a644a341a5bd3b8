/**
 * Which precision of a model set to run: fp16 where the adapter has `shader-f16`, an fp32 path
 * where it doesn't, quantised weights at rest (int8, int4, int4c6) where the publisher shipped
 * them. A set publishes its other precisions as `variants` (models/CONTRACT.md, "Precision
 * variants"); this module picks one from the adapter (GpuAdapterReport) or the user's override.
 * Pure: no ORT, no I/O.
 */
import type { Manifest, Precision } from '../models/manifest';
import { KandinskyError } from './errors';

export const PRECISION_CHOICES = ['auto', 'fp16', 'fp32', 'int8', 'int4', 'int4c6'] as const;
/** What the user asked for: 'auto' (the adapter decides) or one precision. */
export type PrecisionChoice = (typeof PRECISION_CHOICES)[number];

/** The adapter features the choice depends on; `null` when there is no WebGPU adapter (Node, tests). */
export interface AdapterFeatures {
  readonly shaderF16: boolean;
}

export interface PrecisionOption {
  readonly precision: Precision;
  readonly requiredFeatures: readonly 'shader-f16'[];
  /** The variant's manifest path relative to the opened one; null for the opened manifest itself. */
  readonly manifest: string | null;
  readonly textToImageBytes: number | null;
}

/**
 * Preference of 'auto', best first. fp16: half the download and memory of fp32 and the fastest
 * WebGPU kernels, numerically equal to fp32 where it matters (norms and softmax stay fp32).
 * int8: a quarter of fp32 at rest, fp32 compute, cosine ≥ 0.9999 in `--check`. fp32: always runs.
 * int4 and int4c6 (int4 with 6-bit convolutions) only when asked for: int4's UNet quality is not
 * proven on real weights, and int4c6's UNets measure cosine 0.994–0.997 in `--check` on the tiny
 * random set, under the 0.999 bar a default needs (models/README.md).
 */
const AUTO_ORDER: readonly Precision[] = ['fp16', 'int8', 'fp32'];

/** The precision of a set's ONNX components, or 'mixed' when they differ. */
export function manifestPrecision(manifest: Manifest): Precision | 'mixed' {
  const seen = new Set<Precision>();
  for (const component of Object.values(manifest.components)) {
    if (component?.kind === 'onnx') seen.add(component.precision);
  }
  const [only] = seen;
  return seen.size === 1 && only ? only : 'mixed';
}

function manifestFeatures(manifest: Manifest): 'shader-f16'[] {
  const needs = Object.values(manifest.components).some(
    (c) => c?.kind === 'onnx' && c.requiredFeatures.includes('shader-f16'),
  );
  return needs ? ['shader-f16'] : [];
}

/** The opened manifest itself plus every variant it lists. */
export function precisionOptions(manifest: Manifest): PrecisionOption[] {
  const own = manifestPrecision(manifest);
  const options: PrecisionOption[] = [];
  if (own !== 'mixed') {
    options.push({
      precision: own,
      requiredFeatures: manifestFeatures(manifest),
      manifest: null,
      textToImageBytes: null,
    });
  }
  for (const variant of manifest.variants ?? []) {
    if (variant.precision === own) continue;
    options.push({
      precision: variant.precision,
      requiredFeatures: variant.requiredFeatures,
      manifest: variant.manifest,
      textToImageBytes: variant.textToImageBytes,
    });
  }
  return options;
}

/** Whether the adapter can run an option; without an adapter report only feature-free options run. */
export function supports(
  adapter: AdapterFeatures | null,
  option: Pick<PrecisionOption, 'requiredFeatures'>,
): boolean {
  return option.requiredFeatures.every((feature) => feature === 'shader-f16' && adapter?.shaderF16 === true);
}

function missingFeatureError(
  precision: Precision | 'mixed',
  adapter: AdapterFeatures | null,
): KandinskyError {
  const where = adapter ? 'this GPU does not offer it' : 'no WebGPU adapter reported it';
  return new KandinskyError(
    'WEBGPU_FEATURE_MISSING',
    `This ${precision} model set needs the WebGPU feature "shader-f16" (16-bit float shaders), and ${where}. ` +
      'Choose the fp32 or int8 precision in the model manager, or open a set published in fp32.',
  );
}

export interface PrecisionDecision {
  readonly option: PrecisionOption;
  /** Why this one, for the UI. */
  readonly reason: string;
}

/**
 * The option to open. 'auto': the first of fp16 (only with shader-f16), int8, fp32 that the set
 * publishes, else any option the adapter supports. A named precision: that one, or a
 * WEBGPU_FEATURE_MISSING / INVALID_INPUT error saying why not.
 */
export function choosePrecision(
  options: readonly PrecisionOption[],
  adapter: AdapterFeatures | null,
  choice: PrecisionChoice,
): PrecisionDecision {
  if (choice !== 'auto') {
    const option = options.find((o) => o.precision === choice);
    if (!option) {
      throw new KandinskyError(
        'INVALID_INPUT',
        `This model set is not published in ${choice}; it has ${options.map((o) => o.precision).join(', ') || 'no single precision'}.`,
      );
    }
    if (!supports(adapter, option)) throw missingFeatureError(option.precision, adapter);
    return { option, reason: `${choice}, as chosen` };
  }
  const runnable = options.filter((o) => supports(adapter, o));
  for (const precision of AUTO_ORDER) {
    const option = runnable.find((o) => o.precision === precision);
    if (!option) continue;
    const reason =
      precision === 'fp16'
        ? 'fp16: this GPU has shader-f16'
        : options.some((o) => o.precision === 'fp16')
          ? `${precision}: this GPU has no shader-f16 for the fp16 models`
          : `${precision}: the best precision this set publishes`;
    return { option, reason };
  }
  const [fallback] = runnable;
  if (fallback)
    return { option: fallback, reason: `${fallback.precision}: the only precision this GPU can run` };
  const [first] = options;
  throw missingFeatureError(first?.precision ?? 'mixed', adapter);
}

/** Refuses a manifest whose graphs need a feature the adapter lacks (checked again before running). */
export function assertRunnable(manifest: Manifest, adapter: AdapterFeatures | null): void {
  if (!supports(adapter, { requiredFeatures: manifestFeatures(manifest) })) {
    throw missingFeatureError(manifestPrecision(manifest), adapter);
  }
}
