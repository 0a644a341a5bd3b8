import { crc32 } from 'node:zlib';

/** The 8 bytes every PNG starts with. */
export const PNG_SIGNATURE: readonly number[] = [137, 80, 78, 71, 13, 10, 26, 10];

/**
 * Recomputes the CRC of every chunk that lies within the file, as a careful forger would: fuzzed
 * edits then reach the header, text, filter and zlib code instead of stopping at the CRC check.
 */
export function repairChecksums(png: Uint8Array): Uint8Array {
  const out = png.slice();
  const view = new DataView(out.buffer);
  let offset = PNG_SIGNATURE.length;
  while (offset + 12 <= out.length) {
    const end = offset + 12 + view.getUint32(offset);
    if (end > out.length) break;
    view.setUint32(end - 4, crc32(out.subarray(offset + 4, end - 4)));
    offset = end;
  }
  return out;
}
