/**
 * Which precision of a model set to run: fp16 where the adapter has `shader-f16`, an fp32 path
 * where it doesn't, quantised weights at rest (int8, int4, int4c6) where the publisher shipped
 * them. A set publishes its other precisions as `variants` (models/CONTRACT.md, "Precision
 * variants"); this module picks one from the adapter (GpuAdapterReport) or the user's override.
 * Pure: no ORT, no I/O.
 */
import { REQUIRED_COMPONENTS } from '../models/contract';
import type { Manifest, ManifestQuality, Precision } from '../models/manifest';
import { KandinskyError } from './errors';

export const PRECISION_CHOICES = ['auto', 'fp16', 'fp32', 'int8', 'int4', 'int4c6', 'searched'] as const;
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
  /** Bytes of the option's text-to-image components (what the model manager shows before download). */
  readonly textToImageBytes: number;
  /**
   * The worst `--check` cosine of the option's text-to-image graphs against PyTorch float32 (the
   * variant entry's `checkCosine`, or the opened manifest's own components' `check`); null when
   * the publisher recorded none.
   */
  readonly checkCosine: number | null;
  /**
   * The end-to-end figure of the option's whole text-to-image pipeline against PyTorch float32
   * (the export tool's `--quality`: the variant entry's `quality`, or the opened manifest's own);
   * null when the publisher recorded none. Where present, it decides instead of `checkCosine`.
   */
  readonly quality: ManifestQuality | null;
}

/**
 * The `--check` cosine an option must hold for 'auto' to pick it by download size alone: the bar
 * models/README.md sets for publishing fp16 (its measured figures are ≥ 0.999998). A quantised
 * variant that holds it on the real weights is as good a default as fp16, and smaller.
 */
export const DEFAULT_CHECK_COSINE = 0.999;

/**
 * The PSNR (dB, the final 8-bit pictures against the fp32 PyTorch pipeline's at the same seeds) an
 * option with a `quality` figure must reach for 'auto' to pick it by download size. Provisional:
 * 30 dB is where 8-bit pictures are commonly taken to show small differences only (40 dB and up:
 * nearly identical); issue 22 fixes it from side-by-side pictures of the real weights. On the
 * tiny realistic set (models/README.md, per-weight search) the sets at 30 dB and up differ from
 * fp32 in 1–2% of pixels and those under 20 dB in a quarter or more, nothing in between: 30 dB is
 * the low edge of the band that looks the same.
 */
export const DEFAULT_TARGET_PSNR = 30;
/** At and above this PSNR the pictures are, in words, nearly identical to full precision. */
export const NEARLY_IDENTICAL_PSNR = 40;

/**
 * Preference of 'auto' among options without `--check` figures, best first (`searched`, bits
 * chosen per weight for a PSNR target, is never among them: 'auto' opens it only by its own
 * `quality` figure, `holdsFigures`). fp16: half the
 * download and memory of fp32 and the fastest WebGPU kernels, numerically equal to fp32 where it
 * matters (norms and softmax stay fp32). int8: a quarter of fp32 at rest, fp32 compute, cosine
 * ≥ 0.9999 in `--check`. fp32: always runs. int4 and int4c6 (int4 with 6-bit convolutions) only
 * when their figures hold or when asked for: on the tiny random set their UNets measure cosine
 * 0.97–0.98 and 0.994–0.997, under DEFAULT_CHECK_COSINE (models/README.md).
 */
const AUTO_ORDER: readonly Precision[] = ['fp16', 'int8', 'fp32'];

/** Text-to-image download of a manifest: the bytes of every file of its required components. */
export function textToImageBytes(manifest: Manifest): number {
  let bytes = 0;
  for (const id of REQUIRED_COMPONENTS) {
    for (const file of manifest.components[id]?.files ?? []) bytes += file.bytes;
  }
  return bytes;
}

