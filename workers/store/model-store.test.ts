import { createHash } from 'node:crypto';
import { sha256 } from '@noble/hashes/sha2.js';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { REQUIRED_COMPONENTS } from '../../models/contract';
import { type Manifest, parseManifest } from '../../models/manifest';
import {
  componentBytes,
  type FaultServer,
  filesOf,
  type ModelSet,
  newProfile,
  type Profile,
  startFaultServer,
  TEST_CHUNK_BYTES,
  tinyModelSet,
} from '../../test-support/store.node';
import { InProcessLocks } from './file-locks';
import { type DownloadProgress, selectComponents } from './model-download';
import { type ModelSource, UrlSource } from './model-source';
import type { ModelStore } from './model-store';
import type { UseStore } from './store-database';
import { StoreError } from './store-error';

const set = tinyModelSet();
const REQUIRED = [...REQUIRED_COMPONENTS];
const requiredBytes = componentBytes(set, REQUIRED);
/** A unet external-data shard: 1040896 bytes, 16 chunks of 64 KiB (the last one shorter). */
const SHARD = 'unet.onnx.data-00';
const shardBytes = set.files.get(SHARD)?.byteLength ?? 0;

let server: FaultServer;
let profile: Profile;
beforeEach(async () => {
  server = await startFaultServer(set);
  profile = newProfile();
});
afterEach(async () => {
  await server.close();
});

function source(): UrlSource {
  return new UrlSource(server.manifestUrl);
}

/** Fails the test unless `promise` rejects with a StoreError of this code; returns the error. */
async function expectStoreError(promise: Promise<unknown>, code: string): Promise<StoreError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(StoreError);
  expect((error as StoreError).code, (error as Error).message).toBe(code);
  return error as StoreError;
}

/** Every component the status calls complete opens, and its bytes equal the fixture's. */
async function expectCompleteAndExact(
  store: ModelStore,
  manifest: Manifest,
  ids: readonly string[],
): Promise<void> {
  const status = await store.getCacheStatus(manifest);
  for (const id of ids) {
    const entry = status.components.find((c) => c.componentId === id);
    expect(entry?.state, id).toBe('complete');
    for (const file of filesOf(manifest, id)) {
      const bytes = await store.openFile(manifest, id, file.path, { verify: true });
      expect(Buffer.from(bytes).equals(Buffer.from(set.files.get(file.path) ?? [])), file.path).toBe(true);
    }
  }
}

/** Nothing is complete unless every one of its files opens and re-hashes: the store's central promise. */
async function expectNothingFalselyComplete(store: ModelStore, manifest: Manifest): Promise<void> {
  const status = await store.getCacheStatus(manifest);
  for (const component of status.components) {
    if (component.state !== 'complete') {
      const first = filesOf(manifest, component.componentId)[0];
      await expectStoreError(
        store.openFile(manifest, component.componentId, first?.path ?? ''),
        'NOT_CACHED',
      );
      continue;
    }
    await expectCompleteAndExact(store, manifest, [component.componentId]);
  }
}

function requestsFor(path: string) {
  return server.requests.filter((r) => r.path === path);
}

