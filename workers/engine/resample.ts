/**
 * Image resizing that reproduces Pillow's `Image.resize` on 8-bit images byte for byte, because the
 * reference feeds Pillow-resized pictures to the models: CLIPImageProcessor resizes with
 * `Image.BICUBIC` before the image encoder, and diffusers resizes inpainting masks with
 * `Image.LANCZOS`. Pillow's algorithm (libImaging/Resample.c): a separable convolution, horizontal
 * pass first, whose kernel is stretched by the down-scaling factor (so shrinking averages instead of
 * aliasing); weights are normalised per output pixel, turned into 22-bit fixed point, and every pass
 * rounds and clamps to 0–255. Sizes are pixels.
 */
import type { RgbaImage } from './png';

export type ResampleFilter = 'bicubic' | 'lanczos';

interface Kernel {
  readonly support: number;
  readonly weight: (x: number) => number;
}

// Pillow's bicubic uses a = −0.5 (Keys' kernel), not the a = −0.75 of some other libraries.
const BICUBIC_A = -0.5;

function sinc(x: number): number {
  if (x === 0) return 1;
  const px = x * Math.PI;
  return Math.sin(px) / px;
}

const KERNELS: Readonly<Record<ResampleFilter, Kernel>> = {
  bicubic: {
    support: 2,
    weight: (value) => {
      const x = Math.abs(value);
      if (x < 1) return ((BICUBIC_A + 2) * x - (BICUBIC_A + 3)) * x * x + 1;
      if (x < 2) return (((x - 5) * x + 8) * x - 4) * BICUBIC_A;
      return 0;
    },
  },
  lanczos: {
    support: 3,
    weight: (x) => (x >= -3 && x < 3 ? sinc(x) * sinc(x / 3) : 0),
  },
};

// 32 bits − 8 bits of pixel − 2 bits of headroom for the kernel's overshoot (Pillow's choice).
const PRECISION_BITS = 22;
const ONE = 2 ** PRECISION_BITS;
const HALF = 2 ** (PRECISION_BITS - 1);

/** Per output pixel along one axis: the first input pixel, how many are used, and their weights. */
interface Coefficients {
  readonly first: Int32Array;
  readonly count: Int32Array;
  /** Fixed-point weights, `stride` per output pixel. */
  readonly weights: Int32Array;
  readonly stride: number;
}

function coefficients(inSize: number, outSize: number, kernel: Kernel): Coefficients {
  const scale = inSize / outSize;
  const filterScale = Math.max(scale, 1);
  const support = kernel.support * filterScale;
  const stride = Math.ceil(support) * 2 + 1;
  const first = new Int32Array(outSize);
  const count = new Int32Array(outSize);
  const weights = new Int32Array(outSize * stride);
  const row = new Float64Array(stride);
  for (let out = 0; out < outSize; out++) {
    const centre = (out + 0.5) * scale;
    // C's (int) cast truncates towards zero; the result is clamped to the image right after.
    const lo = Math.max(0, Math.trunc(centre - support + 0.5));
    const hi = Math.min(inSize, Math.trunc(centre + support + 0.5));
    let total = 0;
    for (let i = 0; i < hi - lo; i++) {
      const w = kernel.weight((i + lo - centre + 0.5) / filterScale);
      row[i] = w;
      total += w;
    }
    for (let i = 0; i < hi - lo; i++) {
      const w = total !== 0 ? (row[i] as number) / total : (row[i] as number);
      weights[out * stride + i] = Math.trunc(w < 0 ? -0.5 + w * ONE : 0.5 + w * ONE);
    }
    first[out] = lo;
    count[out] = hi - lo;
  }
  return { first, count, weights, stride };
}

function clip8(sum: number): number {
  const v = Math.floor(sum / ONE);
  return Math.min(Math.max(v, 0), 255);
}

/**
 * Resizes interleaved 8-bit pixels with `channels` values each; every channel is filtered on its
 * own (Pillow's RGB and L modes; alpha, if present, is just another channel — not premultiplied).
 */
export function resamplePixels(
  data: Uint8Array,
  width: number,
  height: number,
  channels: number,
  outWidth: number,
  outHeight: number,
  filter: ResampleFilter,
): Uint8Array {
  if (![width, height, outWidth, outHeight].every((n) => Number.isInteger(n) && n > 0)) {
    throw new RangeError(`Cannot resize ${width}×${height} to ${outWidth}×${outHeight}.`);
  }
  const kernel = KERNELS[filter];
  let source = data;
  let w = width;
  // Pillow skips a pass whose size does not change (its result would be the same pixels).
  if (outWidth !== width) {
    const c = coefficients(width, outWidth, kernel);
    const out = new Uint8Array(outWidth * height * channels);
    for (let y = 0; y < height; y++) {
      for (let x = 0; x < outWidth; x++) {
        const lo = c.first[x] as number;
        const n = c.count[x] as number;
        for (let ch = 0; ch < channels; ch++) {
          let sum = HALF;
          for (let i = 0; i < n; i++) {
            sum += (source[(y * width + lo + i) * channels + ch] ?? 0) * (c.weights[x * c.stride + i] ?? 0);
          }
          out[(y * outWidth + x) * channels + ch] = clip8(sum);
        }
      }
    }
    source = out;
    w = outWidth;
  }
  if (outHeight !== height) {
    const c = coefficients(height, outHeight, kernel);
    const out = new Uint8Array(w * outHeight * channels);
    for (let y = 0; y < outHeight; y++) {
      const lo = c.first[y] as number;
      const n = c.count[y] as number;
      for (let x = 0; x < w; x++) {
        for (let ch = 0; ch < channels; ch++) {
          let sum = HALF;
          for (let i = 0; i < n; i++) {
            sum += (source[((lo + i) * w + x) * channels + ch] ?? 0) * (c.weights[y * c.stride + i] ?? 0);
          }
          out[(y * w + x) * channels + ch] = clip8(sum);
        }
      }
    }
    source = out;
  }
  return source === data ? data.slice() : source;
}

/**
 * An RGBA picture resized as Pillow resizes its RGB conversion: alpha is dropped (the models see
 * RGB only) and the result is opaque.
 */
export function resizeRgb(
  image: RgbaImage,
  outWidth: number,
  outHeight: number,
  filter: ResampleFilter,
): RgbaImage {
  const plane = image.width * image.height;
  const rgb = new Uint8Array(plane * 3);
  for (let i = 0; i < plane; i++) {
    rgb[i * 3] = image.data[i * 4] ?? 0;
    rgb[i * 3 + 1] = image.data[i * 4 + 1] ?? 0;
    rgb[i * 3 + 2] = image.data[i * 4 + 2] ?? 0;
  }
  const resized = resamplePixels(rgb, image.width, image.height, 3, outWidth, outHeight, filter);
  const data = new Uint8Array(outWidth * outHeight * 4);
  for (let i = 0; i < outWidth * outHeight; i++) {
    data[i * 4] = resized[i * 3] ?? 0;
    data[i * 4 + 1] = resized[i * 3 + 1] ?? 0;
    data[i * 4 + 2] = resized[i * 3 + 2] ?? 0;
    data[i * 4 + 3] = 255;
  }
  return { width: outWidth, height: outHeight, data };
}
