import { deflateSync, inflateSync } from 'node:zlib';
import { InflateLimitError, type Zlib } from './png';

/** zlib for png.ts in Node (CLI, tests, benchmarks). */
export const nodeZlib: Zlib = {
  deflate: async (bytes) => new Uint8Array(deflateSync(bytes)),
  inflate: async (bytes, maxBytes) => {
    try {
      // maxOutputLength makes zlib stop (and throw) as soon as the output would pass the cap.
      return new Uint8Array(inflateSync(bytes, { maxOutputLength: Math.max(1, maxBytes) }));
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE')
        throw new InflateLimitError(maxBytes);
      throw error;
    }
  },
};
