/**
 * PNG encoding and decoding for 8-bit images, with the generation settings carried in text chunks.
 * Runtime-agnostic: the caller supplies zlib (de)compression (Node's zlib or the browser's
 * CompressionStream), so the same code writes PNGs in the CLI, the worker and the UI.
 */

export interface RgbaImage {
  readonly width: number;
  readonly height: number;
  /** width × height × 4 bytes, row-major, straight (not premultiplied) alpha. */
  readonly data: Uint8Array;
}

/** zlib-format (RFC 1950) compression; both Node's deflateSync and CompressionStream('deflate') fit. */
export interface Zlib {
  deflate(bytes: Uint8Array): Promise<Uint8Array>;
  /**
   * Inflates at most `maxBytes` bytes: an implementation stops inflating once the output passes
   * that cap (never holding much more than it) and throws `InflateLimitError`. Corrupt data
   * rejects with the implementation's own error.
   */
  inflate(bytes: Uint8Array, maxBytes: number): Promise<Uint8Array>;
}

export class PngError extends Error {
  override readonly name = 'PngError';
  readonly code = 'INVALID_INPUT';
}

/** What a Zlib implementation throws when the data inflates past the caller's cap. */
export class InflateLimitError extends PngError {
  constructor(readonly maxBytes: number) {
    super(`The compressed data inflates to more than ${maxBytes} bytes.`);
  }
}

const SIGNATURE = Uint8Array.of(137, 80, 78, 71, 13, 10, 26, 10);

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

function crc32(bytes: Uint8Array, start: number, end: number): number {
  let c = 0xffffffff;
  for (let i = start; i < end; i++) c = (CRC_TABLE[(c ^ (bytes[i] ?? 0)) & 0xff] ?? 0) ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

function chunk(type: string, body: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + body.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, body.length);
  for (let i = 0; i < 4; i++) out[4 + i] = type.charCodeAt(i);
  out.set(body, 8);
  view.setUint32(8 + body.length, crc32(out, 4, 8 + body.length));
  return out;
}

const utf8 = new TextEncoder();
const utf8Decoder = new TextDecoder('utf-8', { fatal: true });
const latin1Decoder = new TextDecoder('latin1');

/** An iTXt chunk: UTF-8 text (prompts are any language), uncompressed, no language tag. */
function itxt(keyword: string, text: string): Uint8Array {
  if (!/^[\x20-\x7e]{1,79}$/.test(keyword)) throw new PngError(`Invalid PNG text keyword "${keyword}".`);
  const key = utf8.encode(keyword);
  const value = utf8.encode(text);
  // keyword \0 compression-flag compression-method language-tag \0 translated-keyword \0 text
  const body = new Uint8Array(key.length + 5 + value.length);
  body.set(key, 0);
  body.set(value, key.length + 5);
  return chunk('iTXt', body);
}

function concat(parts: readonly Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    out.set(part, offset);
    offset += part.length;
  }
  return out;
}

/** Encodes RGBA pixels as a PNG with the given text entries (keyword → UTF-8 text). */
export async function encodePng(
  image: RgbaImage,
  text: Readonly<Record<string, string>>,
  zlib: Pick<Zlib, 'deflate'>,
): Promise<Uint8Array> {
  const { width, height, data } = image;
  if (data.length !== width * height * 4) {
    throw new PngError(
      `Expected ${width}×${height}×4 = ${width * height * 4} bytes of RGBA, got ${data.length}.`,
    );
  }
  const header = new Uint8Array(13);
  const view = new DataView(header.buffer);
  view.setUint32(0, width);
  view.setUint32(4, height);
  header.set([8, 6, 0, 0, 0], 8); // 8-bit, RGBA, deflate, adaptive filtering, no interlace
  // Filter "Sub" on every row: generated images are smooth, so differences compress well.
  const stride = width * 4;
  const raw = new Uint8Array(height * (stride + 1));
  for (let y = 0; y < height; y++) {
    const row = y * (stride + 1);
    raw[row] = 1;
    for (let x = 0; x < stride; x++) {
      const i = y * stride + x;
      raw[row + 1 + x] = ((data[i] ?? 0) - (x >= 4 ? (data[i - 4] ?? 0) : 0)) & 0xff;
    }
  }
  const parts = [SIGNATURE, chunk('IHDR', header)];
  for (const [keyword, value] of Object.entries(text)) parts.push(itxt(keyword, value));
  parts.push(chunk('IDAT', await zlib.deflate(raw)), chunk('IEND', new Uint8Array(0)));
  return concat(parts);
}

