/**
 * models/export/publish_variants.py (standard-library Python) joins the tiny set's fp32, int4c6
 * and int4 exports into one hosted folder; the app then reads it as a real set with variants: the
 * schema accepts every manifest, the variants carry the figures the exports' `--check` recorded,
 * and the automatic precision is decided by them (workers/precision.ts). The fp32 and int4c6
 * exports are given `--quality` sample pictures (as quality.py --write leaves them), which move
 * with their export's files.
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serviceOn } from '../test-support/generator-service.node';
import { newProfile } from '../test-support/store.node';
import { ortCpu } from '../test-support/tiny-fixture.node';
import { nodeZlib } from '../workers/engine/node-zlib.node';
import { encodePng } from '../workers/engine/png';
import {
  DEFAULT_CHECK_COSINE,
  holdsFigures,
  textToImageBytes,
  textToImageCheckCosine,
} from '../workers/precision';
import { type Manifest, type ManifestQuality, parseManifest } from './manifest';

const MODELS = fileURLToPath(new URL('.', import.meta.url));
const FIXTURES = ['tiny', 'tiny-int4c6', 'tiny-int4'].map((name) => join(MODELS, 'fixtures', name));
const readManifest = (path: string): Manifest => parseManifest(JSON.parse(readFileSync(path, 'utf8')));

/** The fp32 export's figure (it has none recorded): what quality.py gives an fp32 set. */
const FP32_FIGURE = {
  psnr: 61.2,
  ssim: 0.99998,
  embeddingCosine: 0.9999999,
  prompts: 3,
  seeds: 2,
  steps: 10,
  priorSteps: 10,
  size: 64,
};

/**
 * `fixture` as an export folder in `work` whose `--quality` run left its sample pictures: its
 * files linked, `quality/reference.png` and `quality/picture.png` written, the manifest's `quality`
 * (its own, or `figure`) given their `sample`.
 */
async function withSample(fixture: string, work: string, shade: number, figure?: object): Promise<string> {
  const folder = join(work, fixture.split('/').pop() as string);
  mkdirSync(join(folder, 'quality'), { recursive: true });
  for (const name of readdirSync(fixture)) {
    if (name !== 'manifest.json') symlinkSync(join(fixture, name), join(folder, name));
  }
  const manifest = JSON.parse(readFileSync(join(fixture, 'manifest.json'), 'utf8'));
  const sample: Record<string, unknown> = { prompt: 'a red cat, 4k photo', seed: 0 };
  for (const [key, offset] of [
    ['reference', 0],
    ['picture', shade],
  ] as const) {
    const data = new Uint8Array(64 * 64 * 4).map((_, i) => (i % 4 === 3 ? 255 : (i + offset) & 0xff));
    const png = await encodePng({ width: 64, height: 64, data }, {}, nodeZlib);
    writeFileSync(join(folder, 'quality', `${key}.png`), png);
    sample[key] = {
      path: `quality/${key}.png`,
      bytes: png.byteLength,
      sha256: createHash('sha256').update(png).digest('hex'),
    };
  }
  manifest.quality = { ...(manifest.quality ?? figure), sample };
  writeFileSync(join(folder, 'manifest.json'), `${JSON.stringify(manifest, null, 2)}\n`);
  return folder;
}

let out = '';
let work = '';
let EXPORTS: string[] = [];
beforeAll(async () => {
  out = mkdtempSync(join(tmpdir(), 'kandinsky-publish-'));
  work = mkdtempSync(join(tmpdir(), 'kandinsky-exports-'));
  EXPORTS = [
    await withSample(FIXTURES[0] as string, work, 0, FP32_FIGURE),
    await withSample(FIXTURES[1] as string, work, 7),
    FIXTURES[2] as string,
  ];
  execFileSync('python3', [join(MODELS, 'export', 'publish_variants.py'), '--out', out, ...EXPORTS], {
    stdio: 'pipe',
  });
});
afterAll(() => {
  rmSync(out, { recursive: true, force: true });
  rmSync(work, { recursive: true, force: true });
});

/** The sample pictures a `quality` lists (none without a sample). */
const samplePaths = (quality: ManifestQuality | undefined): string[] =>
  quality?.sample ? [quality.sample.reference.path, quality.sample.picture.path] : [];

function filesUnder(folder: string): string[] {
  return readdirSync(folder, { recursive: true, encoding: 'utf8' }).filter((path) =>
    statSync(join(folder, path)).isFile(),
  );
}

