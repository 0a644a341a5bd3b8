/**
 * bench/results.json's `quantization` section: rows from the real set's bytes and the measured
 * figures, the default being workers/precision.ts's own choice, and its rendering in results.md.
 * The figures of the committed quantised fixtures are read from their manifests (what `--quality`
 * recorded), so the section's rows for them are the figures the app decides by.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { type ManifestQuality, parseManifest } from '../models/manifest';
import { DEFAULT_TARGET_PSNR } from '../workers/precision';
import { figuresFromTable, quantizationSection } from './quantization.node';
import { renderMarkdown } from './report.node';

const REPO = fileURLToPath(new URL('..', import.meta.url));
const results = JSON.parse(readFileSync(join(REPO, 'bench', 'results.json'), 'utf8')) as Record<
  string,
  unknown
>;
const REAL_BYTES = (results.download as { textToImage: Record<string, number> }).textToImage;

const recorded = (fixture: string): ManifestQuality => {
  const manifest = parseManifest(
    JSON.parse(readFileSync(join(REPO, 'models', 'fixtures', fixture, 'manifest.json'), 'utf8')),
  );
  if (!manifest.quality) throw new Error(`${fixture} records no quality`);
  return manifest.quality;
};
const int4 = recorded('tiny-int4');
const int4c6 = recorded('tiny-int4c6');
const like = (psnr: number): ManifestQuality => ({ ...int4c6, psnr, ssim: 0.99, embeddingCosine: 0.99999 });

describe('quantizationSection', () => {
  it('rows: the real bytes beside the tiny sets’ figures; under the target nothing quantised opens', () => {
    const section = quantizationSection(REAL_BYTES, { fp32: like(80), int4, int4c6 }, 'tiny-random');
    expect(section.rows.map((r) => [r.variant, r.bytes, r.psnr])).toEqual([
      ['fp32', REAL_BYTES.fp32, 80],
      ['int4c6', REAL_BYTES.int4c6, int4c6.psnr],
      ['int4', REAL_BYTES.int4, int4.psnr],
    ]);
    expect(section.weights).toBe('tiny-random');
    expect(section.targetPsnr).toBe(DEFAULT_TARGET_PSNR);
    expect(int4c6.psnr).toBeLessThan(DEFAULT_TARGET_PSNR); // the tiny random sets measure 12–15 dB
    expect(section.default.variant).toBe('fp32');
    expect(section.calibration).toEqual({ prompts: 3, seeds: 2, steps: 10, priorSteps: 10, size: 64 });
  });

  it('the default is the smallest variant whose PSNR reaches the target', () => {
    const figures = {
      fp32: like(80),
      fp16: like(45),
      int8: like(DEFAULT_TARGET_PSNR),
      int4c6: like(25),
      int4,
    };
    const section = quantizationSection(REAL_BYTES, figures, 'tiny-random');
    expect(section.default).toEqual({
      variant: 'int8',
      bytes: REAL_BYTES.int8,
      psnr: DEFAULT_TARGET_PSNR,
      ssim: 0.99,
      embeddingCosine: 0.99999,
    });
    expect(section.defaultReason).toMatch(/^int8: the smallest download whose pictures hold/);
  });

  it('refuses rows from different calibration runs, and no rows at all', () => {
    expect(() =>
      quantizationSection(REAL_BYTES, { fp32: { ...like(80), seeds: 1 }, int4 }, 'tiny-random'),
    ).toThrow(/another calibration run/);
    expect(() => quantizationSection({}, { int4 }, 'tiny-random')).toThrow(/no precision/);
  });

  it('reads a quality_table.py table: its weights and each row’s figure by precision', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kandinsky-quality-table-'));
    try {
      const path = join(dir, 'table.json');
      const row = (precision: string, psnr: number) => ({
        precision,
        bytes: 1,
        quality: like(psnr),
        buildSeconds: 1,
        engineSeconds: 1,
        torchSeconds: 1,
      });
      writeFileSync(
        path,
        JSON.stringify({
          set: 'x',
          weights: 'full-size-realistic',
          seconds: 3,
          referencesComputed: 2,
          rows: [row('int4c6', 31), row('fp32', 90)],
        }),
      );
      const { figures, weights } = figuresFromTable(path);
      expect(weights).toBe('full-size-realistic');
      expect(Object.keys(figures).sort()).toEqual(['fp32', 'int4c6']);
      const section = quantizationSection(REAL_BYTES, figures, weights);
      expect(section.weights).toBe('full-size-realistic');
      expect(section.default.variant).toBe('int4c6'); // 31 dB holds the target: the smallest that does
      expect(section.default.bytes).toBe(REAL_BYTES.int4c6); // the real set's bytes, not the table's
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a searched row takes the table’s bytes (no real-set export has them) and is chosen where smallest', () => {
    const dir = mkdtempSync(join(tmpdir(), 'kandinsky-quality-table-'));
    try {
      const path = join(dir, 'table.json');
      const searchedBytes = Math.round((REAL_BYTES.fp16 ?? 0) * 0.8);
      const rows = [
        { precision: 'fp32', bytes: 1, quality: like(90) },
        { precision: 'fp16', bytes: 1, quality: like(37) },
        { precision: 'int8', bytes: 1, quality: like(17) },
        { precision: 'searched', bytes: searchedBytes, quality: like(31) },
      ];
      writeFileSync(path, JSON.stringify({ weights: 'full-size-realistic', rows }));
      const { figures, weights, bytes } = figuresFromTable(path);
      const section = quantizationSection({ ...bytes, ...REAL_BYTES }, figures, weights);
      expect(section.rows.map((r) => [r.variant, r.bytes])).toEqual([
        ['fp32', REAL_BYTES.fp32],
        ['fp16', REAL_BYTES.fp16],
        ['int8', REAL_BYTES.int8],
        ['searched', searchedBytes],
      ]);
      expect(section.default.variant).toBe('searched');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('results.md shows the section as a table with the default', () => {
    const section = quantizationSection(REAL_BYTES, { fp32: like(80), int4, int4c6 }, 'tiny-random');
    const md = renderMarkdown({ quantization: { measuredAt: '2026-12-07T00:00:00.000Z', ...section } });
    expect(md).toContain('| int4c6 | 1.97 GB |');
    expect(md).toContain(`Target PSNR ${DEFAULT_TARGET_PSNR} dB; the app opens **fp32** (12.06 GB)`);
    expect(md).toContain('**tiny-random** weights');
  });
});
