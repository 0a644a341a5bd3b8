/// <reference lib="webworker" />
/**
 * Browser parity harness: runs the reference cases of the tiny fixture set (reference/, and the
 * mixing and depth recordings of reference-mix/ and reference-depth/) through the engine on
 * onnxruntime-web's WebGPU provider and reports, per recorded intermediate, the error against
 * diffusers. Built only for the e2e tests (e2e/harness/vite.config.ts), never into the app.
 */
import * as Comlink from 'comlink';
import type { InferenceSession } from 'onnxruntime-common';
import type { GraphComponentId } from '../../models/contract';
import { type Manifest, parseManifest } from '../../models/manifest';
import {
  checkDepthCase,
  compareDepthEstimate,
  type DepthEstimateCheck,
  type DepthReferenceData,
  type DepthReferenceIndex,
} from '../../test-support/depth-reference';
import {
  checkMixCase,
  type MixReferenceData,
  type MixReferenceIndex,
} from '../../test-support/mix-reference';
import { parseNpy, parseNpyFloat32 } from '../../test-support/npy';
import {
  checkReferenceCase,
  type RecordedTensor,
  type ReferenceIndex,
  type TensorCheck,
} from '../../test-support/reference-cases';
import { downloadResident } from '../../workers/engine/denoise/device-step';
import type { StageTimings } from '../../workers/engine/hooks';
import { ModelSet } from '../../workers/engine/model-set';
import { gpuReadbacks, type LiveCounts, liveOrtObjects, type Tensor } from '../../workers/engine/ort';
import { runPipeline } from '../../workers/engine/pipeline';
import { decodePng } from '../../workers/engine/png';
import { DEFAULT_SETTINGS, type GenerationSettings } from '../../workers/engine/settings';
import { estimateDepth } from '../../workers/engine/stages/depth-estimator';
import { webZlib } from '../../workers/engine/web-zlib';
import { ortWeb, webGpuDeviceTensors } from '../../workers/ort-web';
import { UrlSource } from '../../workers/store/model-source';
import { ModelStore } from '../../workers/store/model-store';
import { openStoreDatabase } from '../../workers/store/store-database';

const SET_URL = new URL('../models/tiny/', import.meta.url);

async function fetchBytes(path: string): Promise<Uint8Array> {
  const response = await fetch(new URL(path, SET_URL));
  if (!response.ok) throw new Error(`GET ${path}: HTTP ${response.status}`);
  return new Uint8Array(await response.arrayBuffer());
}

const json = async <T>(path: string): Promise<T> =>
  JSON.parse(new TextDecoder().decode(await fetchBytes(path))) as T;

let models: ModelSet | null = null;

const picture = async (path: string) => decodePng(await fetchBytes(path), webZlib, 1e7);

async function recorded(path: string): Promise<RecordedTensor> {
  const array = parseNpy(await fetchBytes(path));
  return { data: array.data as ArrayLike<number | bigint>, shape: array.shape };
}

const mixData: MixReferenceData = {
  image: (path) => picture(`reference-mix/${path}`),
  tensor: async (c, name) => {
    const entry = c.tensors[name];
    return entry ? recorded(`reference-mix/${c.name}/${entry.file}`) : null;
  },
};

const depthData: DepthReferenceData = {
  image: (path) => picture(`reference-depth/${path}`),
  tensor: async (folder, name) => parseNpyFloat32(await fetchBytes(`reference-depth/${folder}/${name}.npy`)),
};

/** The tiny set on WebGPU; `capture`: with device buffers, so UNet loops are graph-captured (the app's way). */
async function openTinySet(
  capture: boolean,
  sessionOptions: InferenceSession.SessionOptions = {},
): Promise<ModelSet> {
  return new ModelSet(
    ortWeb(),
    parseManifest(await json('manifest.json')),
    { read: fetchBytes },
    {
      sessionOptions: { executionProviders: ['webgpu'], ...sessionOptions },
      ...(capture ? { deviceTensors: webGpuDeviceTensors() } : {}),
    },
  );
}

