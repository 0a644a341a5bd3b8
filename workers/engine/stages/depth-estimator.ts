/**
 * Photo → depth map, as transformers' `pipeline("depth-estimation")` does it with a Depth Anything
 * model, so that the hint the depth UNet gets is the one of diffusers' Kandinsky 2.2 ControlNet
 * examples (`make_hint`: the pipeline's 8-bit depth image / 255, three channels):
 *
 * 1. DPTImageProcessor: Pillow bicubic resize keeping the aspect ratio, sides rounded to a multiple
 *    of 14, `/255` (in float64, stored as float32), ImageNet mean/std (float32).
 * 2. The `depth_estimator` graph: pixel values → relative depth at the processed size.
 * 3. The pipeline's post-processing: torch's bicubic `interpolate` back to the photo's size
 *    (align_corners=False), then `depth · 255 / max(depth)` cast to uint8 (numpy's float → uint8).
 *
 * Run in the engine on our one onnxruntime (no transformers.js): every step is a few lines, and
 * the reference fixtures in models/fixtures/tiny/reference-depth/ check each one.
 */
import { DEPTH_IMAGE_MEAN, DEPTH_IMAGE_STD, DEPTH_PATCH_SIZE } from '../../../models/contract';
import { KandinskyError } from '../../errors';
import { roundHalfEven } from '../math';
import type { ModelSet } from '../model-set';
import { readFloat32, requiredOutput, TensorScope } from '../ort';
import type { RgbaImage } from '../png';
import { resizeRgb } from '../resample';

/**
 * The processor's output size for a photo, pixels: the side whose scale is closer to 1 decides the
 * scale of both ("scale as little as possible"), then each side is rounded to a multiple of 14
 * (transformers' `get_resize_output_image_size` for DPT, `keep_aspect_ratio=True`).
 */
export function depthInputSize(
  width: number,
  height: number,
  target: number,
): { width: number; height: number } {
  let scaleHeight = target / height;
  let scaleWidth = target / width;
  if (Math.abs(1 - scaleWidth) < Math.abs(1 - scaleHeight)) scaleHeight = scaleWidth;
  else scaleWidth = scaleHeight;
  const toMultiple = (value: number) => {
    // max_val is None in DPT's use, so only the lower bound (0) can change the rounded value.
    const x = roundHalfEven(value / DEPTH_PATCH_SIZE) * DEPTH_PATCH_SIZE;
    return x < 0 ? Math.ceil(value / DEPTH_PATCH_SIZE) * DEPTH_PATCH_SIZE : x;
  };
  const size = { width: toMultiple(scaleWidth * width), height: toMultiple(scaleHeight * height) };
  if (size.width < DEPTH_PATCH_SIZE || size.height < DEPTH_PATCH_SIZE) {
    throw new KandinskyError(
      'INVALID_INPUT',
      `A ${width}×${height} photo is too thin for depth estimation; use one at most 1:${Math.floor(target / DEPTH_PATCH_SIZE)}.`,
    );
  }
  return size;
}

/** The depth graph's `pixel_values` [1, 3, h, w] for a photo (alpha dropped). */
export function depthPixelValues(
  photo: RgbaImage,
  target: number,
): { data: Float32Array; width: number; height: number } {
  const { width, height } = depthInputSize(photo.width, photo.height, target);
  const resized = resizeRgb(photo, width, height, 'bicubic');
  const plane = width * height;
  const data = new Float32Array(3 * plane);
  for (let c = 0; c < 3; c++) {
    const mean = Math.fround(DEPTH_IMAGE_MEAN[c] ?? 0);
    const std = Math.fround(DEPTH_IMAGE_STD[c] ?? 1);
    for (let i = 0; i < plane; i++) {
      // transformers rescales in float64 and stores float32, then normalises in float32.
      const scaled = Math.fround((resized.data[i * 4 + c] ?? 0) * (1 / 255));
      data[c * plane + i] = Math.fround(Math.fround(scaled - mean) / std);
    }
  }
  return { data, width, height };
}

/** torch's cubic convolution weights (A = −0.75) for a fractional offset t, in float32. */
function cubicWeights(t: number): [number, number, number, number] {
  const a = Math.fround(-0.75);
  const f = Math.fround;
  // cubic_convolution1: ((A + 2) x − (A + 3)) x² + 1, for |x| ≤ 1
  const near = (x: number) => f(f(f(f(f(f(a + 2) * x) - f(a + 3)) * x) * x) + 1);
  // cubic_convolution2: ((A x − 5A) x + 8A) x − 4A, for 1 < |x| < 2
  const far = (x: number) => f(f(f(f(f(f(a * x) - f(5 * a)) * x) + f(8 * a)) * x) - f(4 * a));
  const x1 = f(t);
  const x2 = f(1 - t);
  return [far(f(x1 + 1)), near(x1), near(x2), far(f(x2 + 1))];
}

