// The model-set manifest (`manifest.json`): schema, types and the validator the store and the
// engine use before reading any byte of a set. Written by models/export/kandinsky_export.py.
// Runs in workers and the browser: no Node APIs here.

import { z } from 'zod';
import {
  COMPONENT_IDS,
  CONTRACT_VERSION,
  type ComponentId,
  componentKind,
  DEPTH_PATCH_SIZE,
  FEATURES,
  REQUIRED_COMPONENTS,
  TENSOR_CONTRACTS,
  type TensorComponentId,
  TOKENIZER_FILES,
} from './contract';

export const MANIFEST_VERSION = 1;
/** External-data shards are at most this large (the exporter's default shard size). */
export const MAX_SHARD_BYTES = 256 * 1024 * 1024;
/** No single file may exceed the protobuf limit of an ONNX graph file. */
export const MAX_FILE_BYTES = 2 ** 31 - 1;

export const MANIFEST_ERROR_CODES = [
  'MANIFEST_INVALID', // wrong type, missing or unknown field
  'MANIFEST_UNSUPPORTED_VERSION', // manifestVersion or contractVersion this build does not read
  'MANIFEST_UNSAFE_PATH', // absolute path, URL, `..`, backslash or odd characters in a file path
  'MANIFEST_DUPLICATE_FILE', // two file entries with the same path (case-insensitive)
  'MANIFEST_INVALID_SIZE', // negative, fractional or too large byte size
  'MANIFEST_INVALID_HASH', // sha256 not 64 lower-case hex digits
  'MANIFEST_MISSING_COMPONENT', // a required component is absent
  'MANIFEST_INCONSISTENT', // fields that contradict each other (kind, roles, precision/features, shape/size)
  'MANIFEST_NOT_JSON', // manifest.json is not JSON text (after UTF-8 decoding and a byte-order mark)
  'MANIFEST_TOO_LARGE', // the text is over MANIFEST_LIMITS.textBytes or nested deeper than MANIFEST_LIMITS.depth
  'MANIFEST_UNSAFE_KEY', // `__proto__`, `constructor` or `prototype` as a key anywhere
] as const;
export type ManifestErrorCode = (typeof MANIFEST_ERROR_CODES)[number];

export class ManifestError extends Error {
  override readonly name = 'ManifestError';
  constructor(
    readonly code: ManifestErrorCode,
    /** Dotted path of the offending field, e.g. `components.unet.files[1].path`. */
    readonly field: string,
    message: string,
  ) {
    super(`${field || 'manifest'}: ${message}`);
  }
}

/**
 * Bounds on a manifest and its numbers: generous for any real Kandinsky 2.2 set (its values are in
 * the comments), tight enough that no number in a manifest can make the engine allocate or loop
 * without bound before anything checks it.
 */
export const MANIFEST_LIMITS = {
  /** manifest.json, bytes (UTF-8) or UTF-16 code units: a real set's is under 1 MiB. */
  textBytes: 16 * 1024 * 1024,
  /** Nesting of objects and arrays (a real manifest nests 7 deep). */
  depth: 32,
  /**
   * Schedulers' num_train_timesteps (1000 in every Kandinsky config). The lower bound is twice the
   * most decoder steps a person may ask for (settings LIMITS.steps.max, 200), so every allowed step
   * count has distinct timesteps to spread over, `leading` spacing with steps_offset ≤ 1 included.
   */
  trainTimesteps: { min: 400, max: 10_000 },
  /** Files of one component: a graph and its external-data shards (a real UNet has under 100). */
  componentFiles: 1024,
  /** Largest float32 value: the export check's errors are float32 differences. */
  float32Max: 3.4028234663852886e38,
} as const;

const SHA256 = /^[0-9a-f]{64}$/;
// Relative POSIX path; each segment starts with a letter, digit or underscore (so no `.`/`..`).
const SAFE_PATH = /^[A-Za-z0-9_][A-Za-z0-9._-]*(\/[A-Za-z0-9_][A-Za-z0-9._-]*)*$/;

type IssueSink = {
  addIssue: (issue: {
    code: 'custom';
    message: string;
    path?: PropertyKey[];
    params?: Record<string, unknown>;
  }) => void;
};

function fail(ctx: IssueSink, code: ManifestErrorCode, path: PropertyKey[], message: string): void {
  ctx.addIssue({ code: 'custom', message, path, params: { manifestCode: code } });
}

export function checkFilePath(path: string): string | null {
  if (path.length === 0) return 'empty path';
  if (path.length > 200) return 'path longer than 200 characters';
  if (/^[a-z][a-z0-9+.-]*:/i.test(path) || path.startsWith('//'))
    return 'URLs are not allowed; paths are relative to the set';
  if (path.startsWith('/') || path.includes('\\')) return 'absolute paths and backslashes are not allowed';
  if (path.split('/').some((s) => s === '..' || s === '.'))
    return 'path traversal (`.` or `..` segments) is not allowed';
  if (!SAFE_PATH.test(path)) return 'only letters, digits, `_`, `-`, `.` and `/` are allowed';
  return null;
}

const FileRole = z.enum(['graph', 'external-data', 'tensor', 'tokenizer']);

