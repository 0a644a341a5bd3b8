/**
 * The MoVQ autoencoder: pictures → latents (encoder; image→image, inpainting, depth from a photo)
 * and latents → pictures (decoder, the last stage), with diffusers' pixel conventions.
 */
import { assertFinite } from '../finite';
import { checkAborted } from '../hooks';
import { movqOutputToImages, rgbaToSignedNchw } from '../image';
import { readFloat32, requiredOutput, TensorScope } from '../ort';
import type { RgbaImage } from '../png';
import { concatRows } from '../rows';
import { releaseAfterStage, type StageContext } from './context';

/** Latents on the host with their shape `[N, C, h, w]`. */
export interface HostLatents {
  readonly latents: Float32Array;
  readonly dims: readonly number[];
}

/** A picture (at the output size) → its MoVQ latents `[1, C, H/8, W/8]`. */
export async function encodeImage(context: StageContext, image: RgbaImage): Promise<HostLatents> {
  const { models, hooks } = context;
  const session = await models.session('movq_encoder');
  const scope = new TensorScope(models.ort);
  try {
    const pixels = rgbaToSignedNchw(image);
    hooks.trace?.('input_image', pixels, [1, 3, image.height, image.width]);
    const out = await scope.run(session, { image: scope.float32(pixels, [1, 3, image.height, image.width]) });
    const latents = requiredOutput(out, 'latents');
    const result = { latents: (await readFloat32(latents)).slice(), dims: [...latents.dims] };
    hooks.trace?.('image_latents', result.latents, result.dims);
    return result;
  } finally {
    scope.disposeAll();
    await releaseAfterStage(context, 'movq_encoder');
  }
}

export interface DecodedImages {
  readonly images: RgbaImage[];
  /** The images as floats in [0, 1], NHWC — diffusers' `output_type="np"`. */
  readonly floatImages: Float32Array;
}

/** The final latents → 8-bit pictures, one image at a time. */
export async function decodeLatents(context: StageContext, latents: HostLatents): Promise<DecodedImages> {
  const { models, hooks } = context;
  const [count = 1, channels = 4, h = 0, w = 0] = latents.dims;
  hooks.trace?.('movq_input_latents', latents.latents, latents.dims);
  const session = await models.session('movq_decoder');
  const perImage = channels * h * w;
  const samples: Float32Array[] = [];
  let outDims: readonly number[] = [];
  // One image at a time: MoVQ's activations at full size are the largest of the pipeline.
  for (let b = 0; b < count; b++) {
    hooks.onProgress?.({ stage: 'decode', image: b + 1, images: count });
    checkAborted(hooks.signal);
    const scope = new TensorScope(models.ort);
    try {
      const out = await scope.run(session, {
        latents: scope.float32(latents.latents.slice(b * perImage, (b + 1) * perImage), [1, channels, h, w]),
      });
      const sample = requiredOutput(out, 'sample');
      outDims = sample.dims;
      samples.push((await readFloat32(sample)).slice());
    } finally {
      scope.disposeAll();
    }
  }
  await releaseAfterStage(context, 'movq_decoder');
  const [, c = 3, hp = 0, wp = 0] = outDims;
  const sample = concatRows(...samples);
  hooks.trace?.('movq_output', sample, [count, c, hp, wp]);
  assertFinite(sample, 'The MoVQ decoder’s pictures');
  const { images, floatNhwc } = movqOutputToImages(sample, [count, c, hp, wp]);
  hooks.trace?.('output_image', floatNhwc, [count, hp, wp, c]);
  return { images, floatImages: floatNhwc };
}
