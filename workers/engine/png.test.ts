import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { nodeZlib } from './node-zlib.node';
import { decodePng, encodePng, PngError, readPngText } from './png';

const testdata = (name: string) => new URL(`../../test-support/testdata/${name}`, import.meta.url);
const samples = JSON.parse(readFileSync(testdata('png_samples.json'), 'utf8')) as {
  width: number;
  height: number;
  pixels: Record<string, number[][]>;
};
const MAX_PIXELS = 1e6;

describe('decodePng reads what Pillow wrote', () => {
  it.each(Object.keys(samples.pixels))('%s', async (name) => {
    const png = new Uint8Array(readFileSync(testdata(`${name}.png`)));
    const image = await decodePng(png, nodeZlib, MAX_PIXELS);
    expect([image.width, image.height]).toEqual([samples.width, samples.height]);
    expect(Array.from(image.data)).toEqual(samples.pixels[name]?.flat());
    expect(readPngText(png)).toEqual({ Comment: 'made by Pillow', prompt: 'a café at dusk, 夕暮れ' });
  });
});

describe('encodePng', () => {
  const width = 9;
  const height = 5;
  const data = Uint8Array.from({ length: width * height * 4 }, (_, i) => (i * 37 + (i >> 3)) & 0xff);

  it('round-trips pixels and UTF-8 settings through our decoder', async () => {
    const settings = JSON.stringify({ prompt: 'ein Fuchs im Schnee — 雪の中の狐', seed: 42 });
    const png = await encodePng({ width, height, data }, { 'kandinsky-web': settings }, nodeZlib);
    const image = await decodePng(png, nodeZlib, MAX_PIXELS);
    expect(image.data).toEqual(data);
    expect(readPngText(png)['kandinsky-web']).toBe(settings);
  });

  it('rejects pixel data of the wrong length', async () => {
    await expect(encodePng({ width, height, data: data.subarray(4) }, {}, nodeZlib)).rejects.toThrow(
      /Expected 9×5×4 = 180 bytes/,
    );
  });
});

describe('hostile PNGs', () => {
  const valid = new Uint8Array(readFileSync(testdata('rgb.png')));

  it('rejects a non-PNG', () => {
    expect(() => readPngText(new TextEncoder().encode('GIF89a not a png'))).toThrow(PngError);
  });

  it('rejects a damaged chunk by its checksum', () => {
    const damaged = valid.slice();
    damaged[20] = (damaged[20] ?? 0) ^ 0xff; // inside IHDR
    expect(() => readPngText(damaged)).toThrow(/IHDR chunk fails its checksum/);
  });

  it('rejects a truncated file', () => {
    expect(() => readPngText(valid.subarray(0, valid.length - 20))).toThrow(/truncated/);
  });

  it('skips text chunks holding garbage instead of failing', async () => {
    const png = await encodePng(
      { width: 1, height: 1, data: Uint8Array.of(1, 2, 3, 4) },
      { good: 'yes' },
      nodeZlib,
    );
    // Replace the text of the iTXt chunk with invalid UTF-8 and fix its CRC, as another tool might.
    const bad = png.slice();
    const at = Buffer.from(bad).indexOf('yes');
    bad.set([0xff, 0xfe, 0xfd], at);
    const { crc32 } = await import('node:zlib');
    const chunkStart = Buffer.from(bad).indexOf('iTXt');
    const length = new DataView(bad.buffer).getUint32(chunkStart - 4);
    new DataView(bad.buffer).setUint32(
      chunkStart + 4 + length,
      crc32(bad.subarray(chunkStart, chunkStart + 4 + length)),
    );
    expect(readPngText(bad)).toEqual({});
  });

  it('refuses to decode more pixels than allowed', async () => {
    await expect(decodePng(valid, nodeZlib, 50)).rejects.toThrow(/13×7 .* the limit is/);
  });
});
