/** Node access to the image-mixing reference recordings (models/fixtures/tiny/reference-mix/). */
import { readFileSync } from 'node:fs';
import { nodeZlib } from '../workers/engine/node-zlib.node';
import { decodePng, type RgbaImage } from '../workers/engine/png';
import type { MixReferenceData, MixReferenceIndex } from './mix-reference';
import { parseNpy } from './npy';
import { TINY_DIR } from './tiny-fixture.node';

export type { MixCase } from './mix-reference';

export const MIX_DIR = `${TINY_DIR}reference-mix/`;

export const mixReference = JSON.parse(readFileSync(`${MIX_DIR}cases.json`, 'utf8')) as MixReferenceIndex;

export function mixInput(path: string): Promise<RgbaImage> {
  return decodePng(new Uint8Array(readFileSync(MIX_DIR + path)), nodeZlib, 1e7);
}

/** The recording read from disk, for the shared checks of mix-reference.ts. */
export const mixData: MixReferenceData = {
  image: mixInput,
  tensor: async (testCase, name) => {
    const entry = testCase.tensors[name];
    if (!entry) return null;
    const array = parseNpy(new Uint8Array(readFileSync(`${MIX_DIR}${testCase.name}/${entry.file}`)));
    return { data: array.data as ArrayLike<number | bigint>, shape: array.shape };
  },
};
