/** Node access to the depth reference recordings (models/fixtures/tiny/reference-depth/). */
import { readFileSync } from 'node:fs';
import { nodeZlib } from '../workers/engine/node-zlib.node';
import { decodePng, type RgbaImage } from '../workers/engine/png';
import type { DepthReferenceData, DepthReferenceIndex } from './depth-reference';
import { parseNpyFloat32 } from './npy';
import { TINY_DIR } from './tiny-fixture.node';

export type { DepthEstimateCase, DepthPipelineCase } from './depth-reference';

export const DEPTH_DIR = `${TINY_DIR}reference-depth/`;

export const depthReference = JSON.parse(
  readFileSync(`${DEPTH_DIR}cases.json`, 'utf8'),
) as DepthReferenceIndex;

/** A recorded tensor of a case (`folder` is `estimate/<name>` or the pipeline case's name). */
export function depthTensor(folder: string, name: string): { data: Float32Array; shape: readonly number[] } {
  return parseNpyFloat32(new Uint8Array(readFileSync(`${DEPTH_DIR}${folder}/${name}.npy`)));
}

export function depthInput(path: string): Promise<RgbaImage> {
  return decodePng(new Uint8Array(readFileSync(DEPTH_DIR + path)), nodeZlib, 1e7);
}

/** The recording read from disk, for the shared checks of depth-reference.ts. */
export const depthData: DepthReferenceData = {
  image: depthInput,
  tensor: async (folder, name) => depthTensor(folder, name),
};