/** One run of a graph-capture comparison (compareGraphCapture). */
export interface CaptureRun {
  readonly name: string;
  /** Largest |captured − plain| over the final float image. */
  readonly imageMaxAbs: number;
  /** Readbacks per denoising step on the captured set (no previews). */
  readonly capturedReadbacksPerStep: number[];
  readonly capturedStepMs: number;
  readonly plainStepMs: number;
}

async function modelSet(): Promise<ModelSet> {
  models ??= await openTinySet(true);
  return models;
}

/** A photo-like test picture: a gradient with a bright disc. */
function testPhoto(size: number) {
  const data = new Uint8Array(size * size * 4);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const disc = (x - size / 2) ** 2 + (y - size / 2) ** 2 < (size / 4) ** 2;
      data.set(
        disc ? [240, 220, 200, 255] : [(x * 255) / size, (y * 255) / size, 90, 255],
        (y * size + x) * 4,
      );
    }
  }
  return { width: size, height: size, data };
}

/** Median wall time between denoise progress events, and the readbacks made during each step. */
async function generateTimed(set: ModelSet, settings: GenerationSettings) {
  const stamps: number[] = [];
  const readbacks: number[] = [];
  let before = gpuReadbacks();
  const result = await runPipeline(
    set,
    { settings },
    {
      onProgress: (p) => {
        if (p.stage !== 'denoise') return;
        stamps.push(performance.now());
        readbacks.push(gpuReadbacks() - before);
        before = gpuReadbacks();
      },
    },
  );
  const gaps = stamps.slice(1).map((t, i) => t - (stamps[i] as number));
  const stepMs = gaps.sort((a, b) => a - b)[Math.floor(gaps.length / 2)] ?? Number.NaN;
  return { floatImages: result.floatImages, readbacks, stepMs };
}

/** The tiny UNet's input shapes at batch `batch`, `latent`×`latent` latents. */
function unetDims(batch: number, latent: number): Record<'sample' | 'timestep' | 'image_embeds', number[]> {
  return { sample: [batch, 4, latent, latent], timestep: [batch], image_embeds: [batch, 32] };
}

/**
 * `runs` calls of `session` back to back after 3 warm-up calls, one readback at the end: the median
 * time for `run` to return (issue) and the wall time per call. Milliseconds.
 */
async function timeRuns(
  set: ModelSet,
  session: InferenceSession,
  feeds: Record<string, Tensor>,
  runs: number,
): Promise<{ issueMs: number; perRunMs: number }> {
  const once = async () => {
    const started = performance.now();
    const out = await session.run(feeds);
    const issued = performance.now() - started;
    return { out: out.noise_pred as Tensor, issued };
  };
  for (let i = 0; i < 3; i++) {
    const { out } = await once();
    await downloadResident(set, out);
    out.dispose();
  }
  const issues: number[] = [];
  const started = performance.now();
  let last: Tensor | null = null;
  for (let i = 0; i < runs; i++) {
    last?.dispose();
    const { out, issued } = await once();
    issues.push(issued);
    last = out;
  }
  if (last) await downloadResident(set, last);
  const perRunMs = (performance.now() - started) / runs;
  last?.dispose();
  const sorted = [...issues].sort((a, b) => a - b);
  return { issueMs: sorted[Math.floor(sorted.length / 2)] ?? Number.NaN, perRunMs };
}

/** GPU buffers of the given shapes as feeds; `buffers` collects them for destruction. */
async function deviceFeeds(
  dims: Record<string, readonly number[]>,
  buffers: { destroy(): void }[],
): Promise<Record<string, Tensor>> {
  const deviceTensors = webGpuDeviceTensors();
  const feeds: Record<string, Tensor> = {};
  for (const [name, shape] of Object.entries(dims)) {
    const made = await deviceTensors.float32(shape);
    buffers.push(made);
    feeds[name] = made.tensor;
  }
  return feeds;
}

