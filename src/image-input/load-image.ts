/**
 * Turns a file the person dropped, pasted or picked into RGBA pixels at the output size, in the
 * browser (canvas). The worker only ever receives pixels of exactly the size it generates.
 */
import type { RgbaImage } from '../../workers/api';
import { coverCrop, MAX_INPUT_PIXELS, readImageDimensions, tooLargeMessage } from './image-dimensions';

export class ImageInputError extends Error {
  override readonly name = 'ImageInputError';
  readonly code: 'IMAGE_UNREADABLE' | 'IMAGE_TOO_LARGE';

  constructor(code: 'IMAGE_UNREADABLE' | 'IMAGE_TOO_LARGE', message: string) {
    super(message);
    this.code = code;
  }
}

/** A decoded input picture, kept at its own size so it can be re-fitted when the size changes. */
export interface SourceImage {
  readonly name: string;
  readonly bitmap: ImageBitmap;
}

/** Decodes an image file after checking its header size against the 50-megapixel limit. */
export async function decodeImageFile(file: Blob, name = 'image'): Promise<SourceImage> {
  const head = new Uint8Array(await file.slice(0, 1 << 20).arrayBuffer());
  const dims = readImageDimensions(head);
  if (dims) {
    const tooLarge = tooLargeMessage(dims.width, dims.height);
    if (tooLarge) throw new ImageInputError('IMAGE_TOO_LARGE', tooLarge);
  }
  let bitmap: ImageBitmap;
  try {
    bitmap = await createImageBitmap(file);
  } catch {
    throw new ImageInputError(
      'IMAGE_UNREADABLE',
      `“${name}” could not be read as an image. Use a PNG, JPEG or WebP file.`,
    );
  }
  // Formats whose header we don't parse are checked after decoding.
  const tooLarge = tooLargeMessage(bitmap.width, bitmap.height, MAX_INPUT_PIXELS);
  if (tooLarge) {
    bitmap.close();
    throw new ImageInputError('IMAGE_TOO_LARGE', tooLarge);
  }
  return { name, bitmap };
}

/** Draws the source centre-cropped to the output aspect and scaled to exactly width × height pixels. */
export function fitToSize(source: SourceImage, width: number, height: number): RgbaImage {
  const canvas = new OffscreenCanvas(width, height);
  const context = canvas.getContext('2d', { willReadFrequently: true });
  if (!context) throw new ImageInputError('IMAGE_UNREADABLE', 'This browser cannot draw images to a canvas.');
  const crop = coverCrop(source.bitmap.width, source.bitmap.height, width, height);
  context.imageSmoothingQuality = 'high';
  context.drawImage(source.bitmap, crop.x, crop.y, crop.width, crop.height, 0, 0, width, height);
  const pixels = context.getImageData(0, 0, width, height).data;
  return { width, height, data: new Uint8Array(pixels.buffer, pixels.byteOffset, pixels.byteLength) };
}

/** The first image file in a drop or paste, if any. */
export function firstImageFile(items: DataTransfer | null): File | null {
  if (!items) return null;
  for (const file of Array.from(items.files))
    if (file.type.startsWith('image/') || file.type === '') return file;
  return null;
}
