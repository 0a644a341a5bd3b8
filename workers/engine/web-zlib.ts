import type { Zlib } from './png';

async function pipeThrough(
  bytes: Uint8Array,
  stream: CompressionStream | DecompressionStream,
): Promise<Uint8Array> {
  const output = new Blob([bytes as Uint8Array<ArrayBuffer>]).stream().pipeThrough(stream);
  return new Uint8Array(await new Response(output).arrayBuffer());
}

/** zlib for png.ts in browsers and workers, on the built-in (De)CompressionStream. */
export const webZlib: Zlib = {
  deflate: (bytes) => pipeThrough(bytes, new CompressionStream('deflate')),
  inflate: (bytes) => pipeThrough(bytes, new DecompressionStream('deflate')),
};