const api = {
  /**
   * The UNet's cost per call on WebGPU, plain session vs graph-captured replay, batch 2 at
   * `latent`×`latent` latents. issue: how long `session.run` takes to return (the CPU work of
   * encoding and submitting every kernel; on a fast GPU this is what leaves it waiting);
   * perRun: `runs` calls back to back and one readback at the end, ÷ runs. Milliseconds, medians.
   */
  async timeUnetCalls(
    runs: number,
    latent: number,
  ): Promise<Record<'plain' | 'captured', { issueMs: number; perRunMs: number }>> {
    const dims = unetDims(2, latent);
    const time = (set: ModelSet, session: InferenceSession, feeds: Record<string, Tensor>) =>
      timeRuns(set, session, feeds, runs);
    const plainSet = await openTinySet(false);
    const buffers: { destroy(): void }[] = [];
    try {
      const session = await plainSet.session('unet');
      const feeds = await deviceFeeds(dims, buffers);
      const plain = await time(plainSet, session, feeds);
      const capturedSet = await openTinySet(true);
      try {
        const loop = await capturedSet.loopSession('unet', dims);
        if (!loop.captured) throw new Error(`Not captured: ${[...capturedSet.captureRefused().values()]}`);
        return { plain, captured: await time(capturedSet, loop.session, loop.captured.inputs) };
      } finally {
        await capturedSet.releaseAll();
      }
    } finally {
      for (const buffer of buffers) buffer.destroy();
      await plainSet.releaseAll();
    }
  },

  /**
   * Classifier-free guidance on WebGPU: one batch-2 call vs two batch-1 calls of the same plain UNet
   * session (GPU-buffer inputs and outputs), at `latent`×`latent` latents. Each side: `runs` steps
   * back to back, one readback at the end. Milliseconds per step.
   */
  async timeCfgCalls(runs: number, latent: number): Promise<{ batch2Ms: number; twoBatch1Ms: number }> {
    const set = await openTinySet(false);
    const buffers: { destroy(): void }[] = [];
    try {
      const session = await set.session('unet');
      const pair = await deviceFeeds(unetDims(2, latent), buffers);
      const single = await deviceFeeds(unetDims(1, latent), buffers);
      const batch2 = await timeRuns(set, session, pair, runs);
      const batch1 = await timeRuns(set, session, single, 2 * runs);
      return { batch2Ms: batch2.perRunMs, twoBatch1Ms: 2 * batch1.perRunMs };
    } finally {
      for (const buffer of buffers) buffer.destroy();
      await set.releaseAll();
    }
  },

  /**
   * Engine overhead on WebGPU, the app's way (graph-captured UNet, step graphs, no previews): a
   * guided DDPM generation's denoise stage (`steps` steps at `size`² px: the fills before the first
   * step, every UNet replay and step graph, the one readback of the final latents) against `steps`
   * bare replays of the same captured UNet session with one readback at the end. Milliseconds.
   */
  async timeDenoiseLoop(steps: number, size: number): Promise<{ denoiseMs: number; bareMs: number }> {
    const set = await openTinySet(true);
    try {
      const settings: GenerationSettings = {
        ...DEFAULT_SETTINGS,
        mode: 'txt2img',
        prompt: 'a red lighthouse on a cliff',
        negativePrompt: '',
        width: size,
        height: size,
        priorSteps: 2,
        steps,
        guidance: 4,
        seed: 11,
        scheduler: 'ddpm',
        numImages: 1,
      };
      // Sessions created, the UNet captured and its first replays done.
      await runPipeline(set, { settings: { ...settings, steps: 2 } });
      const { timings } = await runPipeline(set, { settings });
      const loop = await set.loopSession('unet', unetDims(2, size / 8));
      if (!loop.captured) throw new Error(`Not captured: ${[...set.captureRefused().values()]}`);
      const started = performance.now();
      let out: Tensor | undefined;
      for (let i = 0; i < steps; i++) {
        out?.dispose();
        out = (await loop.session.run(loop.captured.inputs)).noise_pred as Tensor;
      }
      // getData, not downloadResident: a copy session fed another buffer right after a captured
      // run is refused (captured-loop.ts).
      await out?.getData();
      const bareMs = performance.now() - started;
      out?.dispose();
      return { denoiseMs: timings.denoise, bareMs };
    } finally {
      await set.releaseAll();
    }
  },

  /**
   * The same generations on a graph-capturing set and on a plain one, both WebGPU: guided DDPM,
   * then unguided DPM-Solver++ at another size (a new capture), then the first again (captured
   * anew: only the last shape's session is kept); every other mode runs captured in the reference
   * cases. The captured set logs at info level so that onnxruntime's "Replaying the captured"
   * lines reach the console.
   */
  async compareGraphCapture(): Promise<{
    runs: CaptureRun[];
    refused: string[];
    liveAfter: LiveCounts;
    liveBefore: LiveCounts;
  }> {
    const liveBefore = liveOrtObjects();
    const captured = await openTinySet(true, { logSeverityLevel: 1 });
    const plain = await openTinySet(false);
    const base: GenerationSettings = {
      ...DEFAULT_SETTINGS,
      prompt: 'a lighthouse in a storm',
      negativePrompt: 'blurry',
      width: 64,
      height: 64,
      priorSteps: 2,
      steps: 4,
      seed: 77,
      scheduler: 'ddpm',
    };
    const scenarios: [string, GenerationSettings][] = [
      ['txt2img 64×64 guided ddpm', base],
      [
        'txt2img 64×128 unguided dpm-solver++',
        { ...base, width: 128, guidance: 1, scheduler: 'dpmpp-2m', seed: 78 },
      ],
      ['txt2img 64×64 guided ddpm again', base],
    ];
    const runs: CaptureRun[] = [];
    // The plain loop is not what is under test: a scenario repeated (the third) is compared with its
    // first plain picture rather than decoded again (MoVQ is most of a run on SwiftShader).
    const plainRuns = new Map<GenerationSettings, Awaited<ReturnType<typeof generateTimed>>>();
    try {
      for (const [name, settings] of scenarios) {
        const a = await generateTimed(captured, settings);
        const b = plainRuns.get(settings) ?? (await generateTimed(plain, settings));
        plainRuns.set(settings, b);
        let imageMaxAbs = 0;
        for (let i = 0; i < a.floatImages.length; i++) {
          imageMaxAbs = Math.max(
            imageMaxAbs,
            Math.abs((a.floatImages[i] as number) - (b.floatImages[i] as number)),
          );
        }
        runs.push({
          name,
          imageMaxAbs,
          capturedReadbacksPerStep: a.readbacks,
          capturedStepMs: a.stepMs,
          plainStepMs: b.stepMs,
        });
      }
      return {
        runs,
        refused: [...captured.captureRefused().entries()].map(([id, why]) => `${id}: ${why}`),
        liveBefore,
        liveAfter: await (async () => {
          await captured.releaseAll();
          await plain.releaseAll();
          return liveOrtObjects();
        })(),
      };
    } finally {
      await captured.releaseAll();
      await plain.releaseAll();
    }
  },

  /** Times the depth estimator on WebGPU: the first run (session and shaders) and the rest. */
  async timeDepth(runs: number, size: number): Promise<{ firstMs: number; laterMs: number[] }> {
    const models = await modelSet();
    const photo = testPhoto(size);
    const times: number[] = [];
    for (let i = 0; i < runs; i++) {
      const start = performance.now();
      await estimateDepth(models, photo);
      times.push(performance.now() - start);
    }
    await models.release('depth_estimator');
    return { firstMs: times[0] ?? Number.NaN, laterMs: times.slice(1) };
  },

  /**
   * Store benchmark (bench/store-browser.bench.node.ts): the files of `manifestUrl`'s set fetched
   * `concurrency` at a time and dropped ('plain'), or downloaded by the model store into a fresh
   * IndexedDB database, hashed and verified ('store'; the database is deleted afterwards). Seconds.
   */
  async timeDownload(manifestUrl: string, mode: 'plain' | 'store', concurrency: number): Promise<number> {
    // The bench's set carries only what the store reads (files, hashes), not a loadable model set.
    const manifest = (await (await fetch(manifestUrl)).json()) as Manifest;
    const started = performance.now();
    if (mode === 'plain') {
      const paths = Object.values(manifest.components).flatMap((c) => c?.files.map((f) => f.path) ?? []);
      const next = async () => {
        for (let path = paths.shift(); path !== undefined; path = paths.shift()) {
          const reader = (await fetch(new URL(path, manifestUrl))).body?.getReader();
          while (reader && !(await reader.read()).done) {
            // dropped
          }
        }
      };
      await Promise.all(Array.from({ length: concurrency }, next));
      return (performance.now() - started) / 1000;
    }
    const dbName = `store-bench-${Date.now()}`;
    const store = new ModelStore({ database: openStoreDatabase(indexedDB, dbName), concurrency });
    try {
      await store.download(new UrlSource(manifestUrl), manifest);
      return (performance.now() - started) / 1000;
    } finally {
      await new Promise((resolve) => {
        const request = indexedDB.deleteDatabase(dbName);
        request.onsuccess = request.onerror = request.onblocked = resolve;
      });
    }
  },

  /**
   * The ceiling any IndexedDB store has here: `totalBytes` written from memory as `chunkBytes`
   * ArrayBuffers, one put per transaction, `writers` at a time, into a fresh database (deleted
   * afterwards). No network, no hashing. Seconds.
   */
  async timeIndexedDbWrites(totalBytes: number, chunkBytes: number, writers: number): Promise<number> {
    const dbName = `store-bench-idb-${Date.now()}`;
    const db = await new Promise<IDBDatabase>((resolve, reject) => {
      const request = indexedDB.open(dbName);
      request.onupgradeneeded = () => request.result.createObjectStore('chunks');
      request.onsuccess = () => resolve(request.result);
      request.onerror = () => reject(request.error);
    });
    const value = new Uint8Array(chunkBytes);
    crypto.getRandomValues(value.subarray(0, 65_536));
    const chunks = Math.ceil(totalBytes / chunkBytes);
    let nextKey = 0;
    const writer = async () => {
      for (let key = nextKey++; key < chunks; key = nextKey++) {
        await new Promise((resolve, reject) => {
          const transaction = db.transaction('chunks', 'readwrite');
          transaction.objectStore('chunks').put(value.buffer, key);
          transaction.oncomplete = resolve;
          transaction.onerror = () => reject(transaction.error);
        });
      }
    };
    const started = performance.now();
    try {
      await Promise.all(Array.from({ length: writers }, writer));
      return (performance.now() - started) / 1000;
    } finally {
      db.close();
      indexedDB.deleteDatabase(dbName);
    }
  },

  /**
   * Load-memory benchmark (bench/load-browser.bench.node.ts): creates the WebGPU sessions of
   * `components` of the model set at `setUrl` one after another, as a generation's load stage does
   * (read over HTTP, as the store would hand them over), waits until the GPU has taken their
   * weights, and releases them. `waitInLoad`: the app's way, the model set itself waiting for each
   * session's uploads before handing it out (ModelSet.createSession); false: without that wait.
   * Seconds until the sessions were ready and their weights uploaded.
   */
  async loadComponents(
    setUrl: string,
    components: readonly GraphComponentId[],
    waitInLoad = true,
  ): Promise<number> {
    const read = async (path: string) => {
      const response = await fetch(new URL(path, setUrl));
      if (!response.ok) throw new Error(`GET ${path}: HTTP ${response.status}`);
      return new Uint8Array(await response.arrayBuffer());
    };
    const manifest = parseManifest(JSON.parse(new TextDecoder().decode(await read('manifest.json'))));
    const deviceTensors = webGpuDeviceTensors();
    const set = new ModelSet(
      ortWeb(),
      manifest,
      { read },
      {
        sessionOptions: { executionProviders: ['webgpu'] },
        ...(waitInLoad ? { deviceTensors } : {}),
      },
    );
    const started = performance.now();
    try {
      for (const component of components) await set.session(component);
      await deviceTensors.queueIdle?.();
      return (performance.now() - started) / 1000;
    } finally {
      await set.releaseAll();
    }
  },

  /** SHA-256 of `totalBytes` in `chunkBytes` pieces with crypto.subtle, `inFlight` at a time. Seconds. */
  async timeDigests(totalBytes: number, chunkBytes: number, inFlight: number): Promise<number> {
    const chunk = new Uint8Array(chunkBytes);
    const pending: Promise<ArrayBuffer>[] = [];
    const started = performance.now();
    for (let done = 0; done < totalBytes; done += chunkBytes) {
      pending.push(crypto.subtle.digest('SHA-256', chunk));
      if (pending.length >= inFlight) await pending.shift();
    }
    await Promise.all(pending);
    return (performance.now() - started) / 1000;
  },

  async caseNames(): Promise<string[]> {
    return (await json<ReferenceIndex>('reference/cases.json')).cases.map((c) => c.name);
  },

  /**
   * A pipeline case of reference/. Here MoVQ decodes once (decodeOnce): the shipped run's pixels are
   * checked against diffusers', the traced run's intermediates up to the decoder's input; Node
   * checks the traced run's MoVQ output and that tracing changes no pixel.
   */
  async runCase(
    name: string,
  ): Promise<{ checks: TensorCheck[]; traced: string[]; ms: number; timings: StageTimings }> {
    const index = await json<ReferenceIndex>('reference/cases.json');
    const testCase = index.cases.find((c) => c.name === name);
    if (!testCase) throw new Error(`No reference case ${name}`);
    const start = performance.now();
    const { checks, traced, untracedResult } = await checkReferenceCase(
      await modelSet(),
      testCase,
      {
        image: (path) => picture(`reference/${path}`),
        tensor: async (c, tensorName) => {
          const entry = c.tensors[tensorName];
          return entry ? recorded(`reference/${c.name}/${entry.file}`) : null;
        },
      },
      { decodeOnce: true },
    );
    return { checks, traced, ms: performance.now() - start, timings: untracedResult.timings };
  },

  /** An image-mixing case of reference-mix/ (diffusers' interpolate, then the decoder). */
  async runMixCase(name: string): Promise<{ checks: TensorCheck[]; traced: string[]; ms: number }> {
    const index = await json<MixReferenceIndex>('reference-mix/cases.json');
    const testCase = index.cases.find((c) => c.name === name);
    if (!testCase) throw new Error(`No mix reference case ${name}`);
    const start = performance.now();
    const { checks, traced } = await checkMixCase(await modelSet(), testCase, mixData, { decodeOnce: true });
    return { checks, traced, ms: performance.now() - start };
  },

  /** A depth image-to-image case of reference-depth/: photo → depth estimate → ControlNet img2img. */
  async runDepthCase(
    name: string,
  ): Promise<{ checks: TensorCheck[]; traced: string[]; stages: string[]; ms: number }> {
    const index = await json<DepthReferenceIndex>('reference-depth/cases.json');
    const testCase = index.cases.find((c) => c.name === name);
    if (!testCase) throw new Error(`No depth reference case ${name}`);
    const stages: string[] = [];
    const start = performance.now();
    const { checks, traced } = await checkDepthCase(
      await modelSet(),
      testCase,
      depthData,
      {
        onProgress: (p) => {
          if (stages.at(-1) !== p.stage) stages.push(p.stage);
        },
      },
      { decodeOnce: true },
    );
    return { checks, traced, stages, ms: performance.now() - start };
  },

  /** The depth estimator alone on the photo of an estimate case of reference-depth/. */
  async runDepthEstimate(name: string): Promise<DepthEstimateCheck & { ms: number }> {
    const index = await json<DepthReferenceIndex>('reference-depth/cases.json');
    const testCase = index.estimate_cases.find((c) => c.name === name);
    if (!testCase) throw new Error(`No depth estimate case ${name}`);
    const photo = await depthData.image(testCase.input);
    const models = await modelSet();
    const start = performance.now();
    const estimate = await estimateDepth(models, photo);
    const ms = performance.now() - start;
    return { ...(await compareDepthEstimate(testCase, estimate, depthData)), ms };
  },
};

export type ParityHarness = typeof api;
Comlink.expose(api);
