/**
 * A model set hosted the way real hosts serve one, for the store's, the CLI's and the browser's
 * tests: a front origin under a sub-path (a static host, or the Hub's `/{owner}/{name}/resolve/{rev}/`)
 * that answers manifest.json itself and every other file with a 302 to a content origin (the
 * Hub's CDN), which serves the bytes, with or without Range and CORS as the test asks.
 */
import { readFileSync, statSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { FIXTURE_DIR } from './store.node';

export interface HostedRequest {
  /** The front's sub-path the request came under ('' on the content origin). */
  readonly subPath: string;
  /** The set's file path, as the manifest names it. */
  readonly path: string;
  /** The Range start asked for; null without a Range header. */
  readonly rangeStart: number | null;
}

export interface ContentBehaviour {
  /** Whether Range is honoured (206 from the offset) or ignored (200, the whole file). */
  range: boolean;
  /** 'full': CORS with Content-Range exposed; 'no-expose': CORS without exposing it; 'none': no CORS headers. */
  cors: 'full' | 'no-expose' | 'none';
  /** Closes the connection after this many body bytes of a file (then serves normally); by path. */
  dropAfter: Map<string, number>;
  /**
   * Sends a file's first `afterBytes` body bytes, then holds the response until `release` settles
   * and drops the connection (a download still running when the page reloads); by path, once.
   */
  stall: Map<string, { readonly afterBytes: number; readonly release: Promise<void> }>;
}

export interface HostedSet {
  /** The front origin, e.g. http://127.0.0.1:4681. */
  readonly frontOrigin: string;
  /** The content origin the front redirects file URLs to. */
  readonly contentOrigin: string;
  /** manifest.json under each sub-path the front serves the set at. */
  manifestUrl(subPath?: string): string;
  /** Requests the front answered (manifest and redirects) and the content origin served. */
  readonly frontRequests: HostedRequest[];
  readonly contentRequests: HostedRequest[];
  /** Body bytes the content origin sent, per file path. */
  readonly contentBytes: Map<string, number>;
  readonly content: ContentBehaviour;
  close(): Promise<void>;
}

const DEFAULT_SUB_PATH = '/static/kandinsky/tiny/';

function corsHeaders(mode: ContentBehaviour['cors']): Record<string, string> {
  if (mode === 'none') return {};
  return {
    'Access-Control-Allow-Origin': '*',
    'Access-Control-Allow-Headers': 'Range',
    'Access-Control-Allow-Methods': 'GET, HEAD',
    ...(mode === 'full'
      ? { 'Access-Control-Expose-Headers': 'Content-Range, Content-Length, ETag, Accept-Ranges' }
      : {}),
  };
}

/** A file of `dir` by its manifest path, or null (outside the folder, missing, not a file). */
function readSetFile(dir: string, file: string): Uint8Array | null {
  const full = path.resolve(dir, file);
  if (!full.startsWith(path.resolve(dir) + path.sep)) return null;
  try {
    if (!statSync(full).isFile()) return null;
    return new Uint8Array(readFileSync(full));
  } catch {
    return null;
  }
}

function listen(server: Server, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, '127.0.0.1', () => resolve((server.address() as AddressInfo).port));
  });
}

function rangeStartOf(req: IncomingMessage): number | null {
  const match = /^bytes=(\d+)-$/.exec(req.headers.range ?? '');
  return match ? Number(match[1]) : null;
}

/**
 * Starts both origins (ports 0: any free ones). `subPaths`: where the front serves the set (a
 * static host's folder, a Hub resolve path); the first is `manifestUrl()`'s default.
 */
