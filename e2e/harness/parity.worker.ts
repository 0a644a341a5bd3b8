/// <reference lib="webworker" />
/**
 * Browser parity harness: runs the reference cases of the tiny fixture set through the engine on
 * onnxruntime-web's WebGPU provider and reports, per recorded intermediate, the error against
 * diffusers. Built only for the e2e tests (e2e/harness/vite.config.ts), never into the app.
 */
import * as Comlink from 'comlink';
import { parseManifest } from '../../models/manifest';
import { estimateDepth } from '../../workers/engine/depth-estimator';
import { ModelSet } from '../../workers/engine/model-set';
import { parseNpy } from '../../workers/engine/npy';
import { decodePng } from '../../workers/engine/png';
import {
  checkReferenceCase,
  type ReferenceIndex,
  type TensorCheck,
} from '../../workers/engine/reference-cases';
import { webZlib } from '../../workers/engine/web-zlib';
import { ortWeb } from '../../workers/ort-web';

const SET_URL = new URL('../models/tiny/', import.meta.url);

async function fetchBytes(path: string): Promise<Uint8Array> {
  const response = await fetch(new URL(path, SET_URL));
  if (!response.ok) throw new Error(`GET ${path}: HTTP ${response.status}`);
  return new Uint8Array(await response.arrayBuffer());
}

const json = async <T>(path: string): Promise<T> =>
  JSON.parse(new TextDecoder().decode(await fetchBytes(path))) as T;

let models: ModelSet | null = null;

async function modelSet(): Promise<ModelSet> {
  models ??= new ModelSet(
    ortWeb(),
    parseManifest(await json('manifest.json')),
    { read: fetchBytes },
    {
      sessionOptions: { executionProviders: ['webgpu'] },
    },
  );
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

const api = {
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

  async caseNames(): Promise<string[]> {
    return (await json<ReferenceIndex>('reference/cases.json')).cases.map((c) => c.name);
  },

  async runCase(name: string): Promise<{ checks: TensorCheck[]; traced: string[]; ms: number }> {
    const index = await json<ReferenceIndex>('reference/cases.json');
    const testCase = index.cases.find((c) => c.name === name);
    if (!testCase) throw new Error(`No reference case ${name}`);
    const start = performance.now();
    const { checks, traced } = await checkReferenceCase(await modelSet(), testCase, {
      image: async (path) => decodePng(await fetchBytes(`reference/${path}`), webZlib, 1e7),
      tensor: async (c, tensorName) => {
        const entry = c.tensors[tensorName];
        if (!entry) return null;
        const array = parseNpy(await fetchBytes(`reference/${c.name}/${entry.file}`));
        return { data: array.data as ArrayLike<number | bigint>, shape: array.shape };
      },
    });
    return { checks, traced, ms: performance.now() - start };
  },
};

export type ParityHarness = typeof api;
Comlink.expose(api);
