// parseManifest accepts the fixture manifest and rejects each kind of bad manifest with its own code
// and a message naming the bad field.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  checkFilePath,
  MAX_SAMPLE_PICTURE_BYTES,
  ManifestError,
  type ManifestErrorCode,
  parseManifest,
} from './manifest';

const FIXTURE = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'tiny', 'manifest.json');
const good: unknown = JSON.parse(readFileSync(FIXTURE, 'utf8'));

// biome-ignore lint/suspicious/noExplicitAny: tests edit raw JSON on purpose
type Json = any;

function rejected(edit: (m: Json) => void): ManifestError {
  const manifest = structuredClone(good) as Json;
  edit(manifest);
  try {
    parseManifest(manifest);
  } catch (error) {
    if (error instanceof ManifestError) return error;
    throw error;
  }
  throw new Error('manifest was accepted');
}

function expectRejected(edit: (m: Json) => void, code: ManifestErrorCode, field: string): void {
  const error = rejected(edit);
  expect(error.code).toBe(code);
  expect(error.field).toBe(field);
  expect(error.message).toContain(field);
}

describe('parseManifest: the optional depth estimator', () => {
  it('needs dims.depthImageSize exactly when a depth_estimator is listed', () => {
    expectRejected((m) => delete m.dims.depthImageSize, 'MANIFEST_INCONSISTENT', 'dims.depthImageSize');
    expectRejected(
      (m) => delete m.components.depth_estimator,
      'MANIFEST_INCONSISTENT',
      'dims.depthImageSize',
    );
    expectRejected((m) => (m.dims.depthImageSize = 60), 'MANIFEST_INCONSISTENT', 'dims.depthImageSize');
    const withoutDepth = structuredClone(good) as Json;
    delete withoutDepth.components.depth_estimator;
    delete withoutDepth.dims.depthImageSize;
    expect(parseManifest(withoutDepth).components.depth_estimator).toBeUndefined();
  });
});