describe('publish_variants.py', () => {
  it('writes the opened manifest with a variant per other export, each with its download, --check and --quality figures', () => {
    const opened = readManifest(join(out, 'manifest.json'));
    const int4c6 = readManifest(join(FIXTURES[1] as string, 'manifest.json'));
    const int4 = readManifest(join(EXPORTS[2] as string, 'manifest.json'));
    expect(opened.modelId).toBe('kandinsky-2.2-tiny-random');
    expect(opened.variants).toEqual([
      {
        precision: 'int4c6',
        manifest: 'manifest.int4c6.json',
        requiredFeatures: [],
        textToImageBytes: textToImageBytes(int4c6),
        checkCosine: textToImageCheckCosine(int4c6),
        // The export's figure, its sample moved under int4c6/ with the export's files.
        quality: {
          ...int4c6.quality,
          sample: {
            prompt: 'a red cat, 4k photo',
            seed: 0,
            reference: expect.objectContaining({ path: 'int4c6/quality/reference.png' }),
            picture: expect.objectContaining({ path: 'int4c6/quality/picture.png' }),
          },
        },
      },
      {
        precision: 'int4',
        manifest: 'manifest.int4.json',
        requiredFeatures: [],
        textToImageBytes: textToImageBytes(int4),
        checkCosine: textToImageCheckCosine(int4),
        quality: int4.quality,
      },
    ]);
    // The fixtures' exports recorded --check on every graph: the tiny set's int4c6 UNet (0.996)
    // and int4's (0.98) are under the bar; their text encoders are not what decides it.
    const [c6, c4] = (opened.variants ?? []).map((v) => v.checkCosine ?? Number.NaN);
    expect(c6).toBeCloseTo(
      int4c6.components.unet?.kind === 'onnx' ? (int4c6.components.unet.check?.cosine ?? 0) : 0,
      12,
    );
    expect(c6).toBeLessThan(DEFAULT_CHECK_COSINE);
    expect(c4).toBeLessThan(c6 as number);
  });

  it('puts each export’s files under its precision, byte for byte, with distinct model ids', () => {
    const manifests = {
      fp32: readManifest(join(out, 'manifest.json')),
      int4c6: readManifest(join(out, 'manifest.int4c6.json')),
      int4: readManifest(join(out, 'manifest.int4.json')),
    };
    expect(Object.values(manifests).map((m) => m.modelId)).toEqual([
      'kandinsky-2.2-tiny-random',
      'kandinsky-2.2-tiny-random-precision-int4c6',
      'kandinsky-2.2-tiny-random-precision-int4',
    ]);
    const listed: string[] = [];
    for (const [precision, manifest] of Object.entries(manifests)) {
      const source = EXPORTS[['fp32', 'int4c6', 'int4'].indexOf(precision)] as string;
      for (const component of Object.values(manifest.components)) {
        for (const file of component?.files ?? []) {
          expect(file.path.startsWith(`${precision}/`), file.path).toBe(true);
          const bytes = readFileSync(join(out, file.path));
          expect(bytes.length).toBe(file.bytes);
          expect(bytes.equals(readFileSync(join(source, file.path.slice(precision.length + 1))))).toBe(true);
          listed.push(file.path);
        }
      }
    }
    // Each sample picture is under its export's precision, byte for byte, as its entry lists it;
    // the variant entry lists the variant manifest's own.
    for (const [precision, manifest] of Object.entries(manifests)) {
      const source = EXPORTS[['fp32', 'int4c6', 'int4'].indexOf(precision)] as string;
      for (const path of samplePaths(manifest.quality)) {
        expect(path.startsWith(`${precision}/quality/`), path).toBe(true);
        const bytes = readFileSync(join(out, path));
        const listedFile = [manifest.quality?.sample?.reference, manifest.quality?.sample?.picture].find(
          (f) => f?.path === path,
        );
        expect(bytes.length).toBe(listedFile?.bytes);
        expect(createHash('sha256').update(bytes).digest('hex')).toBe(listedFile?.sha256);
        expect(bytes.equals(readFileSync(join(source, path.slice(precision.length + 1))))).toBe(true);
        listed.push(path);
      }
    }
    expect(samplePaths(manifests.fp32.quality)).toEqual([
      'fp32/quality/reference.png',
      'fp32/quality/picture.png',
    ]);
    expect(samplePaths(manifests.int4.quality)).toEqual([]);
    const entry = manifests.fp32.variants?.find((v) => v.precision === 'int4c6');
    expect(entry?.quality).toEqual(manifests.int4c6.quality);
    // Nothing else is hosted but the three manifests.
    expect(filesUnder(out).sort()).toEqual(
      [...listed, 'manifest.json', 'manifest.int4.json', 'manifest.int4c6.json'].sort(),
    );
  });

  it('refuses two exports of one precision, and writing over an export', () => {
    const run = (args: string[]) => {
      try {
        execFileSync('python3', [join(MODELS, 'export', 'publish_variants.py'), ...args], { stdio: 'pipe' });
        return '';
      } catch (error) {
        return String((error as { stderr?: Buffer }).stderr);
      }
    };
    const other = mkdtempSync(join(tmpdir(), 'kandinsky-publish-'));
    try {
      expect(run(['--out', other, EXPORTS[1] as string, EXPORTS[1] as string])).toMatch(
        /two exports of the same precision/,
      );
      expect(run(['--out', EXPORTS[0] as string, EXPORTS[0] as string])).toMatch(
        /--out must be a new folder/,
      );
    } finally {
      rmSync(other, { recursive: true, force: true });
    }
  });

  it('the app opens the published folder: auto keeps fp32 (the only one that holds), an override opens int4c6', async () => {
    const folder = () =>
      filesUnder(out).map((path) => ({
        path: relative(out, join(out, path)),
        file: new Blob([readFileSync(join(out, path))]),
      }));
    const service = () => serviceOn(newProfile(), ortCpu, { adapter: { shaderF16: false } });
    const auto = await service().openModelSet({ kind: 'files', files: folder() });
    expect([auto.modelId, auto.precision.current, auto.precision.reason]).toEqual([
      'kandinsky-2.2-tiny-random',
      'fp32',
      'fp32: the best precision this set publishes',
    ]);
    expect(auto.precision.options.map((o) => [o.precision, holdsFigures(o)])).toEqual([
      ['fp32', true],
      ['int4c6', false],
      ['int4', false],
    ]);
    const chosen = await service().openModelSet({ kind: 'files', files: folder() }, 'int4c6');
    expect([chosen.modelId, chosen.precision.current]).toEqual([
      'kandinsky-2.2-tiny-random-precision-int4c6',
      'int4c6',
    ]);
  });
});