interface PngChunk {
  readonly type: string;
  readonly body: Uint8Array;
}

function readChunks(png: Uint8Array): PngChunk[] {
  if (png.length < SIGNATURE.length || SIGNATURE.some((b, i) => png[i] !== b)) {
    throw new PngError('This file is not a PNG image (its signature is wrong).');
  }
  const view = new DataView(png.buffer, png.byteOffset, png.byteLength);
  const chunks: PngChunk[] = [];
  let offset = SIGNATURE.length;
  while (offset + 12 <= png.length) {
    const length = view.getUint32(offset);
    const end = offset + 12 + length;
    if (end > png.length) throw new PngError('The PNG is truncated: a chunk runs past the end of the file.');
    const type = String.fromCharCode(...png.subarray(offset + 4, offset + 8));
    if (view.getUint32(end - 4) !== crc32(png, offset + 4, end - 4)) {
      throw new PngError(`The PNG is damaged: the ${type} chunk fails its checksum.`);
    }
    chunks.push({ type, body: png.subarray(offset + 8, end - 4) });
    offset = end;
    if (type === 'IEND') return chunks;
  }
  throw new PngError('The PNG is truncated: it has no IEND chunk.');
}

/**
 * Reads the tEXt and uncompressed iTXt entries of a PNG. Entries that are not valid text are
 * skipped (a PNG from elsewhere may hold anything), never thrown on.
 */
export function readPngText(png: Uint8Array): Record<string, string> {
  const text: Record<string, string> = {};
  for (const { type, body } of readChunks(png)) {
    const keyEnd = body.indexOf(0);
    if (keyEnd < 1) continue;
    const keyword = latin1Decoder.decode(body.subarray(0, keyEnd));
    if (type === 'tEXt') {
      text[keyword] = latin1Decoder.decode(body.subarray(keyEnd + 1));
    } else if (type === 'iTXt' && body[keyEnd + 1] === 0) {
      const languageEnd = body.indexOf(0, keyEnd + 3);
      const translatedEnd = languageEnd < 0 ? -1 : body.indexOf(0, languageEnd + 1);
      if (translatedEnd < 0) continue;
      try {
        text[keyword] = utf8Decoder.decode(body.subarray(translatedEnd + 1));
      } catch {
        // not UTF-8: not ours, skip it
      }
    }
  }
  return text;
}

const CHANNELS: Readonly<Record<number, number>> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };

function paeth(a: number, b: number, c: number): number {
  const p = a + b - c;
  const pa = Math.abs(p - a);
  const pb = Math.abs(p - b);
  const pc = Math.abs(p - c);
  return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
}

/** Allowed bit depths per colour type (PNG spec, table 11.1). */
const BIT_DEPTHS: Readonly<Record<number, readonly number[]>> = {
  0: [1, 2, 4, 8, 16],
  2: [8, 16],
  3: [1, 2, 4, 8],
  4: [8, 16],
  6: [8, 16],
};

/**
 * Decodes a non-interlaced PNG of any colour type and bit depth to 8-bit RGBA (16-bit samples keep
 * their high byte). `maxPixels` bounds the decoded size so a hostile file can't exhaust memory.
 */
