/**
 * The generator worker's API under attack, in Node: bad pictures, a GPU that disappears or runs out
 * of memory, cancels at every stage, a chunk damaged in IndexedDB, and a queue of ten jobs with
 * cancels in between. The real engine runs on onnxruntime-node behind a runtime that injects the
 * faults; the tiny model set comes from a local HTTP server into fake-indexeddb.
 */
import { createHash } from 'node:crypto';
import type { IDBDatabase, IDBFactory } from 'fake-indexeddb';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorOf, pixelsOf, serviceOn, smallRequest } from '../test-support/generator-service.node';
import {
  type FaultServer,
  filesOf,
  newProfile,
  type Profile,
  startFaultServer,
  TEST_CHUNK_BYTES,
  tinyModelSet,
} from '../test-support/store.node';
import { ortCpu } from '../test-support/tiny-fixture.node';
import type { GenerateRequest, JobProgress, MaskImage, RgbaImage } from './api';
import { type InferenceSession, liveOrtObjects, type OrtRuntime } from './engine/ort';
import { DEFAULT_SETTINGS, KANDINSKY_SIZE_LIMITS } from './engine/settings';
import { TINY_SIZE_LIMITS } from './engine/size-limits';
import { toWireError } from './errors';
import { smallerRequestAdvice } from './generation';

let server: FaultServer;
beforeAll(async () => {
  server = await startFaultServer(tinyModelSet());
});
afterAll(async () => {
  await server.close();
});

const set = tinyModelSet();
const sha256Hex = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');
/** sha256 of every fixture file: what onnxruntime may be handed, and nothing else. */
const FIXTURE_HASHES = new Set([...set.files.values()].map(sha256Hex));
const UNET_GRAPH_SHA = filesOf(set.manifest, 'unet').find((f) => f.path === 'unet.onnx')?.sha256 ?? '';

type RunFault = 'hang' | Error | undefined;

interface RuntimeProbe {
  readonly ort: OrtRuntime;
  /** sha256 of the graph and of each external-data shard of every session created. */
  readonly created: { graph: string; shards: string[] }[];
  /** Decides per run: `unet` is true for the text→image UNet's session. */
  fault: (run: { unet: boolean; index: number }) => RunFault;
  /** Ends every hung run with an error (onnxruntime finally giving up). */
  releaseHung(): void;
}

/** onnxruntime-node, with every session creation recorded and faults injected into runs. */
function probeRuntime(): RuntimeProbe {
  let runs = 0;
  const hung: (() => void)[] = [];
  const probe: RuntimeProbe = {
    created: [],
    fault: () => undefined,
    releaseHung: () => {
      for (const reject of hung.splice(0)) reject();
    },
    ort: {
      Tensor: ortCpu.Tensor,
      InferenceSession: {
        async create(model: Uint8Array, options?: InferenceSession.SessionOptions) {
          const external = (options?.externalData ?? []) as readonly unknown[] as readonly {
            data: Uint8Array;
          }[];
          const graph = sha256Hex(model);
          probe.created.push({ graph, shards: external.map((e) => sha256Hex(e.data)) });
          const session = await ortCpu.InferenceSession.create(model, options);
          const unet = graph === UNET_GRAPH_SHA;
          return new Proxy(session, {
            get(target, key, receiver) {
              if (key !== 'run') return Reflect.get(target, key, receiver);
              return (...args: Parameters<InferenceSession['run']>) => {
                const fault = probe.fault({ unet, index: runs++ });
                if (fault === 'hang') {
                  return new Promise((_, reject) => hung.push(() => reject(new Error('Device is lost'))));
                }
                if (fault) return Promise.reject(fault);
                return target.run(...args);
              };
            },
          });
        },
      },
    },
  };
  return probe;
}

/** One "page load": a store on the profile's IndexedDB, a service on the probe's runtime. */
function newService(profile: Profile, probe: RuntimeProbe = probeRuntime()) {
  const service = serviceOn(profile, probe.ort, {
    sessionOptions: { executionProviders: ['cpu'], intraOpNumThreads: 1 },
  });
  return { service, probe };
}