describe('ModelStore downloads over HTTP', () => {
  it('downloads the required components once, verified, with progress ending at the total', async () => {
    const store = profile.openStore();
    const manifest = await store.loadManifest(source());
    const events: DownloadProgress[] = [];
    const result = await store.download(source(), manifest, { onProgress: (e) => events.push(e) });

    expect(result.components).toEqual(selectComponents(manifest));
    expect(result.components).toEqual(REQUIRED);
    expect(result.receivedBytes).toBe(requiredBytes);
    expect(result.reusedBytes).toBe(0);
    expect(server.bytesSent() - server.bytesSent('manifest.json')).toBe(requiredBytes);
    await expectCompleteAndExact(store, manifest, REQUIRED);
    const status = await store.getCacheStatus(manifest);
    expect(status.components.filter((c) => c.optional).map((c) => c.state)).toEqual([
      'absent',
      'absent',
      'absent',
      'absent',
      'absent', // depth_estimator
    ]);

    // Each file goes queued → downloading → verifying → stored, and each component ends 'stored'.
    const stages = events.filter((e) => e.path === SHARD).map((e) => e.stage);
    expect(stages[0]).toBe('queued');
    expect(stages.at(-1)).toBe('stored');
    expect(stages.indexOf('verifying')).toBeGreaterThan(stages.indexOf('downloading'));
    expect(
      events
        .filter((e) => e.path === null && e.stage === 'stored')
        .map((e) => e.componentId)
        .sort(),
    ).toEqual([...REQUIRED].sort());
    const last = events.at(-1);
    expect(last?.totalBytesDone).toBe(requiredBytes);
    expect(last?.totalBytesTotal).toBe(requiredBytes);
    expect(last?.bytesPerSecond).toBeGreaterThan(0);

    // A second call finds everything and fetches nothing.
    const before = server.bytesSent();
    const again = await store.download(source(), manifest);
    expect(server.bytesSent()).toBe(before);
    expect(again.receivedBytes).toBe(0);
    expect(again.reusedBytes).toBe(requiredBytes);
  });

  it('resumes after dropped connections from the last stored chunk, never from zero', async () => {
    // Two drops, each 2.5 chunks into the response: the client keeps 2 whole chunks each time.
    const dropAfter = TEST_CHUNK_BYTES * 2.5;
    server.fault = (r) =>
      r.path === SHARD && r.attempt <= 2 ? { kind: 'drop', afterBytes: dropAfter } : undefined;
    const store = profile.openStore();
    const manifest = await store.loadManifest(source());
    await store.download(source(), manifest);

    // Each retry asks for the bytes after the last whole chunk it stored. (Bytes still queued in the
    // client's stream when the socket closes are lost, so a resume may start a chunk earlier than
    // the bytes sent; never earlier than the previous resume, never at zero.)
    const starts = requestsFor(SHARD).map((r) => r.rangeStart);
    expect(starts).toHaveLength(3);
    expect(starts[0]).toBe(0);
    expect(starts[1]).toBeGreaterThan(0);
    expect(starts[1]).toBeLessThanOrEqual(2 * TEST_CHUNK_BYTES);
    expect(starts[2]).toBeGreaterThan(starts[1] ?? 0);
    expect(starts[2]).toBeLessThanOrEqual((starts[1] ?? 0) + 2 * TEST_CHUNK_BYTES);
    expect(starts.every((start) => start % TEST_CHUNK_BYTES === 0)).toBe(true);
    expect(server.bytesSent(SHARD)).toBe(2 * dropAfter + shardBytes - (starts[2] ?? 0));
    expect(profile.sleeps).toHaveLength(2);
    await expectCompleteAndExact(store, manifest, REQUIRED);
  });

  it('resumes after a reload: a new store on the same database continues each file where it stopped', async () => {
    const controller = new AbortController();
    const first = profile.openStore({ concurrency: 1 });
    const manifest = await first.loadManifest(source());
    const paused = first.download(source(), manifest, {
      signal: controller.signal,
      // Pause once the shard has 5 chunks in: the download is well under way.
      onProgress: (e) => {
        if (e.path === SHARD && e.fileBytesDone >= 5 * TEST_CHUNK_BYTES) controller.abort();
      },
    });
    await expectStoreError(paused, 'ABORTED');
    const statusBefore = await first.getCacheStatus(manifest);
    const unetBefore = statusBefore.components.find((c) => c.componentId === 'unet');
    expect(unetBefore?.state).toBe('partial');
    await expectNothingFalselyComplete(first, manifest);

    const sentBefore = server.bytesSent(SHARD);
    const requestsBefore = requestsFor(SHARD).length;
    const reloaded = profile.openStore({ concurrency: 1 });
    const result = await reloaded.download(source(), manifest);
    const resumed = requestsFor(SHARD).slice(requestsBefore);
    expect(resumed).toHaveLength(1);
    const resumeAt = resumed[0]?.rangeStart ?? 0;
    expect(resumeAt).toBeGreaterThanOrEqual(5 * TEST_CHUNK_BYTES);
    expect(resumeAt % TEST_CHUNK_BYTES).toBe(0);
    expect(server.bytesSent(SHARD) - sentBefore).toBe(shardBytes - resumeAt);
    expect(result.reusedBytes).toBeGreaterThanOrEqual(resumeAt);
    await expectCompleteAndExact(reloaded, manifest, REQUIRED);
  });

  it('retries 5xx with exponential backoff, then succeeds', async () => {
    server.fault = (r) => (r.path === SHARD && r.attempt <= 2 ? { kind: 'status', status: 503 } : undefined);
    const store = profile.openStore();
    const manifest = await store.loadManifest(source());
    await store.download(source(), manifest);
    expect(requestsFor(SHARD)).toHaveLength(3);
    expect(profile.sleeps).toEqual([100, 200]);
    await expectCompleteAndExact(store, manifest, REQUIRED);
  });

  it('gives up on a server that keeps failing with HTTP_ERROR, and marks nothing complete that is not', async () => {
    server.fault = (r) => (r.path === SHARD ? { kind: 'status', status: 500 } : undefined);
    const store = profile.openStore();
    const manifest = await store.loadManifest(source());
    const error = await expectStoreError(store.download(source(), manifest), 'HTTP_ERROR');
    expect(error.details).toMatchObject({ path: SHARD, status: 500 });
    expect(error.message).toContain('HTTP 500');
    expect(requestsFor(SHARD)).toHaveLength(4); // the first try and 3 retries
    expect(profile.sleeps).toEqual([100, 200, 400]);
    const status = await store.getCacheStatus(manifest);
    expect(status.components.find((c) => c.componentId === 'unet')?.state).not.toBe('complete');
    await expectNothingFalselyComplete(store, manifest);
  });

  it('does not retry a 404: the file is missing from the model set', async () => {
    server.fault = (r) => (r.path === SHARD ? { kind: 'status', status: 404 } : undefined);
    const store = profile.openStore();
    const manifest = await store.loadManifest(source());
    await expectStoreError(store.download(source(), manifest), 'SOURCE_FILE_MISSING');
    expect(requestsFor(SHARD)).toHaveLength(1);
  });

  it('resumes a body that ended early without an error', async () => {
    server.fault = (r) =>
      r.path === SHARD && r.attempt === 1
        ? { kind: 'truncate', afterBytes: 3 * TEST_CHUNK_BYTES + 7 }
        : undefined;
    const store = profile.openStore();
    const manifest = await store.loadManifest(source());
    await store.download(source(), manifest);
    expect(requestsFor(SHARD).map((r) => r.rangeStart)).toEqual([0, 3 * TEST_CHUNK_BYTES]);
    await expectCompleteAndExact(store, manifest, REQUIRED);
  });

  it('discards a file whose bytes hash wrong and fetches it once more', async () => {
    server.fault = (r) =>
      r.path === SHARD && r.attempt === 1 ? { kind: 'flip', atOffset: 123_457 } : undefined;
    const store = profile.openStore();
    const manifest = await store.loadManifest(source());
    await store.download(source(), manifest);
    expect(requestsFor(SHARD).map((r) => r.rangeStart)).toEqual([0, 0]);
    expect(server.bytesSent(SHARD)).toBe(2 * shardBytes);
    await expectCompleteAndExact(store, manifest, REQUIRED);
  });

  it('fails with INTEGRITY_MISMATCH when the refetched file is still wrong, keeping other files', async () => {
    server.fault = (r) => (r.path === SHARD ? { kind: 'flip', atOffset: shardBytes - 1 } : undefined);
    const store = profile.openStore();
    const manifest = await store.loadManifest(source());
    const error = await expectStoreError(store.download(source(), manifest), 'INTEGRITY_MISMATCH');
    expect(error.details.path).toBe(SHARD);
    expect(error.message).toContain(SHARD);
    expect(requestsFor(SHARD)).toHaveLength(2);
    const status = await store.getCacheStatus(manifest);
    const unet = status.components.find((c) => c.componentId === 'unet');
    expect(unet?.state).not.toBe('complete');
    // The bad shard left nothing behind: the unet's stored bytes exclude it entirely.
    expect(unet?.storedBytes ?? 0).toBeLessThanOrEqual((unet?.bytes ?? 0) - shardBytes);
    await expectNothingFalselyComplete(store, manifest);
  });

  it('retries a response whose Content-Length disagrees with the manifest, then succeeds', async () => {
    server.fault = (r) =>
      r.path === SHARD && r.attempt === 1 ? { kind: 'wrong-length', extraBytes: 100 } : undefined;
    const store = profile.openStore();
    const manifest = await store.loadManifest(source());
    await store.download(source(), manifest);
    expect(requestsFor(SHARD)).toHaveLength(2);
    await expectCompleteAndExact(store, manifest, REQUIRED);
  });

  it('fails with SIZE_MISMATCH naming both sizes when Content-Length is always wrong', async () => {
    server.fault = (r) => (r.path === SHARD ? { kind: 'wrong-length', extraBytes: 100 } : undefined);
    const store = profile.openStore();
    const manifest = await store.loadManifest(source());
    const error = await expectStoreError(store.download(source(), manifest), 'SIZE_MISMATCH');
    expect(error.message).toContain(String(shardBytes + 100));
    expect(error.message).toContain(String(shardBytes));
    const unet = (await store.getCacheStatus(manifest)).components.find((c) => c.componentId === 'unet');
    expect(unet?.state).not.toBe('complete');
    await expectNothingFalselyComplete(store, manifest);
  });

  it('restarts a partly stored file cleanly when the server ignores Range', async () => {
    const controller = new AbortController();
    const store = profile.openStore({ concurrency: 1 });
    const manifest = await store.loadManifest(source());
    await expectStoreError(
      store.download(source(), manifest, {
        signal: controller.signal,
        onProgress: (e) => {
          if (e.path === SHARD && e.fileBytesDone >= 3 * TEST_CHUNK_BYTES) controller.abort();
        },
      }),
      'ABORTED',
    );
    server.fault = (r) => (r.path === SHARD ? { kind: 'ignore-range' } : undefined);
    const sentBefore = server.bytesSent(SHARD);
    const requestsBefore = requestsFor(SHARD).length;
    await store.download(source(), manifest);
    const resumed = requestsFor(SHARD).slice(requestsBefore);
    expect(resumed).toHaveLength(1);
    expect(resumed[0]?.rangeStart).toBeGreaterThan(0); // it asked to resume ...
    expect(server.bytesSent(SHARD) - sentBefore).toBe(shardBytes); // ... got the whole file, and used it
    await expectCompleteAndExact(store, manifest, REQUIRED);
  });

  it('completes through slow responses, reporting a rate and an ETA', async () => {
    server.fault = (r) => (r.path === SHARD ? { kind: 'slow', pieceBytes: 100_000, delayMs: 5 } : undefined);
    const store = profile.openStore({ progressIntervalMs: 0 });
    const manifest = await store.loadManifest(source());
    const events: DownloadProgress[] = [];
    await store.download(source(), manifest, { onProgress: (e) => events.push(e) });
    const shardEvents = events.filter((e) => e.path === SHARD && e.stage === 'downloading');
    expect(shardEvents.length).toBeGreaterThan(5);
    expect(shardEvents.every((e) => e.bytesPerSecond !== null && e.etaSeconds !== null)).toBe(true);
    const done = shardEvents.map((e) => e.fileBytesDone);
    expect(done).toEqual([...done].sort((a, b) => a - b));
    await expectCompleteAndExact(store, manifest, REQUIRED);
  });

  it('a worker ended mid-download (Cancel ending the generator) leaves nothing half-written: a new worker resumes', async () => {
    // Ending a worker stops it between any two of its awaits: every database call after that point
    // never happens and no cleanup runs. Its Web Locks are released, so the next worker gets them.
    let ended = false;
    const first = profile.openStore({
      concurrency: 1,
      wrapDatabase:
        (database: UseStore): UseStore =>
        (mode, callback) =>
          ended ? new Promise(() => {}) : database(mode, callback),
    });
    const manifest = await first.loadManifest(source());
    void first
      .download(source(), manifest, {
        onProgress: (e) => {
          if (e.path === SHARD && e.fileBytesDone >= 5 * TEST_CHUNK_BYTES) ended = true;
        },
      })
      .catch(() => {});
    await expect.poll(() => ended).toBe(true);

    const next = profile.openStore({ concurrency: 1, locks: new InProcessLocks() });
    const status = await next.getCacheStatus(manifest);
    expect(status.components.find((c) => c.componentId === 'unet')?.state).toBe('partial');
    await expectNothingFalselyComplete(next, manifest);
    await next.download(source(), manifest);
    await expectCompleteAndExact(next, manifest, REQUIRED);
  });

  it('pauses on abort keeping verified chunks, and a later call completes the download', async () => {
    const controller = new AbortController();
    const store = profile.openStore();
    const manifest = await store.loadManifest(source());
    await expectStoreError(
      store.download(source(), manifest, {
        signal: controller.signal,
        onProgress: (e) => {
          if (e.totalBytesDone > requiredBytes / 2) controller.abort();
        },
      }),
      'ABORTED',
    );
    await expectNothingFalselyComplete(store, manifest);
    const stored = (await store.getCacheStatus(manifest)).components.reduce(
      (sum, c) => sum + c.storedBytes,
      0,
    );
    expect(stored).toBeGreaterThan(0);
    const result = await store.download(source(), manifest);
    expect(result.reusedBytes).toBe(stored);
    await expectCompleteAndExact(store, manifest, REQUIRED);
  });

  it('a pause ends even when the runtime leaves the body read and its cancel pending, and frees the files', async () => {
    // What Node's fetch can do after an abort (nodejs/undici#4089): a body that sends one piece,
    // then neither ends a pending read nor confirms a cancel. Its files' locks must still be freed.
    const stalling: ModelSource = {
      description: 'a stalling server',
      readManifestText: (signal) => source().readManifestText(signal),
      openRange: async (path, offset) => {
        const bytes = set.files.get(path) ?? new Uint8Array();
        let sent = false;
        return {
          start: offset,
          declaredBytes: bytes.byteLength - offset,
          body: new ReadableStream<Uint8Array>({
            pull(controller) {
              if (sent) return new Promise<void>(() => {});
              sent = true;
              controller.enqueue(bytes.slice(offset, offset + 1024));
              return undefined;
            },
            cancel: () => new Promise<void>(() => {}),
          }),
        };
      },
    };
    const controller = new AbortController();
    const store = profile.openStore();
    const manifest = await store.loadManifest(source());
    const started = Date.now();
    await expectStoreError(
      store.download(stalling, manifest, {
        signal: controller.signal,
        onProgress: (e) => {
          if (e.stage === 'downloading' && e.fileBytesDone > 0) controller.abort();
        },
      }),
      'ABORTED',
    );
    expect(Date.now() - started).toBeLessThan(20_000);
    // Another download of the same files (another tab, or the resume) gets their locks.
    await profile.openStore().download(source(), manifest);
    await expectCompleteAndExact(store, manifest, REQUIRED);
  });
});

