/**
 * Model store benchmark: download throughput against a plain fetch of the same bytes, and peak
 * memory while storing and loading a full-size (1 GiB) random ONNX component.
 *
 *   npx vitest run --config bench/bench.config.node.ts
 *
 * Not part of `npm test` (figures, not pass/fail). Needs ~1.1 GB free in the OS temp folder.
 * The server runs in a child process so it doesn't share the measured process's CPU or memory.
 */

import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { IDBFactory } from 'fake-indexeddb';
import { afterAll, beforeAll, expect, it } from 'vitest';
import type { Manifest } from '../models/manifest';
import type { Sha256Factory } from '../workers/store/file-download';
import { UrlSource } from '../workers/store/model-source';
import { ModelStore } from '../workers/store/model-store';
import { openStoreDatabase } from '../workers/store/store-database';
import { fileBackedStore } from './fs-record-store.node';
import { startPeakMeter } from './memory.node';
import {
  COMPONENT_BYTES,
  LIMITED_RATE,
  SET_DESCRIPTION,
  type StoreBenchSet,
  startStoreBenchSet,
  WORK,
} from './store-set.node';

let set: StoreBenchSet;
let manifestUrl: string;
let limitedManifestUrl: string;
let manifest: Manifest;
let wholeFileManifest: Manifest;

beforeAll(async () => {
  set = await startStoreBenchSet();
  ({ manifest, wholeFileManifest, manifestUrl, limitedManifestUrl } = set);
}, 120_000);

afterAll(() => {
  set?.stop();
});

/** A plain fetch of every file, `concurrency` at a time, bytes read and dropped: the upper bound. */
async function plainFetchSeconds(concurrency: number, url = manifestUrl): Promise<number> {
  const paths = (manifest.components.unet?.files ?? []).map((f) => f.path);
  const started = performance.now();
  const next = async (): Promise<void> => {
    for (let path = paths.shift(); path; path = paths.shift()) {
      const response = await fetch(new URL(path, url));
      const reader = (response.body as ReadableStream<Uint8Array>).getReader();
      while (!(await reader.read()).done) {
        // discard
      }
    }
  };
  await Promise.all(Array.from({ length: concurrency }, next));
  return (performance.now() - started) / 1000;
}

const nodeSha256: Sha256Factory = () => {
  const hash = createHash('sha256');
  return {
    update: (bytes) => hash.update(bytes),
    digest: () => new Uint8Array(hash.digest()),
  };
};

interface Run {
  seconds: number;
  peak: { rss: number; arrayBuffers: number };
}

async function storeDownload(
  label: string,
  createHash?: Sha256Factory,
  url = manifestUrl,
  set = manifest,
): Promise<{ run: Run; store: ModelStore; dispose(): void }> {
  const database = fileBackedStore(join(WORK, `db-${label}`));
  const store = new ModelStore({ database, ...(createHash ? { createHash } : {}) });
  const memory = await startPeakMeter();
  const started = performance.now();
  await store.download(new UrlSource(url), set, { onProgress: memory.sample });
  const seconds = (performance.now() - started) / 1000;
  return { run: { seconds, peak: memory.stop() }, store, dispose: database.dispose };
}

const mb = (bytes: number) => (bytes / 1e6).toFixed(0);
const rate = (seconds: number) => `${(COMPONENT_BYTES / 1e6 / seconds).toFixed(0)} MB/s`;