// Loose field types here; the refinement gives size, hash and path problems their own codes.
/** Per-chunk sha256s are for chunks of a positive multiple of this size, bytes. */
export const CHUNK_HASH_GRANULE_BYTES = 64 * 1024;
/** Largest chunk size per-chunk sha256s may use, bytes. */
export const MAX_CHUNK_HASH_BYTES = 64 * 1024 * 1024;

/**
 * Optional per-chunk sha256s of a file: the file split into `bytes`-sized chunks (the last may be
 * shorter), one digest each, so a store can verify (and refetch) chunk by chunk.
 */
const FileChunks = z.strictObject({
  bytes: z.number(),
  sha256: z.array(z.string()).max(Math.ceil(MAX_FILE_BYTES / CHUNK_HASH_GRANULE_BYTES)),
});

const FileEntry = z
  .strictObject({
    path: z.string(),
    bytes: z.number(),
    sha256: z.string(),
    role: FileRole,
    chunks: FileChunks.optional(),
  })
  .superRefine((file, ctx) => {
    const pathProblem = checkFilePath(file.path);
    if (pathProblem)
      fail(ctx, 'MANIFEST_UNSAFE_PATH', ['path'], `${pathProblem} (got ${JSON.stringify(file.path)})`);
    if (!Number.isSafeInteger(file.bytes) || file.bytes < 0) {
      fail(
        ctx,
        'MANIFEST_INVALID_SIZE',
        ['bytes'],
        `expected a non-negative integer byte count, got ${file.bytes}`,
      );
    } else if (file.bytes > MAX_FILE_BYTES) {
      fail(
        ctx,
        'MANIFEST_INVALID_SIZE',
        ['bytes'],
        `${file.bytes} bytes is over the ${MAX_FILE_BYTES}-byte file limit`,
      );
    } else if (file.role === 'external-data' && file.bytes > MAX_SHARD_BYTES) {
      fail(
        ctx,
        'MANIFEST_INVALID_SIZE',
        ['bytes'],
        `external-data shard of ${file.bytes} bytes is over ${MAX_SHARD_BYTES}`,
      );
    }
    if (!SHA256.test(file.sha256))
      fail(ctx, 'MANIFEST_INVALID_HASH', ['sha256'], 'expected 64 lower-case hex digits');
    const chunks = file.chunks;
    if (chunks) {
      if (
        !Number.isSafeInteger(chunks.bytes) ||
        chunks.bytes <= 0 ||
        chunks.bytes % CHUNK_HASH_GRANULE_BYTES !== 0 ||
        chunks.bytes > MAX_CHUNK_HASH_BYTES
      ) {
        fail(
          ctx,
          'MANIFEST_INVALID_SIZE',
          ['chunks', 'bytes'],
          `expected a positive multiple of ${CHUNK_HASH_GRANULE_BYTES} bytes up to ${MAX_CHUNK_HASH_BYTES}, got ${chunks.bytes}`,
        );
      } else if (Number.isSafeInteger(file.bytes) && file.bytes >= 0) {
        const expected = Math.ceil(file.bytes / chunks.bytes);
        if (chunks.sha256.length !== expected)
          fail(
            ctx,
            'MANIFEST_INCONSISTENT',
            ['chunks', 'sha256'],
            `${file.bytes} bytes in chunks of ${chunks.bytes} is ${expected} chunks, got ${chunks.sha256.length} hashes`,
          );
      }
      chunks.sha256.forEach((digest, i) => {
        if (!SHA256.test(digest))
          fail(ctx, 'MANIFEST_INVALID_HASH', ['chunks', 'sha256', i], 'expected 64 lower-case hex digits');
      });
    }
  });

const Feature = z.enum(FEATURES);
const Files = z.array(FileEntry).min(1).max(MANIFEST_LIMITS.componentFiles);
const common = { optional: z.boolean(), enables: z.array(Feature).max(FEATURES.length) };
const RequiredFeatures = z.array(z.enum(['shader-f16'])).max(1);

/** What a number was, for a message (never the whole value: it may be anything). */
function described(input: unknown): string {
  return typeof input === 'number' ? String(input) : typeof input;
}

/** A whole number in [min, max], with a message that says so. */
function intIn(min: number, max: number) {
  const error = (issue: { input?: unknown }) =>
    `expected a whole number from ${min} to ${max}, got ${described(issue.input)}`;
  return z.number({ error }).int({ error }).min(min, { error }).max(max, { error });
}

/** A finite number in (0, 1) or (0, max] (`open`: max itself excluded). */
function positiveUpTo(max: number, open = false) {
  const range = open ? `between 0 and ${max}, both excluded` : `above 0 and at most ${max}`;
  const error = (issue: { input?: unknown }) => `expected a number ${range}, got ${described(issue.input)}`;
  const positive = z.number({ error }).positive({ error });
  return open ? positive.lt(max, { error }) : positive.max(max, { error });
}

