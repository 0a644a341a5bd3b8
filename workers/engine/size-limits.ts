/**
 * Which output sizes a model set accepts: the range its manifest records (the export tool's
 * --size-range), else by its `source`. The real Kandinsky 2.2 UNet was trained for 512–1024 px
 * and works from 256 to 2048; the tiny fixture set exists to be fast, so tests and the browser on
 * SwiftShader use 64–512 px (its UNet has 2 down-sampling levels, so 64 px steps still suffice).
 */
import type { Manifest } from '../../models/manifest';
import { KANDINSKY_SIZE_LIMITS, type SizeLimits } from './settings';

/** The tiny random-weight set: 64–512 px per side in steps of 64, any aspect ratio in that range. */
export const TINY_SIZE_LIMITS: SizeLimits = { minSide: 64, maxSide: 512, multiple: 64, maxAspect: 8 };

/**
 * Size limits for a model set: its manifest's `sizeRange` where it has one (with the aspect limit
 * of its kind), else from its `source`.
 */
export function sizeLimitsFor(manifest: Pick<Manifest, 'source' | 'sizeRange'>): SizeLimits {
  const byKind = manifest.source === 'tiny-random' ? TINY_SIZE_LIMITS : KANDINSKY_SIZE_LIMITS;
  const range = manifest.sizeRange;
  return range ? { ...byKind, minSide: range.minSide, maxSide: range.maxSide } : byKind;
}
