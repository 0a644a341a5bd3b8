/**
 * The CLIP image encoder: a picture → its CLIP image embedding, after CLIPImageProcessor's resize,
 * centre crop and normalisation. Used where a picture steers the prior: image mixing and the
 * prior strength of image→image.
 */
import type { TraceFn } from '../hooks';
import type { ModelSet } from '../model-set';
import { readFloat32, requiredOutput, TensorScope } from '../ort';
import type { RgbaImage } from '../png';
import { resamplePixels } from '../resample';

/** CLIPImageProcessor's normalisation of the real prior (OpenAI CLIP's statistics). */
const CLIP_MEAN = [0.48145466, 0.4578275, 0.40821073] as const;
const CLIP_STD = [0.26862954, 0.26130258, 0.27577711] as const;

/**
 * CLIPImageProcessor's geometry: the shortest side resized to `size` with Pillow's bicubic (the
 * longest to `trunc(size · long / short)`), then the centre `size × size` crop. 8-bit RGB result.
 */
export function clipResizeAndCrop(image: RgbaImage, size: number): RgbaImage {
  const { width, height } = image;
  const short = Math.min(width, height);
  const long = Math.max(width, height);
  const newLong = Math.trunc((size * long) / short);
  const outWidth = width <= height ? size : newLong;
  const outHeight = width <= height ? newLong : size;
  const plane = width * height;
  const rgb = new Uint8Array(plane * 3);
  for (let i = 0; i < plane; i++) {
    for (let c = 0; c < 3; c++) rgb[i * 3 + c] = image.data[i * 4 + c] ?? 0;
  }
  const resized = resamplePixels(rgb, width, height, 3, outWidth, outHeight, 'bicubic');
  const top = Math.floor((outHeight - size) / 2);
  const left = Math.floor((outWidth - size) / 2);
  const data = new Uint8Array(size * size * 4);
  for (let y = 0; y < size; y++) {
    for (let x = 0; x < size; x++) {
      const from = ((top + y) * outWidth + left + x) * 3;
      const to = (y * size + x) * 4;
      data[to] = resized[from] ?? 0;
      data[to + 1] = resized[from + 1] ?? 0;
      data[to + 2] = resized[from + 2] ?? 0;
      data[to + 3] = 255;
    }
  }
  return { width: size, height: size, data };
}

/**
 * A picture → the image encoder's `pixel_values` `[1, 3, size, size]`: resize and crop, then
 * `(pixel · (1/255) − mean) / std` with the rounding transformers does (the product in float64,
 * then float32 for the rest).
 */
export function clipPixelValues(image: RgbaImage, size: number): Float32Array {
  const crop = clipResizeAndCrop(image, size);
  const plane = size * size;
  const out = new Float32Array(3 * plane);
  for (let c = 0; c < 3; c++) {
    const mean = Math.fround(CLIP_MEAN[c] ?? 0);
    const std = Math.fround(CLIP_STD[c] ?? 1);
    for (let i = 0; i < plane; i++) {
      const scaled = Math.fround((crop.data[i * 4 + c] ?? 0) * (1 / 255));
      out[c * plane + i] = Math.fround(Math.fround(scaled - mean) / std);
    }
  }
  return out;
}

/** The image encoder's embedding `[1, D]` of one picture. */
export async function encodePicture(
  models: ModelSet,
  image: RgbaImage,
  trace: TraceFn | undefined,
): Promise<Float32Array> {
  const size = models.manifest.dims.imageEncoderSize;
  const d = models.manifest.dims.imageEmbedDim;
  const pixels = clipPixelValues(image, size);
  trace?.('image_encoder_pixel_values', pixels, [1, 3, size, size]);
  const session = await models.session('image_encoder');
  const scope = new TensorScope(models.ort);
  try {
    const out = await scope.run(session, { pixel_values: scope.float32(pixels, [1, 3, size, size]) });
    const values = (await readFloat32(requiredOutput(out, 'image_embeds'))).slice(0, d);
    trace?.('image_encoder_image_embeds', values, [1, d]);
    return values;
  } finally {
    scope.disposeAll();
  }
}
