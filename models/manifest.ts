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
const FileChunks = z.strictObject({ bytes: z.number(), sha256: z.array(z.string()) });

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
const Files = z.array(FileEntry).min(1);
const common = { optional: z.boolean(), enables: z.array(Feature) };

/**
 * Weight precisions (models/README.md, Precisions): int8, int4 and int4c6 (int4 with 6-bit
 * convolutions) are weight-only quantisations that compute in float32.
 */
const PRECISIONS = ['fp32', 'fp16', 'int8', 'int4', 'int4c6'] as const;

/** A cosine similarity as the export tool reports it: in [-1, 1]. */
const Cosine = z.number().min(-1).max(1);

/**
 * What the export tool's `--check` measured for a graph (models/README.md): this graph's outputs
 * against its PyTorch float32 module on the check inputs, the worst output and input.
 */
const GraphCheck = z.strictObject({
  cosine: Cosine,
  maxAbsError: z.number().nonnegative(),
  maxAbsReference: z.number().nonnegative(),
});

const OnnxComponent = z.strictObject({
  kind: z.literal('onnx'),
  precision: z.enum(PRECISIONS),
  requiredFeatures: z.array(z.enum(['shader-f16'])),
  files: Files,
  check: GraphCheck.optional(),
  ...common,
});
const TensorComponent = z.strictObject({
  kind: z.literal('tensor'),
  dtype: z.literal('float32'),
  shape: z.array(z.number().int().positive()),
  files: Files,
  ...common,
});
const TokenizerComponent = z.strictObject({ kind: z.literal('tokenizer'), files: Files, ...common });
const Component = z.discriminatedUnion('kind', [OnnxComponent, TensorComponent, TokenizerComponent]);

const positiveInt = z.number().int().positive();

/**
 * Another precision of the same model set, published next to it (models/CONTRACT.md, "Precision
 * variants"): a complete manifest of its own at `manifest`, a path relative to this one. The app
 * reads this list to choose a precision before it downloads anything.
 */
const Variant = z.strictObject({
  precision: z.enum(PRECISIONS),
  manifest: z.string(),
  requiredFeatures: z.array(z.enum(['shader-f16'])),
  /** Bytes of the text-to-image components at this precision, for the UI before the variant is read. */
  textToImageBytes: z.number().int().nonnegative(),
  /**
   * The worst `--check` cosine of the variant's text-to-image graphs against PyTorch float32 (their
   * components' `check`), so the app can pick the smallest variant that holds before reading it.
   */
  checkCosine: Cosine.optional(),
});

const PriorScheduler = z.strictObject({
  class_name: z.literal('UnCLIPScheduler'),
  num_train_timesteps: positiveInt,
  beta_schedule: z.literal('squaredcos_cap_v2'),
  variance_type: z.literal('fixed_small_log'),
  prediction_type: z.enum(['sample', 'epsilon']),
  clip_sample: z.boolean(),
  clip_sample_range: z.number().positive(),
});
const DecoderScheduler = z.strictObject({
  class_name: z.literal('DDPMScheduler'),
  num_train_timesteps: positiveInt,
  beta_schedule: z.enum(['linear', 'scaled_linear', 'squaredcos_cap_v2']),
  beta_start: z.number().positive(),
  beta_end: z.number().positive(),
  variance_type: z.enum(['fixed_small', 'fixed_small_log', 'fixed_large', 'fixed_large_log']),
  prediction_type: z.enum(['epsilon', 'sample', 'v_prediction']),
  clip_sample: z.boolean(),
  clip_sample_range: z.number().positive(),
  thresholding: z.literal(false),
  timestep_spacing: z.enum(['leading', 'linspace', 'trailing']),
  steps_offset: z.number().int().nonnegative(),
});

const Dims = z.strictObject({
  textMaxLength: positiveInt,
  textHiddenSize: positiveInt,
  imageEmbedDim: positiveInt,
  imageEncoderSize: positiveInt,
  latentChannels: positiveInt,
  movqScaleFactor: positiveInt,
  /** The depth estimator's preprocessing size in pixels; present exactly when it is. */
  depthImageSize: positiveInt.optional(),
});

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
    schedulers: z.strictObject({ prior: PriorScheduler, decoder: DecoderScheduler }),
    components: z.partialRecord(z.enum(COMPONENT_IDS), Component),
    variants: z.array(Variant).optional(),
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
        `this build implements contract "${CONTRACT_VERSION}", got "${manifest.contractVersion}"`,
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
export type PriorSchedulerConfig = z.infer<typeof PriorScheduler>;
export type DecoderSchedulerConfig = z.infer<typeof DecoderScheduler>;
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

/** Validates parsed JSON as a manifest. Throws ManifestError (stable `code`, `field` naming the
 * first bad field) on any problem; issues with a specific code win over generic schema errors. */
export function parseManifest(json: unknown): Manifest {
  const result = ManifestSchema.safeParse(json);
  if (result.success) return result.data;
  const issues = result.error.issues;
  const codeOf = (issue: (typeof issues)[number]): ManifestErrorCode | undefined => {
    const code = issue.code === 'custom' ? issue.params?.manifestCode : undefined;
    return (MANIFEST_ERROR_CODES as readonly unknown[]).includes(code)
      ? (code as ManifestErrorCode)
      : undefined;
  };
  const specific = issues.find((i) => codeOf(i) !== undefined);
  const issue = specific ?? issues[0];
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
