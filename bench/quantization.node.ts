/**
 * The `quantization` section of bench/results.json: per precision, the bytes of the real
 * text-to-image set (the `download` section, models/export/size_table.py through
 * bench/download_sizes.py) beside the end-to-end figure the export tool's `--quality` measures
 * (models/export/quality.py: the set's graphs through the CLI against fp32 diffusers, same seeds),
 * the target PSNR the app decides by, and the variant the app would open.
 *
 * No real weights are on the machines that run this: the figures are the tiny random sets' (the
 * committed fixtures tiny, tiny-int4 and tiny-int4c6, and `--random-weights tiny` exports of fp16
 * and int8), labelled `weights: "tiny-random"`, or, with BENCH_QUALITY_TABLE, those of a
 * models/export/quality_table.py run (models/quality/full-size-realistic.json: the full-size
 * realistic random weights, hours on a CPU, so measured beforehand); the bytes are the real set's.
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { ManifestQuality, Precision } from '../models/manifest';
import { choosePrecision, DEFAULT_TARGET_PSNR, type PrecisionOption } from '../workers/precision';

const run = promisify(execFile);

export interface QuantizationRow {
  readonly variant: Precision;
  /** Bytes of the real text-to-image set at this precision. */
  readonly bytes: number;
  readonly psnr: number;
  readonly ssim: number;
  readonly embeddingCosine: number;
}

export type QualityWeights =
  | 'tiny-random'
  | 'tiny-realistic'
  | 'full-size-random'
  | 'full-size-realistic'
  | 'pretrained';

export interface QuantizationSection {
  /**
   * Where the figures come from: the tiny random-weight sets (measured by the bench itself), or
   * the weights of a models/export/quality_table.py run (BENCH_QUALITY_TABLE); no real weights here.
   */
  readonly weights: QualityWeights;
  /** The calibration run behind every row (prompts × seeds, steps, picture side). */
  readonly calibration: Omit<ManifestQuality, 'psnr' | 'ssim' | 'embeddingCosine'>;
  readonly rows: readonly QuantizationRow[];
  readonly targetPsnr: number;
  /** What 'auto' opens given these figures, on an adapter with shader-f16. */
  readonly default: QuantizationRow;
  readonly defaultReason: string;
}

const ORDER: readonly Precision[] = ['fp32', 'fp16', 'int8', 'int4c6', 'int4', 'searched'];

/**
 * The section from the real set's text-to-image bytes per precision and the measured figures. The
 * default is workers/precision.ts's own choice over options with those bytes and figures.
 */
export function quantizationSection(
  textToImage: Readonly<Record<string, number>>,
  figures: Partial<Readonly<Record<Precision, ManifestQuality>>>,
  weights: QuantizationSection['weights'],
): QuantizationSection {
  const rows: QuantizationRow[] = [];
  let calibration: QuantizationSection['calibration'] | null = null;
  for (const variant of ORDER) {
    const figure = figures[variant];
    const bytes = textToImage[variant];
    if (!figure || bytes === undefined) continue;
    const { psnr, ssim, embeddingCosine, ...run } = figure;
    if (calibration && JSON.stringify(calibration) !== JSON.stringify(run)) {
      throw new Error(`${variant}: measured with another calibration run than the other rows`);
    }
    calibration = run;
    rows.push({ variant, bytes, psnr, ssim, embeddingCosine });
  }
  if (!calibration) throw new Error('no precision has both a size and a figure');
  const options: PrecisionOption[] = rows.map((row) => ({
    precision: row.variant,
    requiredFeatures: row.variant === 'fp16' ? ['shader-f16'] : [],
    manifest: row.variant === 'fp32' ? null : `manifest.${row.variant}.json`,
    textToImageBytes: row.bytes,
    checkCosine: null,
    quality: figures[row.variant] ?? null,
  }));
  const decision = choosePrecision(options, { shaderF16: true }, 'auto');
  const chosen = rows.find((row) => row.variant === decision.option.precision) as QuantizationRow;
  return {
    weights,
    calibration,
    rows,
    targetPsnr: DEFAULT_TARGET_PSNR,
    default: chosen,
    defaultReason: decision.reason,
  };
}

