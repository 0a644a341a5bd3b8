/**
 * Pixel ⇄ tensor conversions and mask preparation, matching diffusers' Kandinsky 2.2 pipelines.
 * Sizes are in pixels unless a name says latents.
 */
import type { RgbaImage } from './png';

export interface MaskImage {
  readonly width: number;
  readonly height: number;
  /** One byte per pixel; ≥ 128 (0.5 after /255) means "repaint". */
  readonly data: Uint8Array;
}

/** RGBA pixels → float32 NCHW [1, 3, H, W] in [-1, 1] (`pixel / 127.5 − 1`, alpha dropped). */
export function rgbaToSignedNchw(image: RgbaImage): Float32Array {
  const { width, height, data } = image;
  const plane = width * height;
  const out = new Float32Array(3 * plane);
  for (let i = 0; i < plane; i++) {
    for (let c = 0; c < 3; c++) out[c * plane + i] = Math.fround((data[i * 4 + c] ?? 0) / 127.5) - 1;
  }
  return out;
}

/** A depth map's grey level (near = bright) → the depth UNet's hint [1, 3, H, W] in [0, 1]. */
export function depthMapToHint(depthMap: RgbaImage): Float32Array {
  const { width, height, data } = depthMap;
  const plane = width * height;
  const out = new Float32Array(3 * plane);
  for (let i = 0; i < plane; i++) {
    const grey = Math.fround((data[i * 4] ?? 0) / 255);
    out[i] = grey;
    out[plane + i] = grey;
    out[2 * plane + i] = grey;
  }
  return out;
}

/**
 * MoVQ output (NCHW, ≈ [-1, 1]) → 8-bit RGBA images, as diffusers does it:
 * `clamp(x · 0.5 + 0.5, 0, 1)`, then `round(· 255)` for pixels. Also returns the float image
 * (NHWC, [0, 1]) that diffusers' `output_type="np"` gives, for parity checks.
 */
export function movqOutputToImages(
  sample: Float32Array,
  dims: readonly number[],
): { images: RgbaImage[]; floatNhwc: Float32Array } {
  const [batch = 0, channels = 0, height = 0, width = 0] = dims;
  if (channels !== 3) throw new Error(`MoVQ output must have 3 channels, got ${channels}.`);
  const plane = width * height;
  const floatNhwc = new Float32Array(batch * plane * 3);
  const images: RgbaImage[] = [];
  for (let b = 0; b < batch; b++) {
    const data = new Uint8Array(plane * 4);
    for (let i = 0; i < plane; i++) {
      for (let c = 0; c < 3; c++) {
        const x = sample[(b * 3 + c) * plane + i] ?? 0;
        const v = Math.min(1, Math.max(0, Math.fround(Math.fround(x * 0.5) + 0.5)));
        floatNhwc[(b * plane + i) * 3 + c] = v;
        data[i * 4 + c] = Math.round(v * 255);
      }
      data[i * 4 + 3] = 255;
    }
    images.push({ width, height, data });
  }
  return { images, floatNhwc };
}

/**
 * The inpainting UNet's keep mask on the latent grid (1 = keep, 0 = repaint), as diffusers builds
 * it: binarise the user's mask at 0.5 and invert it, resize to latents with nearest neighbour, then
 * grow the repaint region by one latent cell towards the six neighbours `prepare_mask` touches.
 */
export function latentKeepMask(mask: MaskImage, latentHeight: number, latentWidth: number): Float32Array {
  const keep = new Float32Array(latentHeight * latentWidth);
  for (let i = 0; i < latentHeight; i++) {
    const y = Math.floor((i * mask.height) / latentHeight);
    for (let j = 0; j < latentWidth; j++) {
      const x = Math.floor((j * mask.width) / latentWidth);
      keep[i * latentWidth + j] = (mask.data[y * mask.width + x] ?? 0) / 255 >= 0.5 ? 0 : 1;
    }
  }
  const grown = keep.slice();
  const neighbours = [
    [-1, 0],
    [0, -1],
    [-1, -1],
    [1, 0],
    [0, 1],
    [1, 1],
  ] as const;
  for (let i = 0; i < latentHeight; i++) {
    for (let j = 0; j < latentWidth; j++) {
      if (keep[i * latentWidth + j] === 1) continue;
      for (const [di, dj] of neighbours) {
        const y = i + di;
        const x = j + dj;
        if (y >= 0 && y < latentHeight && x >= 0 && x < latentWidth) grown[y * latentWidth + x] = 0;
      }
    }
  }
  return grown;
}

/** True when no pixel of the mask asks for repainting. */
export function maskIsEmpty(mask: MaskImage): boolean {
  return !mask.data.some((v) => v >= 128);
}

/**
 * A cheap look at latents while denoising: the first three latent channels, each stretched to its
 * own range, as RGB at latent resolution. Not a decode; it shows composition forming, not colours.
 */
export function latentPreview(latents: Float32Array, latentHeight: number, latentWidth: number): RgbaImage {
  const plane = latentHeight * latentWidth;
  const data = new Uint8Array(plane * 4);
  for (let c = 0; c < 3; c++) {
    let lo = Number.POSITIVE_INFINITY;
    let hi = Number.NEGATIVE_INFINITY;
    for (let i = 0; i < plane; i++) {
      const v = latents[c * plane + i] ?? 0;
      lo = Math.min(lo, v);
      hi = Math.max(hi, v);
    }
    const scale = hi > lo ? 255 / (hi - lo) : 0;
    for (let i = 0; i < plane; i++)
      data[i * 4 + c] = Math.round(((latents[c * plane + i] ?? 0) - lo) * scale);
  }
  for (let i = 0; i < plane; i++) data[i * 4 + 3] = 255;
  return { width: latentWidth, height: latentHeight, data };
}