/**
 * Weight precisions (models/README.md, Precisions): int8, int4 and int4c6 (int4 with 6-bit
 * convolutions) are weight-only quantisations that compute in float32; `searched` chooses 4, 6, 8,
 * 16 or 32 bits per weight (the export tool's precision search, to reach an end-to-end PSNR
 * target at the smallest size), also weight-only with float32 compute, its bits in `plan`.
 */
const PRECISIONS = ['fp32', 'fp16', 'int8', 'int4', 'int4c6', 'searched'] as const;

/** Parameters of one graph: bounded far above any (the full-size UNet has 1.2 G). */
const PLAN_PARAMETERS = intIn(0, 2 ** 40);
/**
 * A `searched` graph's plan in brief: how many parameters of the weights its plan names (MatMul,
 * Gemm, Conv and Gather weights; those under 4096 elements at 16 or 32 only) got each bits (4, 6,
 * 8: quantised; 16: float16 at rest, cast to float32 at load; 32: float32). Every key present, 0
 * where none.
 */
const PlanBits = z.strictObject({
  '4': PLAN_PARAMETERS,
  '6': PLAN_PARAMETERS,
  '8': PLAN_PARAMETERS,
  '16': PLAN_PARAMETERS,
  '32': PLAN_PARAMETERS,
});
export type ManifestPlanBits = z.infer<typeof PlanBits>;

/** A cosine similarity as the export tool reports it: in [-1, 1]. */
const Cosine = z.number().min(-1).max(1);

/**
 * What the export tool's `--check` measured for a graph (models/README.md): this graph's outputs
 * against its PyTorch float32 module on the check inputs, the worst output and input.
 */
const GraphCheck = z.strictObject({
  cosine: Cosine,
  maxAbsError: z.number().nonnegative().max(MANIFEST_LIMITS.float32Max),
  maxAbsReference: z.number().nonnegative().max(MANIFEST_LIMITS.float32Max),
});

const OnnxComponent = z.strictObject({
  kind: z.literal('onnx'),
  precision: z.enum(PRECISIONS),
  requiredFeatures: RequiredFeatures,
  files: Files,
  check: GraphCheck.optional(),
  /** A `searched` graph's bits per parameter (PlanBits); present exactly when precision is `searched`. */
  plan: PlanBits.optional(),
  ...common,
});
const TensorComponent = z.strictObject({
  kind: z.literal('tensor'),
  dtype: z.literal('float32'),
  // Each dimension fits a file; the product is checked against the file's bytes below.
  shape: z.array(intIn(1, Math.floor(MAX_FILE_BYTES / 4))).max(8),
  files: Files,
  ...common,
});
const TokenizerComponent = z.strictObject({ kind: z.literal('tokenizer'), files: Files, ...common });
const Component = z.discriminatedUnion('kind', [OnnxComponent, TensorComponent, TokenizerComponent]);

/** A quality sample picture is small: a PNG of the calibration size (64–512 px a side), bytes. */
export const MAX_SAMPLE_PICTURE_BYTES = 4 * 1024 * 1024;
/** The longest calibration prompt a sample records, characters. */
export const MAX_SAMPLE_PROMPT_CHARS = 500;

/**
 * One picture of a quality sample: a PNG beside the manifest (`path` relative to the folder of the
 * manifest that lists it, the same rules as a component file's), its size and sha256. Not a
 * component file: the store never downloads it; the model manager reads it on demand.
 */
const SamplePicture = z
  .strictObject({ path: z.string(), bytes: z.number(), sha256: z.string() })
  .superRefine((file, ctx) => {
    const pathProblem = checkFilePath(file.path);
    if (pathProblem)
      fail(ctx, 'MANIFEST_UNSAFE_PATH', ['path'], `${pathProblem} (got ${JSON.stringify(file.path)})`);
    if (!Number.isSafeInteger(file.bytes) || file.bytes <= 0 || file.bytes > MAX_SAMPLE_PICTURE_BYTES) {
      fail(
        ctx,
        'MANIFEST_INVALID_SIZE',
        ['bytes'],
        `expected a whole number of bytes from 1 to ${MAX_SAMPLE_PICTURE_BYTES} (a small PNG), got ${described(file.bytes)}`,
      );
    }
    if (!SHA256.test(file.sha256))
      fail(ctx, 'MANIFEST_INVALID_HASH', ['sha256'], 'expected 64 lower-case hex digits');
  });

/**
 * The first calibration run of `--quality` as two pictures: the prompt and seed, the fp32 PyTorch
 * (diffusers) picture as `reference` and this set's picture (the CLI's) as `picture`, so a person
 * can see the difference the figure measures.
 */
const QualitySample = z
  .strictObject({
    prompt: z.string().min(1).max(MAX_SAMPLE_PROMPT_CHARS),
    seed: intIn(0, Number.MAX_SAFE_INTEGER),
    reference: SamplePicture,
    picture: SamplePicture,
  })
  .superRefine((sample, ctx) => {
    if (sample.reference.path.toLowerCase() === sample.picture.path.toLowerCase())
      fail(ctx, 'MANIFEST_INCONSISTENT', ['picture', 'path'], 'the two sample pictures are one file');
  });

