import { deflateSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { nodeZlib } from './node-zlib.node';
import { decodePng, encodePng, PngError, type Zlib } from './png';
import { webZlib } from './web-zlib';

/** A valid 64×64 RGBA PNG whose IDAT is replaced by `idat` (CRC fixed up). */
async function withIdat(idat: Uint8Array): Promise<Uint8Array> {
  const png = await encodePng({ width: 64, height: 64, data: new Uint8Array(64 * 64 * 4) }, {}, nodeZlib);
  const bytes = Buffer.from(png);
  const at = bytes.indexOf('IDAT') - 4;
  const length = bytes.readUInt32BE(at);
  const chunk = Buffer.alloc(12 + idat.length);
  chunk.writeUInt32BE(idat.length, 0);
  chunk.write('IDAT', 4, 'latin1');
  chunk.set(idat, 8);
  const { crc32 } = await import('node:zlib');
  chunk.writeUInt32BE(crc32(chunk.subarray(4, 8 + idat.length)), 8 + idat.length);
  return new Uint8Array(Buffer.concat([bytes.subarray(0, at), chunk, bytes.subarray(at + 12 + length)]));
}

describe.each([
  ['nodeZlib', nodeZlib],
  ['webZlib', webZlib],
] as const)('decodePng with %s', (_, zlib: Pick<Zlib, 'inflate'>) => {
  it('refuses image data that inflates past what the header allows (a decompression bomb)', async () => {
    // 64×64 RGBA needs 64 × (1 + 256) bytes; this IDAT inflates to 16 MiB (a 16 KiB file).
    const bomb = await withIdat(deflateSync(new Uint8Array(16 << 20), { level: 9 }));
    expect(bomb.length).toBeLessThan(64 << 10);
    const decoding = decodePng(bomb, zlib, 1e6);
    await expect(decoding).rejects.toThrow(PngError);
    await expect(decoding).rejects.toThrow(/inflates to more than 16448 bytes/);
  });

  it('refuses corrupt image data with a PngError (not zlib’s own error)', async () => {
    const corrupt = await withIdat(Uint8Array.of(0x78, 0x9c, 0xff, 0xff, 0xff, 0x00, 0x13));
    await expect(decodePng(corrupt, zlib, 1e6)).rejects.toThrow(PngError);
    await expect(decodePng(corrupt, zlib, 1e6)).rejects.toThrow(/image data is corrupt/);
  });

  it('still reads image data of exactly the expected size', async () => {
    const image = {
      width: 64,
      height: 64,
      data: Uint8Array.from({ length: 64 * 64 * 4 }, (_, i) => i & 0xff),
    };
    const png = await encodePng(image, {}, nodeZlib);
    expect((await decodePng(png, zlib, 1e6)).data).toEqual(image.data);
  });
});