describe('parseManifest', () => {
  it('accepts the fixture manifest and types it', () => {
    const manifest = parseManifest(good);
    expect(manifest.components.unet?.kind).toBe('onnx');
    expect(manifest.schedulers.decoder.steps_offset).toBe(1);
  });

  it('rejects a non-object', () => {
    for (const value of [null, 42, 'manifest', []]) {
      expect(() => parseManifest(value)).toThrow(ManifestError);
    }
    expect(() => parseManifest({})).toThrow(expect.objectContaining({ code: 'MANIFEST_INVALID' }));
  });

  it('rejects path traversal', () => {
    expectRejected(
      (m) => (m.components.unet.files[1].path = '../../etc/passwd'),
      'MANIFEST_UNSAFE_PATH',
      'components.unet.files[1].path',
    );
    expectRejected(
      (m) => (m.components.unet.files[0].path = 'a/./unet.onnx'),
      'MANIFEST_UNSAFE_PATH',
      'components.unet.files[0].path',
    );
  });

  it('rejects absolute paths and URLs', () => {
    expectRejected(
      (m) => (m.components.prior.files[0].path = '/prior.onnx'),
      'MANIFEST_UNSAFE_PATH',
      'components.prior.files[0].path',
    );
    expectRejected(
      (m) => (m.components.prior.files[0].path = 'https://evil.example/prior.onnx'),
      'MANIFEST_UNSAFE_PATH',
      'components.prior.files[0].path',
    );
    expectRejected(
      (m) => (m.components.prior.files[0].path = '//evil.example/p.onnx'),
      'MANIFEST_UNSAFE_PATH',
      'components.prior.files[0].path',
    );
    expectRejected(
      (m) => (m.components.prior.files[0].path = 'C:\\prior.onnx'),
      'MANIFEST_UNSAFE_PATH',
      'components.prior.files[0].path',
    );
  });

  it('rejects duplicate file names, also across components and letter case', () => {
    expectRejected(
      (m) => (m.components.unet_inpaint.files[0].path = m.components.unet.files[0].path),
      'MANIFEST_DUPLICATE_FILE',
      'components.unet_inpaint.files[0].path',
    );
    expectRejected(
      (m) => (m.components.unet.files[2].path = 'UNET.onnx'),
      'MANIFEST_DUPLICATE_FILE',
      'components.unet.files[2].path',
    );
  });

  it('rejects negative, fractional and oversized byte sizes', () => {
    expectRejected(
      (m) => (m.components.unet.files[1].bytes = -1),
      'MANIFEST_INVALID_SIZE',
      'components.unet.files[1].bytes',
    );
    expectRejected(
      (m) => (m.components.unet.files[1].bytes = 10.5),
      'MANIFEST_INVALID_SIZE',
      'components.unet.files[1].bytes',
    );
    expectRejected(
      (m) => (m.components.unet.files[1].bytes = 300 * 1024 * 1024),
      'MANIFEST_INVALID_SIZE',
      'components.unet.files[1].bytes',
    );
  });

  it('rejects a malformed sha256', () => {
    expectRejected(
      (m) => (m.components.movq_decoder.files[0].sha256 = 'ABC'),
      'MANIFEST_INVALID_HASH',
      'components.movq_decoder.files[0].sha256',
    );
  });

  it('accepts per-chunk sha256s (the fixture has them) and files without them', () => {
    const parsed = parseManifest(good);
    const shard = parsed.components.unet?.files[1];
    expect(shard?.chunks?.bytes).toBe(4 * 1024 * 1024);
    expect(shard?.chunks?.sha256).toHaveLength(1);
    const without = structuredClone(good) as Json;
    delete without.components.unet.files[1].chunks;
    expect(parseManifest(without).components.unet?.files[1]?.chunks).toBeUndefined();
    // Several chunks, the last one shorter.
    const several = structuredClone(good) as Json;
    const file = several.components.unet.files[1];
    const digest = file.sha256;
    file.chunks = { bytes: 64 * 1024, sha256: Array(Math.ceil(file.bytes / (64 * 1024))).fill(digest) };
    expect(parseManifest(several).components.unet?.files[1]?.chunks?.sha256.length).toBeGreaterThan(1);
  });

  it('rejects per-chunk sha256s of a bad chunk size, a wrong count or a malformed digest', () => {
    const at = 'components.unet.files[1].chunks';
    for (const bytes of [0, -65536, 1000, 65536 + 1, 128 * 1024 * 1024, 1.5])
      expectRejected(
        (m) => (m.components.unet.files[1].chunks.bytes = bytes),
        'MANIFEST_INVALID_SIZE',
        `${at}.bytes`,
      );
    expectRejected(
      (m) => {
        const file = m.components.unet.files[1];
        file.chunks = { bytes: 64 * 1024, sha256: [file.sha256] };
      },
      'MANIFEST_INCONSISTENT',
      `${at}.sha256`,
    );
    expectRejected(
      (m) => m.components.unet.files[1].chunks.sha256.push('0'.repeat(64)),
      'MANIFEST_INCONSISTENT',
      `${at}.sha256`,
    );
    expectRejected(
      (m) => (m.components.unet.files[1].chunks.sha256[0] = 'XYZ'),
      'MANIFEST_INVALID_HASH',
      `${at}.sha256[0]`,
    );
    expectRejected((m) => (m.components.unet.files[1].chunks.extra = 1), 'MANIFEST_INVALID', `${at}.extra`);
    expectRejected(
      (m) => (m.components.unet.files[1].chunks = { bytes: 65536 }),
      'MANIFEST_INVALID',
      `${at}.sha256`,
    );
  });

  it('rejects an unknown contract or manifest version', () => {
    expectRejected((m) => (m.contractVersion = '2'), 'MANIFEST_UNSUPPORTED_VERSION', 'contractVersion');
    expectRejected((m) => (m.manifestVersion = 7), 'MANIFEST_UNSUPPORTED_VERSION', 'manifestVersion');
  });

  it('rejects a set without a required component', () => {
    expectRejected((m) => delete m.components.prior, 'MANIFEST_MISSING_COMPONENT', 'components.prior');
    expectRejected(
      (m) => delete m.components.negative_image_embeds,
      'MANIFEST_MISSING_COMPONENT',
      'components.negative_image_embeds',
    );
  });

  it('rejects contradictions: fp16 without shader-f16, wrong kind, file roles, tensor size', () => {
    expectRejected(
      (m) => (m.components.unet.precision = 'fp16'),
      'MANIFEST_INCONSISTENT',
      'components.unet.requiredFeatures',
    );
    expectRejected(
      (m) => (m.components.prior_clip_std = { ...m.components.unet, optional: false }),
      'MANIFEST_INCONSISTENT',
      'components.prior_clip_std.kind',
    );
    expectRejected(
      (m) => m.components.unet.files.reverse(),
      'MANIFEST_INCONSISTENT',
      'components.unet.files',
    );
    expectRejected(
      (m) => (m.components.prior_clip_mean.shape = [1, 33]),
      'MANIFEST_INCONSISTENT',
      'components.prior_clip_mean.files[0].bytes',
    );
    expectRejected(
      (m) => (m.components.unet.optional = true),
      'MANIFEST_INCONSISTENT',
      'components.unet.optional',
    );
  });

  it('a searched graph records its plan (parameters per bits), and only a searched one', () => {
    const plan = { '4': 1000, '6': 2000, '8': 300, '16': 40, '32': 5 };
    const searched = structuredClone(good) as Json;
    searched.components.unet.precision = 'searched';
    searched.components.unet.plan = plan;
    const parsed = parseManifest(searched);
    expect(parsed.components.unet?.kind === 'onnx' && parsed.components.unet.plan).toEqual(plan);
    expectRejected(
      (m) => (m.components.unet.precision = 'searched'),
      'MANIFEST_INCONSISTENT',
      'components.unet.precision',
    );
    expectRejected((m) => (m.components.unet.plan = plan), 'MANIFEST_INCONSISTENT', 'components.unet.plan');
    const withPlan = (edit: Record<string, unknown>) => (m: Json) => {
      m.components.unet.precision = 'searched';
      m.components.unet.plan = { ...plan, ...edit };
    };
    expectRejected(withPlan({ '4': -1 }), 'MANIFEST_INVALID', 'components.unet.plan.4');
    expectRejected(withPlan({ '6': 1.5 }), 'MANIFEST_INVALID', 'components.unet.plan.6');
    expectRejected(withPlan({ '8': 2 ** 41 }), 'MANIFEST_INVALID', 'components.unet.plan.8');
    expectRejected(withPlan({ '2': 7 }), 'MANIFEST_INVALID', 'components.unet.plan.2');
    expectRejected(
      (m) => {
        m.components.unet.precision = 'searched';
        m.components.unet.plan = { '4': 1 };
      },
      'MANIFEST_INVALID',
      'components.unet.plan.6',
    );
  });

  it('rejects schema errors with the field named', () => {
    expectRejected(
      (m) => (m.components.unet.precision = 'fp8'),
      'MANIFEST_INVALID',
      'components.unet.precision',
    );
    expectRejected(
      (m) => (m.components.pose_estimator = m.components.unet),
      'MANIFEST_INVALID',
      'components.pose_estimator',
    );
    expectRejected(
      (m) => (m.schedulers.decoder.timestep_spacing = 'sideways'),
      'MANIFEST_INVALID',
      'schedulers.decoder.timestep_spacing',
    );
    expectRejected((m) => (m.extra = true), 'MANIFEST_INVALID', 'extra');
  });
});

