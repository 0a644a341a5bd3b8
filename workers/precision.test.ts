/**
 * Precision presets: the choice from the adapter and the user's override, the manifest's
 * `variants` field, and the generator refusing an fp16 set on an adapter without shader-f16.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { ManifestError, parseManifest } from '../models/manifest';
import { serviceOn as serviceWith } from '../test-support/generator-service.node';
import { newProfile } from '../test-support/store.node';
import { ortCpu, TINY_DIR } from '../test-support/tiny-fixture.node';
import { toWireError } from './errors';
import {
  type AdapterFeatures,
  choosePrecision,
  DEFAULT_TARGET_PSNR,
  holdsCheck,
  holdsFigures,
  manifestPrecision,
  NEARLY_IDENTICAL_PSNR,
  type PrecisionOption,
  precisionOptions,
  qualityInWords,
  textToImageBytes,
  textToImageCheckCosine,
} from './precision';

/** Text-to-image bytes of the real set per precision (models/README.md), for the options below. */
const REAL_BYTES = {
  fp32: 12.06e9,
  fp16: 6.03e9,
  int8: 3.02e9,
  int4: 1.73e9,
  int4c6: 1.97e9,
  searched: 1.85e9, // a plan between int4 and int4c6 (an example, not a measurement)
};
const option = (
  precision: PrecisionOption['precision'],
  manifest: string | null = null,
  checkCosine: number | null = null,
  psnr: number | null = null,
): PrecisionOption => ({
  precision,
  requiredFeatures: precision === 'fp16' ? ['shader-f16'] : [],
  manifest,
  textToImageBytes: REAL_BYTES[precision],
  checkCosine,
  quality:
    psnr === null
      ? null
      : {
          psnr,
          ssim: 0.9,
          embeddingCosine: 0.9999,
          prompts: 3,
          seeds: 2,
          steps: 25,
          priorSteps: 25,
          size: 512,
        },
});
const all = [
  option('fp32'),
  option('fp16', 'manifest.fp16.json'),
  option('int8', 'manifest.int8.json'),
  option('int4', 'manifest.int4.json'),
  option('int4c6', 'manifest.int4c6.json'),
];
const withF16 = { shaderF16: true };
const withoutF16 = { shaderF16: false };
const codeOf = (run: () => unknown) => {
  try {
    run();
    return null;
  } catch (error) {
    return toWireError(error).code;
  }
};

