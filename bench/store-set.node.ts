/**
 * The store benchmarks' test data: a 1 GiB random "component" (a 2 MiB graph and four 256 MiB
 * external-data shards) written to the OS temp folder with its manifest, and a static file server
 * for it in a child process (so it doesn't share the measured process's CPU or memory).
 * Used by store.bench.node.ts (Node) and store-browser.bench.node.ts (Chromium).
 */

import { type ChildProcess, spawn } from 'node:child_process';
import { createHash, randomFillSync } from 'node:crypto';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Manifest } from '../models/manifest';

export const MiB = 1024 * 1024;
const SHARD_BYTES = 256 * MiB;
const SHARDS = 4;
const GRAPH_BYTES = 2 * MiB;
export const COMPONENT_BYTES = GRAPH_BYTES + SHARDS * SHARD_BYTES;
/** The store's default chunk size, which the manifest's chunk hashes use. */
const CHUNK_BYTES = 4 * MiB;
export const WORK = join(tmpdir(), 'kandinsky-store-bench');
const SET_DIR = join(WORK, 'set');
export const SET_DESCRIPTION = `${(COMPONENT_BYTES / 1e6).toFixed(0)} MB (graph ${(GRAPH_BYTES / 1e6).toFixed(0)} MB + ${SHARDS} shards of ${(SHARD_BYTES / 1e6).toFixed(0)} MB), chunks 4 MiB`;
/** Per response, as a fast home connection (400 Mbit/s). */
export const LIMITED_RATE = 50_000_000;

// A static file server with Range support, as a static host would be; plain JS for `node -e`.
// A path starting /rate-N/ is sent at N bytes per second at most (per response). CORS and CORP
// headers let a page on another port (the browser bench) read it; nothing is cached.
const SERVER_SOURCE = `
const http = require('node:http'); const fs = require('node:fs'); const path = require('node:path');
const root = process.argv[1];
http.createServer((req, res) => {
  let pathname = decodeURIComponent(new URL(req.url, 'http://x').pathname);
  const limit = /^\\/rate-(\\d+)(\\/.*)$/.exec(pathname); const rate = limit ? Number(limit[1]) : 0;
  if (limit) pathname = limit[2];
  const file = path.join(root, pathname);
  const common = { 'Access-Control-Allow-Origin': '*', 'Access-Control-Expose-Headers': 'Content-Range, Content-Length',
    'Cross-Origin-Resource-Policy': 'cross-origin', 'Cache-Control': 'no-store' };
  let size; try { size = fs.statSync(file).size; } catch { res.writeHead(404, common).end(); return; }
  const m = /^bytes=(\\d+)-$/.exec(req.headers.range || ''); const start = m ? Number(m[1]) : 0;
  const headers = { ...common, 'Content-Length': size - start, 'Content-Type': 'application/octet-stream' };
  if (start > 0) headers['Content-Range'] = 'bytes ' + start + '-' + (size - 1) + '/' + size;
  res.writeHead(start > 0 ? 206 : 200, headers);
  const stream = fs.createReadStream(file, { start, highWaterMark: 1 << 20 });
  if (!rate) { stream.pipe(res); return; }
  const began = Date.now(); let sent = 0;
  stream.on('data', (piece) => {
    sent += piece.length;
    const wait = began + (sent / rate) * 1000 - Date.now();
    if (!res.write(piece) || wait > 0) { stream.pause(); setTimeout(() => stream.resume(), Math.max(wait, 0)); }
  });
  stream.on('end', () => res.end());
}).listen(0, '127.0.0.1', function () { process.stdout.write(String(this.address().port) + '\\n'); });
`;

export interface StoreBenchSet {
  /** With per-chunk sha256s, as the export tool writes manifests (the shipping path). */
  readonly manifest: Manifest;
  /** The same files without per-chunk sha256s: the store hashes each whole file in JS. */
  readonly wholeFileManifest: Manifest;
  readonly manifestUrl: string;
  /** The same set sent at LIMITED_RATE per response. */
  readonly limitedManifestUrl: string;
  stop(): void;
}

type BenchFile = { readonly chunks?: unknown } & Record<string, unknown>;

function sha256Hex(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/** Writes the set (once; reused while its manifest exists) and starts its server. */
export async function startStoreBenchSet(): Promise<StoreBenchSet> {
  const manifestPath = join(SET_DIR, 'manifest.json');
  if (!existsSync(manifestPath)) {
    mkdirSync(SET_DIR, { recursive: true });
    const files: object[] = [];
    const write = (path: string, bytes: number, role: 'graph' | 'external-data') => {
      const data = randomFillSync(Buffer.allocUnsafe(bytes));
      writeFileSync(join(SET_DIR, path), data);
      const chunks: string[] = [];
      for (let offset = 0; offset < bytes; offset += CHUNK_BYTES)
        chunks.push(sha256Hex(data.subarray(offset, offset + CHUNK_BYTES)));
      files.push({
        path,
        bytes,
        sha256: sha256Hex(data),
        role,
        chunks: { bytes: CHUNK_BYTES, sha256: chunks },
      });
    };
    write('unet.onnx', GRAPH_BYTES, 'graph');
    for (let i = 0; i < SHARDS; i++) write(`unet.onnx.data-0${i}`, SHARD_BYTES, 'external-data');
    // Only the fields the store reads: this bench is about bytes, not a loadable model set.
    const component = {
      kind: 'onnx',
      precision: 'fp16',
      requiredFeatures: [],
      optional: false,
      enables: [],
      files,
    };
    writeFileSync(
      manifestPath,
      JSON.stringify({ modelId: 'bench-random-1gib', components: { unet: component } }),
    );
  }
  const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as Manifest;
  const unet = manifest.components.unet as { files: BenchFile[] };
  const wholeFileManifest = {
    ...manifest,
    components: { unet: { ...unet, files: unet.files.map(({ chunks: _, ...file }) => file) } },
  } as unknown as Manifest;

  const server = await startStaticServer(SET_DIR);
  return {
    manifest,
    wholeFileManifest,
    manifestUrl: `${server.origin}/manifest.json`,
    limitedManifestUrl: `${server.origin}/rate-${LIMITED_RATE}/manifest.json`,
    stop: server.stop,
  };
}

/** Serves `root` (Range, CORS; see SERVER_SOURCE) from a child process on a free loopback port. */
export async function startStaticServer(root: string): Promise<{ origin: string; stop(): void }> {
  const server: ChildProcess = spawn(process.execPath, ['-e', SERVER_SOURCE, root], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  const port = await new Promise<string>((resolve) =>
    server.stdout?.once('data', (d: Buffer) => resolve(d.toString().trim())),
  );
  return { origin: `http://127.0.0.1:${port}`, stop: () => server.kill() };
}