/**
 * The set's end-to-end figure (the export tool's `--quality`, models/export/quality.py): calibration
 * prompts × seeds through the whole text-to-image pipeline on this set's graphs against the fp32
 * PyTorch pipeline of the same checkpoints at the same seeds. `psnr` is in dB over the 8-bit
 * pictures (capped at 100: identical pictures), `ssim` the mean per-channel SSIM (Wang et al. 2004),
 * `embeddingCosine` the worst cosine of the prior's image embedding; the rest say what was run.
 */
const Quality = z.strictObject({
  psnr: z.number().min(0).max(100),
  ssim: z.number().min(-1).max(1),
  embeddingCosine: Cosine,
  prompts: intIn(1, 1000),
  seeds: intIn(1, 1000),
  steps: intIn(1, 200),
  priorSteps: intIn(2, 100),
  size: intIn(8, 16_384),
  /** The first calibration run's two pictures (QualitySample); absent in sets exported before it. */
  sample: QualitySample.optional(),
});
export type ManifestQuality = z.infer<typeof Quality>;
export type ManifestQualitySample = z.infer<typeof QualitySample>;
export type ManifestSamplePicture = z.infer<typeof SamplePicture>;

/**
 * Another precision of the same model set, published next to it (models/CONTRACT.md, "Precision
 * variants"): a complete manifest of its own at `manifest`, a path relative to this one. The app
 * reads this list to choose a precision before it downloads anything.
 */
const Variant = z.strictObject({
  precision: z.enum(PRECISIONS),
  manifest: z.string(),
  requiredFeatures: RequiredFeatures,
  /** Bytes of the text-to-image components at this precision, for the UI before the variant is read. */
  textToImageBytes: intIn(0, 2 ** 48),
  /**
   * The worst `--check` cosine of the variant's text-to-image graphs against PyTorch float32 (their
   * components' `check`), so the app can pick the smallest variant that holds before reading it.
   */
  checkCosine: Cosine.optional(),
  /** The variant manifest's `quality`, so the app can choose by the picture before reading it. */
  quality: Quality.optional(),
});

const TrainTimesteps = intIn(MANIFEST_LIMITS.trainTimesteps.min, MANIFEST_LIMITS.trainTimesteps.max);
/** clip_sample_range: 1 for the decoder, 10 for the prior in Kandinsky 2.2. */
const ClipRange = positiveUpTo(1000);

/** A value for a message: JSON text, cut short. */
function shownValue(input: unknown): string {
  if (input === undefined) return 'nothing';
  const text = JSON.stringify(input) ?? typeof input;
  return text.length > 40 ? `${text.slice(0, 40)}…` : text;
}

const listed = (values: readonly unknown[]) => values.map((v) => JSON.stringify(v)).join(', ');

type JsonLiteral = string | number | boolean | null;

/**
 * A scheduler config field: `runs` are the values the engine's schedulers implement (as diffusers
 * computes them); `diffusersOnly` the other values diffusers 0.31 accepts, which this engine refuses
 * by name rather than running them some other way. Anything else is not a diffusers value at all.
 */
function schedulerChoice<const T extends readonly [JsonLiteral, ...JsonLiteral[]]>(
  runs: T,
  diffusersOnly: readonly JsonLiteral[] = [],
) {
  const error = (issue: { input?: unknown }) =>
    issue.input === undefined
      ? `missing; expected ${listed(runs)}`
      : diffusersOnly.some((v) => Object.is(v, issue.input))
        ? `${shownValue(issue.input)} is a diffusers setting this engine does not run (it runs ${listed(runs)}); export the set with a scheduler config that uses one of those`
        : `${shownValue(issue.input)} is not a value diffusers knows here; expected ${listed([...runs, ...diffusersOnly])} (this engine runs ${listed(runs)})`;
  return z.literal(runs, { error });
}

/** A finite number with |x| ≤ float32's largest, the scheduler's float32 math being what reads it. */
const Float32Finite = z
  .number({ error: (issue) => `expected a finite number, got ${described(issue.input)}` })
  .min(-MANIFEST_LIMITS.float32Max)
  .max(MANIFEST_LIMITS.float32Max);

/** The message for a config key that no class the config may build reads. */
function unknownSchedulerField(classes: string) {
  return (issue: { code?: string; keys?: readonly string[] }) =>
    issue.code === 'unrecognized_keys'
      ? `${issue.keys?.map((k) => JSON.stringify(k)).join(', ')} is not a field diffusers 0.31's ${classes} read; remove it (keys starting with "_" are ignored)`
      : undefined;
}

/** diffusers' defaults where a config leaves a field out (every one of these classes shares them). */
const DIFFUSERS_DEFAULTS = { num_train_timesteps: 1000, beta_start: 0.0001, beta_end: 0.02 } as const;

/**
 * diffusers' ConfigMixin keeps `_`-prefixed keys (`_class_name`, `_diffusers_version`) beside the
 * fields; they carry no setting, so they are dropped before the fields are checked.
 */
function withoutPrivateKeys(value: unknown): unknown {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return value;
  return Object.fromEntries(Object.entries(value).filter(([key]) => !key.startsWith('_')));
}