export async function startHostedSet(
  options: {
    readonly dir?: string;
    readonly subPaths?: readonly string[];
    readonly ports?: { readonly front: number; readonly content: number };
    readonly host?: string;
  } = {},
): Promise<HostedSet> {
  const dir = options.dir ?? FIXTURE_DIR;
  const subPaths = options.subPaths ?? [DEFAULT_SUB_PATH];
  const host = options.host ?? '127.0.0.1';
  const frontRequests: HostedRequest[] = [];
  const contentRequests: HostedRequest[] = [];
  const contentBytes = new Map<string, number>();
  const content: ContentBehaviour = { range: true, cors: 'full', dropAfter: new Map(), stall: new Map() };
  let contentOrigin = '';

  const front = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://front');
    const cors = corsHeaders('full');
    if (req.method === 'OPTIONS') {
      res.writeHead(204, cors).end();
      return;
    }
    const prefix = subPaths.find((p) => url.pathname.startsWith(p));
    const file = prefix === undefined ? '' : decodeURIComponent(url.pathname.slice(prefix.length));
    frontRequests.push({ subPath: prefix ?? '', path: file, rangeStart: rangeStartOf(req) });
    const bytes = prefix === undefined ? null : readSetFile(dir, file);
    if (bytes === null) {
      res.writeHead(404, cors).end();
      return;
    }
    if (file === 'manifest.json') {
      res.writeHead(200, { ...cors, 'Content-Type': 'application/json', 'Content-Length': bytes.byteLength });
      res.end(bytes);
      return;
    }
    // As the Hub: the file URL moves to a content host, under a signed, per-request URL.
    const signature = Math.random().toString(36).slice(2);
    res.writeHead(302, {
      ...cors,
      Location: `${contentOrigin}/blobs/${encodeURIComponent(file)}?sig=${signature}`,
    });
    res.end();
  });

  const contentServer = createServer((req: IncomingMessage, res: ServerResponse) => {
    const url = new URL(req.url ?? '/', 'http://content');
    const cors = corsHeaders(content.cors);
    if (req.method === 'OPTIONS') {
      res.writeHead(content.cors === 'none' ? 404 : 204, cors).end();
      return;
    }
    const file = url.pathname.startsWith('/blobs/') ? decodeURIComponent(url.pathname.slice(7)) : '';
    const rangeStart = rangeStartOf(req);
    contentRequests.push({ subPath: '', path: file, rangeStart });
    const bytes = readSetFile(dir, file);
    if (bytes === null || !url.searchParams.has('sig')) {
      res.writeHead(404, cors).end();
      return;
    }
    const start = content.range && rangeStart !== null ? Math.min(rangeStart, bytes.byteLength) : 0;
    const body = bytes.subarray(start);
    const headers: Record<string, string | number> = {
      ...cors,
      'Content-Type': 'application/octet-stream',
      'Content-Length': body.byteLength,
      ETag: `"${file.length}-${bytes.byteLength}"`,
      ...(content.range ? { 'Accept-Ranges': 'bytes' } : {}),
    };
    if (content.range && rangeStart !== null) {
      headers['Content-Range'] = `bytes ${start}-${bytes.byteLength - 1}/${bytes.byteLength}`;
    }
    const count = (n: number) => contentBytes.set(file, (contentBytes.get(file) ?? 0) + n);
    const stall = content.stall.get(file);
    if (stall && req.method !== 'HEAD') {
      content.stall.delete(file);
      res.writeHead(content.range && rangeStart !== null ? 206 : 200, headers);
      const part = body.subarray(0, stall.afterBytes);
      count(part.byteLength);
      res.write(part);
      void stall.release.finally(() => res.socket?.destroy());
      return;
    }
    res.writeHead(content.range && rangeStart !== null ? 206 : 200, headers);
    if (req.method === 'HEAD') {
      res.end();
      return;
    }
    const drop = content.dropAfter.get(file);
    if (drop !== undefined) {
      content.dropAfter.delete(file);
      const part = body.subarray(0, drop);
      count(part.byteLength);
      res.write(part, () => res.socket?.destroy());
      return;
    }
    count(body.byteLength);
    res.end(body);
  });

  const frontPort = await listen(front, options.ports?.front ?? 0);
  const contentPort = await listen(contentServer, options.ports?.content ?? 0);
  const frontOrigin = `http://${host}:${frontPort}`;
  contentOrigin = `http://${host}:${contentPort}`;
  const close = (server: Server) =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return {
    frontOrigin,
    contentOrigin,
    manifestUrl: (subPath = subPaths[0] ?? DEFAULT_SUB_PATH) => `${frontOrigin}${subPath}manifest.json`,
    frontRequests,
    contentRequests,
    contentBytes,
    content,
    close: async () => {
      await Promise.all([close(front), close(contentServer)]);
    },
  };
}
