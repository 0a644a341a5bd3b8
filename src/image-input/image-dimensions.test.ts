import { deflateSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { nodeZlib } from '../../workers/engine/node-zlib.node';
import { encodePng } from '../../workers/engine/png';
import { coverCrop, MAX_INPUT_PIXELS, readImageDimensions, tooLargeMessage } from './image-dimensions';

describe('readImageDimensions', () => {
  it('reads a PNG header', async () => {
    const png = await encodePng({ width: 7, height: 3, data: new Uint8Array(7 * 3 * 4) }, {}, nodeZlib);
    expect(readImageDimensions(png)).toEqual({ format: 'png', width: 7, height: 3 });
  });

  it('reads a huge PNG’s size from its header alone', () => {
    // Only the signature and IHDR: 10000 × 6000 = 60 MP, never decoded.
    const head = new Uint8Array(33);
    head.set([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52]);
    new DataView(head.buffer).setUint32(16, 10_000);
    new DataView(head.buffer).setUint32(20, 6_000);
    const dims = readImageDimensions(head);
    expect(dims).toEqual({ format: 'png', width: 10_000, height: 6_000 });
    expect(tooLargeMessage(10_000, 6_000)).toMatch(/60\.0 megapixels\); the limit is 50 megapixels/);
  });

  it('finds the frame size of a JPEG after its APP segments', () => {
    const jpeg = Uint8Array.of(
      0xff,
      0xd8, // SOI
      0xff,
      0xe0,
      0x00,
      0x06,
      1,
      2,
      3,
      4, // APP0, 4 bytes of payload
      0xff,
      0xdb,
      0x00,
      0x04,
      0,
      0, // DQT
      0xff,
      0xc2,
      0x00,
      0x11,
      0x08,
      0x02,
      0x58,
      0x03,
      0x20,
      3, // SOF2: 600 high, 800 wide
      0,
      0,
      0,
      0,
      0,
      0,
      0,
      0,
      0,
    );
    expect(readImageDimensions(jpeg)).toEqual({ format: 'jpeg', width: 800, height: 600 });
  });

  it('reads GIF and lossless WebP headers', () => {
    const gif = Uint8Array.of(0x47, 0x49, 0x46, 0x38, 0x39, 0x61, 0x2c, 0x01, 0xc8, 0x00);
    expect(readImageDimensions(gif)).toEqual({ format: 'gif', width: 300, height: 200 });
    // VP8L: 14-bit (width − 1) and (height − 1) packed little-endian after the 0x2f signature.
    const w = 640 - 1;
    const h = 480 - 1;
    const bits = w | (h << 14);
    const webp = new Uint8Array(30);
    webp.set(new TextEncoder().encode('RIFF'), 0);
    webp.set(new TextEncoder().encode('WEBPVP8L'), 8);
    webp[20] = 0x2f;
    webp.set([bits & 0xff, (bits >> 8) & 0xff, (bits >> 16) & 0xff, (bits >>> 24) & 0xff], 21);
    expect(readImageDimensions(webp)).toEqual({ format: 'webp', width: 640, height: 480 });
  });

  it('returns null for bytes that are not an image it knows', () => {
    expect(readImageDimensions(new TextEncoder().encode('hello, this is text'))).toBeNull();
    expect(readImageDimensions(deflateSync(Buffer.from('x')))).toBeNull();
  });
});

describe('tooLargeMessage', () => {
  it('allows exactly the limit and refuses one pixel more', () => {
    expect(tooLargeMessage(10_000, 5_000)).toBeNull();
    expect(MAX_INPUT_PIXELS).toBe(50_000_000);
    expect(tooLargeMessage(10_001, 5_000)).not.toBeNull();
  });
});

describe('coverCrop', () => {
  it('crops the sides of a wide photo for a square output', () => {
    expect(coverCrop(4000, 2000, 1024, 1024)).toEqual({ x: 1000, y: 0, width: 2000, height: 2000 });
  });

  it('crops top and bottom of a tall photo for a 16:9 output', () => {
    const crop = coverCrop(900, 1600, 1344, 768);
    expect(crop.width).toBe(900);
    expect(crop.height).toBeCloseTo(900 / (1344 / 768));
    expect(crop.y).toBeCloseTo((1600 - crop.height) / 2);
  });
});