/** A profile with the tiny set's required components downloaded. */
async function downloadedProfile(): Promise<Profile> {
  const profile = newProfile();
  const { service } = newService(profile);
  await service.openModelSet({ kind: 'url', url: server.manifestUrl });
  await service.downloadModels([], () => {});
  await service.dispose();
  return profile;
}

const request = smallRequest(false);

const withSeed = (seed: number): GenerateRequest => ({ ...request, settings: { ...request.settings, seed } });

/** Every record of every IndexedDB database of the profile, binary values as their sha256. */
async function snapshotIndexedDb(factory: InstanceType<typeof IDBFactory>): Promise<string> {
  const out: Record<string, unknown[]> = {};
  for (const { name } of await factory.databases()) {
    if (!name) continue;
    const db = await new Promise<InstanceType<typeof IDBDatabase>>((resolve, reject) => {
      const open = factory.open(name);
      open.onsuccess = () => resolve(open.result);
      open.onerror = () => reject(open.error);
    });
    for (const storeName of [...db.objectStoreNames]) {
      const tx = db.transaction(storeName, 'readonly');
      const store = tx.objectStore(storeName);
      const [keys, values] = await Promise.all(
        [store.getAllKeys(), store.getAll()].map(
          (req) =>
            new Promise<unknown[]>((resolve, reject) => {
              req.onsuccess = () => resolve(req.result as unknown[]);
              req.onerror = () => reject(req.error);
            }),
        ),
      );
      out[`${name}/${storeName}`] = (keys ?? []).map((key, i) => [key, values?.[i]]);
    }
    db.close();
  }
  return JSON.stringify(out, (_key, value: unknown) => {
    if (value instanceof ArrayBuffer) return `sha256:${sha256Hex(new Uint8Array(value))}`;
    if (ArrayBuffer.isView(value))
      return `sha256:${sha256Hex(new Uint8Array(value.buffer, value.byteOffset, value.byteLength))}`;
    return value;
  });
}

/** Replaces one stored chunk of a file with the same bytes but one flipped: same length, wrong hash. */
async function flipStoredByte(profile: Profile, sha256: string, chunkIndex: number): Promise<void> {
  const db = await new Promise<InstanceType<typeof IDBDatabase>>((resolve, reject) => {
    const open = profile.indexedDB.open('kandinsky-models');
    open.onsuccess = () => resolve(open.result);
    open.onerror = () => reject(open.error);
  });
  const key = ['chunk', sha256, chunkIndex];
  const tx = db.transaction('records', 'readwrite');
  const store = tx.objectStore('records');
  const read = store.get(key);
  read.onsuccess = () => {
    const value = read.result as ArrayBuffer | Uint8Array;
    const bytes = new Uint8Array(value instanceof ArrayBuffer ? value.slice(0) : value.slice());
    bytes[100] = (bytes[100] ?? 0) ^ 0xff;
    store.put(bytes.buffer, key);
  };
  await new Promise<void>((resolve, reject) => {
    tx.oncomplete = () => resolve();
    tx.onerror = () => reject(tx.error);
  });
  db.close();
}

let referencePixels: Map<number, Uint8Array>;
let cleanProfile: Profile;

beforeAll(async () => {
  // The pixels each seed must give, from an untouched service: every test compares against them.
  cleanProfile = await downloadedProfile();
  const { service } = newService(cleanProfile);
  await service.openModelSet({ kind: 'url', url: server.manifestUrl });
  referencePixels = new Map();
  for (const seed of [7, 100, 101, 102, 103, 104, 105, 106, 107, 108, 109]) {
    const result = await service.generate(`reference-${seed}`, withSeed(seed), () => {});
    referencePixels.set(seed, (await pixelsOf(result)) ?? new Uint8Array());
  }
  await service.dispose();
}, 120_000);

