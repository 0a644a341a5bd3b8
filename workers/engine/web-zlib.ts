import { InflateLimitError, type Zlib } from './png';

function through(
  bytes: Uint8Array,
  stream: CompressionStream | DecompressionStream,
): ReadableStream<Uint8Array<ArrayBuffer>> {
  return new Blob([bytes as Uint8Array<ArrayBuffer>]).stream().pipeThrough(stream);
}

async function deflate(bytes: Uint8Array): Promise<Uint8Array> {
  const output = through(bytes, new CompressionStream('deflate'));
  return new Uint8Array(await new Response(output).arrayBuffer());
}

/** Reads the inflated stream chunk by chunk and cancels it once past the cap. */
async function inflate(bytes: Uint8Array, maxBytes: number): Promise<Uint8Array> {
  const reader = through(bytes, new DecompressionStream('deflate')).getReader();
  const pieces: Uint8Array[] = [];
  let total = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.length;
    if (total > maxBytes) {
      await reader.cancel().catch(() => undefined);
      throw new InflateLimitError(maxBytes);
    }
    pieces.push(value);
  }
  const out = new Uint8Array(total);
  let offset = 0;
  for (const piece of pieces) {
    out.set(piece, offset);
    offset += piece.length;
  }
  return out;
}

/** zlib for png.ts in browsers and workers, on the built-in (De)CompressionStream. */
export const webZlib: Zlib = { deflate, inflate };
