/**
 * Reads an image's pixel size from its header bytes, before the browser decodes it: decoding a
 * 200-megapixel file just to learn it is too big can take the tab down with it.
 */

/** The largest input image accepted, in pixels (50 megapixels). */
export const MAX_INPUT_PIXELS = 50_000_000;

export interface ImageDimensions {
  readonly format: 'png' | 'jpeg' | 'webp' | 'gif';
  readonly width: number;
  readonly height: number;
}

const u16be = (b: Uint8Array, i: number) => ((b[i] ?? 0) << 8) | (b[i + 1] ?? 0);
const u16le = (b: Uint8Array, i: number) => (b[i] ?? 0) | ((b[i + 1] ?? 0) << 8);
const u24le = (b: Uint8Array, i: number) => u16le(b, i) | ((b[i + 2] ?? 0) << 16);
const u32be = (b: Uint8Array, i: number) => u16be(b, i) * 65536 + u16be(b, i + 2);
const ascii = (b: Uint8Array, i: number, n: number) => String.fromCharCode(...b.subarray(i, i + n));

/**
 * The size written in a PNG, JPEG, WebP or GIF header, or null for other formats and headers too
 * damaged to read (the browser's decoder then has the last word). `bytes` need only hold the
 * start of the file; a JPEG's size marker can sit after large metadata, so pass up to ~1 MB.
 */
export function readImageDimensions(bytes: Uint8Array): ImageDimensions | null {
  if (bytes[0] === 0x89 && ascii(bytes, 1, 3) === 'PNG' && ascii(bytes, 12, 4) === 'IHDR') {
    return { format: 'png', width: u32be(bytes, 16), height: u32be(bytes, 20) };
  }
  if (ascii(bytes, 0, 3) === 'GIF') {
    return { format: 'gif', width: u16le(bytes, 6), height: u16le(bytes, 8) };
  }
  if (ascii(bytes, 0, 4) === 'RIFF' && ascii(bytes, 8, 4) === 'WEBP') {
    const kind = ascii(bytes, 12, 4);
    if (kind === 'VP8X') return { format: 'webp', width: u24le(bytes, 24) + 1, height: u24le(bytes, 27) + 1 };
    if (kind === 'VP8L' && bytes[20] === 0x2f) {
      const b1 = bytes[21] ?? 0;
      const b2 = bytes[22] ?? 0;
      const b3 = bytes[23] ?? 0;
      const b4 = bytes[24] ?? 0;
      return {
        format: 'webp',
        width: 1 + (((b2 & 0x3f) << 8) | b1),
        height: 1 + (((b4 & 0x0f) << 10) | (b3 << 2) | ((b2 & 0xc0) >> 6)),
      };
    }
    if (kind === 'VP8 ') {
      return { format: 'webp', width: u16le(bytes, 26) & 0x3fff, height: u16le(bytes, 28) & 0x3fff };
    }
    return null;
  }
  if (bytes[0] === 0xff && bytes[1] === 0xd8) return readJpegDimensions(bytes);
  return null;
}

function readJpegDimensions(bytes: Uint8Array): ImageDimensions | null {
  let offset = 2;
  while (offset + 9 < bytes.length) {
    if (bytes[offset] !== 0xff) return null;
    const marker = bytes[offset + 1] ?? 0;
    // Fill bytes and markers without a length field.
    if (marker === 0xff) {
      offset += 1;
      continue;
    }
    if (marker === 0xd8 || (marker >= 0xd0 && marker <= 0xd7) || marker === 0x01) {
      offset += 2;
      continue;
    }
    // SOF0–SOF15 carry the frame size, except DHT (C4), JPG (C8) and DAC (CC).
    if (marker >= 0xc0 && marker <= 0xcf && marker !== 0xc4 && marker !== 0xc8 && marker !== 0xcc) {
      return { format: 'jpeg', height: u16be(bytes, offset + 5), width: u16be(bytes, offset + 7) };
    }
    offset += 2 + u16be(bytes, offset + 2);
  }
  return null;
}

/** Human message when an image is over the limit, or null when it may be decoded. */
export function tooLargeMessage(width: number, height: number, maxPixels = MAX_INPUT_PIXELS): string | null {
  if (width * height <= maxPixels) return null;
  return `The image is ${width}×${height} (${((width * height) / 1e6).toFixed(1)} megapixels); the limit is ${maxPixels / 1e6} megapixels. Resize it first.`;
}

/**
 * The source rectangle to draw so the image covers a target of the given aspect without
 * distortion: the centre crop. Pixels of the source image.
 */
export function coverCrop(
  sourceWidth: number,
  sourceHeight: number,
  targetWidth: number,
  targetHeight: number,
): { readonly x: number; readonly y: number; readonly width: number; readonly height: number } {
  const targetAspect = targetWidth / targetHeight;
  if (sourceWidth / sourceHeight > targetAspect) {
    const width = sourceHeight * targetAspect;
    return { x: (sourceWidth - width) / 2, y: 0, width, height: sourceHeight };
  }
  const height = sourceWidth / targetAspect;
  return { x: 0, y: (sourceHeight - height) / 2, width: sourceWidth, height };
}