/** The scheduler classes a decoder config may name (the engine's denoising loops run these three). */
export const DECODER_SCHEDULER_CLASS_NAMES = [
  'DDPMScheduler',
  'DDIMScheduler',
  'DPMSolverMultistepScheduler',
] as const;
const DecoderClass = schedulerChoice(DECODER_SCHEDULER_CLASS_NAMES, ['UnCLIPScheduler']);

/**
 * The prior's UnCLIPScheduler: every field of its diffusers 0.31 `__init__`. Absent fields take
 * diffusers' defaults (the engine applies them as `from_config` does).
 */
const PriorScheduler = z.preprocess(
  withoutPrivateKeys,
  z
    .strictObject(
      {
        class_name: schedulerChoice(['UnCLIPScheduler']),
        num_train_timesteps: TrainTimesteps.optional(),
        beta_schedule: schedulerChoice(['squaredcos_cap_v2']).optional(),
        variance_type: schedulerChoice(['fixed_small_log'], ['learned_range']).optional(),
        prediction_type: schedulerChoice(['sample', 'epsilon']).optional(),
        clip_sample: z.boolean().optional(),
        clip_sample_range: ClipRange.nullable().optional(),
      },
      { error: unknownSchedulerField('UnCLIPScheduler') },
    )
    .superRefine((scheduler, ctx) => {
      if (scheduler.clip_sample !== false && scheduler.clip_sample_range === null) {
        fail(
          ctx,
          'MANIFEST_INCONSISTENT',
          ['clip_sample_range'],
          'clip_sample_range is null while clip_sample is on: diffusers cannot clip to no range; give a number or set clip_sample to false',
        );
      }
    }),
);

/**
 * The decoder's scheduler: every field DDPMScheduler, DDIMScheduler and DPMSolverMultistepScheduler
 * honour in diffusers 0.31. A person may run any of the three from this config (diffusers'
 * `from_config`: a field the chosen class has carries over, the rest take its defaults), so each
 * field holds a value all three run, whichever class the set names. Absent fields take the class's
 * diffusers defaults.
 */
const DecoderScheduler = z.preprocess(
  withoutPrivateKeys,
  z
    .strictObject(
      {
        class_name: DecoderClass,
        // The training noise schedule (all three classes).
        num_train_timesteps: TrainTimesteps.optional(),
        // A beta is a per-step noise variance: 1 or more leaves no signal (ᾱ ≤ 0).
        beta_start: positiveUpTo(1, true).optional(),
        beta_end: positiveUpTo(1, true).optional(),
        beta_schedule: schedulerChoice(
          ['linear', 'scaled_linear', 'squaredcos_cap_v2'],
          ['sigmoid'],
        ).optional(),
        trained_betas: z
          .array(positiveUpTo(1, true))
          .max(MANIFEST_LIMITS.trainTimesteps.max)
          .nullable()
          .optional(),
        rescale_betas_zero_snr: schedulerChoice([false], [true]).optional(),
        // What the UNet predicts and how x0 is estimated from it.
        prediction_type: schedulerChoice(['epsilon'], ['sample', 'v_prediction']).optional(),
        clip_sample: z.boolean().optional(),
        clip_sample_range: ClipRange.optional(),
        thresholding: schedulerChoice([false], [true]).optional(),
        // Only read with thresholding, which is refused: any bounded value is inert.
        dynamic_thresholding_ratio: positiveUpTo(1).optional(),
        sample_max_value: positiveUpTo(MANIFEST_LIMITS.float32Max).optional(),
        // The inference timesteps.
        timestep_spacing: schedulerChoice(['leading', 'linspace', 'trailing']).optional(),
        // diffusers' configs use 0 or 1; more pushes `leading` timesteps past the last trained one.
        steps_offset: intIn(0, 1).optional(),
        // DDPM's step noise (DPM-Solver reads it only to drop learned variance channels).
        variance_type: schedulerChoice(
          ['fixed_small', 'fixed_small_log', 'fixed_large', null],
          ['fixed_large_log', 'learned', 'learned_range'],
        ).optional(),
        // DDIM: ᾱ past the last step, 1 or ᾱ_0 (Kandinsky's decoder config: false).
        set_alpha_to_one: z.boolean().optional(),
        // DPM-Solver++.
        solver_order: schedulerChoice([1, 2], [3]).optional(),
        algorithm_type: schedulerChoice(
          ['dpmsolver++'],
          ['dpmsolver', 'sde-dpmsolver', 'sde-dpmsolver++'],
        ).optional(),
        solver_type: schedulerChoice(['midpoint', 'heun']).optional(),
        lower_order_final: z.boolean().optional(),
        euler_at_final: z.boolean().optional(),
        use_karras_sigmas: schedulerChoice([false, null], [true]).optional(),
        use_exponential_sigmas: schedulerChoice([false, null], [true]).optional(),
        use_beta_sigmas: schedulerChoice([false, null], [true]).optional(),
        use_lu_lambdas: schedulerChoice([false, null], [true]).optional(),
        final_sigmas_type: schedulerChoice(['zero', 'sigma_min']).optional(),
        /** null stands for diffusers' default, -∞ (no clipping), which JSON cannot write. */
        lambda_min_clipped: Float32Finite.nullable().optional(),
        // PNDM's, in configs saved from Stable Diffusion-style pipelines; none of these classes reads it.
        skip_prk_steps: z.boolean().optional(),
      },
      { error: unknownSchedulerField('DDPMScheduler, DDIMScheduler and DPMSolverMultistepScheduler') },
    )
    .superRefine((scheduler, ctx) => {
      const betaStart = scheduler.beta_start ?? DIFFUSERS_DEFAULTS.beta_start;
      const betaEnd = scheduler.beta_end ?? DIFFUSERS_DEFAULTS.beta_end;
      if (!scheduler.trained_betas && betaStart >= betaEnd) {
        fail(
          ctx,
          'MANIFEST_INCONSISTENT',
          ['beta_end'],
          `beta_end (${betaEnd}) must be above beta_start (${betaStart}): noise grows over the schedule`,
        );
      }
      const steps = scheduler.num_train_timesteps ?? DIFFUSERS_DEFAULTS.num_train_timesteps;
      if (scheduler.trained_betas && scheduler.trained_betas.length !== steps) {
        fail(
          ctx,
          'MANIFEST_INCONSISTENT',
          ['trained_betas'],
          `trained_betas has ${scheduler.trained_betas.length} values for ${steps} training timesteps; give one per timestep`,
        );
      }
    }),
);