describe('bad input through the worker API', () => {
  const rgba = (width: number, height: number): RgbaImage => ({
    width,
    height,
    data: new Uint8Array(width * height * 4).fill(128),
  });
  const mask = (width: number, height: number, value = 255): MaskImage => ({
    width,
    height,
    data: new Uint8Array(width * height).fill(value),
  });
  const inpaint = { ...request.settings, mode: 'inpaint' as const };
  const img2img = { ...request.settings, mode: 'img2img' as const, strength: 0.5 };

  it('refuses each with its exact error, loads and runs nothing, and changes nothing stored', async () => {
    const profile = await downloadedProfile();
    const { service, probe } = newService(profile);
    await service.openModelSet({ kind: 'url', url: server.manifestUrl });
    // Every mode's components are stored, so each case reaches the check it is about.
    await service.downloadModels(['image-to-image', 'inpainting', 'image-prompt'], () => {});
    const before = await snapshotIndexedDb(profile.indexedDB);
    const sessionsBefore = liveOrtObjects().sessions;

    // 100 megapixels, really allocated: refused from its declared size before a pixel is read.
    const huge = rgba(10_000, 10_000);
    const cases: [string, GenerateRequest, string][] = [
      [
        '100-megapixel input image',
        { ...request, settings: img2img, initImage: huge },
        'The input image is 10000×10000 (100.0 megapixels); the limit is 50 megapixels. Resize it first.',
      ],
      [
        '100-megapixel mix picture',
        {
          ...request,
          mix: [
            { kind: 'prompt', prompt: 'a cat', weight: 0.5 },
            { kind: 'image', image: huge, weight: 0.5 },
          ],
        },
        'Mix item 2’s picture is 10000×10000 (100.0 megapixels); the limit is 50 megapixels. Resize it first.',
      ],
      [
        'input image whose data is shorter than its size says',
        { ...request, settings: img2img, initImage: { width: 64, height: 64, data: new Uint8Array(100) } },
        'The input image says 64×64 but holds 100 bytes instead of 16384; send it again at its real size.',
      ],
      [
        'input image of zero size',
        { ...request, settings: img2img, initImage: { width: 0, height: 64, data: new Uint8Array(0) } },
        'The input image has no valid size (0×64).',
      ],
      [
        'input image of NaN size',
        {
          ...request,
          settings: img2img,
          initImage: { width: Number.NaN, height: 64, data: new Uint8Array(0) },
        },
        'The input image has no valid size (NaN×64).',
      ],
      [
        'mask of the wrong size',
        { ...request, settings: inpaint, initImage: rgba(64, 64), mask: mask(32, 32) },
        'A mask is 32×32 but the output is 64×64; resize it to the output size.',
      ],
      [
        'mask whose data is an RGBA image',
        {
          ...request,
          settings: inpaint,
          initImage: rgba(64, 64),
          mask: { width: 64, height: 64, data: new Uint8Array(64 * 64 * 4).fill(255) },
        },
        'The mask says 64×64 but holds 16384 bytes instead of 4096; send it again at its real size.',
      ],
      [
        'empty mask',
        { ...request, settings: inpaint, initImage: rgba(64, 64), mask: mask(64, 64, 0) },
        'The mask is empty: paint the area to repaint in white.',
      ],
      [
        'input image of another size than the output',
        { ...request, settings: img2img, initImage: rgba(128, 64) },
        'An input image is 128×64 but the output is 64×64; resize it to the output size.',
      ],
      [
        'width not a whole number',
        { ...request, settings: { ...request.settings, width: 100.5 } },
        'The width must be from 64 to 512 pixels; got 100.5.',
      ],
      [
        'height out of range',
        { ...request, settings: { ...request.settings, height: 1024 } },
        'The height must be from 64 to 512 pixels; got 1024.',
      ],
      [
        'steps 1000',
        { ...request, settings: { ...request.settings, steps: 1000 } },
        'Steps must be a whole number from 1 to 200; got 1000.',
      ],
      [
        'guidance NaN',
        { ...request, settings: { ...request.settings, guidance: Number.NaN } },
        'Guidance must be a number from 0 to 30; got NaN.',
      ],
      [
        'seed beyond 2^53',
        { ...request, settings: { ...request.settings, seed: 2 ** 53 + 2 } },
        'The seed must be a whole number from 0 to 9007199254740991; got 9007199254740994.',
      ],
      [
        'strength above 1',
        { ...request, settings: { ...img2img, strength: 1.5 }, initImage: rgba(64, 64) },
        'Strength must be above 0 and at most 1 (0.3 keeps most of the image, 1 redraws it); got 1.5.',
      ],
    ];
    for (const [name, bad, message] of cases) {
      expect({ name, error: await errorOf(service.generate(name, bad, () => {})) }).toEqual({
        name,
        error: { code: 'INVALID_INPUT', message },
      });
    }
    expect(probe.created).toEqual([]);
    expect(liveOrtObjects()).toEqual({ tensors: 0, sessions: sessionsBefore, deviceBuffers: 0 });
    expect(await snapshotIndexedDb(profile.indexedDB)).toBe(before);

    // An empty prompt is allowed (unconditional); a prompt over 77 tokens runs, and says what was cut.
    const empty = await service.generate(
      'empty',
      { ...request, settings: { ...request.settings, prompt: '' } },
      () => {},
    );
    expect(empty.images).toHaveLength(1);
    expect(empty.truncatedPrompt).toBeUndefined();
    const long = await service.generate(
      'long',
      { ...request, settings: { ...request.settings, prompt: 'cat '.repeat(100).trim() } },
      () => {},
    );
    expect(long.truncatedPrompt).toEqual({ keptText: 'cat '.repeat(75).trim(), droppedTokens: 25 });
    await service.dispose();
  });
});

