/**
 * The performance suite (`npm run bench`): engine overhead (onnxruntime-node, and the app's own
 * loop on WebGPU), CFG batching, load memory, store vs memory load, graph capture on WebGPU,
 * low-memory peak, download size per precision preset, size against end-to-end quality per
 * precision (bench/quantization.node.ts), and time to first image in Chromium. Writes
 * bench/results.json and bench/results.md.
 *
 *   npx vitest run --config bench/bench.config.node.ts bench/kandinsky.bench.node.ts
 *   BENCH_SECTIONS=overhead,cfg npx vitest run ...   # some sections; the others keep their last figures
 *   BENCH_QUALITY_TABLE=models/quality/full-size-realistic.json ...   # quantization from that table
 *
 * Figures, not pass/fail. Sections that need what this machine lacks (the full-size random set in
 * models/.random-full/fp32, enough free memory, /usr/bin/chromium, the refenv Python) record why
 * they were skipped instead of failing. Memory probes run in fresh processes (bench/probes.probe.node.ts).
 */
import { execFile } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, expect, it } from 'vitest';
import type { GraphComponentId } from '../models/contract';
import { graphsFor } from '../workers/engine/request';
import { measureBrowser } from './browser.node';
import { measureCapture, measureWebGpuCfg, measureWebGpuLoop } from './capture-browser.node';
import { measureCfg, measureOverhead } from './engine-timing.node';
import { availableBytes } from './memory.node';
import type { Probe } from './probes.probe.node';
import { figuresFromTable, measureTinyQuality, quantizationSection } from './quantization.node';
import { renderMarkdown } from './report.node';
import { FULL_DIR, fullSet, fullSetPresent, midSet, midUnetExported, REPO, tinySet } from './sets.node';

const run = promisify(execFile);
const RESULTS_JSON = `${REPO}bench/results.json`;
const RESULTS_MD = `${REPO}bench/results.md`;
const ALL = [
  'overhead',
  'webgpu-overhead',
  'cfg',
  'capture',
  'load',
  'store',
  'lowmem',
  'download',
  'quantization',
  'browser',
] as const;
type Section = (typeof ALL)[number];
const wanted = new Set<string>(
  process.env.BENCH_SECTIONS ? process.env.BENCH_SECTIONS.split(',').map((s) => s.trim()) : ALL,
);
const results: Record<string, unknown> = existsSync(RESULTS_JSON)
  ? (JSON.parse(readFileSync(RESULTS_JSON, 'utf8')) as Record<string, unknown>)
  : {};

function record(section: Section, value: object): void {
  results[section] = { measuredAt: new Date().toISOString(), ...value };
  writeFileSync(RESULTS_JSON, `${JSON.stringify(results, null, 2)}\n`);
}

const skipped = (reason: string) => ({ skipped: reason });

afterAll(() => {
  results.machine = machine();
  writeFileSync(RESULTS_JSON, `${JSON.stringify(results, null, 2)}\n`);
  writeFileSync(RESULTS_MD, renderMarkdown(results));
});

function machine() {
  const cpu = /model name\s*:\s*(.+)/.exec(readFileSync('/proc/cpuinfo', 'utf8'))?.[1] ?? 'unknown';
  const cores = readFileSync('/proc/cpuinfo', 'utf8').match(/^processor\s*:/gm)?.length ?? 0;
  const memory = /^MemTotal:\s+(\d+) kB/m.exec(readFileSync('/proc/meminfo', 'utf8'))?.[1];
  return { cpu, cores, memoryBytes: Number(memory ?? 0) * 1024, node: process.version };
}

