/**
 * Node-only helpers for the store tests: the tiny fixture set, a real HTTP server on 127.0.0.1
 * that injects faults per request, and stores on a fresh fake-indexeddb.
 */

import { readFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { fileURLToPath } from 'node:url';
import { IDBFactory } from 'fake-indexeddb';
import type { Manifest } from '../models/manifest';
import { parseManifest } from '../models/manifest';
import { InProcessLocks } from '../workers/store/file-locks';
import { ModelStore, type ModelStoreOptions } from '../workers/store/model-store';
import { openStoreDatabase, type UseStore } from '../workers/store/store-database';

export const FIXTURE_DIR = fileURLToPath(new URL('../models/fixtures/tiny/', import.meta.url));

export interface ModelSet {
  readonly manifestText: string;
  readonly manifest: Manifest;
  /** Manifest path → file bytes. */
  readonly files: ReadonlyMap<string, Uint8Array>;
}

const fixtures = new Map<string, ModelSet>();

/** A committed model set (a folder holding manifest.json), read once. */
export function fixtureModelSet(dir: string): ModelSet {
  const cached = fixtures.get(dir);
  if (cached) return cached;
  const manifestText = readFileSync(`${dir}manifest.json`, 'utf8');
  const manifest = parseManifest(JSON.parse(manifestText));
  const files = new Map<string, Uint8Array>();
  for (const component of Object.values(manifest.components)) {
    for (const file of component?.files ?? [])
      files.set(file.path, new Uint8Array(readFileSync(dir + file.path)));
  }
  const set = { manifestText, manifest, files };
  fixtures.set(dir, set);
  return set;
}

/** The committed tiny model set, read once. */
export function tinyModelSet(): ModelSet {
  return fixtureModelSet(FIXTURE_DIR);
}

/** The files a manifest lists for a component (none when it has no such component). */
export function filesOf(
  manifest: Manifest,
  componentId: string,
): readonly { path: string; sha256: string; bytes: number }[] {
  return (
    (
      manifest.components as Record<
        string,
        { files: { path: string; sha256: string; bytes: number }[] } | undefined
      >
    )[componentId]?.files ?? []
  );
}

/** Bytes of every file of the listed components, deduplicated by path. */
export function componentBytes(set: ModelSet, componentIds: readonly string[]): number {
  const paths = new Set<string>();
  for (const id of componentIds) {
    for (const file of (set.manifest.components as Record<string, { files: { path: string }[] } | undefined>)[
      id
    ]?.files ?? []) {
      paths.add(file.path);
    }
  }
  let total = 0;
  for (const path of paths) total += set.files.get(path)?.byteLength ?? 0;
  return total;
}

/** What the server does with one request; `undefined` serves it correctly. */
export type Fault =
  | { readonly kind: 'status'; readonly status: number }
  /** Correct headers, then the connection closes after `bytes` body bytes. */
  | { readonly kind: 'drop'; readonly afterBytes: number }
  /** No Content-Length (chunked), and the body ends cleanly after `bytes`. */
  | { readonly kind: 'truncate'; readonly afterBytes: number }
  /** The byte at this file offset is inverted. */
  | { readonly kind: 'flip'; readonly atOffset: number }
  /** Content-Length says `extraBytes` more than sent; the connection closes after the body. */
  | { readonly kind: 'wrong-length'; readonly extraBytes: number }
  /** 200 and the whole file whatever the Range header says. */
  | { readonly kind: 'ignore-range' }
  /** The body in `pieceBytes` pieces, `delayMs` apart. */
  | { readonly kind: 'slow'; readonly pieceBytes: number; readonly delayMs: number };

export interface ServedRequest {
  readonly path: string;
  /** Range start asked for (0 without a Range header). */
  readonly rangeStart: number;
  /** This path's request number, from 1. */
  readonly attempt: number;
}

export interface FaultServer {
  /** URL of manifest.json. */
  readonly manifestUrl: string;
  readonly requests: ServedRequest[];
  /** Body bytes written per path (manifest path; 'manifest.json' included). */
  bytesSent(path?: string): number;
  /** The fault plan; replace it between phases of a test. */
  fault: (request: ServedRequest) => Fault | undefined;
  close(): Promise<void>;
}

const PREFIX = '/sets/tiny/';

export async function startFaultServer(set: ModelSet): Promise<FaultServer> {
  const requests: ServedRequest[] = [];
  const sent = new Map<string, number>();
  const attempts = new Map<string, number>();
  const count = (path: string, bytes: number) => sent.set(path, (sent.get(path) ?? 0) + bytes);
  const state: { fault: FaultServer['fault'] } = { fault: () => undefined };

  const handle = (req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://127.0.0.1');
    const path = decodeURIComponent(
      url.pathname.startsWith(PREFIX) ? url.pathname.slice(PREFIX.length) : url.pathname,
    );
    const content =
      path === 'manifest.json' ? new TextEncoder().encode(set.manifestText) : set.files.get(path);
    const range = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
    const rangeStart = range ? Number(range[1]) : 0;
    const attempt = (attempts.get(path) ?? 0) + 1;
    attempts.set(path, attempt);
    const served: ServedRequest = { path, rangeStart, attempt };
    requests.push(served);
    if (!content) {
      res.writeHead(404).end();
      return;
    }
    const fault = state.fault(served);
    if (fault?.kind === 'status') {
      res.writeHead(fault.status).end();
      return;
    }
    const start = fault?.kind === 'ignore-range' ? 0 : Math.min(rangeStart, content.byteLength);
    let body = content.subarray(start);
    if (fault?.kind === 'flip' && fault.atOffset >= start && fault.atOffset < content.byteLength) {
      body = body.slice();
      body[fault.atOffset - start] = (body[fault.atOffset - start] ?? 0) ^ 0xff;
    }
    const headers: Record<string, string | number> = {
      'Content-Type': 'application/octet-stream',
      'Accept-Ranges': 'bytes',
    };
    if (fault?.kind !== 'truncate')
      headers['Content-Length'] = body.byteLength + (fault?.kind === 'wrong-length' ? fault.extraBytes : 0);
    if (start > 0)
      headers['Content-Range'] = `bytes ${start}-${content.byteLength - 1}/${content.byteLength}`;
    res.writeHead(start > 0 ? 206 : 200, headers);

    if (fault?.kind === 'drop' || fault?.kind === 'truncate') {
      const part = body.subarray(0, fault.afterBytes);
      count(path, part.byteLength);
      res.write(part, () => {
        // Flushed to the kernel: the client receives every byte, then the early end.
        if (fault.kind === 'drop') res.socket?.destroy();
        else res.end();
      });
      return;
    }
    if (fault?.kind === 'slow') {
      let offset = 0;
      const next = () => {
        if (res.destroyed) return;
        if (offset >= body.byteLength) {
          res.end();
          return;
        }
        const piece = body.subarray(offset, offset + fault.pieceBytes);
        offset += piece.byteLength;
        count(path, piece.byteLength);
        res.write(piece, () => setTimeout(next, fault.delayMs));
      };
      next();
      return;
    }
    count(path, body.byteLength);
    if (fault?.kind === 'wrong-length') {
      res.write(body, () => res.socket?.destroy());
      return;
    }
    res.end(body);
  };

  const server: Server = createServer(handle);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    manifestUrl: `http://127.0.0.1:${port}${PREFIX}manifest.json`,
    requests,
    bytesSent: (path) =>
      path === undefined ? [...sent.values()].reduce((a, b) => a + b, 0) : (sent.get(path) ?? 0),
    get fault() {
      return state.fault;
    },
    set fault(plan) {
      state.fault = plan;
    },
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** One browser profile: an IndexedDB and the tabs' shared lock manager. */
export interface Profile {
  readonly indexedDB: InstanceType<typeof IDBFactory>;
  readonly locks: InProcessLocks;
  /** A store as one tab (or one page load) would create it. */
  openStore(
    options?: Partial<ModelStoreOptions> & { wrapDatabase?: (store: UseStore) => UseStore },
  ): ModelStore;
  readonly sleeps: number[];
}

export const TEST_CHUNK_BYTES = 64 * 1024;

export function newProfile(): Profile {
  const indexedDB = new IDBFactory();
  const locks = new InProcessLocks();
  const sleeps: number[] = [];
  let clock = 0;
  return {
    indexedDB,
    locks,
    sleeps,
    openStore(options = {}) {
      const { wrapDatabase, ...rest } = options;
      const database = openStoreDatabase(indexedDB);
      return new ModelStore({
        database: wrapDatabase ? wrapDatabase(database) : database,
        locks,
        chunkBytes: TEST_CHUNK_BYTES,
        // Retries wait no real time: the delays asked for are recorded instead.
        sleep: async (ms) => {
          sleeps.push(ms);
        },
        retry: { attempts: 3, baseDelayMs: 100, maxDelayMs: 1000 },
        // A clock that advances 50 ms per reading, so rates are defined without real time passing.
        now: () => (clock += 50),
        ...rest,
      });
    },
  };
}