describe('GPU faults', () => {
  it('a device lost mid-denoise fails the job with WEBGPU_DEVICE_LOST even if onnxruntime never returns; a restarted worker generates', async () => {
    const profile = await downloadedProfile();
    const { service, probe } = newService(profile);
    await service.openModelSet({ kind: 'url', url: server.manifestUrl });
    let armed = false;
    let hungRuns = 0;
    // The device goes while the UNet is running, and that call never returns, as a destroyed
    // WebGPU device can leave it.
    probe.fault = ({ unet }) => {
      if (!armed || !unet) return undefined;
      hungRuns++;
      setTimeout(() => service.deviceLost('destroyed by the test'), 20);
      return 'hang';
    };
    const started = Date.now();
    const error = await errorOf(
      service.generate('lost', request, (p: JobProgress) => {
        if (p.stage === 'denoise' && p.step === 1) armed = true;
      }),
    );
    expect(hungRuns).toBe(1);
    expect(error).toEqual({
      code: 'WEBGPU_DEVICE_LOST',
      message: 'The GPU was reset or lost (destroyed by the test); the generator restarts.',
    });
    expect(Date.now() - started).toBeLessThan(30_000);
    // When onnxruntime finally gives up, the abandoned run still releases every tensor it held.
    expect(liveOrtObjects().tensors).toBeGreaterThan(0);
    probe.releaseHung();
    await expect.poll(() => liveOrtObjects().tensors).toBe(0);
    // This worker's runtime can't get a new device: later jobs fail fast with the same code.
    expect(await errorOf(service.generate('after', request, () => {}))).toMatchObject({
      code: 'WEBGPU_DEVICE_LOST',
    });

    // The UI restarts the worker: a new service on the same storage generates the reference pixels.
    const restarted = newService(profile);
    await restarted.service.openModelSet({ kind: 'url', url: server.manifestUrl });
    const result = await restarted.service.generate('recovered', request, () => {});
    expect(await pixelsOf(result)).toEqual(referencePixels.get(7));
    await restarted.service.dispose();
  });

  it('a device-lost error thrown by onnxruntime itself gets the same code', async () => {
    const { service, probe } = newService(cleanProfile);
    await service.openModelSet({ kind: 'url', url: server.manifestUrl });
    probe.fault = ({ unet }) =>
      unet ? new Error("Failed to execute 'mapAsync' on 'GPUBuffer': Device is lost") : undefined;
    expect(await errorOf(service.generate('lost', request, () => {}))).toMatchObject({
      code: 'WEBGPU_DEVICE_LOST',
    });
    expect(liveOrtObjects().tensors).toBe(0);
    await service.dispose();
  });

  it('an allocation failure says the size is too large for this device and names a smaller one to try', async () => {
    const { service, probe } = newService(cleanProfile);
    await service.openModelSet({ kind: 'url', url: server.manifestUrl });
    probe.fault = ({ unet }) =>
      unet ? new Error('[WebGPU] Failed to allocate a buffer of 805306368 bytes: out of memory') : undefined;
    const big = { ...request.settings, width: 512, height: 384, numImages: 2 };
    expect(await errorOf(service.generate('oom', { ...request, settings: big }, () => {}))).toEqual({
      code: 'GPU_OUT_OF_MEMORY',
      message: '512×384 with 2 images is too large for this device: try 320×256, or 1 image at a time.',
    });
    expect(await errorOf(service.generate('oom-small', request, () => {}))).toEqual({
      code: 'GPU_OUT_OF_MEMORY',
      message:
        '64×64 is too large for this device: this model set needs more GPU memory than it has, even at its smallest size. Close other GPU-heavy tabs and apps, or use a device with more GPU memory.',
    });
    expect(liveOrtObjects().tensors).toBe(0);
    // Memory came back (the fault is gone): the next job works and gives the reference pixels.
    probe.fault = () => undefined;
    expect(await pixelsOf(await service.generate('after-oom', request, () => {}))).toEqual(
      referencePixels.get(7),
    );
    await service.dispose();
  });

  it('suggests sizes a Kandinsky set accepts: multiples of 64, aspect within 4:1, never below 256', () => {
    const advice = (width: number, height: number, numImages = 1) =>
      smallerRequestAdvice({ ...DEFAULT_SETTINGS, width, height, numImages }, KANDINSKY_SIZE_LIMITS);
    expect(advice(1024, 1024)).toBe('1024×1024 is too large for this device: try 704×704.');
    expect(advice(2048, 512)).toBe('2048×512 is too large for this device: try 1280×320.');
    expect(advice(256, 1024, 4)).toBe(
      '256×1024 with 4 images is too large for this device: try 256×704, or 1 image at a time.',
    );
    expect(advice(256, 256, 2)).toBe(
      '256×256 with 2 images is too large for this device: try 1 image at a time.',
    );
    expect(smallerRequestAdvice({ ...DEFAULT_SETTINGS, width: 64, height: 64 }, TINY_SIZE_LIMITS)).toMatch(
      /even at its smallest size/,
    );
  });
});