/** Runs bench/probes.probe.node.ts in a fresh Vitest process and returns what it wrote. */
async function probe<T>(spec: Probe): Promise<T> {
  const dir = mkdtempSync(join(tmpdir(), 'kandinsky-probe-'));
  const out = join(dir, 'result.json');
  try {
    await run('npx', ['vitest', 'run', '--config', 'bench/probe.config.node.ts'], {
      cwd: REPO,
      env: { ...process.env, BENCH_PROBE: JSON.stringify(spec), BENCH_PROBE_OUT: out },
      maxBuffer: 64 * 1024 * 1024,
      timeout: 1_800_000,
    });
    return JSON.parse(readFileSync(out, 'utf8')) as T;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

async function probeOrError<T>(spec: Probe): Promise<T | { error: string }> {
  try {
    return await probe<T>(spec);
  } catch (error) {
    const text = String((error as { stderr?: string }).stderr ?? error);
    return { error: text.slice(-2000) };
  }
}

const HOUR = 3_600_000;

/** The export tool's Python (refenv here; `python3` with torch + diffusers elsewhere). */
function pythonCommand(script: string): string[] {
  const python = existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
  const env = '/work/refenv/env.sh';
  return ['-c', `${existsSync(env) ? `. ${env} && ` : ''}${python} ${script}`];
}

/** Exports the mid-size UNet once (about 2 minutes, 1.3 GB in bench/.cache); failures leave it skipped. */
async function exportMidUnet(): Promise<void> {
  try {
    await run('bash', pythonCommand('bench/export_mid_unet.py'), {
      cwd: REPO,
      maxBuffer: 64 * 1024 * 1024,
      timeout: 1_200_000,
    });
  } catch (error) {
    console.warn(`bench/export_mid_unet.py failed: ${String(error).slice(0, 500)}`);
  }
}

it.runIf(wanted.has('overhead'))(
  'engine overhead: engine loop step ÷ bare session.run',
  async () => {
    const rows = [];
    for (const residency of ['cpu', 'gpu'] as const)
      rows.push(await measureOverhead(tinySet(), residency, { sidePx: 64, steps: 12, rounds: 25 }));
    let mid: object = skipped('bench/.cache/mid-unet is missing: run bench/export_mid_unet.py');
    if (!midUnetExported()) await exportMidUnet();
    if (midUnetExported()) {
      const set = midSet();
      for (const residency of ['cpu', 'gpu'] as const)
        rows.push(await measureOverhead(set, residency, { sidePx: 128, steps: 6, rounds: 6 }));
      mid = { parameters: set.parameters, unetBytes: set.componentBytes('unet') };
    }
    record('overhead', { goal: 1.05, rows, mid });
    expect(rows.length).toBeGreaterThan(0);
  },
  HOUR,
);

it.runIf(wanted.has('webgpu-overhead'))(
  'engine overhead on WebGPU: denoise stage ÷ bare captured replays, Chromium (SwiftShader WebGPU)',
  async () => {
    try {
      record('webgpu-overhead', { goal: 1.05, ...(await measureWebGpuLoop([64, 128], 8, 3)) });
    } catch (error) {
      record(
        'webgpu-overhead',
        skipped(`needs /usr/bin/chromium and the harness build: ${String(error).slice(0, 500)}`),
      );
    }
  },
  HOUR,
);

it.runIf(wanted.has('cfg'))(
  'CFG: one batch-2 UNet call vs two batch-1 calls',
  async () => {
    const rows = [await measureCfg(tinySet(), { sidePx: 64, runs: 40 })];
    if (midUnetExported()) rows.push(await measureCfg(midSet(), { sidePx: 128, runs: 8 }));
    let webGpu: object = {};
    try {
      rows.push(...(await measureWebGpuCfg([8, 16], 6)));
    } catch (error) {
      webGpu = {
        webGpuSkipped: `needs /usr/bin/chromium and the harness build: ${String(error).slice(0, 500)}`,
      };
    }
    record('cfg', { rows, ...webGpu });
  },
  HOUR,
);

const LOAD_COMPONENTS: GraphComponentId[] = [
  'movq_decoder',
  'movq_encoder',
  'text_encoder',
  'prior',
  'unet',
  'image_encoder',
];

it.runIf(wanted.has('load'))(
  'load: peak memory while creating each full-size session ÷ its file size',
  async () => {
    if (!fullSetPresent()) return record('load', skipped(`no full-size random set in ${FULL_DIR}`));
    const set = fullSet();
    const rows: object[] = [];
    for (const component of LOAD_COMPONENTS) {
      const bytes = set.componentBytes(component);
      for (const from of ['bytes', 'path'] as const) {
        // Room for the bytes in JS (when read), onnxruntime's copy and some slack, so the machine stays usable.
        const need = (from === 'bytes' ? 2.5 : 1.5) * bytes + 2e9;
        if (availableBytes() < need) {
          rows.push({
            component,
            from,
            fileBytes: bytes,
            skipped: `needs ${(need / 1e9).toFixed(1)} GB available`,
          });
          continue;
        }
        rows.push(await probeOrError({ kind: 'load', component, from }));
      }
    }
    record('load', { goal: 1.3, rows });
  },
  3 * HOUR,
);

it.runIf(wanted.has('store'))(
  'cold load from the model store vs from memory',
  async () => {
    if (!fullSetPresent()) return record('store', skipped(`no full-size random set in ${FULL_DIR}`));
    record('store', await probeOrError({ kind: 'store-load', component: 'text_encoder', repeats: 2 }));
  },
  HOUR,
);

it.runIf(wanted.has('lowmem'))(
  'low-memory mode: peak while generating on the full-size set, on vs off',
  async () => {
    if (!fullSetPresent()) return record('lowmem', skipped(`no full-size random set in ${FULL_DIR}`));
    const set = fullSet();
    const sizes = graphsFor({ settings: { mode: 'txt2img' } }).map((id) => set.componentBytes(id));
    const sum = sizes.reduce((a, b) => a + b, 0);
    const largest = Math.max(...sizes);
    const on =
      availableBytes() > 2.5 * largest + 2e9
        ? await probeOrError({ kind: 'low-memory', lowMemory: true })
        : skipped('not enough memory');
    const force = process.env.BENCH_LOWMEM_OFF === '1';
    const off =
      force || availableBytes() > 1.6 * sum + 2e9
        ? await probeOrError({ kind: 'low-memory', lowMemory: false })
        : skipped(
            `needs ~${((1.6 * sum + 2e9) / 1e9).toFixed(0)} GB available (has ${(availableBytes() / 1e9).toFixed(0)}); BENCH_LOWMEM_OFF=1 forces it`,
          );
    record('lowmem', { on, off, largestComponentBytes: largest, sumComponentBytes: sum });
  },
  2 * HOUR,
);

it.runIf(wanted.has('download'))(
  'download: bytes of the real text→image set per precision preset',
  async () => {
    try {
      const { stdout } = await run('bash', pythonCommand('bench/download_sizes.py'), {
        cwd: REPO,
        maxBuffer: 16 * 1024 * 1024,
        timeout: 600_000,
      });
      record('download', { goalBytes: 2.0e9, ...(JSON.parse(stdout) as object) });
    } catch (error) {
      record('download', skipped(`bench/download_sizes.py failed: ${String(error).slice(0, 500)}`));
    }
  },
  HOUR,
);

it.runIf(wanted.has('quantization'))(
  'quantization: size of the real text→image set against the end-to-end figure per precision',
  async () => {
    const download = results.download as { textToImage?: Record<string, number> } | undefined;
    if (!download?.textToImage) {
      record('quantization', skipped('needs the download section (bytes of the real set) first'));
      return;
    }
    try {
      // BENCH_QUALITY_TABLE: a quality_table.py run's figures (full size: hours); else the tiny sets.
      const table = process.env.BENCH_QUALITY_TABLE;
      // The real set's bytes per preset; a searched plan's from the table (the same shapes as the
      // real set's, so the same bytes).
      const { figures, weights, bytes } = table
        ? figuresFromTable(table)
        : { figures: await measureTinyQuality(REPO), weights: 'tiny-random' as const, bytes: {} };
      const textToImage = { ...bytes, ...download.textToImage };
      record('quantization', { ...quantizationSection(textToImage, figures, weights) });
    } catch (error) {
      record('quantization', skipped(`models/export/quality.py failed: ${String(error).slice(0, 500)}`));
    }
  },
  HOUR,
);

it.runIf(wanted.has('browser'))(
  'browser: time to first image on the fixture set in Chromium (SwiftShader WebGPU)',
  async () => {
    record('browser', await measureBrowser());
  },
  HOUR,
);

it.runIf(wanted.has('capture'))(
  'capture: the UNet as a plain session vs a graph-captured replay in Chromium (SwiftShader WebGPU)',
  async () => {
    try {
      record('capture', await measureCapture([8, 16], 20));
    } catch (error) {
      record(
        'capture',
        skipped(`needs /usr/bin/chromium and the harness build: ${String(error).slice(0, 500)}`),
      );
    }
  },
  HOUR,
);
