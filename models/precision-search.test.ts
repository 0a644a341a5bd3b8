import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { refEnv } from '../test-support/refenv.node';
import { type ManifestQuality, parseManifest } from './manifest';

const ref = refEnv(import.meta.url, ['torch', 'diffusers', 'onnx'], { needsCli: true });
const skip = ref.skip;
const python = (args: string[]) => ref.python(args);

/** Bytes of the text-to-image download: the required components' files. */
function bytes(manifest: ReturnType<typeof parseManifest>): number {
  return Object.values(manifest.components)
    .filter((c) => c && !c.optional)
    .reduce((sum, c) => sum + (c?.files.reduce((s, f) => s + f.bytes, 0) ?? 0), 0);
}

interface Measured {
  readonly bytes: number;
  readonly quality: ManifestQuality;
}
interface Step extends Measured {
  readonly move: string;
}
interface Report {
  readonly targetPsnr: number;
  readonly chosen: Step;
  readonly fellBack: number;
  readonly probes: readonly (Measured & { readonly what: string })[];
  readonly kept: readonly Step[];
  readonly seconds: number;
}

const TARGET = 30;
const CALIBRATION = ['--quality-prompts', 'a red cat, 4k photo', '--quality-seeds', '0'];
const PRESETS = ['fp16', 'int8', 'int4c6', 'int4'] as const;
const TEXT_TO_IMAGE = ['text_encoder', 'prior', 'image_encoder', 'unet', 'movq_decoder'];

/** The tiny realistic set's text-to-image components at `precision`, written to `out`. */
const exportTinyRealistic = (precision: string, out: string) =>
  python([
    'kandinsky_export.py',
    '--random-weights',
    'tiny-realistic',
    '--components',
    ...TEXT_TO_IMAGE, // the image encoder writes negative_image_embeds, which text to image needs
    '--precision',
    precision,
    '--out',
    out,
  ]);

/** precision_search.py from `fp32` to `out` at TARGET on CALIBRATION, with `flags`. */
const search = (fp32: string, out: string, maxProbes: number, flags: string[] = []) =>
  python([
    'precision_search.py',
    fp32,
    '--tiny',
    '--realistic',
    '--target-psnr',
    String(TARGET),
    '--out',
    out,
    '--max-probes',
    String(maxProbes),
    ...flags,
    ...CALIBRATION,
  ]);