/** A models/export/quality_table.py table: per row its precision and figure; which weights. */
interface QualityTable {
  readonly weights: QualityWeights;
  readonly rows: readonly {
    readonly precision: Precision;
    readonly bytes: number;
    readonly quality: ManifestQuality;
  }[];
}

/**
 * The figures of a quality_table.py run (its JSON, e.g. models/quality/full-size-realistic.json):
 * a measurement made beforehand, hours at full size on a CPU, that the bench reports beside the
 * real set's bytes instead of measuring the tiny sets.
 */
export function figuresFromTable(path: string): {
  weights: QualityWeights;
  figures: Partial<Record<Precision, ManifestQuality>>;
  /** Text-to-image bytes of each row's set: a searched plan's size exists only there. */
  bytes: Partial<Record<Precision, number>>;
} {
  const table = JSON.parse(readFileSync(path, 'utf8')) as QualityTable;
  const figures: Partial<Record<Precision, ManifestQuality>> = {};
  const bytes: Partial<Record<Precision, number>> = {};
  for (const row of table.rows) {
    figures[row.precision] = row.quality;
    bytes[row.precision] = row.bytes;
  }
  return { weights: table.weights, figures, bytes };
}

/** The tiny sets measured, by precision: committed fixtures, or `--random-weights tiny` exports. */
export function tinySetDirs(repo: string): Record<Exclude<Precision, 'searched'>, string> {
  const fixtures = join(repo, 'models', 'fixtures');
  const random = join(repo, 'models', '.random-tiny');
  return {
    fp32: join(fixtures, 'tiny'),
    fp16: join(random, 'fp16'),
    int8: join(random, 'int8'),
    int4: join(fixtures, 'tiny-int4'),
    int4c6: join(fixtures, 'tiny-int4c6'),
  };
}

/** The reference environment's env.sh, if this machine has one. */
export function refenvScript(): string | undefined {
  const places = process.env.KANDINSKY_REFENV
    ? [process.env.KANDINSKY_REFENV]
    : ['/work/refenv/env.sh', '/tmp/refenv/env.sh'];
  return places.find((path) => existsSync(path));
}

/**
 * Measures every tiny set with models/export/quality.py (exporting fp16 and int8 first where
 * models/.random-tiny lacks them); needs the refenv and the built CLI (dist-cli/generate.mjs).
 */
export async function measureTinyQuality(repo: string): Promise<Record<Precision, ManifestQuality>> {
  const env = refenvScript();
  if (!env)
    throw new Error('no Python reference environment (KANDINSKY_REFENV, /work/refenv or /tmp/refenv)');
  if (!existsSync(join(repo, 'dist-cli', 'generate.mjs'))) {
    await run('npx', ['vite', 'build', '--config', 'scripts/cli.vite.config.ts', '--logLevel', 'warn'], {
      cwd: repo,
    });
  }
  const python = async (args: string[]) =>
    run('bash', ['-c', `. "${env}" && exec /usr/bin/python3 "$@"`, 'bash', ...args], {
      cwd: repo,
      maxBuffer: 64 << 20,
      timeout: 1_200_000,
    });
  const dirs = tinySetDirs(repo);
  const out = mkdtempSync(join(tmpdir(), 'kandinsky-quantization-'));
  const figures: Partial<Record<Precision, ManifestQuality>> = {};
  try {
    for (const [precision, dir] of Object.entries(dirs) as [Precision, string][]) {
      if (!existsSync(join(dir, 'manifest.json'))) {
        await python([
          'models/export/kandinsky_export.py',
          '--random-weights',
          'tiny',
          '--precision',
          precision,
        ]);
      }
      const json = join(out, `${precision}.json`);
      await python(['models/export/quality.py', dir, '--tiny', '--json', json]);
      figures[precision] = (JSON.parse(readFileSync(json, 'utf8')) as { quality: ManifestQuality }).quality;
    }
  } finally {
    rmSync(out, { recursive: true, force: true });
  }
  return figures as Record<Precision, ManifestQuality>;
}