/** The worst `check` cosine of a manifest's text-to-image graphs; null unless every one has one. */
export function textToImageCheckCosine(manifest: Manifest): number | null {
  let worst = 1;
  for (const id of REQUIRED_COMPONENTS) {
    const component = manifest.components[id];
    if (component?.kind !== 'onnx') continue;
    if (!component.check) return null;
    worst = Math.min(worst, component.check.cosine);
  }
  return worst;
}

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
      textToImageBytes: textToImageBytes(manifest),
      checkCosine: textToImageCheckCosine(manifest),
      quality: manifest.quality ?? null,
    });
  }
  for (const variant of manifest.variants ?? []) {
    if (variant.precision === own) continue;
    options.push({
      precision: variant.precision,
      requiredFeatures: variant.requiredFeatures,
      manifest: variant.manifest,
      textToImageBytes: variant.textToImageBytes,
      checkCosine: variant.checkCosine ?? null,
      quality: variant.quality ?? null,
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

/** The first of AUTO_ORDER among `candidates`, with why. */
function fixedOrderChoice(
  options: readonly PrecisionOption[],
  candidates: readonly PrecisionOption[],
  adapter: AdapterFeatures | null,
): PrecisionDecision | null {
  const fp16 = options.find((o) => o.precision === 'fp16');
  for (const precision of AUTO_ORDER) {
    const option = candidates.find((o) => o.precision === precision);
    if (!option) continue;
    const reason =
      precision === 'fp16'
        ? 'fp16: this GPU has shader-f16'
        : fp16 && supports(adapter, fp16)
          ? `${precision}: the fp16 models' recorded figures don't hold`
          : fp16
            ? `${precision}: this GPU has no shader-f16 for the fp16 models`
            : `${precision}: the best precision this set publishes`;
    return { option, reason };
  }
  return null;
}

/** Whether an option's recorded `--check` figures make it a default candidate. */
export function holdsCheck(option: Pick<PrecisionOption, 'checkCosine'>): boolean {
  return option.checkCosine !== null && option.checkCosine >= DEFAULT_CHECK_COSINE;
}

type Figures = Pick<PrecisionOption, 'checkCosine' | 'quality'>;

/** Whether the publisher recorded any figure for an option (`--quality` or `--check`). */
function hasFigures(option: Figures): boolean {
  return option.quality !== null || option.checkCosine !== null;
}

/**
 * Whether an option's recorded figures make it a default candidate: its end-to-end PSNR reaches
 * DEFAULT_TARGET_PSNR where it has a `quality` figure (what a person sees decides), else its
 * `--check` cosine holds DEFAULT_CHECK_COSINE (never for `searched`: only its `quality` counts).
 */
export function holdsFigures(option: Figures & { readonly precision?: Precision }): boolean {
  if (option.quality !== null) return option.quality.psnr >= DEFAULT_TARGET_PSNR;
  // A searched plan was made to hold a picture target: without its picture figure nothing says it does.
  return option.precision !== 'searched' && holdsCheck(option);
}

/** An end-to-end figure in words a person understands (the model manager). */
export function qualityInWords(quality: Pick<ManifestQuality, 'psnr'>): string {
  if (quality.psnr >= NEARLY_IDENTICAL_PSNR) return 'nearly identical to full precision';
  if (quality.psnr >= DEFAULT_TARGET_PSNR) return 'small differences';
  return 'visible differences';
}

function figuresReason(option: PrecisionOption): string {
  return option.quality !== null
    ? `pictures hold (PSNR ${option.quality.psnr.toFixed(1)} dB ≥ ${DEFAULT_TARGET_PSNR} dB against full precision)`
    : `--check holds (cosine ${formatCosine(option.checkCosine)} ≥ ${DEFAULT_CHECK_COSINE})`;
}

/**
 * The option to open. 'auto', among the options the adapter runs, leaving out any whose recorded
 * figures don't hold (`holdsFigures`: end-to-end PSNR under DEFAULT_TARGET_PSNR where recorded, else
 * a `--check` cosine under DEFAULT_CHECK_COSINE): the first of fp16 (only with shader-f16), int8,
 * fp32 that the set publishes, unless an option whose recorded figures hold is a smaller
 * text-to-image download, then the smallest of those (a set exported with `--check` at every
 * precision so opens its smallest good download); else any option the adapter supports. A named
 * precision: that one, or a WEBGPU_FEATURE_MISSING / INVALID_INPUT error saying why not.
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
  // A recorded figure under the bar rules an option out; one without figures is judged by its kind.
  // `searched` is judged by its figures alone, like any option that has some.
  const trusted = runnable.filter((o) => (!hasFigures(o) && o.precision !== 'searched') || holdsFigures(o));
  const ordered = fixedOrderChoice(options, trusted, adapter);
  const rank = (o: PrecisionOption) => {
    const at = AUTO_ORDER.indexOf(o.precision);
    return at < 0 ? AUTO_ORDER.length : at;
  };
  const [smallest] = trusted
    .filter(holdsFigures)
    .sort((a, b) => a.textToImageBytes - b.textToImageBytes || rank(a) - rank(b));
  if (smallest && (!ordered || smallest.textToImageBytes < ordered.option.textToImageBytes)) {
    return {
      option: smallest,
      reason: `${smallest.precision}: the smallest download whose ${figuresReason(smallest)}`,
    };
  }
  if (ordered) return ordered;
  const [fallback] = [...runnable].sort(
    (a, b) => Number(a.precision === 'searched') - Number(b.precision === 'searched'),
  );
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

/** A cosine for people: 4 decimals, or as many as it takes not to round it to 1. */
export function formatCosine(cosine: number | null): string {
  if (cosine === null) return 'not recorded';
  if (cosine >= 1) return '1.0000';
  // 7 decimals at most, as the export tool prints them.
  return cosine.toFixed(Math.min(7, Math.max(4, Math.ceil(-Math.log10(1 - cosine)))));
}