describe('cancel at every stage', () => {
  it('download, load, encode, prior, each decoder step, decode: CANCELLED, nothing leaked, the next job gives the reference pixels', async () => {
    // Download: paused mid-file, nothing half-written counts, resuming completes it verified.
    const profile = newProfile();
    const { service } = newService(profile);
    await service.openModelSet({ kind: 'url', url: server.manifestUrl });
    server.fault = () => ({ kind: 'slow', pieceBytes: 16 * 1024, delayMs: 2 });
    // Component files only: whether the manifest is fetched again inside this window is not the point.
    const fileBytesSent = () => server.bytesSent() - server.bytesSent('manifest.json');
    const sentBefore = fileBytesSent();
    const paused = await errorOf(
      service.downloadModels([], (p) => {
        if (p.stage === 'downloading' && p.totalBytesDone > 0) void service.pauseDownload();
      }),
    );
    server.fault = () => undefined;
    expect(paused).toMatchObject({ code: 'CANCELLED' });
    const afterPause = await service.modelSetInfo();
    expect(afterPause.features.find((f) => f.feature === 'text-to-image')?.ready).toBe(false);
    expect(await errorOf(service.generate('too-early', request, () => {}))).toMatchObject({
      code: 'NOT_CACHED',
    });
    await service.downloadModels([], () => {});
    expect(
      (await service.verifyModels()).filter((r) => r.state !== 'verified' && r.state !== 'absent'),
    ).toEqual([]);
    const requiredBytes = (await service.modelSetInfo()).components
      .filter((c) => !c.optional)
      .reduce((n, c) => n + c.bytes, 0);
    // Resumed, not restarted: at most one 64 KiB chunk per file in flight was fetched twice.
    const sent = fileBytesSent() - sentBefore;
    expect(sent).toBeGreaterThanOrEqual(requiredBytes);
    expect(sent).toBeLessThan(requiredBytes + 3 * TEST_CHUNK_BYTES);
    await service.dispose();

    // Generation: one fresh worker per stage, so each stage (loading included) really runs.
    const stages: [string, (p: JobProgress) => boolean][] = [
      ['load of the first component', (p) => p.stage === 'load' && p.index === 0],
      ['load of the last component', (p) => p.stage === 'load' && p.index === p.count - 1],
      ['encode', (p) => p.stage === 'encode'],
      ['prior step 1', (p) => p.stage === 'prior' && p.step === 1],
      ['prior step 2', (p) => p.stage === 'prior' && p.step === 2],
      ['decoder step 1', (p) => p.stage === 'denoise' && p.step === 1],
      ['decoder step 2', (p) => p.stage === 'denoise' && p.step === 2],
      ['decode', (p) => p.stage === 'decode'],
    ];
    const sessionsBefore = liveOrtObjects().sessions;
    for (const [name, at] of stages) {
      const worker = newService(profile);
      await worker.service.openModelSet({ kind: 'url', url: server.manifestUrl });
      const jobId = `cancel-${name}`;
      const outcome = await errorOf(
        worker.service.generate(jobId, request, (p) => {
          if (at(p)) void worker.service.cancel(jobId);
        }),
      );
      expect({ name, outcome }).toEqual({
        name,
        outcome: { code: 'CANCELLED', message: 'The generation was cancelled.' },
      });
      expect({ name, live: liveOrtObjects().tensors }).toEqual({ name, live: 0 });
      // The same worker's next job is unaffected.
      expect(await pixelsOf(await worker.service.generate(`${jobId}-next`, request, () => {}))).toEqual(
        referencePixels.get(7),
      );
      await worker.service.dispose();
      expect({ name, sessions: liveOrtObjects().sessions }).toEqual({ name, sessions: sessionsBefore });
    }
    // 8 fresh workers × (load + 2 generations): ~4 s alone, several times that next to browser tests.
  }, 240_000);
});