interface CubicAxis {
  readonly index: Int32Array; // [out, 4] clamped source indices
  readonly weight: Float32Array; // [out, 4]
}

function cubicAxis(inSize: number, outSize: number): CubicAxis {
  const scale = Math.fround(inSize / outSize);
  const index = new Int32Array(outSize * 4);
  const weight = new Float32Array(outSize * 4);
  for (let o = 0; o < outSize; o++) {
    // area_pixel_compute_source_index for cubic: scale · (o + 0.5) − 0.5, not clamped.
    const real = Math.fround(scale * (o + 0.5) - 0.5);
    const base = Math.floor(real);
    const w = cubicWeights(Math.fround(real - base));
    for (let k = 0; k < 4; k++) {
      index[o * 4 + k] = Math.min(Math.max(base - 1 + k, 0), inSize - 1);
      weight[o * 4 + k] = w[k] as number;
    }
  }
  return { index, weight };
}

/**
 * torch.nn.functional.interpolate(mode="bicubic", align_corners=False) of one plane on the CPU:
 * along x first, then y, summing the four taps in order in float32, borders replicated.
 */
export function bicubicResizePlane(
  plane: Float32Array,
  inWidth: number,
  inHeight: number,
  outWidth: number,
  outHeight: number,
): Float32Array {
  const xs = cubicAxis(inWidth, outWidth);
  const ys = cubicAxis(inHeight, outHeight);
  const f = Math.fround;
  const out = new Float32Array(outWidth * outHeight);
  const rows = new Float32Array(4);
  for (let y = 0; y < outHeight; y++) {
    for (let x = 0; x < outWidth; x++) {
      for (let k = 0; k < 4; k++) {
        const row = (ys.index[y * 4 + k] as number) * inWidth;
        let sum = 0;
        for (let j = 0; j < 4; j++) {
          const v = f((plane[row + (xs.index[x * 4 + j] as number)] ?? 0) * (xs.weight[x * 4 + j] as number));
          sum = j === 0 ? v : f(sum + v);
        }
        rows[k] = sum;
      }
      let value = 0;
      for (let k = 0; k < 4; k++) {
        const v = f((rows[k] as number) * (ys.weight[y * 4 + k] as number));
        value = k === 0 ? v : f(value + v);
      }
      out[y * outWidth + x] = value;
    }
  }
  return out;
}

/**
 * `(depth · 255 / max(depth)).astype("uint8")`: float32 arithmetic, then numpy's cast, which on
 * the reference machines truncates toward zero and keeps the low 8 bits (bicubic undershoot below
 * 0 wraps to 255, as it does in transformers). An all-zero prediction gives NaN there, cast to 0.
 */
export function depthToUint8(depth: Float32Array): Uint8Array {
  let max = Number.NEGATIVE_INFINITY;
  for (const v of depth) if (v > max) max = v;
  const out = new Uint8Array(depth.length);
  for (let i = 0; i < depth.length; i++) {
    const v = Math.fround(Math.fround((depth[i] as number) * 255) / max);
    out[i] = Number.isFinite(v) ? Math.trunc(v) & 0xff : 0;
  }
  return out;
}

export interface DepthEstimate {
  /** The depth map at the photo's size: grey RGBA, near = bright (what the UI previews). */
  readonly depthMap: RgbaImage;
  /** The graph's raw output and its size, for parity checks. */
  readonly predicted: { readonly data: Float32Array; readonly width: number; readonly height: number };
  readonly pixelValues: Float32Array;
}

/** Runs the set's `depth_estimator` on a photo; the depth map comes back at the photo's size. */
export async function estimateDepth(models: ModelSet, photo: RgbaImage): Promise<DepthEstimate> {
  const target = models.manifest.dims.depthImageSize;
  if (target === undefined) {
    throw new KandinskyError(
      'MODEL_COMPONENT_MISSING',
      `The model set "${models.manifest.modelId}" has no depth estimator: give a depth map instead of a photo.`,
    );
  }
  const pixels = depthPixelValues(photo, target);
  const session = await models.session('depth_estimator');
  const scope = new TensorScope(models.ort);
  let predicted: Float32Array;
  try {
    const out = await scope.run(session, {
      pixel_values: scope.float32(pixels.data, [1, 3, pixels.height, pixels.width]),
    });
    predicted = (await readFloat32(requiredOutput(out, 'predicted_depth'))).slice();
  } finally {
    scope.disposeAll();
  }
  const resized = bicubicResizePlane(predicted, pixels.width, pixels.height, photo.width, photo.height);
  const grey = depthToUint8(resized);
  const data = new Uint8Array(grey.length * 4);
  grey.forEach((g, i) => {
    data.set([g, g, g, 255], i * 4);
  });
  return {
    depthMap: { width: photo.width, height: photo.height, data },
    predicted: { data: predicted, width: pixels.width, height: pixels.height },
    pixelValues: pixels.data,
  };
}