describe('ModelStore storage quota', () => {
  it('refuses to start when the estimate shows too little space, before any request', async () => {
    const store = profile.openStore({
      storage: { estimate: async () => ({ usage: 9_000_000, quota: 10_000_000 }) },
    });
    const manifest = await store.loadManifest(source());
    const requests = server.requests.length;
    const error = await expectStoreError(store.download(source(), manifest), 'QUOTA_INSUFFICIENT');
    expect(error.message).toMatch(/needs 7\.\d MB, but only 1\.0 MB/);
    expect(error.details).toEqual({ neededBytes: requiredBytes, availableBytes: 1_000_000 });
    expect(server.requests.length).toBe(requests);
  });

  it('stops cleanly on QuotaExceededError mid-write, keeps verified chunks, says how much to free, resumes', async () => {
    let writes = 0;
    let full = true;
    const store = profile.openStore({
      concurrency: 1,
      storage: { estimate: async () => ({ usage: 0, quota: 1e12 }), persist: async () => true },
      // The 40th chunk write fails as a full disk does in a browser.
      wrapDatabase: (real) => (mode, callback) => {
        if (mode === 'readwrite' && full && ++writes >= 40) {
          return Promise.reject(new DOMException('The quota has been exceeded.', 'QuotaExceededError'));
        }
        return real(mode, callback);
      },
    });
    const manifest = await store.loadManifest(source());
    const error = await expectStoreError(store.download(source(), manifest), 'QUOTA_EXCEEDED');
    const status = await store.getCacheStatus(manifest);
    const stored = status.components.reduce((sum, c) => sum + c.storedBytes, 0);
    expect(stored).toBeGreaterThan(0);
    expect(error.details.neededBytes).toBe(requiredBytes - stored);
    expect(error.message).toContain('more are needed');
    await expectNothingFalselyComplete(store, manifest);

    full = false;
    const sentBefore = server.bytesSent();
    const result = await store.download(source(), manifest);
    expect(result.persistence).toBe('granted');
    expect(result.reusedBytes).toBe(stored);
    expect(server.bytesSent() - sentBefore).toBe(requiredBytes - stored);
    await expectCompleteAndExact(store, manifest, REQUIRED);
  });

  it('reports persistence as the browser answers it', async () => {
    const denied = profile.openStore({
      storage: { persist: async () => false, persisted: async () => false },
    });
    expect(await denied.requestPersistence()).toBe('denied');
    expect(await profile.openStore().requestPersistence()).toBe('unsupported');
  });
});