// Kandinsky 2.2: 77 tokens, hidden size 1280, embedding 1280, 224 px, 4 channels, factor 8, 384 px.
const Dims = z.strictObject({
  textMaxLength: intIn(1, 1024),
  textHiddenSize: intIn(1, 16_384),
  imageEmbedDim: intIn(1, 16_384),
  imageEncoderSize: intIn(1, 2048),
  latentChannels: intIn(1, 64),
  movqScaleFactor: intIn(1, 64),
  /** The depth estimator's preprocessing size in pixels; present exactly when it is. */
  depthImageSize: intIn(1, 2048).optional(),
});

/**
 * The output sizes the set was exported for, pixels per side (the export tool's --size-range;
 * 256–2048 for the real checkpoints, 64–512 for the tiny fixture). Absent in sets exported before
 * it: the engine then goes by `source`.
 */
const SizeRange = z
  .strictObject({ minSide: intIn(64, 16_384), maxSide: intIn(64, 16_384) })
  .refine((range) => range.minSide <= range.maxSide, { message: 'minSide is larger than maxSide' });

const ManifestSchema = z
  .strictObject({
    manifestVersion: z.number(),
    contractVersion: z.string(),
    modelId: z
      .string()
      .regex(/^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/, 'letters, digits, `.`, `_`, `-` (at most 100)'),
    name: z.string().min(1).max(200),
    source: z.enum(['pretrained', 'random-weights', 'tiny-random']),
    license: z.string().min(1).max(100),
    dims: Dims,
    sizeRange: SizeRange.optional(),
    schedulers: z.strictObject({ prior: PriorScheduler, decoder: DecoderScheduler }),
    components: z.partialRecord(z.enum(COMPONENT_IDS), Component),
    variants: z.array(Variant).max(PRECISIONS.length).optional(),
    quality: Quality.optional(),
  })
  .superRefine((manifest, ctx) => {
    const precisions = new Set<string>();
    manifest.variants?.forEach((variant, i) => {
      const problem = checkFilePath(variant.manifest);
      if (problem) fail(ctx, 'MANIFEST_UNSAFE_PATH', ['variants', i, 'manifest'], problem);
      if (precisions.has(variant.precision))
        fail(
          ctx,
          'MANIFEST_INCONSISTENT',
          ['variants', i, 'precision'],
          `two variants are ${variant.precision}`,
        );
      precisions.add(variant.precision);
      if (variant.precision === 'fp16' && !variant.requiredFeatures.includes('shader-f16'))
        fail(ctx, 'MANIFEST_INCONSISTENT', ['variants', i, 'requiredFeatures'], 'fp16 requires "shader-f16"');
    });
    if (manifest.manifestVersion !== MANIFEST_VERSION) {
      fail(
        ctx,
        'MANIFEST_UNSUPPORTED_VERSION',
        ['manifestVersion'],
        `this build reads manifest version ${MANIFEST_VERSION}, got ${manifest.manifestVersion}`,
      );
    }
    if (manifest.contractVersion !== CONTRACT_VERSION) {
      fail(
        ctx,
        'MANIFEST_UNSUPPORTED_VERSION',
        ['contractVersion'],
        `this build implements contract "${CONTRACT_VERSION}", got ${JSON.stringify(manifest.contractVersion.slice(0, 20))}`,
      );
    }
    if ('depth_estimator' in manifest.components !== (manifest.dims.depthImageSize !== undefined)) {
      fail(
        ctx,
        'MANIFEST_INCONSISTENT',
        ['dims', 'depthImageSize'],
        'dims.depthImageSize is given exactly when the set has a depth_estimator',
      );
    }
    if (manifest.dims.depthImageSize !== undefined && manifest.dims.depthImageSize % DEPTH_PATCH_SIZE !== 0) {
      fail(
        ctx,
        'MANIFEST_INCONSISTENT',
        ['dims', 'depthImageSize'],
        `dims.depthImageSize must be a multiple of the depth model's patch size ${DEPTH_PATCH_SIZE}`,
      );
    }
    for (const id of REQUIRED_COMPONENTS) {
      if (!(id in manifest.components))
        fail(ctx, 'MANIFEST_MISSING_COMPONENT', ['components', id], `required component ${id} is missing`);
    }
    const seen = new Map<string, string>();
    for (const [id, component] of Object.entries(manifest.components) as [
      ComponentId,
      z.infer<typeof Component>,
    ][]) {
      const at = (...rest: PropertyKey[]) => ['components', id, ...rest];
      if (component.kind !== componentKind(id)) {
        fail(
          ctx,
          'MANIFEST_INCONSISTENT',
          at('kind'),
          `${id} must be of kind "${componentKind(id)}", got "${component.kind}"`,
        );
      }
      if (REQUIRED_COMPONENTS.includes(id) && component.optional) {
        fail(
          ctx,
          'MANIFEST_INCONSISTENT',
          at('optional'),
          `${id} is required by contract ${CONTRACT_VERSION} and cannot be optional`,
        );
      }
      component.files.forEach((file, i) => {
        const key = file.path.toLowerCase();
        const first = seen.get(key);
        if (first !== undefined) {
          fail(
            ctx,
            'MANIFEST_DUPLICATE_FILE',
            at('files', i, 'path'),
            `${file.path} is already listed at ${first}`,
          );
        } else {
          seen.set(key, `components.${id}.files[${i}]`);
        }
      });
      if (component.kind === 'onnx') {
        const roles = component.files.map((f) => f.role);
        if (roles[0] !== 'graph' || roles.slice(1).some((r) => r !== 'external-data')) {
          fail(
            ctx,
            'MANIFEST_INCONSISTENT',
            at('files'),
            'an onnx component lists its graph file first, then only external-data shards',
          );
        }
        if ((component.precision === 'searched') !== (component.plan !== undefined)) {
          fail(
            ctx,
            'MANIFEST_INCONSISTENT',
            at(component.plan === undefined ? 'precision' : 'plan'),
            component.plan === undefined
              ? 'a searched graph records its plan (bits per parameter)'
              : `a plan belongs to searched graphs, not ${component.precision}`,
          );
        }
        if (component.precision === 'fp16' && !component.requiredFeatures.includes('shader-f16')) {
          fail(
            ctx,
            'MANIFEST_INCONSISTENT',
            at('requiredFeatures'),
            'fp16 graphs require the "shader-f16" WebGPU feature',
          );
        }
      } else if (component.kind === 'tensor') {
        const file = component.files[0];
        const expected = component.shape.reduce((a, b) => a * b, 1) * 4;
        if (component.files.length !== 1 || file?.role !== 'tensor') {
          fail(
            ctx,
            'MANIFEST_INCONSISTENT',
            at('files'),
            'a tensor component has exactly one file of role "tensor"',
          );
        } else if (file.bytes !== expected) {
          fail(
            ctx,
            'MANIFEST_INCONSISTENT',
            at('files', 0, 'bytes'),
            `shape [${component.shape}] of float32 is ${expected} bytes, file has ${file.bytes}`,
          );
        }
        const contract = TENSOR_CONTRACTS[id as TensorComponentId];
        if (contract && component.shape.length !== contract.shape.length) {
          fail(ctx, 'MANIFEST_INCONSISTENT', at('shape'), `${id} has rank ${contract.shape.length}`);
        }
      } else {
        const names = component.files.map((f) => f.path.split('/').pop());
        for (const needed of TOKENIZER_FILES) {
          if (!names.includes(needed))
            fail(ctx, 'MANIFEST_INCONSISTENT', at('files'), `the tokenizer needs ${needed}`);
        }
      }
    }
  });