describe('a chunk damaged in IndexedDB', () => {
  it('is caught before onnxruntime sees it; a download re-fetches only that file; the next job gives the reference pixels', async () => {
    const profile = await downloadedProfile();
    const shard = filesOf(set.manifest, 'unet').find((f) => f.path === 'unet.onnx.data-01');
    if (!shard) throw new Error('fixture has no unet.onnx.data-01');
    // Same length, one byte flipped: only the hash can tell.
    await flipStoredByte(profile, shard.sha256, 3);

    // The next page load: the damaged bytes never reach InferenceSession.create.
    const { service, probe } = newService(profile);
    await service.openModelSet({ kind: 'url', url: server.manifestUrl });
    const error = await errorOf(service.generate('damaged', request, () => {}));
    expect(error?.code).toBe('INTEGRITY_MISMATCH');
    expect(error?.message).toMatch(
      /^The stored copy of "unet\.onnx\.data-01" is damaged \(its bytes hash to [0-9a-f]{64}\) and was removed; download the model again to repair it\.$/,
    );
    expect(probe.created.filter((c) => c.graph === UNET_GRAPH_SHA)).toEqual([]);
    for (const session of probe.created) {
      expect([session.graph, ...session.shards].every((sha) => FIXTURE_HASHES.has(sha))).toBe(true);
    }
    expect(liveOrtObjects().tensors).toBe(0);
    const info = await service.modelSetInfo();
    expect(info.components.find((c) => c.id === 'unet')?.state).toBe('partial');
    expect(info.features.find((f) => f.feature === 'text-to-image')).toMatchObject({
      ready: false,
      missingBytes: shard.bytes,
    });

    // Repair: exactly the damaged file is fetched again.
    const requestsBefore = server.requests.length;
    const bytesBefore = server.bytesSent();
    await service.downloadModels([], () => {});
    expect(server.requests.slice(requestsBefore).map((r) => r.path)).toEqual([shard.path]);
    expect(server.bytesSent() - bytesBefore).toBe(shard.bytes);
    expect(await pixelsOf(await service.generate('repaired', request, () => {}))).toEqual(
      referencePixels.get(7),
    );
    await service.dispose();
  });
});