describe('ModelStore across tabs', () => {
  it('two tabs downloading the same set fetch each file once and both end complete', async () => {
    const tabA = profile.openStore();
    const tabB = profile.openStore();
    const manifest = await tabA.loadManifest(source());
    await Promise.all([tabA.download(source(), manifest), tabB.download(source(), manifest)]);
    for (const path of new Set(REQUIRED.flatMap((id) => filesOf(manifest, id).map((f) => f.path)))) {
      expect(requestsFor(path), path).toHaveLength(1);
    }
    expect(server.bytesSent() - server.bytesSent('manifest.json')).toBe(requiredBytes);
    await expectCompleteAndExact(tabA, manifest, REQUIRED);
    await expectCompleteAndExact(tabB, manifest, REQUIRED);
  });
});

describe('ModelStore integrity, loading and deletion', () => {
  it('detects a corrupted stored chunk, removes that file only, and a download repairs just it', async () => {
    const store = profile.openStore();
    const manifest = await store.loadManifest(source());
    await store.download(source(), manifest);
    // Damage one stored chunk behind the store's back, as a disk error would.
    const sha = filesOf(manifest, 'unet').find((f) => f.path === SHARD)?.sha256 ?? '';
    await new Promise<void>((resolve, reject) => {
      const open = profile.indexedDB.open('kandinsky-models');
      open.onsuccess = () => {
        const tx = open.result.transaction('records', 'readwrite');
        tx.objectStore('records').put(new Uint8Array(TEST_CHUNK_BYTES).buffer, ['chunk', sha, 3]);
        tx.oncomplete = () => resolve();
        tx.onerror = () => reject(tx.error);
      };
    });
    // Opening without verify can't tell; verify() can, and takes the component out of 'complete'.
    const reports = await store.verify(manifest);
    expect(reports.find((r) => r.componentId === 'unet')).toEqual({
      componentId: 'unet',
      state: 'damaged',
      damagedFiles: [SHARD],
    });
    expect(reports.filter((r) => r.state === 'verified').map((r) => r.componentId)).toEqual(
      REQUIRED.filter((id) => id !== 'unet'),
    );
    await expectStoreError(store.openFile(manifest, 'unet', SHARD), 'NOT_CACHED');
    await expectNothingFalselyComplete(store, manifest);

    const sentBefore = server.bytesSent();
    await store.download(source(), manifest);
    expect(server.bytesSent() - sentBefore).toBe(shardBytes);
    await expectCompleteAndExact(store, manifest, REQUIRED);
  });

  it('opening with verify catches a damaged chunk before the engine sees it', async () => {
    const store = profile.openStore();
    const manifest = await store.loadManifest(source());
    await store.download(source(), manifest);
    const sha = filesOf(manifest, 'prior')[0]?.sha256 ?? '';
    await new Promise<void>((resolve) => {
      const open = profile.indexedDB.open('kandinsky-models');
      open.onsuccess = () => {
        const tx = open.result.transaction('records', 'readwrite');
        tx.objectStore('records').delete(['chunk', sha, 0]);
        tx.oncomplete = () => resolve();
      };
    });
    await expectStoreError(
      store.openFile(manifest, 'prior', 'prior.onnx', { verify: true }),
      'INTEGRITY_MISMATCH',
    );
    expect(
      (await store.getCacheStatus(manifest)).components.find((c) => c.componentId === 'prior')?.state,
    ).toBe('absent');
  });

  it('hands an ONNX component to onnxruntime as graph + external data, and the session runs', async () => {
    const store = profile.openStore();
    const manifest = await store.loadManifest(source());
    await store.download(source(), manifest);
    const { model, externalData } = await store.openOnnxModel(manifest, 'unet');
    expect(externalData.map((d) => d.path)).toEqual(
      filesOf(manifest, 'unet')
        .slice(1)
        .map((f) => f.path),
    );
    const ort = await import('onnxruntime-node');
    const session = await ort.InferenceSession.create(model, { externalData: [...externalData] });
    try {
      expect(session.inputNames.length).toBeGreaterThan(0);
    } finally {
      await session.release();
    }
    await expectStoreError(store.openOnnxModel(manifest, 'unet_inpaint'), 'NOT_CACHED');
    await expectStoreError(store.openOnnxModel(manifest, 'prior_clip_mean'), 'UNKNOWN_COMPONENT');
  });

  it('downloads optional components per feature, and deleting one keeps the others intact', async () => {
    const store = profile.openStore();
    const manifest = await store.loadManifest(source());
    expect(selectComponents(manifest, { features: ['inpainting'] })).toEqual([
      ...REQUIRED,
      'movq_encoder',
      'unet_inpaint',
    ]);
    await store.download(source(), manifest, { features: ['inpainting'] });
    await store.deleteComponent(manifest, 'unet_inpaint');
    const status = await store.getCacheStatus(manifest);
    const state = Object.fromEntries(status.components.map((c) => [c.componentId, [c.state, c.storedBytes]]));
    expect(state.unet_inpaint).toEqual(['absent', 0]);
    expect(state.movq_encoder?.[0]).toBe('complete');
    await expectCompleteAndExact(store, manifest, [...REQUIRED, 'movq_encoder']);

    await store.deleteAll();
    const cleared = await store.getCacheStatus(manifest);
    expect(cleared.components.every((c) => c.state === 'absent' && c.storedBytes === 0)).toBe(true);
  });
});

