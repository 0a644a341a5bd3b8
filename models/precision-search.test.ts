/**
 * models/export/precision_search.py on the tiny set with realistic weight statistics
 * (realistic_weights.py): exported fp32 into a temporary folder, searched to a 30 dB target on one
 * calibration prompt and seed (the search's own probes run the shipped CLI against fp32 diffusers),
 * the searched set must reach the target when measured again, be smaller than the fp32 set, open in
 * the app's manifest reader as `searched` with a plan per graph, and be the smallest probe that held.
 *
 * Needs the Python reference environment (torch, diffusers, onnx: ../shared/TESTING.md) and the
 * built CLI (dist-cli/generate.mjs); without them it is skipped and says why. About 4 minutes here.
 */
import { execFile, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { type ManifestQuality, parseManifest } from './manifest';

const MODELS = fileURLToPath(new URL('.', import.meta.url));
const EXPORT = join(MODELS, 'export');
const CLI = join(MODELS, '..', 'dist-cli', 'generate.mjs');
const PYTHON = '/usr/bin/python3';

const refenv = (
  process.env.KANDINSKY_REFENV !== undefined
    ? [process.env.KANDINSKY_REFENV]
    : ['/tmp/refenv/env.sh', '/work/refenv/env.sh']
).find((path) => existsSync(path));

function whySkip(): string | null {
  if (refenv === undefined)
    return 'no Python reference environment (KANDINSKY_REFENV, /tmp/refenv/env.sh or /work/refenv/env.sh)';
  if (!existsSync(CLI)) return `${CLI} is not built (npm run generate -- --help builds it)`;
  try {
    execFileSync('bash', ['-c', `. "${refenv}" && ${PYTHON} -c "import torch, diffusers, onnx"`], {
      stdio: 'pipe',
    });
    return null;
  } catch {
    return `${refenv}: ${PYTHON} cannot import torch, diffusers and onnx`;
  }
}
const skip = whySkip();
if (skip !== null) console.warn(`models/precision-search.test.ts skipped: ${skip}`);

const run = promisify(execFile);

async function python(args: string[]): Promise<string> {
  const script = `. "${refenv}" && cd "${EXPORT}" && exec ${PYTHON} "$@"`;
  const { stdout } = await run('bash', ['-c', script, 'bash', ...args], { maxBuffer: 64 << 20 });
  return stdout;
}

interface Probe {
  readonly steps: number;
  readonly bytes: number;
  readonly quality: ManifestQuality;
}
interface Report {
  readonly targetPsnr: number;
  readonly chosen: Probe;
  readonly probes: readonly Probe[];
  readonly steps: number;
  readonly seconds: number;
}

const TARGET = 30;
const CALIBRATION = ['--quality-prompts', 'a red cat, 4k photo', '--quality-seeds', '0'];

describe.skipIf(skip !== null)('export/precision_search.py', () => {
  it('finds a searched set that reaches the target, smaller than fp32, the smallest probe that held', async () => {
    const work = mkdtempSync(join(tmpdir(), 'kandinsky-search-'));
    try {
      const fp32 = join(work, 'fp32');
      const searched = join(work, 'searched');
      await python([
        'kandinsky_export.py',
        '--random-weights',
        'tiny-realistic',
        '--components',
        'text_encoder',
        'prior',
        'image_encoder', // writes negative_image_embeds, which text to image needs
        'unet',
        'movq_decoder',
        '--out',
        fp32,
      ]);
      await python([
        'precision_search.py',
        fp32,
        '--tiny',
        '--realistic',
        '--target-psnr',
        String(TARGET),
        '--out',
        searched,
        ...CALIBRATION,
      ]);
      const report = JSON.parse(readFileSync(join(searched, 'search.json'), 'utf8')) as Report;
      const manifest = parseManifest(JSON.parse(readFileSync(join(searched, 'manifest.json'), 'utf8')));
      const fp32Manifest = parseManifest(JSON.parse(readFileSync(join(fp32, 'manifest.json'), 'utf8')));
      const bytes = (m: typeof manifest) =>
        Object.values(m.components)
          .filter((c) => c && !c.optional)
          .reduce((sum, c) => sum + (c?.files.reduce((s, f) => s + f.bytes, 0) ?? 0), 0);

      expect(report.targetPsnr).toBe(TARGET);
      expect(report.chosen.quality.psnr).toBeGreaterThanOrEqual(TARGET);
      expect(bytes(manifest)).toBe(report.chosen.bytes);
      expect(bytes(manifest)).toBeLessThan(bytes(fp32Manifest));
      // Every probe smaller than the chosen one missed the target; the chosen one is the least that held.
      for (const probe of report.probes) {
        if (probe.steps < report.chosen.steps) expect(probe.quality.psnr).toBeLessThan(TARGET);
      }
      const held = report.probes.filter((p) => p.quality.psnr >= TARGET).map((p) => p.steps);
      expect(Math.min(...held)).toBe(report.chosen.steps);
      // The chosen probe's figure, with its first calibration run's pictures saved beside it.
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
      const unet = manifest.components.unet;
      const plan = unet?.kind === 'onnx' ? unet.plan : undefined;
      // The UNet's weights are spread over more than one bits (a searched plan, not a preset).
      expect(Object.values(plan ?? {}).filter((n) => n > 0).length).toBeGreaterThan(1);

      // Measured again from scratch, the set reproduces the figure its search recorded.
      const again = join(work, 'again.json');
      await python(['quality.py', searched, '--tiny', '--realistic', '--json', again, ...CALIBRATION]);
      const measured = JSON.parse(readFileSync(again, 'utf8')) as { quality: ManifestQuality };
      expect(measured.quality).toEqual(report.chosen.quality);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }, 900_000);
});