describe.skipIf(skip !== null)('export/precision_search.py', () => {
  it('finds a set that reaches the target, no larger than the smallest preset that does', async () => {
    const work = mkdtempSync(join(tmpdir(), 'kandinsky-search-'));
    const exportAt = (precision: string) => exportTinyRealistic(precision, join(work, precision));
    try {
      const fp32 = join(work, 'fp32');
      const searched = join(work, 'searched');
      await exportAt('fp32');
      // The search and the presets (two at a time: this machine has two cores).
      const presets = (async () => {
        const figures: Record<string, Measured> = {};
        for (const precision of PRESETS) {
          await exportAt(precision);
          const json = join(work, `${precision}.json`);
          await python([
            'quality.py',
            join(work, precision),
            '--tiny',
            '--realistic',
            '--json',
            json,
            ...CALIBRATION,
          ]);
          const manifest = parseManifest(
            JSON.parse(readFileSync(join(work, precision, 'manifest.json'), 'utf8')),
          );
          const { quality } = JSON.parse(readFileSync(json, 'utf8')) as { quality: ManifestQuality };
          figures[precision] = { bytes: bytes(manifest), quality };
        }
        return figures;
      })();
      await search(fp32, searched, 14);
      const report = JSON.parse(readFileSync(join(searched, 'search.json'), 'utf8')) as Report;
      const manifest = parseManifest(JSON.parse(readFileSync(join(searched, 'manifest.json'), 'utf8')));
      const fp32Manifest = parseManifest(JSON.parse(readFileSync(join(fp32, 'manifest.json'), 'utf8')));
      const figures = await presets;

      expect(report.targetPsnr).toBe(TARGET);
      expect(report.chosen.quality.psnr).toBeGreaterThanOrEqual(TARGET);
      expect(bytes(manifest)).toBe(report.chosen.bytes);
      expect(bytes(manifest)).toBeLessThan(bytes(fp32Manifest));
      // No larger than the smallest preset that reaches the target on the same calibration.
      const holding = PRESETS.filter((p) => (figures[p]?.quality.psnr ?? 0) >= TARGET);
      expect(holding.length).toBeGreaterThan(0);
      const smallest = Math.min(...holding.map((p) => figures[p]?.bytes ?? Number.POSITIVE_INFINITY));
      console.info(
        `searched ${bytes(manifest)} B at ${report.chosen.quality.psnr} dB in ${report.seconds} s; presets`,
        Object.fromEntries(PRESETS.map((p) => [p, [figures[p]?.bytes, figures[p]?.quality.psnr]])),
      );
      expect(bytes(manifest)).toBeLessThanOrEqual(smallest);
      // Every kept step held on the search calibration, each smaller than the one before; the
      // answer is the last one (this calibration is the search's own: nothing to fall back from).
      for (const [k, step] of report.kept.entries()) {
        expect(step.quality.psnr).toBeGreaterThanOrEqual(TARGET);
        if (k > 0) expect(step.bytes).toBeLessThan(report.kept[k - 1]?.bytes ?? 0);
      }
      expect(report.fellBack).toBe(0);
      expect(report.chosen.bytes).toBe(report.kept.at(-1)?.bytes);
      // The chosen plan's figure, with its first calibration run's pictures saved beside it.
      const { sample, ...figure } = manifest.quality ?? {};
      expect(figure).toEqual(report.chosen.quality);
      expect(sample).toMatchObject({ prompt: 'a red cat, 4k photo', seed: 0 });
      for (const picture of [sample?.reference, sample?.picture]) {
        expect(readFileSync(join(searched, picture?.path ?? 'missing')).length).toBe(picture?.bytes);
      }
      for (const id of ['text_encoder', 'prior', 'unet', 'movq_decoder'] as const) {
        const c = manifest.components[id];
        expect(c?.kind === 'onnx' && c.precision).toBe('searched');
        expect(c?.kind === 'onnx' && c.plan).toBeTruthy();
      }
      // The weights are spread over more than one bits (a searched plan, not a preset).
      const spread = new Set<string>();
      for (const c of Object.values(manifest.components)) {
        if (c?.kind !== 'onnx' || !c.plan) continue;
        for (const [bits, n] of Object.entries(c.plan)) if (n > 0) spread.add(bits);
      }
      expect(spread.size).toBeGreaterThan(1);

      // Measured again from scratch, the set reproduces the figure its search recorded.
      const again = join(work, 'again.json');
      await python(['quality.py', searched, '--tiny', '--realistic', '--json', again, ...CALIBRATION]);
      const measured = JSON.parse(readFileSync(again, 'utf8')) as { quality: ManifestQuality };
      expect(measured.quality).toEqual(report.chosen.quality);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }, 2_400_000); // a hang guard, not a speed check: 3 min of CPU, 10 min on a loaded machine

  it("at full size's settings (--sensitivity weights --start all16): no preset probes, every kept step holds", async () => {
    const work = mkdtempSync(join(tmpdir(), 'kandinsky-search-'));
    try {
      const fp32 = join(work, 'fp32');
      const searched = join(work, 'searched');
      await exportTinyRealistic('fp32', fp32);
      const maxProbes = 8;
      await search(fp32, searched, maxProbes, [
        '--sensitivity',
        'weights',
        '--start',
        'all16',
        '--no-presets',
      ]);
      const report = JSON.parse(readFileSync(join(searched, 'search.json'), 'utf8')) as Report & {
        readonly sensitivity: string;
        readonly start: string;
        readonly presets: Record<string, Measured>;
      };
      expect(report.sensitivity).toBe('weights');
      expect(report.start).toBe('all16');
      expect(Object.keys(report.presets)).toEqual(['all16']);
      expect(report.probes.map((p) => p.what).filter((w) => w.includes('as a plan'))).toEqual([]);
      expect(report.probes.length).toBeLessThanOrEqual(maxProbes);
      // The descent ran (probes past all16 and one per graph at 8 bits) and kept only what held.
      expect(report.kept.length).toBeGreaterThan(1);
      for (const [k, step] of report.kept.entries()) {
        expect(step.quality.psnr).toBeGreaterThanOrEqual(TARGET);
        if (k > 0) expect(step.bytes).toBeLessThan(report.kept[k - 1]?.bytes ?? 0);
      }
      expect(report.chosen.quality.psnr).toBeGreaterThanOrEqual(TARGET);
      const manifest = parseManifest(JSON.parse(readFileSync(join(searched, 'manifest.json'), 'utf8')));
      expect(bytes(manifest)).toBe(report.chosen.bytes);
      expect(report.chosen.bytes).toBeLessThan(report.kept[0]?.bytes ?? 0);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }, 1_200_000); // a hang guard: about 40 s of CPU
});
