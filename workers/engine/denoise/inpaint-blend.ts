/**
 * Inpainting keeps the unmasked area from the input: after each step it is replaced by the encoded
 * image noised to the next timestep (with the initial noise), or by the clean encoded image after
 * the last. The host form of what the step graph does on the device.
 */
import type { DecoderScheduler } from '../schedulers';

export interface InpaintState {
  /** Keep mask `[h·w]`: 1 = keep, 0 = repaint. */
  readonly keep: Float32Array;
  /** The encoded picture `[1, C, h, w]`. */
  readonly imageLatents: Float32Array;
  /** The initial noise `[N, C, h, w]`. */
  readonly noise: Float32Array;
}

/** `latents` `[N, C, h, w]` with the kept region put back, noised to `nextTimestep` (or clean). */
export function blendKept(
  scheduler: DecoderScheduler,
  inpaint: InpaintState,
  latents: Float32Array,
  nextTimestep: number | undefined,
  dims: readonly number[],
): Float32Array {
  const [n = 1, channels = 4, h = 0, w = 0] = dims;
  const plane = h * w;
  const perImage = channels * plane;
  const original =
    nextTimestep === undefined
      ? inpaint.imageLatents
      : scheduler.addNoise(inpaint.imageLatents, inpaint.noise.subarray(0, perImage), [nextTimestep]);
  const out = new Float32Array(latents.length);
  for (let k = 0; k < n * perImage; k++) {
    const keep = inpaint.keep[k % plane] ?? 0;
    const o = original[k % perImage] ?? 0;
    out[k] = Math.fround(Math.fround(keep * o) + Math.fround((1 - keep) * (latents[k] ?? 0)));
  }
  return out;
}
