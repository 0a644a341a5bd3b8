/**
 * models/export/publish_variants.py (standard-library Python) joins the tiny set's fp32, int4c6
 * and int4 exports into one hosted folder; the app then reads it as a real set with variants: the
 * schema accepts every manifest, the variants carry the figures the exports' `--check` recorded,
 * and the automatic precision is decided by them (workers/precision.ts).
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serviceOn } from '../test-support/generator-service.node';
import { newProfile } from '../test-support/store.node';
import { ortCpu } from '../test-support/tiny-fixture.node';
import {
  DEFAULT_CHECK_COSINE,
  holdsFigures,
  textToImageBytes,
  textToImageCheckCosine,
} from '../workers/precision';
import { type Manifest, parseManifest } from './manifest';

const MODELS = fileURLToPath(new URL('.', import.meta.url));
const EXPORTS = ['tiny', 'tiny-int4c6', 'tiny-int4'].map((name) => join(MODELS, 'fixtures', name));
const readManifest = (path: string): Manifest => parseManifest(JSON.parse(readFileSync(path, 'utf8')));

let out = '';
beforeAll(() => {
  out = mkdtempSync(join(tmpdir(), 'kandinsky-publish-'));
  execFileSync('python3', [join(MODELS, 'export', 'publish_variants.py'), '--out', out, ...EXPORTS], {
    stdio: 'pipe',
  });
});
afterAll(() => rmSync(out, { recursive: true, force: true }));

function filesUnder(folder: string): string[] {
  return readdirSync(folder, { recursive: true, encoding: 'utf8' }).filter((path) =>
    statSync(join(folder, path)).isFile(),
  );
}

describe('publish_variants.py', () => {
  it('writes the opened manifest with a variant per other export, each with its download, --check and --quality figures', () => {
    const opened = readManifest(join(out, 'manifest.json'));
    const int4c6 = readManifest(join(EXPORTS[1] as string, 'manifest.json'));
    const int4 = readManifest(join(EXPORTS[2] as string, 'manifest.json'));
    expect(opened.modelId).toBe('kandinsky-2.2-tiny-random');
    expect(opened.variants).toEqual([
      {
        precision: 'int4c6',
        manifest: 'manifest.int4c6.json',
        requiredFeatures: [],
        textToImageBytes: textToImageBytes(int4c6),
        checkCosine: textToImageCheckCosine(int4c6),
        quality: int4c6.quality,
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