export async function decodePng(
  png: Uint8Array,
  zlib: Pick<Zlib, 'inflate'>,
  maxPixels: number,
): Promise<RgbaImage> {
  const chunks = readChunks(png);
  const ihdr = chunks[0];
  if (ihdr?.type !== 'IHDR' || ihdr.body.length !== 13)
    throw new PngError('The PNG has no valid IHDR header.');
  const view = new DataView(ihdr.body.buffer, ihdr.body.byteOffset, 13);
  const width = view.getUint32(0);
  const height = view.getUint32(4);
  const bitDepth = ihdr.body[8] ?? 0;
  const colorType = ihdr.body[9] ?? -1;
  const interlace = ihdr.body[12];
  const channels = CHANNELS[colorType];
  if (width === 0 || height === 0) throw new PngError('The PNG has no pixels.');
  if (width * height > maxPixels) {
    throw new PngError(
      `The image is ${width}×${height} (${((width * height) / 1e6).toFixed(1)} megapixels); the limit is ${(maxPixels / 1e6).toFixed(1)} megapixels. Resize it first.`,
    );
  }
  if (channels === undefined || !BIT_DEPTHS[colorType]?.includes(bitDepth)) {
    throw new PngError(`The PNG header is invalid (colour type ${colorType}, bit depth ${bitDepth}).`);
  }
  if (interlace !== 0)
    throw new PngError('Interlaced PNGs are not supported; re-save the image without interlacing.');
  const palette = chunks.find((c) => c.type === 'PLTE')?.body;
  const paletteAlpha = chunks.find((c) => c.type === 'tRNS')?.body;
  if (colorType === 3 && !palette) throw new PngError('The palette PNG has no PLTE chunk.');
  const bitsPerPixel = channels * bitDepth;
  const stride = Math.ceil((width * bitsPerPixel) / 8);
  // Filters work on whole bytes: the "left" neighbour is one pixel back, or one byte when smaller.
  const filterStep = Math.max(1, bitsPerPixel >> 3);
  // The header fixes the inflated size (a filter byte and `stride` bytes per row): inflating is
  // capped there, so a small file can't inflate to gigabytes (a decompression bomb).
  const expected = height * (stride + 1);
  let raw: Uint8Array;
  try {
    raw = await zlib.inflate(concat(chunks.filter((c) => c.type === 'IDAT').map((c) => c.body)), expected);
  } catch (error) {
    if (error instanceof InflateLimitError) {
      throw new PngError(
        `The PNG image data inflates to more than ${expected} bytes, more than its ${width}×${height} header allows: the file is damaged or made to exhaust memory. Re-save it with an image editor.`,
      );
    }
    if (error instanceof PngError) throw error;
    throw new PngError(
      `The PNG image data is corrupt (${error instanceof Error ? error.message : String(error)}): the file is damaged. Re-save it with an image editor.`,
    );
  }
  if (raw.length < expected) throw new PngError('The PNG image data is truncated.');

  const rows = new Uint8Array(height * stride);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)];
    const src = y * (stride + 1) + 1;
    const dst = y * stride;
    for (let x = 0; x < stride; x++) {
      const left = x >= filterStep ? (rows[dst + x - filterStep] ?? 0) : 0;
      const up = y > 0 ? (rows[dst - stride + x] ?? 0) : 0;
      const upLeft = y > 0 && x >= filterStep ? (rows[dst - stride + x - filterStep] ?? 0) : 0;
      let predicted: number;
      switch (filter) {
        case 0:
          predicted = 0;
          break;
        case 1:
          predicted = left;
          break;
        case 2:
          predicted = up;
          break;
        case 3:
          predicted = (left + up) >> 1;
          break;
        case 4:
          predicted = paeth(left, up, upLeft);
          break;
        default:
          throw new PngError(`The PNG uses an unknown row filter ${filter}.`);
      }
      rows[dst + x] = ((raw[src + x] ?? 0) + predicted) & 0xff;
    }
  }

  const maxSample = (1 << Math.min(bitDepth, 8)) - 1;
  /** Sample `c` of pixel `x` in row `y`, as read (palette index) or scaled to 0–255. */
  const sample = (y: number, x: number, c: number, scale: boolean): number => {
    const bit = (x * channels + c) * bitDepth;
    const byte = rows[y * stride + (bit >> 3)] ?? 0;
    if (bitDepth >= 8) return byte; // 16-bit: the high byte comes first
    const value = (byte >> (8 - bitDepth - (bit & 7))) & maxSample;
    return scale ? Math.round((value * 255) / maxSample) : value;
  };

  const rgba = new Uint8Array(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const out = (y * width + x) * 4;
      if (colorType === 3) {
        const index = sample(y, x, 0, false);
        rgba[out] = palette?.[index * 3] ?? 0;
        rgba[out + 1] = palette?.[index * 3 + 1] ?? 0;
        rgba[out + 2] = palette?.[index * 3 + 2] ?? 0;
        rgba[out + 3] = paletteAlpha?.[index] ?? 255;
      } else if (channels <= 2) {
        const grey = sample(y, x, 0, true);
        rgba.fill(grey, out, out + 3);
        rgba[out + 3] = channels === 2 ? sample(y, x, 1, true) : 255;
      } else {
        for (let c = 0; c < 3; c++) rgba[out + c] = sample(y, x, c, true);
        rgba[out + 3] = channels === 4 ? sample(y, x, 3, true) : 255;
      }
    }
  }
  return { width, height, data: rgba };
}
