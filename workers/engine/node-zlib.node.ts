import { deflateSync, inflateSync } from 'node:zlib';
import type { Zlib } from './png';

/** zlib for png.ts in Node (CLI, tests, benchmarks). */
export const nodeZlib: Zlib = {
  deflate: async (bytes) => new Uint8Array(deflateSync(bytes)),
  inflate: async (bytes) => new Uint8Array(inflateSync(bytes)),
};
