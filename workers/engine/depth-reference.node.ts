/** Node access to the depth reference recordings (models/fixtures/tiny/reference-depth/). */
import { readFileSync } from 'node:fs';
import { nodeZlib } from './node-zlib.node';
import { parseNpyFloat32 } from './npy';
import { decodePng, type RgbaImage } from './png';
import type { DiffusersParams } from './reference-cases';
import { TINY_DIR } from './tiny-fixture.node';

export const DEPTH_DIR = `${TINY_DIR}reference-depth/`;

type Tensors = Readonly<Record<string, { readonly file: string; readonly shape: readonly number[] }>>;

export interface DepthEstimateCase {
  readonly name: string;
  readonly input: string;
  readonly width: number;
  readonly height: number;
  /** The processor's output [height, width]. */
  readonly processed: readonly [number, number];
  readonly tensors: Tensors;
}

export interface DepthPipelineCase {
  readonly name: string;
  readonly prior: 'text' | 'emb2emb';
  readonly params: DiffusersParams & { readonly strength: number; readonly prior_strength?: number };
  readonly inputs: { readonly photo: string };
  readonly rng_draws: readonly {
    readonly site: string;
    readonly tensor: string;
    readonly shape: readonly number[];
  }[];
  readonly tensors: Tensors;
}

export const depthReference = JSON.parse(readFileSync(`${DEPTH_DIR}cases.json`, 'utf8')) as {
  readonly depth_image_processor: { readonly size: number };
  readonly estimate_cases: readonly DepthEstimateCase[];
  readonly cases: readonly DepthPipelineCase[];
};

/** A recorded tensor of a case (`folder` is `estimate/<name>` or the pipeline case's name). */
export function depthTensor(folder: string, name: string): { data: Float32Array; shape: readonly number[] } {
  return parseNpyFloat32(new Uint8Array(readFileSync(`${DEPTH_DIR}${folder}/${name}.npy`)));
}

export function depthInput(path: string): Promise<RgbaImage> {
  return decodePng(new Uint8Array(readFileSync(DEPTH_DIR + path)), nodeZlib, 1e7);
}