describe('parseManifest: quality and its sample pictures', () => {
  const digest = 'ab'.repeat(32);
  const quality = () => ({
    psnr: 31.5,
    ssim: 0.91,
    embeddingCosine: 0.9999,
    prompts: 3,
    seeds: 2,
    steps: 10,
    priorSteps: 10,
    size: 64,
    sample: {
      prompt: 'a red cat, 4k photo',
      seed: 0,
      reference: { path: 'quality/reference.png', bytes: 5000, sha256: digest },
      picture: { path: 'quality/picture.png', bytes: 4900, sha256: digest },
    },
  });
  const withQuality = (edit: (q: Json) => void) => (m: Json) => {
    m.quality = quality();
    edit(m.quality);
  };

  it('accepts a quality with a sample, on the set and on a variant entry, and one without', () => {
    const manifest = structuredClone(good) as Json;
    manifest.quality = quality();
    manifest.variants = [
      {
        precision: 'int8',
        manifest: 'manifest.int8.json',
        requiredFeatures: [],
        textToImageBytes: 1000,
        quality: { ...quality(), sample: { ...quality().sample, seed: 42 } },
      },
      { precision: 'int4', manifest: 'manifest.int4.json', requiredFeatures: [], textToImageBytes: 900 },
    ];
    const parsed = parseManifest(manifest);
    expect(parsed.quality?.sample?.picture).toEqual({
      path: 'quality/picture.png',
      bytes: 4900,
      sha256: digest,
    });
    expect(parsed.variants?.[0]?.quality?.sample?.seed).toBe(42);
    const { sample: _, ...bare } = quality();
    expect(parseManifest({ ...(good as object), quality: bare }).quality?.sample).toBeUndefined();
  });

  it('refuses a sample picture with an unsafe path, a bad size or hash, or an unknown key', () => {
    expectRejected(
      withQuality((q) => (q.sample.picture.path = '../picture.png')),
      'MANIFEST_UNSAFE_PATH',
      'quality.sample.picture.path',
    );
    expectRejected(
      withQuality((q) => (q.sample.reference.path = 'https://elsewhere.example/r.png')),
      'MANIFEST_UNSAFE_PATH',
      'quality.sample.reference.path',
    );
    expectRejected(
      withQuality((q) => (q.sample.picture.bytes = MAX_SAMPLE_PICTURE_BYTES + 1)),
      'MANIFEST_INVALID_SIZE',
      'quality.sample.picture.bytes',
    );
    for (const bytes of [0, -1, 1.5, '10']) {
      expectRejected(
        withQuality((q) => (q.sample.reference.bytes = bytes)),
        bytes === '10' ? 'MANIFEST_INVALID' : 'MANIFEST_INVALID_SIZE',
        'quality.sample.reference.bytes',
      );
    }
    expectRejected(
      withQuality((q) => (q.sample.picture.sha256 = 'AB'.repeat(32))),
      'MANIFEST_INVALID_HASH',
      'quality.sample.picture.sha256',
    );
    expectRejected(
      withQuality((q) => (q.sample.picture.role = 'graph')),
      'MANIFEST_INVALID',
      'quality.sample.picture.role',
    );
    expectRejected(
      withQuality((q) => (q.sample.negativePrompt = 'blurry')),
      'MANIFEST_INVALID',
      'quality.sample.negativePrompt',
    );
    expectRejected(
      withQuality((q) => (q.sample.picture.path = 'Quality/Reference.png')),
      'MANIFEST_INCONSISTENT',
      'quality.sample.picture.path',
    );
  });

  it('refuses a sample without a prompt or picture, an overlong prompt or a bad seed', () => {
    expectRejected(
      withQuality((q) => delete q.sample.reference),
      'MANIFEST_INVALID',
      'quality.sample.reference',
    );
    expectRejected(
      withQuality((q) => (q.sample.prompt = '')),
      'MANIFEST_INVALID',
      'quality.sample.prompt',
    );
    expectRejected(
      withQuality((q) => (q.sample.prompt = 'x'.repeat(501))),
      'MANIFEST_INVALID',
      'quality.sample.prompt',
    );
    expectRejected(
      withQuality((q) => (q.sample.seed = -1)),
      'MANIFEST_INVALID',
      'quality.sample.seed',
    );
    expectRejected(
      withQuality((q) => (q.sample.seed = 2 ** 60)),
      'MANIFEST_INVALID',
      'quality.sample.seed',
    );
  });

  it('checks a variant entry’s sample alike', () => {
    expectRejected(
      (m) => {
        const sample = quality().sample;
        m.variants = [
          {
            precision: 'int8',
            manifest: 'manifest.int8.json',
            requiredFeatures: [],
            textToImageBytes: 1000,
            quality: {
              ...quality(),
              sample: { ...sample, picture: { ...sample.picture, path: '/etc/x.png' } },
            },
          },
        ];
      },
      'MANIFEST_UNSAFE_PATH',
      'variants[0].quality.sample.picture.path',
    );
  });
});

describe('checkFilePath', () => {
  it('accepts plain relative paths', () => {
    for (const path of ['unet.onnx', 'unet.onnx.data-00', 'tokenizer/tokenizer.json', '_x/y-z.bin']) {
      expect(checkFilePath(path), path).toBeNull();
    }
  });
  it('refuses the rest', () => {
    for (const path of [
      '',
      '..',
      'a/../b',
      './a',
      '.hidden',
      'a//b',
      'a\\b',
      'file:///x',
      'data:x',
      'a b',
      'é.onnx',
    ]) {
      expect(checkFilePath(path), path).not.toBeNull();
    }
  });
});
