/**
 * Peak memory while loading full-size components where the app loads them: in Chromium, in a
 * worker, on onnxruntime-web's WebGPU provider, each measurement in a fresh browser. Per row: one
 * component, or a text-to-image load stage (the components one after another, kept), until the GPU
 * has taken every weight (`queue.onSubmittedWorkDone`).
 *
 * Creating a session queues the upload of each weight from the JS bytes handed to onnxruntime and
 * returns before the GPU process has taken them; meanwhile they wait in shared upload memory,
 * mapped by both the renderer and the GPU process (so per-process RSS counts those pages twice).
 * `system`: the growth of the machine's used memory (MemTotal − MemAvailable), every page once.
 * On SwiftShader (this machine) "video memory" is the GPU process's anonymous RAM, so `system`
 * includes the weights' GPU copy, which a real GPU keeps in its own memory. `waitInLoad`: whether
 * the model set waits for the queue before handing out a session (ModelSet.createSession, the app's
 * way), so one component's uploads are done before the next one's bytes are read.
 *
 *   npx vite build --config e2e/harness/vite.config.ts && \
 *   LOAD_COMPONENTS=movq_decoder,text_encoder,prior npx vitest run --config bench/bench.config.node.ts bench/load-browser.bench.node.ts
 *
 * Needs the full-size random set (models/.random-full/fp32, see models/README.md) and Linux
 * (/proc): per Chromium process the kernel's peak-RSS mark is reset before each load and read
 * after it. Writes bench/load-browser.json; asserts nothing about memory.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { expect, it } from 'vitest';
import type { GraphComponentId } from '../models/contract';
import { graphsFor } from '../workers/engine/request';
import { type HarnessScope, openHarnessPage } from './harness-page.node';
import { availableBytes, totalBytes } from './memory.node';
import { FULL_DIR, fullSetPresent, REPO } from './sets.node';
import { startStaticServer } from './store-set.node';

const PORT = Number(process.env.BENCH_PORT ?? 4293);
/** The order a text-to-image generation loads its components in. */
const TEXT_TO_IMAGE_ORDER: readonly GraphComponentId[] = graphsFor({ settings: { mode: 'txt2img' } });
const COMPONENTS = (process.env.LOAD_COMPONENTS ?? 'movq_decoder,text_encoder,prior').split(
  ',',
) as GraphComponentId[];

/** pid → parent pid and command line, for every process now. */
function processTable(): Map<number, { ppid: number; cmdline: string }> {
  const table = new Map<number, { ppid: number; cmdline: string }>();
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid)) continue;
    try {
      // The command name may hold spaces and parentheses: the parent pid follows the last ')'.
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      table.set(pid, { ppid, cmdline: readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ') });
    } catch {
      // gone meanwhile
    }
  }
  return table;
}

/** The renderer and GPU processes of the browser started with `marker` on its command line. */
function browserProcesses(marker: string): { renderers: number[]; gpu: number[] } {
  const table = processTable();
  const roots = [...table].filter(([, p]) => p.cmdline.includes(marker)).map(([pid]) => pid);
  const family = new Set(roots);
  for (let grew = true; grew; ) {
    grew = false;
    for (const [pid, p] of table) {
      if (!family.has(pid) && family.has(p.ppid)) {
        family.add(pid);
        grew = true;
      }
    }
  }
  const of = (type: string) =>
    [...family].filter((pid) => table.get(pid)?.cmdline.includes(`--type=${type}`));
  return { renderers: of('renderer'), gpu: of('gpu-process') };
}

function statusBytes(pid: number, field: 'VmRSS' | 'VmHWM' | 'RssAnon' | 'RssShmem' | 'RssFile'): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return match?.[1] ? Number(match[1]) * 1024 : 0;
}

type Kinds = { anon: number; shmem: number };

/**
 * Resets each process's peak-RSS mark and samples its anonymous and shared-memory RSS every 20 ms;
 * `stop()` gives the largest growth since, as the kernel's mark and per kind (shared memory is
 * where Chromium puts mapped WebGPU buffers, seen by both the renderer and the GPU process).
 */
function peakGrowth(pids: number[]): { stop(): { rss: number } & Kinds } {
  const rssBase = new Map(pids.map((pid) => [pid, statusBytes(pid, 'VmRSS')]));
  const kinds = (pid: number): Kinds => ({
    anon: statusBytes(pid, 'RssAnon'),
    shmem: statusBytes(pid, 'RssShmem'),
  });
  const base = new Map(pids.map((pid) => [pid, kinds(pid)]));
  const peak: Kinds = { anon: 0, shmem: 0 };
  const sample = () => {
    for (const pid of pids) {
      try {
        const now = kinds(pid);
        const was = base.get(pid) ?? { anon: 0, shmem: 0 };
        peak.anon = Math.max(peak.anon, now.anon - was.anon);
        peak.shmem = Math.max(peak.shmem, now.shmem - was.shmem);
      } catch {
        // exited
      }
    }
  };
  for (const pid of pids) writeFileSync(`/proc/${pid}/clear_refs`, '5');
  const timer = setInterval(sample, 20);
  return {
    stop() {
      clearInterval(timer);
      sample();
      const rss = Math.max(0, ...pids.map((pid) => statusBytes(pid, 'VmHWM') - (rssBase.get(pid) ?? 0)));
      return { rss, ...peak };
    },
  };
}

