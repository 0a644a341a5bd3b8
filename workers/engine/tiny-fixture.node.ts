/** Node access to the tiny model set and its diffusers reference (models/fixtures/tiny/). */
import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import * as ortNode from 'onnxruntime-node';
import { type Manifest, parseManifest } from '../../models/manifest';
import { ModelSet } from './model-set';
import { nodeZlib } from './node-zlib.node';
import { parseNpy } from './npy';
import type { OrtRuntime } from './ort';
import { decodePng, type RgbaImage } from './png';
import type { GenerationSettings } from './settings';

export const TINY_DIR = fileURLToPath(new URL('../../models/fixtures/tiny/', import.meta.url));
const REFERENCE_DIR = `${TINY_DIR}reference/`;

export interface ReferenceCase {
  readonly name: string;
  readonly pipeline: 'txt2img' | 'img2img' | 'inpaint' | 'depth';
  readonly params: {
    readonly prompt: string;
    readonly negative_prompt: string | null;
    readonly seed: number;
    readonly height: number;
    readonly width: number;
    readonly prior_num_inference_steps: number;
    readonly num_inference_steps: number;
    readonly prior_guidance_scale: number;
    readonly guidance_scale: number;
    readonly num_images_per_prompt: number;
    readonly strength?: number;
  };
  readonly inputs: { readonly image?: string; readonly mask?: string; readonly hint?: string };
  readonly tensors: Readonly<Record<string, { readonly file: string; readonly shape: readonly number[] }>>;
}

interface ReferenceIndex {
  readonly cases: readonly ReferenceCase[];
  readonly tokenizer_cases: readonly { readonly text: string; readonly input_ids: readonly number[] }[];
}

export const reference = JSON.parse(readFileSync(`${REFERENCE_DIR}cases.json`, 'utf8')) as ReferenceIndex;

export const tinyManifest: Manifest = parseManifest(
  JSON.parse(readFileSync(`${TINY_DIR}manifest.json`, 'utf8')),
);

export const ortCpu = ortNode as unknown as OrtRuntime;

export function openTinyModelSet(): ModelSet {
  return new ModelSet(
    ortCpu,
    tinyManifest,
    {
      read: async (path) => new Uint8Array(await readFile(TINY_DIR + path)),
    },
    { sessionOptions: { executionProviders: ['cpu'], intraOpNumThreads: 1 } },
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

export function settingsOf(testCase: ReferenceCase): GenerationSettings {
  const p = testCase.params;
  return {
    mode: testCase.pipeline,
    prompt: p.prompt,
    negativePrompt: p.negative_prompt ?? '',
    seed: p.seed,
    width: p.width,
    height: p.height,
    priorSteps: p.prior_num_inference_steps,
    priorGuidance: p.prior_guidance_scale,
    steps: p.num_inference_steps,
    guidance: p.guidance_scale,
    scheduler: 'ddpm',
    numImages: p.num_images_per_prompt,
    strength: p.strength ?? 1,
  };
}