/** The fixture set with per-chunk sha256s for the tests' 64 KiB chunks: the shard has 16 of them. */
function chunkHashedSet(): ModelSet {
  const json = JSON.parse(set.manifestText);
  for (const component of Object.values(json.components) as {
    files: { path: string; chunks?: unknown }[];
  }[]) {
    for (const file of component.files) {
      const bytes = set.files.get(file.path) ?? new Uint8Array();
      const sha256: string[] = [];
      for (let offset = 0; offset < bytes.byteLength; offset += TEST_CHUNK_BYTES)
        sha256.push(
          createHash('sha256')
            .update(bytes.subarray(offset, offset + TEST_CHUNK_BYTES))
            .digest('hex'),
        );
      file.chunks = { bytes: TEST_CHUNK_BYTES, sha256 };
    }
  }
  const manifestText = JSON.stringify(json);
  return { manifestText, manifest: parseManifest(JSON.parse(manifestText)), files: set.files };
}

/** Counts what the store hashes: JS whole-file bytes, and native chunk digests (bytes and calls). */
function hashCounters() {
  const counts = { jsBytes: 0, digestCalls: 0, digestBytes: 0 };
  return {
    counts,
    createHash: () => {
      const hasher = sha256.create();
      return {
        update: (bytes: Uint8Array) => {
          counts.jsBytes += bytes.byteLength;
          return hasher.update(bytes);
        },
        digest: () => hasher.digest(),
      };
    },
    chunkDigest: async (bytes: Uint8Array) => {
      counts.digestCalls++;
      counts.digestBytes += bytes.byteLength;
      return new Uint8Array(createHash('sha256').update(bytes).digest());
    },
  };
}

