/**
 * models/export/quality.py, the export tool's `--quality`: its figures (PSNR, SSIM) on pictures
 * whose answer is known, and the whole measurement on the committed tiny sets, where the fp32 set
 * must match diffusers' pictures and the quantised one must reproduce the figure its manifest
 * records for the same calibration run; `--write` saves the first run's two pictures and records
 * them as `quality.sample`, the set's picture being the CLI's pixels for that prompt and seed.
 *
 * Needs the Python reference environment (torch, diffusers: ../shared/TESTING.md) and the built
 * CLI (dist-cli/generate.mjs, `npm run generate -- --help`), which CI does not have: without them
 * the tests are skipped and say why. Here they take about 20 s.
 */
import { execFile } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  copyFileSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { CLI_PATH as CLI, refEnv } from '../test-support/refenv.node';
import { nodeZlib } from '../workers/engine/node-zlib.node';
import { decodePng } from '../workers/engine/png';
import { type ManifestQuality, parseManifest } from './manifest';

const MODELS = fileURLToPath(new URL('.', import.meta.url));

const ref = refEnv(import.meta.url, ['torch', 'diffusers'], { needsCli: true });
const skip = ref.skip;
const run = promisify(execFile);
const python = (args: string[]) => ref.python(args);

interface Measured {
  readonly quality: ManifestQuality;
  readonly runs: number;
}

