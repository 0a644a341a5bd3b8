/**
 * Node access to the fixture model sets and their diffusers references: the tiny set
 * (models/fixtures/tiny/, exported with --tiny-random) and the checkpoint set
 * (models/fixtures/tiny-diffusers/, tiny checkpoints in diffusers' folder layout with other
 * dimensions, exported through the real-checkpoint path; models/README.md).
 */
import { existsSync, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import * as ortNode from 'onnxruntime-node';
import { type Manifest, parseManifest } from '../models/manifest';
import { ModelSet, type Residency } from '../workers/engine/model-set';
import { nodeZlib } from '../workers/engine/node-zlib.node';
import type { OrtRuntime } from '../workers/engine/ort';
import { decodePng, type RgbaImage } from '../workers/engine/png';
import type { MixReferenceData, MixReferenceIndex } from './mix-reference';
import { parseNpy } from './npy';
import type { RecordedTensor, ReferenceCase, ReferenceIndex } from './reference-cases';

export { type ReferenceCase, settingsOf } from './reference-cases';

export const ortCpu = ortNode as unknown as OrtRuntime;

/** One fixture set: its manifest, its model set on onnxruntime-node's CPU provider, its recordings. */
export interface FixtureSet {
  readonly name: string;
  readonly dir: string;
  readonly manifest: Manifest;
  /** reference/cases.json: the pipeline cases. */
  readonly reference: ReferenceIndex;
  /** reference-mix/cases.json: the image-mixing cases. */
  readonly mixReference: MixReferenceIndex;
  /** The set on the CPU provider; `residency: 'gpu'` runs the step-graph loop on it. */
  openModelSet(options?: { residency?: Residency }): ModelSet;
  /** A recorded tensor of a pipeline case, or null when it has none of that name. */
  referenceTensor(testCase: ReferenceCase, name: string): RecordedTensor | null;
  /** An input picture of the pipeline cases (`inputs/…png`). */
  referenceInput(path: string): Promise<RgbaImage>;
  /** The mixing recordings read from disk, for mix-reference.ts's checks. */
  readonly mixData: MixReferenceData;
}

function readNpy(path: string): RecordedTensor {
  const array = parseNpy(new Uint8Array(readFileSync(path)));
  return { data: array.data as ArrayLike<number | bigint>, shape: array.shape };
}

/** The fixture set in models/fixtures/<name>/. */
export function fixtureSet(name: string): FixtureSet {
  const dir = fileURLToPath(new URL(`../models/fixtures/${name}/`, import.meta.url));
  const referenceDir = `${dir}reference/`;
  const mixDir = `${dir}reference-mix/`;
  const json = <T>(path: string, empty: T): T =>
    existsSync(path) ? (JSON.parse(readFileSync(path, 'utf8')) as T) : empty;
  const manifest = parseManifest(JSON.parse(readFileSync(`${dir}manifest.json`, 'utf8')));
  const png = async (path: string) => decodePng(new Uint8Array(readFileSync(path)), nodeZlib, 1e7);
  return {
    name,
    dir,
    manifest,
    reference: json<ReferenceIndex>(`${referenceDir}cases.json`, { cases: [], tokenizer_cases: [] }),
    mixReference: json<MixReferenceIndex>(`${mixDir}cases.json`, { cases: [] }),
    openModelSet: (options = {}) =>
      new ModelSet(
        ortCpu,
        manifest,
        { read: async (path) => new Uint8Array(await readFile(dir + path)) },
        { sessionOptions: { executionProviders: ['cpu'], intraOpNumThreads: 1 }, ...options },
      ),
    referenceTensor: (testCase, tensor) => {
      const entry = testCase.tensors[tensor];
      return entry ? readNpy(`${referenceDir}${testCase.name}/${entry.file}`) : null;
    },
    referenceInput: (path) => png(referenceDir + path),
    mixData: {
      image: (path) => png(mixDir + path),
      tensor: async (testCase, tensor) => {
        const entry = testCase.tensors[tensor];
        return entry ? readNpy(`${mixDir}${testCase.name}/${entry.file}`) : null;
      },
    },
  };
}

/** The tiny fixture set (--tiny-random) that most tests use. */
export const tinySet = fixtureSet('tiny');
/** The checkpoint set: tiny diffusers-layout checkpoints with other dimensions (make_tiny_checkpoints.py). */
export const checkpointSet = fixtureSet('tiny-diffusers');

export const TINY_DIR = tinySet.dir;
export const reference = tinySet.reference;
export const tinyManifest: Manifest = tinySet.manifest;

/** The tiny set on onnxruntime-node's CPU provider; `residency: 'gpu'` runs the step-graph loop on it. */
export function openTinyModelSet(options: { residency?: Residency } = {}): ModelSet {
  return tinySet.openModelSet(options);
}

export function referenceTensor(testCase: ReferenceCase, name: string): RecordedTensor | null {
  return tinySet.referenceTensor(testCase, name);
}

export async function referenceInput(path: string): Promise<RgbaImage> {
  return tinySet.referenceInput(path);
}