describe('choosePrecision', () => {
  it('auto: fp16 with shader-f16, int8 without it, fp32 when that is all there is', () => {
    expect(choosePrecision(all, withF16, 'auto').option.precision).toBe('fp16');
    expect(choosePrecision(all, withoutF16, 'auto').option.precision).toBe('int8');
    expect(choosePrecision(all, null, 'auto').option.precision).toBe('int8');
    expect(
      choosePrecision([option('fp32'), option('fp16', 'f.json')], withoutF16, 'auto').option.precision,
    ).toBe('fp32');
    expect(
      choosePrecision([option('fp32'), option('fp16', 'f.json')], withF16, 'auto').option.precision,
    ).toBe('fp16');
  });

  it('auto never picks int4 while a safer precision runs, but uses it when it is the only one', () => {
    expect(
      choosePrecision([option('int4'), option('fp32', 'a.json')], withF16, 'auto').option.precision,
    ).toBe('fp32');
    expect(choosePrecision([option('int4')], withoutF16, 'auto').option.precision).toBe('int4');
  });

  it('auto does not pick int4c6 while a precision with a passing --check runs', () => {
    // int4c6's UNets measure cosine 0.994–0.997 on the tiny random set, under the 0.999 bar.
    expect(
      choosePrecision([option('int4c6'), option('fp32', 'a.json')], withoutF16, 'auto').option.precision,
    ).toBe('fp32');
    expect(choosePrecision([option('int4c6')], withoutF16, 'auto').option.precision).toBe('int4c6');
  });

  describe('with --check figures recorded', () => {
    const checked = (int4c6: number) => [
      option('fp32', null, 1),
      option('fp16', 'manifest.fp16.json', 0.999998),
      option('int8', 'manifest.int8.json', 0.9999),
      option('int4', 'manifest.int4.json', 0.982),
      option('int4c6', 'manifest.int4c6.json', int4c6),
    ];

    it('auto picks the smallest download whose figures hold, with or without shader-f16', () => {
      for (const adapter of [withF16, withoutF16, null]) {
        const decision = choosePrecision(checked(0.9993), adapter, 'auto');
        expect(decision.option.precision).toBe('int4c6');
        expect(decision.reason).toBe(
          'int4c6: the smallest download whose --check holds (cosine 0.9993 ≥ 0.999)',
        );
      }
    });

    it('a smaller variant under the bar is passed over for the next smallest that holds', () => {
      // int4c6 as measured on the tiny random set (unet 0.9968); int4 at 0.982.
      expect(choosePrecision(checked(0.9968), withF16, 'auto').option.precision).toBe('int8');
      const noInt8 = checked(0.9968).filter((o) => o.precision !== 'int8');
      expect(choosePrecision(noInt8, withF16, 'auto').option.precision).toBe('fp16');
      // fp16 holds but needs shader-f16: without it, fp32.
      expect(choosePrecision(noInt8, withoutF16, 'auto').option.precision).toBe('fp32');
    });

    it('options without figures keep the fixed order; an override still wins', () => {
      const mixed = [option('fp32'), option('fp16', 'f.json'), option('int4c6', 'c.json')];
      expect(choosePrecision(mixed, withF16, 'auto').option.precision).toBe('fp16');
      expect(choosePrecision(checked(0.9993), withF16, 'fp16').option.precision).toBe('fp16');
    });
  });

  it('says why, naming the missing feature when fp16 was skipped', () => {
    expect(choosePrecision(all, withoutF16, 'auto').reason).toMatch(/no shader-f16/);
    expect(choosePrecision(all, withF16, 'auto').reason).toMatch(/has shader-f16/);
  });

  it('an override picks exactly that precision, including int4 and int4c6', () => {
    expect(choosePrecision(all, withoutF16, 'int4').option).toEqual(all[3]);
    expect(choosePrecision(all, withoutF16, 'int4c6').option).toEqual(all[4]);
    expect(choosePrecision(all, withF16, 'fp32').option).toEqual(all[0]);
  });

  it('refuses fp16 without shader-f16, and a precision the set does not publish', () => {
    expect(codeOf(() => choosePrecision(all, withoutF16, 'fp16'))).toBe('WEBGPU_FEATURE_MISSING');
    expect(codeOf(() => choosePrecision(all, null, 'fp16'))).toBe('WEBGPU_FEATURE_MISSING');
    expect(codeOf(() => choosePrecision([option('fp16')], withoutF16, 'auto'))).toBe(
      'WEBGPU_FEATURE_MISSING',
    );
    expect(codeOf(() => choosePrecision([option('fp32')], withF16, 'int8'))).toBe('INVALID_INPUT');
  });

  describe('with --quality figures recorded (the end-to-end PSNR decides)', () => {
    // --check cosines that would pass int4c6 (0.9993), PSNRs that don't: the picture decides.
    const measured = (int4c6Psnr: number) => [
      option('fp32', null, 1, 100),
      option('fp16', 'manifest.fp16.json', 0.999998, 45),
      option('int8', 'manifest.int8.json', 0.9999, 36),
      option('int4', 'manifest.int4.json', 0.982, 22),
      option('int4c6', 'manifest.int4c6.json', 0.9993, int4c6Psnr),
    ];

    it('picks the smallest download whose PSNR reaches the target, saying so', () => {
      const decision = choosePrecision(measured(DEFAULT_TARGET_PSNR), withoutF16, 'auto');
      expect(decision.option.precision).toBe('int4c6');
      expect(decision.reason).toBe(
        `int4c6: the smallest download whose pictures hold (PSNR ${DEFAULT_TARGET_PSNR.toFixed(1)} dB ≥ ${DEFAULT_TARGET_PSNR} dB against full precision)`,
      );
    });

    it('passes over a variant whose --check holds but whose pictures do not', () => {
      const decision = choosePrecision(measured(DEFAULT_TARGET_PSNR - 0.1), withF16, 'auto');
      expect(decision.option.precision).toBe('int8');
      expect(decision.reason).toMatch(/^int8: the smallest download whose pictures hold \(PSNR 36\.0 dB/);
      expect(holdsFigures(measured(29)[4] as PrecisionOption)).toBe(false);
      expect(holdsCheck(measured(29)[4] as PrecisionOption)).toBe(true);
    });

    it('says so when fp16 runs here but its figures do not hold', () => {
      const low = [option('fp32', null, 1, 80), option('fp16', 'f.json', 0.999998, 29)];
      expect(choosePrecision(low, withF16, 'auto').reason).toBe(
        "fp32: the fp16 models' recorded figures don't hold",
      );
      expect(choosePrecision(low, withoutF16, 'auto').reason).toBe(
        'fp32: this GPU has no shader-f16 for the fp16 models',
      );
    });

    it('a PSNR under the target rules an option out even with no --check, as the tiny sets measure', () => {
      // The tiny random sets' figures (models/fixtures/tiny-int4*/manifest.json): 12–15 dB.
      const tiny = [
        option('fp32', null, 1),
        option('int4c6', 'c.json', null, 14.65),
        option('int4', 'i.json', null, 12.24),
      ];
      expect(choosePrecision(tiny, withF16, 'auto').option.precision).toBe('fp32');
      // Without a figure int4c6 is not a default; with one above the target it is.
      expect(
        choosePrecision([option('fp32'), option('int4c6', 'c.json')], withF16, 'auto').option.precision,
      ).toBe('fp32');
      const good = [option('fp32'), option('int4c6', 'c.json', null, 41)];
      expect(choosePrecision(good, withF16, 'auto').option.precision).toBe('int4c6');
    });

    it('opens a searched set only by its own picture figure, when it is the smallest that holds', () => {
      const searched = (psnr: number | null, cosine: number | null = null) => [
        ...measured(29), // int4c6 under the target: int8 would be the default
        option('searched', 'manifest.searched.json', cosine, psnr),
      ];
      const decision = choosePrecision(searched(DEFAULT_TARGET_PSNR + 0.5), withF16, 'auto');
      expect(decision.option.precision).toBe('searched');
      expect(decision.reason).toMatch(/^searched: the smallest download whose pictures hold \(PSNR 30\.5 dB/);
      // Under the target, or with only a --check cosine (however good), or no figure: not a default.
      for (const figures of [searched(DEFAULT_TARGET_PSNR - 0.1), searched(null, 0.99999), searched(null)]) {
        expect(choosePrecision(figures, withF16, 'auto').option.precision).toBe('int8');
      }
      expect(holdsFigures(option('searched', 's.json', 0.99999))).toBe(false);
      // Not even the fallback while another option runs; asked for by name it opens.
      const alone = [option('fp16', 'f.json'), option('searched', 's.json')];
      expect(choosePrecision(alone, withoutF16, 'auto').option.precision).toBe('searched');
      expect(
        choosePrecision([option('searched', 's.json'), option('fp32')], withoutF16, 'auto').option.precision,
      ).toBe('fp32');
      expect(choosePrecision(searched(null), withF16, 'searched').option.precision).toBe('searched');
    });

    it('says a figure in words', () => {
      expect(qualityInWords({ psnr: 100 })).toBe('nearly identical to full precision');
      expect(qualityInWords({ psnr: NEARLY_IDENTICAL_PSNR })).toBe('nearly identical to full precision');
      expect(qualityInWords({ psnr: NEARLY_IDENTICAL_PSNR - 0.01 })).toBe('small differences');
      expect(qualityInWords({ psnr: DEFAULT_TARGET_PSNR })).toBe('small differences');
      expect(qualityInWords({ psnr: DEFAULT_TARGET_PSNR - 0.01 })).toBe('visible differences');
      expect(qualityInWords({ psnr: 0 })).toBe('visible differences');
    });
  });
});

const tinyJson = () =>
  JSON.parse(readFileSync(`${TINY_DIR}manifest.json`, 'utf8')) as Record<string, unknown> & {
    components: Record<string, Record<string, unknown>>;
  };

/** The tiny set's manifest with every graph labelled fp16 (the bytes stay fp32: nothing is loaded). */
function fp16Json() {
  const json = tinyJson();
  for (const component of Object.values(json.components)) {
    if (component.kind === 'onnx') {
      component.precision = 'fp16';
      component.requiredFeatures = ['shader-f16'];
    }
  }
  return { ...json, modelId: 'tiny-fp16' };
}

describe('manifest variants', () => {
  const variants = [
    {
      precision: 'fp16',
      manifest: 'manifest.fp16.json',
      requiredFeatures: ['shader-f16'],
      textToImageBytes: 6,
    },
    { precision: 'int8', manifest: 'manifest.int8.json', requiredFeatures: [], textToImageBytes: 3 },
  ];

  it('lists the opened manifest and its variants as options', () => {
    const manifest = parseManifest({ ...tinyJson(), variants });
    expect(manifestPrecision(manifest)).toBe('fp32');
    expect(precisionOptions(manifest).map((o) => [o.precision, o.manifest])).toEqual([
      ['fp32', null],
      ['fp16', 'manifest.fp16.json'],
      ['int8', 'manifest.int8.json'],
    ]);
  });

  it('carries each option’s bytes and --check cosine: the variant’s entry, the opened manifest’s components', () => {
    const json = tinyJson();
    const opened = parseManifest({ ...json, variants: [{ ...variants[1], checkCosine: 0.9999 }] });
    const own = precisionOptions(opened)[0];
    expect(own?.textToImageBytes).toBe(textToImageBytes(opened));
    expect(textToImageBytes(opened)).toBeGreaterThan(0);
    // The fixture's export recorded --check on every graph (fp32: cosine 1 to 11 digits).
    expect(own?.checkCosine).toBe(textToImageCheckCosine(opened));
    expect(own?.checkCosine).toBeGreaterThan(0.9999999);
    expect(precisionOptions(opened)[1]?.checkCosine).toBe(0.9999);
    // With a check on every text-to-image graph, the worst of them; image_encoder is not one.
    const check = (cosine: number) => ({ cosine, maxAbsError: 0.01, maxAbsReference: 2 });
    for (const [id, component] of Object.entries(json.components)) {
      if (component.kind === 'onnx') component.check = check(id === 'unet' ? 0.9991 : 0.99995);
    }
    json.components.image_encoder = { ...json.components.image_encoder, check: check(0.5) };
    const checked = parseManifest(json);
    expect(textToImageCheckCosine(checked)).toBe(0.9991);
    delete json.components.prior?.check;
    expect(textToImageCheckCosine(parseManifest(json))).toBeNull();
  });

  it('rejects a cosine outside [-1, 1]', () => {
    expect(() => parseManifest({ ...tinyJson(), variants: [{ ...variants[1], checkCosine: 1.5 }] })).toThrow(
      ManifestError,
    );
  });

  it('rejects unsafe paths, duplicate precisions and fp16 without its feature', () => {
    const reject = (bad: unknown[]) => {
      try {
        parseManifest({ ...tinyJson(), variants: bad });
        return null;
      } catch (error) {
        return error instanceof ManifestError ? [error.code, error.field] : String(error);
      }
    };
    expect(reject([{ ...variants[1], manifest: '../x.json' }])).toEqual([
      'MANIFEST_UNSAFE_PATH',
      'variants[0].manifest',
    ]);
    expect(reject([variants[1], variants[1]])).toEqual(['MANIFEST_INCONSISTENT', 'variants[1].precision']);
    expect(reject([{ ...variants[0], requiredFeatures: [] }])).toEqual([
      'MANIFEST_INCONSISTENT',
      'variants[0].requiredFeatures',
    ]);
  });
});

const serviceOn = (adapter: AdapterFeatures | null) => serviceWith(newProfile(), ortCpu, { adapter });

/** A picked folder holding the tiny set's files, an fp32 manifest.json and an fp16 variant. */
function pickedFolder(root: Record<string, unknown>, extra: Record<string, unknown> = {}) {
  const files = Object.values(tinyJson().components).flatMap((c) =>
    (c.files as { path: string }[]).map(({ path }) => ({
      path,
      file: new Blob([readFileSync(TINY_DIR + path)]),
    })),
  );
  const json = (value: unknown) => new Blob([JSON.stringify(value)], { type: 'application/json' });
  return [
    ...files,
    { path: 'manifest.json', file: json(root) },
    ...Object.entries(extra).map(([path, value]) => ({ path, file: json(value) })),
  ];
}

const errorOf = (promise: Promise<unknown>) =>
  promise.then(
    () => null,
    (e: unknown) => toWireError(e),
  );

describe('GeneratorService precision', () => {
  it('refuses an fp16 set on an adapter without shader-f16, with an error that says what to do', async () => {
    const service = serviceOn(withoutF16);
    const error = await errorOf(service.openModelSet({ kind: 'files', files: pickedFolder(fp16Json()) }));
    expect(error?.code).toBe('WEBGPU_FEATURE_MISSING');
    expect(error?.message).toMatch(/shader-f16/);
    expect(error?.message).toMatch(/fp32/);
  });

  it('opens the same fp16 set on an adapter with shader-f16', async () => {
    const info = await serviceOn(withF16).openModelSet({ kind: 'files', files: pickedFolder(fp16Json()) });
    expect(info.precision.current).toBe('fp16');
    expect(info.modelId).toBe('tiny-fp16');
  });

  it('auto opens the fp16 variant with shader-f16 and stays on fp32 without; an override wins', async () => {
    const root = {
      ...tinyJson(),
      variants: [
        {
          precision: 'fp16',
          manifest: 'manifest.fp16.json',
          requiredFeatures: ['shader-f16'],
          textToImageBytes: 1,
        },
      ],
    };
    const folder = () => pickedFolder(root, { 'manifest.fp16.json': fp16Json() });
    const fast = await serviceOn(withF16).openModelSet({ kind: 'files', files: folder() });
    expect([fast.modelId, fast.precision.current]).toEqual(['tiny-fp16', 'fp16']);
    expect(fast.precision.options.map((o) => [o.precision, o.supported])).toEqual([
      ['fp32', true],
      ['fp16', true],
    ]);
    const plain = await serviceOn(withoutF16).openModelSet({ kind: 'files', files: folder() });
    expect([plain.precision.current, plain.precision.reason]).toEqual([
      'fp32',
      'fp32: this GPU has no shader-f16 for the fp16 models',
    ]);
    expect(plain.precision.options.find((o) => o.precision === 'fp16')?.supported).toBe(false);
    const forced = await serviceOn(withF16).openModelSet({ kind: 'files', files: folder() }, 'fp32');
    expect([forced.precision.current, forced.precision.choice]).toEqual(['fp32', 'fp32']);
    const refused = await errorOf(
      serviceOn(withoutF16).openModelSet({ kind: 'files', files: folder() }, 'fp16'),
    );
    expect(refused?.code).toBe('WEBGPU_FEATURE_MISSING');
  });
});