describe('ten queued jobs with cancels in between', () => {
  it('each ends fulfilled with its seed’s reference pixels or CANCELLED, in a defined order', async () => {
    const { service } = newService(cleanProfile);
    await service.openModelSet({ kind: 'url', url: server.manifestUrl });
    const positions = new Map<string, number[]>();
    const started: string[] = [];
    const ids = Array.from({ length: 10 }, (_, i) => `job-${i}`);
    // Cancelled: job-0 while running (decoder step 1), job-3 and job-9 while waiting (at once),
    // job-5 while waiting (when job-4 starts), job-7 while running (at its prior step 1).
    const jobs = ids.map((id, i) =>
      service.generate(id, withSeed(100 + i), (p) => {
        if (p.stage === 'queued') positions.set(id, [...(positions.get(id) ?? []), p.position]);
        if (p.stage === 'load' || p.stage === 'encode') {
          if (!started.includes(id)) started.push(id);
        }
        if (id === 'job-0' && p.stage === 'denoise' && p.step === 1) void service.cancel('job-0');
        if (id === 'job-4' && p.stage === 'encode') void service.cancel('job-5');
        if (id === 'job-7' && p.stage === 'prior' && p.step === 1) void service.cancel('job-7');
      }),
    );
    expect(await service.cancel('job-3')).toBe(true);
    expect(await service.cancel('job-9')).toBe(true);
    expect(await service.cancel('no-such-job')).toBe(false);
    const settled = await Promise.allSettled(jobs);
    const outcome = await Promise.all(
      settled.map(async (s, i) =>
        s.status === 'fulfilled'
          ? (await pixelsOf(s.value))?.every((v, j) => v === referencePixels.get(100 + i)?.[j])
            ? 'reference pixels'
            : 'WRONG pixels'
          : toWireError(s.reason).code,
      ),
    );
    expect(outcome).toEqual([
      'CANCELLED',
      'reference pixels',
      'reference pixels',
      'CANCELLED',
      'reference pixels',
      'CANCELLED',
      'reference pixels',
      'CANCELLED',
      'reference pixels',
      'CANCELLED',
    ]);
    // Jobs cancelled while waiting never started; the others started in submission order.
    expect(started).toEqual(['job-0', 'job-1', 'job-2', 'job-4', 'job-6', 'job-7', 'job-8']);
    // Places counted down as the queue moved; job-9 was 8th in line when it was cancelled.
    expect(positions.get('job-9')?.[0]).toBe(8);
    // (A place is announced again whenever the queue changes; drop the repeats.)
    const places = (positions.get('job-8') ?? []).filter((p, i, all) => i === 0 || all[i - 1] !== p);
    expect(places).toEqual([7, 6, 5, 4, 3, 2, 1, 0]);
    expect(await service.cancel('job-1')).toBe(false);
    expect(liveOrtObjects().tensors).toBe(0);
    await service.dispose();
  });
});

describe('a hostile model set whose checksums match', () => {
  it('a "graph" that is not ONNX fails to load with MODEL_LOAD_FAILED naming the component, nothing runs', async () => {
    // The manifest is consistent (size and sha256 of the bytes served), so the download verifies:
    // the engine's look at the graph's external data (onnx-external-data.ts) refuses it before
    // onnxruntime gets it, and the job must say which component.
    const garbage = new TextEncoder().encode('<html>not a model</html>'.repeat(50));
    const json = JSON.parse(set.manifestText) as {
      components: Record<string, { files: { path: string; bytes: number; sha256: string }[] }>;
    };
    const graph = json.components.unet?.files.find((f) => f.path === 'unet.onnx');
    if (!graph) throw new Error('fixture has no unet.onnx');
    graph.bytes = garbage.byteLength;
    graph.sha256 = sha256Hex(garbage);
    const hostile = await startFaultServer({
      ...set,
      manifestText: JSON.stringify(json),
      files: new Map([...set.files, ['unet.onnx', garbage]]),
    });
    try {
      const { service, probe } = newService(newProfile());
      await service.openModelSet({ kind: 'url', url: hostile.manifestUrl });
      await service.downloadModels([], () => {});
      const error = await errorOf(service.generate('hostile', request, () => {}));
      expect(error?.code).toBe('MODEL_LOAD_FAILED');
      expect(error?.message).toMatch(/^Could not load unet: /);
      expect(probe.created.filter((c) => c.graph === graph.sha256)).toHaveLength(0);
      expect(error?.message).toMatch(/unet\.onnx is not a well-formed ONNX model/);
      expect(liveOrtObjects().tensors).toBe(0);
      await service.dispose();
    } finally {
      await hostile.close();
    }
  });
});