/** Peak growth of the machine's used memory (MemTotal − MemAvailable): shared pages count once. */
function systemPeakGrowth(): { stop(): number } {
  const used = () => totalBytes() - availableBytes();
  const base = used();
  let peak = 0;
  const timer = setInterval(() => {
    peak = Math.max(peak, used() - base);
  }, 20);
  return {
    stop() {
      clearInterval(timer);
      return Math.max(peak, used() - base);
    },
  };
}

it.runIf(fullSetPresent())('peak memory loading full-size components in Chromium (WebGPU)', async () => {
  const set = await startStaticServer(FULL_DIR);
  const manifest = JSON.parse(readFileSync(join(FULL_DIR, 'manifest.json'), 'utf8')) as {
    components: Record<string, { files?: { bytes: number }[] }>;
  };
  // Each measurement in a browser of its own: released WebGPU memory comes back late, and a page
  // that loaded several GB already would start from a different place (or lose its device).
  let browserVersion = '';
  const measure = async (components: readonly GraphComponentId[], waitInLoad: boolean) => {
    const marker = `--kandinsky-load-bench=${process.pid}-${components.join('+')}-${waitInLoad}`;
    const harness = await openHarnessPage(PORT, [marker]);
    browserVersion = harness.browser.version();
    try {
      const load = (ids: readonly GraphComponentId[], wait: boolean) =>
        harness.page.evaluate(
          ([url, list, w]) => (globalThis as unknown as HarnessScope).parity.loadComponents(url, list, w),
          [`${set.origin}/`, ids, wait] as const,
        );
      // onnxruntime's own start (wasm instance, WebGPU device) is paid before the measurement.
      await load(['movq_encoder'], true);
      const fileBytes = components
        .flatMap((id) => manifest.components[id]?.files ?? [])
        .reduce((sum, f) => sum + f.bytes, 0);
      const largest = Math.max(
        ...components.map((id) => (manifest.components[id]?.files ?? []).reduce((n, f) => n + f.bytes, 0)),
      );
      const { renderers, gpu } = browserProcesses(marker);
      const rendererPeak = peakGrowth(renderers);
      const gpuPeak = peakGrowth(gpu);
      const systemPeak = systemPeakGrowth();
      const seconds = await load(components, waitInLoad);
      const renderer = rendererPeak.stop();
      const gpuProcess = gpuPeak.stop();
      const system = systemPeak.stop();
      const ratio = (bytes: number) => Number((bytes / fileBytes).toFixed(3));
      const row = {
        components,
        waitInLoad,
        fileBytes,
        largestComponentBytes: largest,
        seconds: Number(seconds.toFixed(1)),
        systemPeakBytes: system,
        systemPeakRatio: ratio(system),
        systemPeakPerLargest: Number((system / largest).toFixed(3)),
        rendererPeakBytes: renderer.rss,
        rendererPeakRatio: ratio(renderer.rss),
        rendererAnonPeakRatio: ratio(renderer.anon),
        gpuProcessPeakBytes: gpuProcess.rss,
        gpuProcessPeakRatio: ratio(gpuProcess.rss),
        gpuProcessAnonPeakRatio: ratio(gpuProcess.anon),
      };
      console.log(JSON.stringify(row));
      return row;
    } finally {
      await harness.close();
    }
  };
  try {
    const rows = [];
    for (const component of COMPONENTS) rows.push(await measure([component], true));
    // A generation's load stage: the components one after another, kept.
    const sequence = TEXT_TO_IMAGE_ORDER.filter((id) => COMPONENTS.includes(id));
    if (sequence.length > 1) {
      for (const waitInLoad of [true, false]) rows.push(await measure(sequence, waitInLoad));
    }
    const summary = {
      device: `Chromium ${browserVersion} headless, WebGPU on SwiftShader (GPU memory is the GPU process's RAM)`,
      goal: 1.3,
      rows,
    };
    writeFileSync(`${REPO}/bench/load-browser.json`, `${JSON.stringify(summary, null, 2)}\n`);
    expect(rows.length).toBeGreaterThanOrEqual(COMPONENTS.length);
  } finally {
    set.stop();
  }
});