it('measures download throughput and peak memory for a 1 GiB component', async () => {
  const plain = Math.min(await plainFetchSeconds(3), await plainFetchSeconds(3));
  const withNoble = await storeDownload('chunks');
  const wholeFile = await storeDownload('noble', undefined, manifestUrl, wholeFileManifest);
  const loadWhole = performance.now();
  await wholeFile.store.openOnnxModel(wholeFileManifest, 'unet', { verify: true });
  const wholeVerifySeconds = (performance.now() - loadWhole) / 1000;
  wholeFile.dispose();
  const withNode = await storeDownload('node-crypto', nodeSha256, manifestUrl, wholeFileManifest);
  withNode.dispose();
  const plainLimited = await plainFetchSeconds(3, limitedManifestUrl);
  const limited = await storeDownload('limited', undefined, limitedManifestUrl);
  limited.dispose();

  // Loading: the whole component as onnxruntime takes it, without and with re-hashing.
  const loadMemory = await startPeakMeter();
  let started = performance.now();
  let loaded: unknown = await withNoble.store.openOnnxModel(manifest, 'unet');
  const loadSeconds = (performance.now() - started) / 1000;
  const loadPeak = loadMemory.stop();
  loaded = undefined;
  const verifyMemory = await startPeakMeter();
  started = performance.now();
  loaded = await withNoble.store.openOnnxModel(manifest, 'unet', { verify: true });
  const verifySeconds = (performance.now() - started) / 1000;
  const verifyPeak = verifyMemory.stop();
  expect(loaded).toBeDefined();
  loaded = undefined;
  withNoble.dispose();

  // A fake-indexeddb run too: everything stored stays in the JS heap there, so its figure is
  // (store + database) and only the throughput is comparable.
  const fake = new ModelStore({ database: openStoreDatabase(new IDBFactory()) });
  started = performance.now();
  await fake.download(new UrlSource(manifestUrl), manifest);
  const fakeSeconds = (performance.now() - started) / 1000;

  const ratio = (peak: { rss: number }) => (peak.rss / COMPONENT_BYTES).toFixed(3);
  const lines = [
    `component: ${SET_DESCRIPTION}, 3 files at a time`,
    `plain fetch:                     ${plain.toFixed(2)} s  ${rate(plain)}`,
    `store, chunk sha256s (shipping): ${withNoble.run.seconds.toFixed(2)} s  ${rate(withNoble.run.seconds)}  ratio ${(plain / withNoble.run.seconds).toFixed(2)}`,
    `store, whole-file noble sha256:  ${wholeFile.run.seconds.toFixed(2)} s  ${rate(wholeFile.run.seconds)}  ratio ${(plain / wholeFile.run.seconds).toFixed(2)}`,
    `store, whole-file node:crypto:   ${withNode.run.seconds.toFixed(2)} s  ${rate(withNode.run.seconds)}  ratio ${(plain / withNode.run.seconds).toFixed(2)}`,
    `plain fetch at ${LIMITED_RATE / 1e6} MB/s per file:  ${plainLimited.toFixed(2)} s  ${rate(plainLimited)}`,
    `store at ${LIMITED_RATE / 1e6} MB/s per file:        ${limited.run.seconds.toFixed(2)} s  ${rate(limited.run.seconds)}  ratio ${(plainLimited / limited.run.seconds).toFixed(2)}`,
    `store, chunks, fake-indexeddb:   ${fakeSeconds.toFixed(2)} s  ${rate(fakeSeconds)}  ratio ${(plain / fakeSeconds).toFixed(2)}`,
    `peak while storing (chunks):     +${mb(withNoble.run.peak.rss)} MB RSS (${ratio(withNoble.run.peak)} of size), +${mb(withNoble.run.peak.arrayBuffers)} MB ArrayBuffers`,
    `peak while storing (node):       +${mb(withNode.run.peak.rss)} MB RSS (${ratio(withNode.run.peak)} of size), +${mb(withNode.run.peak.arrayBuffers)} MB ArrayBuffers`,
    `peak while loading:              +${mb(loadPeak.rss)} MB RSS (${ratio(loadPeak)} of size), +${mb(loadPeak.arrayBuffers)} MB ArrayBuffers, ${loadSeconds.toFixed(2)} s`,
    `peak while loading + verifying:  +${mb(verifyPeak.rss)} MB RSS (${ratio(verifyPeak)} of size), +${mb(verifyPeak.arrayBuffers)} MB ArrayBuffers, ${verifySeconds.toFixed(2)} s (chunk sha256s)`,
    `loading + verifying, whole file: ${wholeVerifySeconds.toFixed(2)} s (noble, manifest without chunk sha256s)`,
  ];
  console.log(lines.join('\n'));
}, 600_000);