async function measure(set: string, extra: string[]): Promise<Measured> {
  const out = mkdtempSync(join(tmpdir(), 'kandinsky-quality-'));
  try {
    const json = join(out, 'quality.json');
    await python(['quality.py', join(MODELS, 'fixtures', set), '--tiny', '--json', json, ...extra]);
    return JSON.parse(readFileSync(json, 'utf8')) as Measured;
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
}

describe.skipIf(skip !== null)('export/quality.py', () => {
  it('PSNR, SSIM and cosine give the known answers; a zero embedding is refused', async () => {
    const out = await python([
      '-c',
      `
import json, math
import numpy as np
from quality import cosine, psnr, ssim, PSNR_CAP
def zero_refused():
    try:
        cosine(np.ones(4), np.zeros(4))
    except ValueError as error:
        return str(error)
    return None
rng = np.random.default_rng(1)
a = rng.integers(0, 256, (32, 40, 3)).astype(np.uint8)
b = a.astype(np.int16); b[::2] += 4; b = np.clip(b, 0, 255).astype(np.uint8)
mse = np.mean((a.astype(float) - b.astype(float)) ** 2)
c1, c2 = np.full((16, 16, 3), 100, np.uint8), np.full((16, 16, 3), 140, np.uint8)
print(json.dumps({
  "same": [psnr(a, a), ssim(a, a)], "cap": PSNR_CAP,
  "psnr": psnr(a, b), "expected": 10 * math.log10(255 ** 2 / mse),
  "flat": ssim(c1, c2), "flatExpected": (2 * 100 * 140 + 2.55 ** 2) / (100 ** 2 + 140 ** 2 + 2.55 ** 2),
  "noise": ssim(a, rng.integers(0, 256, (32, 40, 3)).astype(np.uint8)),
  "cosine": cosine(np.array([1.0, 0.0]), np.array([1.0, 1.0])),
  "zero": zero_refused(),
}))
`,
    ]);
    const r = JSON.parse(out) as Record<string, number | number[] | string | null>;
    expect(r.same).toEqual([r.cap, 1]);
    expect(r.psnr as number).toBeCloseTo(r.expected as number, 10);
    // Two constant pictures: the variance terms are C2/C2, SSIM is the luminance term alone.
    expect(r.flat as number).toBeCloseTo(r.flatExpected as number, 10);
    expect(Math.abs(r.noise as number)).toBeLessThan(0.1); // independent noise: no structure shared
    expect(r.cosine as number).toBeCloseTo(Math.SQRT1_2, 12);
    // A zero embedding (the prior's output lost) is an error, not a cosine of 0.
    expect(r.zero).toMatch(/reference's image embedding is zero/);
  });

  it('the fp32 tiny set gives diffusers’ pictures; the int4c6 one what its manifest records', async () => {
    const fp32 = await measure('tiny', ['--quality-prompts', 'a red cat, 4k photo', '--quality-seeds', '0']);
    expect(fp32.runs).toBe(1);
    expect(fp32.quality.psnr).toBeGreaterThan(60); // rounding of a few pixels at most
    expect(fp32.quality.ssim).toBeGreaterThan(0.9999);
    expect(fp32.quality.embeddingCosine).toBeGreaterThan(0.999999);

    const manifest = parseManifest(
      JSON.parse(readFileSync(join(MODELS, 'fixtures', 'tiny-int4c6', 'manifest.json'), 'utf8')),
    );
    const recorded = manifest.quality;
    expect(recorded).toBeDefined();
    const int4c6 = await measure('tiny-int4c6', []); // the default calibration run, as recorded
    expect(int4c6.runs).toBe((recorded?.prompts ?? 0) * (recorded?.seeds ?? 0));
    expect(int4c6.quality).toEqual(recorded);
    expect(int4c6.quality.psnr).toBeLessThan(fp32.quality.psnr);
  }, 900_000); // a hang guard, not a speed check: a loaded 2-core machine took 222 s

  it('quality_table.py: one row per preset of the fp32 set, torch references computed once and reused from the cache', async () => {
    const work = mkdtempSync(join(tmpdir(), 'kandinsky-quality-table-'));
    try {
      const cache = join(work, 'references');
      const table = (name: string, precisions: string[]) =>
        python(
          ['quality_table.py', join(MODELS, 'fixtures', 'tiny'), '--tiny', '--json', join(work, name)]
            .concat(['--precisions', ...precisions, '--pictures', join(work, 'pictures')])
            .concat(['--quality-prompts', 'a red cat, 4k photo', '--quality-seeds', '0', '7'])
            .concat(['--quality-reference-cache', cache]),
        ).then(() => JSON.parse(readFileSync(join(work, name), 'utf8')) as Table);
      interface Row {
        readonly precision: string;
        readonly bytes: number;
        readonly quality: ManifestQuality;
        readonly picturePsnr: number;
      }
      interface Table {
        readonly referencesComputed: number;
        readonly rows: readonly Row[];
      }
      const first = await table('first.json', ['fp32', 'int4c6']);
      expect(first.referencesComputed).toBe(2); // two seeds, computed once for both rows
      expect(first.rows.map((r) => r.precision)).toEqual(['fp32', 'int4c6']);
      const [fp32, int4c6] = first.rows as [Row, Row];
      expect(fp32.quality.psnr).toBeGreaterThan(60);
      expect(int4c6.quality.psnr).toBeLessThan(fp32.quality.psnr);
      expect(int4c6.bytes).toBeLessThan(fp32.bytes / 2);
      expect(readdirSync(join(work, 'pictures')).sort()).toEqual(['set-fp32.png', 'set-int4c6.png']);
      const picture = await decodePng(
        new Uint8Array(readFileSync(join(work, 'pictures', 'set-int4c6.png'))),
        nodeZlib,
        1e7,
      );
      expect([picture.width, picture.height]).toEqual([64 + 4 + 64, 64]); // fp32 | gap | the set
      // A second process reads the references from the cache and measures the same figures.
      const again = await table('again.json', ['int4c6']);
      expect(again.referencesComputed).toBe(0);
      expect(again.rows[0]?.quality).toEqual(int4c6.quality);
      // The preset is built in the work folder and deleted after its row.
      expect(readdirSync(work).sort()).toEqual(['again.json', 'first.json', 'pictures', 'references']);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }, 900_000); // a hang guard, not a speed check

  it('--write saves the first run’s pictures beside the manifest and records them as quality.sample', async () => {
    const work = mkdtempSync(join(tmpdir(), 'kandinsky-quality-sample-'));
    try {
      // A copy of the int4c6 export to write into: its files linked, its manifest its own.
      const set = join(work, 'set');
      mkdirSync(set);
      const fixture = join(MODELS, 'fixtures', 'tiny-int4c6');
      for (const name of readdirSync(fixture)) {
        if (name !== 'manifest.json') symlinkSync(join(fixture, name), join(set, name));
      }
      // The export tool's own text (quality.py --write changes no other byte of it).
      copyFileSync(join(fixture, 'manifest.json'), join(set, 'manifest.json'));
      const prompt = 'a lighthouse on a cliff at sunset, oil painting';
      const json = join(work, 'quality.json');
      // One prompt at two seeds: the first run (seed 3) is the sample.
      await python(
        ['quality.py', set, '--tiny', '--write', '--json', json, '--quality-prompts', prompt].concat([
          '--quality-seeds',
          '3',
          '0',
        ]),
      );
      const written = JSON.parse(readFileSync(join(set, 'manifest.json'), 'utf8'));
      const { quality: _, ...rest } = written;
      const { quality: __, ...before } = JSON.parse(readFileSync(join(fixture, 'manifest.json'), 'utf8'));
      expect(rest).toEqual(before);
      const manifest = parseManifest(written);
      const sample = manifest.quality?.sample;
      expect(sample).toMatchObject({
        prompt,
        seed: 3,
        reference: { path: 'quality/reference.png' },
        picture: { path: 'quality/picture.png' },
      });
      // The figure without its sample is what --json reports (which holds no pixels).
      const reported = JSON.parse(readFileSync(json, 'utf8')) as Measured & Record<string, unknown>;
      expect(reported.first).toBeUndefined();
      const { sample: ___, ...figure } = manifest.quality as ManifestQuality;
      expect(reported.quality).toEqual({ ...figure, sample });
      expect(figure.prompts * figure.seeds).toBe(2);

      const decoded: Record<string, Uint8Array> = {};
      for (const key of ['reference', 'picture'] as const) {
        const listed = sample?.[key];
        const bytes = readFileSync(join(set, listed?.path ?? ''));
        expect(bytes.length).toBe(listed?.bytes);
        expect(createHash('sha256').update(bytes).digest('hex')).toBe(listed?.sha256);
        const image = await decodePng(new Uint8Array(bytes), nodeZlib, 1e7);
        expect([image.width, image.height]).toEqual([64, 64]);
        decoded[key] = image.data;
      }
      // `picture` is the CLI's picture for that prompt and seed, pixel for pixel; the reference differs.
      const cliOut = join(work, 'cli.png');
      await run('node', [
        CLI,
        '--model',
        set,
        '--prompt',
        prompt,
        '--seed',
        '3',
        '--size',
        '64x64',
        '--steps',
        '10',
        '--prior-steps',
        '10',
        '--guidance',
        '4',
        '--prior-guidance',
        '4',
        '--threads',
        '1',
        '--out',
        cliOut,
      ]);
      const cli = await decodePng(new Uint8Array(readFileSync(cliOut)), nodeZlib, 1e7);
      expect(Buffer.from(decoded.picture as Uint8Array).equals(Buffer.from(cli.data))).toBe(true);
      expect(Buffer.from(decoded.reference as Uint8Array).equals(Buffer.from(cli.data))).toBe(false);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }, 900_000); // a hang guard, not a speed check: a loaded 2-core machine took 222 s
});
