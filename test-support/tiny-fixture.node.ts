/** Node access to the tiny model set and its diffusers reference (models/fixtures/tiny/). */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import * as ortNode from 'onnxruntime-node';
import { type Manifest, parseManifest } from '../models/manifest';
import { ModelSet, type Residency } from '../workers/engine/model-set';
import { nodeZlib } from '../workers/engine/node-zlib.node';
import type { OrtRuntime } from '../workers/engine/ort';
import { decodePng, type RgbaImage } from '../workers/engine/png';
import { parseNpy } from './npy';
import type { ReferenceCase, ReferenceIndex } from './reference-cases';

export { type ReferenceCase, settingsOf } from './reference-cases';

export const TINY_DIR = fileURLToPath(new URL('../models/fixtures/tiny/', import.meta.url));
const REFERENCE_DIR = `${TINY_DIR}reference/`;

export const reference = JSON.parse(readFileSync(`${REFERENCE_DIR}cases.json`, 'utf8')) as ReferenceIndex;

export const tinyManifest: Manifest = parseManifest(
  JSON.parse(readFileSync(`${TINY_DIR}manifest.json`, 'utf8')),
);

export const ortCpu = ortNode as unknown as OrtRuntime;

/** The tiny set on onnxruntime-node's CPU provider; `residency: 'gpu'` runs the step-graph loop on it. */
export function openTinyModelSet(options: { residency?: Residency } = {}): ModelSet {
  return new ModelSet(
    ortCpu,
    tinyManifest,
    {
      read: async (path) => new Uint8Array(await readFile(TINY_DIR + path)),
    },
    { sessionOptions: { executionProviders: ['cpu'], intraOpNumThreads: 1 }, ...options },
  );
}

export function referenceTensor(
  testCase: ReferenceCase,
  name: string,
): { data: ArrayLike<number | bigint>; shape: readonly number[] } | null {
  const entry = testCase.tensors[name];
  if (!entry) return null;
  const array = parseNpy(new Uint8Array(readFileSync(`${REFERENCE_DIR}${testCase.name}/${entry.file}`)));
  return { data: array.data as ArrayLike<number | bigint>, shape: array.shape };
}

export async function referenceInput(path: string): Promise<RgbaImage> {
  return decodePng(new Uint8Array(readFileSync(REFERENCE_DIR + path)), nodeZlib, 1e7);
}
