/**
 * One memory measurement in a fresh process, started by bench/kandinsky.bench.node.ts with
 * BENCH_PROBE (a JSON `Probe`) and BENCH_PROBE_OUT (where the JSON result goes). Without them it
 * does nothing, so a plain `vitest run --config bench/probe.config.node.ts` is harmless.
 *
 *   load        create one full-size component's session through ModelSet (bytes from a ModelFiles
 *               reader, external data as in-memory shards): peak RSS and ArrayBuffers ÷ file size
 *   store-load  one component from the model store (disk-backed records) vs from memory: seconds
 *   low-memory  a whole text→image generation on the full-size set, lowMemory on or off: peak RSS
 */
import { createHash } from 'node:crypto';
import { openAsBlob, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { it } from 'vitest';
import type { GraphComponentId } from '../models/contract';
import type { Manifest } from '../models/manifest';
import { buildCopyGraph } from '../workers/engine/denoise/step-graphs';
import { ModelSet } from '../workers/engine/model-set';
import { runPipeline } from '../workers/engine/pipeline';
import { graphsFor } from '../workers/engine/request';
import { DEFAULT_SETTINGS, type GenerationSettings } from '../workers/engine/settings';
import type { Sha256Factory } from '../workers/store/file-download';
import { FileSource } from '../workers/store/model-source';
import { ModelStore } from '../workers/store/model-store';
import { fileBackedStore } from './fs-record-store.node';
import { settle, startPeakMeter } from './memory.node';
import { CPU_SESSION_OPTIONS, FULL_DIR, fullSet, openSet, ortCpu } from './sets.node';

/**
 * How the session gets its weights: 'bytes', in JS buffers handed to onnxruntime (as the app does
 * from IndexedDB); 'path', the graph's path, onnxruntime mapping the external data from the files
 * (ModelFiles.localPath: the CLI and Node).
 */
export type LoadFrom = 'bytes' | 'path';

export type Probe =
  | { readonly kind: 'load'; readonly component: GraphComponentId; readonly from: LoadFrom }
  | { readonly kind: 'store-load'; readonly component: GraphComponentId; readonly repeats: number }
  | { readonly kind: 'low-memory'; readonly lowMemory: boolean };

const probeJson = process.env.BENCH_PROBE;
const out = process.env.BENCH_PROBE_OUT;

function finish(result: object): void {
  if (out) writeFileSync(out, JSON.stringify(result, null, 2));
}

const nodeSha256: Sha256Factory = () => {
  const hash = createHash('sha256');
  return { update: (bytes) => hash.update(bytes), digest: () => new Uint8Array(hash.digest()) };
};

async function loadProbe(component: GraphComponentId, from: LoadFrom) {
  const set = fullSet();
  const fileBytes = set.componentBytes(component);
  // onnxruntime's one-time start (thread pools, allocators) is not the component's: pay it first.
  await (await ortCpu.InferenceSession.create(buildCopyGraph(1), CPU_SESSION_OPTIONS)).release();
  const meter = await startPeakMeter();
  const read = async (path: string) => {
    const bytes = await set.files.read(path);
    meter.sample();
    return bytes;
  };
  const models = new ModelSet(
    ortCpu,
    set.manifest,
    from === 'path' && set.files.localPath ? { read, localPath: set.files.localPath } : { read },
    { sessionOptions: CPU_SESSION_OPTIONS },
  );
  const started = performance.now();
  await models.session(component);
  const seconds = (performance.now() - started) / 1000;
  const peak = meter.stop();
  await settle();
  const residentRss = process.memoryUsage().rss - peak.baseRss;
  await models.releaseAll();
  await settle();
  const afterReleaseRss = process.memoryUsage().rss - peak.baseRss;
  return {
    component,
    from,
    fileBytes,
    seconds,
    peakRss: peak.rss,
    peakArrayBuffers: peak.arrayBuffers,
    residentRss,
    afterReleaseRss,
    peakRssRatio: peak.rss / fileBytes,
    peakArrayBuffersRatio: peak.arrayBuffers / fileBytes,
  };
}

/** A manifest of just one component: the store selects every non-optional component it lists. */
function oneComponentManifest(manifest: Manifest, component: GraphComponentId): Manifest {
  const entry = manifest.components[component];
  if (!entry) throw new Error(`the full-size set has no ${component}`);
  return { ...manifest, components: { [component]: { ...entry, optional: false } } };
}

async function storeLoadProbe(component: GraphComponentId, repeats: number) {
  const set = fullSet();
  const manifest = oneComponentManifest(set.manifest, component);
  const files = manifest.components[component]?.files ?? [];
  const database = fileBackedStore(join(tmpdir(), 'kandinsky-bench-store-load'));
  try {
    const store = new ModelStore({ database, createHash: nodeSha256 });
    const blobs = new Map<string, Blob>();
    for (const file of files) blobs.set(file.path, (await openAsBlob(FULL_DIR + file.path)) as Blob);
    const started = performance.now();
    await store.download(new FileSource(blobs), manifest);
    const importSeconds = (performance.now() - started) / 1000;

    const timeSession = async (read: (path: string) => Promise<Uint8Array>) => {
      await settle();
      const models = new ModelSet(ortCpu, manifest, { read }, { sessionOptions: CPU_SESSION_OPTIONS });
      const t0 = performance.now();
      await models.session(component);
      const seconds = (performance.now() - t0) / 1000;
      await models.releaseAll();
      return seconds;
    };
    const runs = { store: [] as number[], storeVerified: [] as number[], memory: [] as number[] };
    for (let r = 0; r < repeats; r++) {
      runs.store.push(await timeSession((path) => store.openFile(manifest, component, path)));
      runs.storeVerified.push(
        await timeSession((path) => store.openFile(manifest, component, path, { verify: true })),
      );
      // A plain in-memory buffer: every file read into memory before the clock starts.
      const memory = new Map<string, Uint8Array>();
      for (const file of files) memory.set(file.path, new Uint8Array(await readFile(FULL_DIR + file.path)));
      runs.memory.push(
        await timeSession(async (path) => {
          const bytes = memory.get(path);
          if (!bytes) throw new Error(`not read: ${path}`);
          return bytes;
        }),
      );
      memory.clear();
    }
    return {
      component,
      fileBytes: files.reduce((n, f) => n + f.bytes, 0),
      importSeconds,
      seconds: runs,
    };
  } finally {
    database.dispose();
  }
}

async function lowMemoryProbe(lowMemory: boolean) {
  const set = fullSet();
  const settings: GenerationSettings = {
    ...DEFAULT_SETTINGS,
    mode: 'txt2img',
    prompt: 'a red lighthouse on a cliff',
    negativePrompt: '',
    seed: 7,
    width: 64,
    height: 64,
    priorSteps: 2,
    priorGuidance: 4,
    steps: 2,
    guidance: 4,
    scheduler: 'ddpm',
    numImages: 1,
  };
  const components = graphsFor({ settings });
  const sizes = Object.fromEntries(components.map((id) => [id, set.componentBytes(id)]));
  const meter = await startPeakMeter();
  const models = openSet(set);
  const started = performance.now();
  const result = await runPipeline(models, { settings }, { lowMemory, onProgress: () => meter.sample() });
  const seconds = (performance.now() - started) / 1000;
  const peak = meter.stop();
  await models.releaseAll();
  const largest = Math.max(...Object.values(sizes));
  const sum = Object.values(sizes).reduce((a, b) => a + b, 0);
  return {
    lowMemory,
    componentBytes: sizes,
    largestComponentBytes: largest,
    sumComponentBytes: sum,
    peakRss: peak.rss,
    peakArrayBuffers: peak.arrayBuffers,
    peakOverLargest: peak.rss / largest,
    peakOverSum: peak.rss / sum,
    seconds,
    timings: result.timings,
  };
}

it.skipIf(!probeJson)('benchmark probe', async () => {
  const probe = JSON.parse(probeJson ?? '{}') as Probe;
  if (probe.kind === 'load') finish(await loadProbe(probe.component, probe.from));
  else if (probe.kind === 'store-load') finish(await storeLoadProbe(probe.component, probe.repeats));
  else finish(await lowMemoryProbe(probe.lowMemory));
});