describe('ModelStore with per-chunk sha256s in the manifest', () => {
  const chunked = chunkHashedSet();
  const shardChunks = Math.ceil(shardBytes / TEST_CHUNK_BYTES);
  let chunkServer: FaultServer;
  beforeEach(async () => {
    chunkServer = await startFaultServer(chunked);
  });
  afterEach(async () => {
    await chunkServer.close();
  });
  const chunkSource = () => new UrlSource(chunkServer.manifestUrl);
  const shardRequests = () => chunkServer.requests.filter((r) => r.path === SHARD);

  it('verifies each chunk natively as it arrives, never hashing a whole file in JS, and opens verified', async () => {
    expect(shardChunks).toBeGreaterThan(8);
    const { counts, createHash: jsHash, chunkDigest } = hashCounters();
    const store = profile.openStore({ createHash: jsHash, chunkDigest });
    const manifest = await store.loadManifest(chunkSource());
    const result = await store.download(chunkSource(), manifest);
    expect(result.receivedBytes).toBe(requiredBytes);
    expect(counts.jsBytes).toBe(0);
    expect(counts.digestBytes).toBe(requiredBytes);
    counts.digestBytes = 0;
    await expectCompleteAndExact(store, manifest, REQUIRED);
    // openFile({ verify: true }) used the chunk hashes too.
    expect(counts.jsBytes).toBe(0);
    expect(counts.digestBytes).toBe(requiredBytes);
  });

  it('a flipped byte in chunk k of n refetches only chunk k', async () => {
    const k = 5;
    chunkServer.fault = (r) =>
      r.path === SHARD && r.attempt === 1
        ? { kind: 'flip', atOffset: k * TEST_CHUNK_BYTES + 123 }
        : undefined;
    const store = profile.openStore();
    const manifest = await store.loadManifest(chunkSource());
    const result = await store.download(chunkSource(), manifest);
    // The first request carries the whole shard; the second starts at chunk k and is read for one chunk.
    expect(shardRequests().map((r) => r.rangeStart)).toEqual([0, k * TEST_CHUNK_BYTES]);
    expect(result.receivedBytes).toBe(requiredBytes + TEST_CHUNK_BYTES);
    await expectCompleteAndExact(store, manifest, REQUIRED);
  });

  it('fails with INTEGRITY_MISMATCH naming the file and chunk when the refetched chunk is still wrong, keeping the chunks before it', async () => {
    const k = 7;
    chunkServer.fault = (r) =>
      r.path === SHARD ? { kind: 'flip', atOffset: k * TEST_CHUNK_BYTES + 1 } : undefined;
    const store = profile.openStore();
    const manifest = await store.loadManifest(chunkSource());
    const error = await expectStoreError(store.download(chunkSource(), manifest), 'INTEGRITY_MISMATCH');
    expect(error.details).toMatchObject({ path: SHARD, chunk: k });
    expect(error.message).toContain(SHARD);
    expect(error.message).toContain(`Chunk ${k} of ${shardChunks}`);
    expect(shardRequests().map((r) => r.rangeStart)).toEqual([0, k * TEST_CHUNK_BYTES]);
    await expectNothingFalselyComplete(store, manifest);
    // Chunks 0..k-1 were verified and stay: the next download resumes at chunk k.
    chunkServer.fault = () => undefined;
    const before = shardRequests().length;
    await store.download(chunkSource(), manifest);
    expect(
      shardRequests()
        .slice(before)
        .map((r) => r.rangeStart),
    ).toEqual([k * TEST_CHUNK_BYTES]);
    await expectCompleteAndExact(store, manifest, REQUIRED);
  });

  it('resumes after a reload without re-hashing stored chunks', async () => {
    const controller = new AbortController();
    const first = profile.openStore({ concurrency: 1 });
    const manifest = await first.loadManifest(chunkSource());
    const paused = first.download(chunkSource(), manifest, {
      signal: controller.signal,
      onProgress: (e) => {
        if (e.path === SHARD && e.fileBytesDone >= 5 * TEST_CHUNK_BYTES) controller.abort();
      },
    });
    await expectStoreError(paused, 'ABORTED');
    await expectNothingFalselyComplete(first, manifest);

    const { counts, createHash: jsHash, chunkDigest } = hashCounters();
    const reloaded = profile.openStore({ concurrency: 1, createHash: jsHash, chunkDigest });
    const before = shardRequests().length;
    const result = await reloaded.download(chunkSource(), manifest);
    const resumeAt = shardRequests().slice(before)[0]?.rangeStart ?? 0;
    expect(shardRequests().slice(before)).toHaveLength(1);
    expect(resumeAt).toBeGreaterThanOrEqual(4 * TEST_CHUNK_BYTES);
    expect(resumeAt % TEST_CHUNK_BYTES).toBe(0);
    expect(result.reusedBytes).toBeGreaterThanOrEqual(resumeAt);
    // Only what arrived now was hashed: stored chunks were neither read back nor re-hashed.
    expect(counts.jsBytes).toBe(0);
    expect(counts.digestBytes).toBe(requiredBytes - result.reusedBytes);
    expect(counts.digestBytes).toBe(result.receivedBytes);
    await expectCompleteAndExact(reloaded, manifest, REQUIRED);
  });

  it('opening with verify catches a stored chunk that no longer matches its hash', async () => {
    const store = profile.openStore();
    const manifest = await store.loadManifest(chunkSource());
    await store.download(chunkSource(), manifest);
    const sha = filesOf(manifest, 'unet').find((f) => f.path === SHARD)?.sha256 ?? '';
    await new Promise<void>((resolve) => {
      const open = profile.indexedDB.open('kandinsky-models');
      open.onsuccess = () => {
        const tx = open.result.transaction('records', 'readwrite');
        const bad = new Uint8Array(TEST_CHUNK_BYTES);
        tx.objectStore('records').put(bad.buffer, ['chunk', sha, 3]);
        tx.oncomplete = () => resolve();
      };
    });
    const error = await expectStoreError(
      store.openFile(manifest, 'unet', SHARD, { verify: true }),
      'INTEGRITY_MISMATCH',
    );
    expect(error.message).toContain('chunk 3');
    expect(
      (await store.getCacheStatus(manifest)).components.find((c) => c.componentId === 'unet')?.state,
    ).not.toBe('complete');
  });

  it('falls back to the whole-file hash when the store chunk size differs from the manifest chunks', async () => {
    const { counts, createHash: jsHash, chunkDigest } = hashCounters();
    const store = profile.openStore({ createHash: jsHash, chunkDigest, chunkBytes: 2 * TEST_CHUNK_BYTES });
    const manifest = await store.loadManifest(chunkSource());
    await store.download(chunkSource(), manifest);
    expect(counts.digestCalls).toBe(0);
    expect(counts.jsBytes).toBe(requiredBytes);
  });
});
