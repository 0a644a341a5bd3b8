/** Node access to the tiny set's image-mixing reference recordings (models/fixtures/tiny/reference-mix/). */
import type { RgbaImage } from '../workers/engine/png';
import { tinySet } from './tiny-fixture.node';

export type { MixCase } from './mix-reference';

export const MIX_DIR = `${tinySet.dir}reference-mix/`;

export const mixReference = tinySet.mixReference;

export function mixInput(path: string): Promise<RgbaImage> {
  return tinySet.mixData.image(path);
}

/** The recording read from disk, for the shared checks of mix-reference.ts. */
export const mixData = tinySet.mixData;