export type ManifestFile = z.infer<typeof FileEntry>;
export type ManifestFileChunks = z.infer<typeof FileChunks>;
export type FileRole = z.infer<typeof FileRole>;
export type OnnxComponent = z.infer<typeof OnnxComponent>;
export type TensorComponent = z.infer<typeof TensorComponent>;
export type TokenizerComponent = z.infer<typeof TokenizerComponent>;
export type ManifestComponent = z.infer<typeof Component>;
export type Precision = OnnxComponent['precision'];
export type PriorSchedulerConfig = z.output<typeof PriorScheduler>;
export type DecoderSchedulerConfig = z.output<typeof DecoderScheduler>;
export type DecoderSchedulerClassName = (typeof DECODER_SCHEDULER_CLASS_NAMES)[number];
export type ManifestDims = z.infer<typeof Dims>;
export type Manifest = z.infer<typeof ManifestSchema>;
export type ManifestVariant = z.infer<typeof Variant>;

function fieldName(path: readonly PropertyKey[]): string {
  let out = '';
  for (const key of path) {
    if (typeof key === 'number') out += `[${key}]`;
    else out += out ? `.${String(key)}` : String(key);
  }
  return out;
}

/** Keys that reach Object.prototype or a constructor when code copies or indexes by them. */
const UNSAFE_KEYS: ReadonlySet<string> = new Set(['__proto__', 'constructor', 'prototype']);

/**
 * Walks parsed JSON before the schema does: refuses prototype keys anywhere (JSON.parse makes
 * `"__proto__"` an own property; the schema's records drop it silently today, but any code that
 * copies or merges the raw JSON by assignment gives its target that object as prototype, and
 * `constructor` or `prototype` lookups reach functions) and nesting deeper than
 * MANIFEST_LIMITS.depth (later deep copies and structured clones recurse). Iterative, and it visits
 * at most as many values as text of MANIFEST_LIMITS.textBytes can hold, whatever it is given.
 */
function checkJsonShape(json: unknown): void {
  const pending: { value: unknown; path: PropertyKey[] }[] = [{ value: json, path: [] }];
  let budget = MANIFEST_LIMITS.textBytes / 2;
  for (let item = pending.pop(); item !== undefined; item = pending.pop()) {
    const { value, path } = item;
    if (typeof value !== 'object' || value === null) continue;
    if (path.length >= MANIFEST_LIMITS.depth) {
      throw new ManifestError(
        'MANIFEST_TOO_LARGE',
        fieldName(path),
        `nested deeper than ${MANIFEST_LIMITS.depth} levels; a manifest is never this deep`,
      );
    }
    const keys = Array.isArray(value) ? value.keys() : Object.keys(value);
    for (const key of keys) {
      if (typeof key === 'string' && UNSAFE_KEYS.has(key)) {
        throw new ManifestError(
          'MANIFEST_UNSAFE_KEY',
          fieldName([...path, key]),
          `"${key}" is not allowed as a key: it is not a manifest field and can alter objects built from it`,
        );
      }
      budget -= 1;
      if (budget < 0) {
        throw new ManifestError(
          'MANIFEST_TOO_LARGE',
          fieldName(path),
          'more values than any manifest holds; check that this is a model set manifest',
        );
      }
      pending.push({ value: (value as Record<PropertyKey, unknown>)[key], path: [...path, key] });
    }
  }
}

/**
 * The one reading of manifest.json for every path (the store's sources, the CLI): bytes are decoded
 * as fetch's `Response.text()` and `File.text()` decode them (UTF-8, one leading byte-order mark
 * dropped, bad sequences replaced), and text is taken as already decoded that way. Throws
 * ManifestError: MANIFEST_TOO_LARGE over MANIFEST_LIMITS.textBytes, MANIFEST_NOT_JSON, or
 * parseManifest's.
 */
export function manifestFromJson(input: string | Uint8Array): Manifest {
  const size = typeof input === 'string' ? input.length : input.byteLength;
  if (size > MANIFEST_LIMITS.textBytes) {
    throw new ManifestError(
      'MANIFEST_TOO_LARGE',
      '',
      `${size} bytes is over the ${MANIFEST_LIMITS.textBytes}-byte manifest limit; check that this is a model set manifest`,
    );
  }
  const text = typeof input === 'string' ? input : new TextDecoder('utf-8').decode(input);
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (error) {
    throw new ManifestError(
      'MANIFEST_NOT_JSON',
      '',
      `not valid JSON (${error instanceof Error ? error.message : String(error)}); the file is damaged or not a manifest`,
    );
  }
  return parseManifest(json);
}

/** Validates parsed JSON as a manifest. Throws ManifestError (stable `code`, `field` naming the
 * first bad field) on any problem; issues with a specific code win over generic schema errors. */
export function parseManifest(json: unknown): Manifest {
  checkJsonShape(json);
  const result = ManifestSchema.safeParse(json);
  if (result.success) return result.data;
  const issues = result.error.issues;
  const codeOf = (issue: (typeof issues)[number]): ManifestErrorCode | undefined => {
    const code = issue.code === 'custom' ? issue.params?.manifestCode : undefined;
    return (MANIFEST_ERROR_CODES as readonly unknown[]).includes(code)
      ? (code as ManifestErrorCode)
      : undefined;
  };
  // A contradiction between fields is only worth reporting when no field is wrong on its own: a
  // value out of range also breaks the checks that compare it with others.
  const generic = issues.find((i) => codeOf(i) === undefined);
  const specific = issues.find(
    (i) => codeOf(i) !== undefined && (generic === undefined || codeOf(i) !== 'MANIFEST_INCONSISTENT'),
  );
  const issue = specific ?? generic ?? issues[0];
  if (issue === undefined) throw new ManifestError('MANIFEST_INVALID', '', 'invalid manifest');
  const code = codeOf(issue) ?? 'MANIFEST_INVALID';
  const path = issue.code === 'unrecognized_keys' ? [...issue.path, ...issue.keys.slice(0, 1)] : issue.path;
  throw new ManifestError(code, fieldName(path), issue.message);
}

/** Every file of a set, in component order (what a store downloads and verifies). */
export function manifestFiles(manifest: Manifest): { component: ComponentId; file: ManifestFile }[] {
  return (Object.entries(manifest.components) as [ComponentId, ManifestComponent][]).flatMap(
    ([component, c]) => c.files.map((file) => ({ component, file })),
  );
}
