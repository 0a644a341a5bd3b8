/**
 * models/export/mock_hub.py answers as the Hugging Face Hub does for the requests huggingface_hub
 * and a browser make: the revision's file list, resolve URLs with the commit and ETag headers, LFS
 * files redirected to a content host on another origin, Range, CORS, the error codes, a token.
 * (The export from it, models/hub-export.test.ts, needs the Python reference environment; this
 * needs only `python3`.)
 */
import { createHash } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type MockHub, startMockHub } from '../test-support/mock-hub.node';

const TINY_DIR = fileURLToPath(new URL('./fixtures/tiny/', import.meta.url));

const REPO = 'owner/tiny-set';
const FILES = ['manifest.json', 'tokenizer/vocab.json', 'text_encoder.onnx', 'unet.onnx.data-00'];
const sha256 = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');
const gitBlobId = (bytes: Uint8Array): string =>
  createHash('sha1').update(`blob ${bytes.length}\0`).update(bytes).digest('hex');

let root = '';
let hub: MockHub;
let privateHub: MockHub;
beforeAll(async () => {
  root = mkdtempSync(join(tmpdir(), 'kandinsky-mock-hub-'));
  for (const file of FILES) {
    mkdirSync(join(root, REPO, file, '..'), { recursive: true });
    cpSync(join(TINY_DIR, file), join(root, REPO, file));
  }
  mkdirSync(join(root, `${REPO}@v1`), { recursive: true });
  writeFileSync(join(root, `${REPO}@v1`, 'manifest.json'), '{"revision": "v1"}\n');
  [hub, privateHub] = await Promise.all([
    startMockHub(root, { redirect: true, basePath: '/sub/path' }),
    // A named folder as a repo, beside the root's: the same files as owner/tiny-set.
    startMockHub(null, { token: 'hf_test_token', repos: { 'other/named@v2': join(root, REPO) } }),
  ]);
});
afterAll(async () => {
  await Promise.all([hub?.stop(), privateHub?.stop()]);
  rmSync(root, { recursive: true, force: true });
});

interface Sibling {
  rfilename: string;
  size?: number;
  blobId?: string;
  lfs?: { sha256: string; size: number };
}
interface Info {
  id: string;
  sha: string;
  siblings: Sibling[];
}

const info = async (target: MockHub, revision = 'main', init?: RequestInit): Promise<Info> =>
  (await (
    await fetch(`${target.endpoint}/api/models/${REPO}/revision/${revision}?blobs=true`, init)
  ).json()) as Info;

describe('mock_hub.py', () => {
  it('lists a revision’s files with their sizes, git blob ids and LFS sha256', async () => {
    expect(hub.repos).toEqual([REPO]);
    expect(hub.endpoint).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/sub\/path$/);
    const main = await info(hub);
    expect(main.id).toBe(REPO);
    expect(main.sha).toMatch(/^[0-9a-f]{40}$/);
    expect(main.siblings.map((s) => s.rfilename).sort()).toEqual([...FILES].sort());
    for (const sibling of main.siblings) {
      const bytes = readFileSync(join(TINY_DIR, sibling.rfilename));
      expect(sibling.size).toBe(bytes.length);
      expect(sibling.blobId).toBe(gitBlobId(bytes));
      const binary = sibling.rfilename.endsWith('.onnx') || sibling.rfilename.includes('.data-');
      expect(sibling.lfs).toEqual(
        binary ? { sha256: sha256(bytes), size: bytes.length, pointerSize: 134 } : undefined,
      );
    }
    // The same revision by its commit id; another revision by its name.
    expect((await info(hub, main.sha)).sha).toBe(main.sha);
    const v1 = await info(hub, 'v1');
    expect(v1.sha).not.toBe(main.sha);
    expect(v1.siblings.map((s) => s.rfilename)).toEqual(['manifest.json']);
  });

  it('redirects an LFS file to the content host, which answers Range with the file’s bytes', async () => {
    const main = await info(hub);
    const bytes = readFileSync(join(TINY_DIR, 'text_encoder.onnx'));
    const url = `${hub.endpoint}/${REPO}/resolve/main/text_encoder.onnx`;
    const head = await fetch(url, { method: 'HEAD', redirect: 'manual' });
    expect(head.status).toBe(302);
    expect(head.headers.get('x-repo-commit')).toBe(main.sha);
    expect(head.headers.get('x-linked-etag')).toBe(`"${sha256(bytes)}"`);
    expect(head.headers.get('x-linked-size')).toBe(String(bytes.length));
    const location = head.headers.get('location') ?? '';
    expect(new URL(location).origin).toBe(hub.cdn);
    expect(new URL(location).origin).not.toBe(new URL(hub.endpoint).origin);

    const ranged = await fetch(url, { headers: { range: 'bytes=100-' } });
    expect(ranged.status).toBe(206);
    expect(ranged.url).toBe(location);
    expect(ranged.headers.get('content-range')).toBe(`bytes 100-${bytes.length - 1}/${bytes.length}`);
    expect(ranged.headers.get('access-control-allow-origin')).toBe('*');
    expect(ranged.headers.get('access-control-expose-headers')).toContain('Content-Range');
    expect(Buffer.from(await ranged.arrayBuffer()).equals(bytes.subarray(100))).toBe(true);
    const whole = await fetch(url);
    expect(whole.status).toBe(200);
    expect(whole.headers.get('accept-ranges')).toBe('bytes');
    expect(sha256(new Uint8Array(await whole.arrayBuffer()))).toBe(sha256(bytes));
    expect((await fetch(location, { headers: { range: `bytes=${bytes.length}-` } })).status).toBe(416);

    const log = await hub.requests();
    expect(log.filter((r) => r.port === 'cdn' && r.range === 'bytes=100-').map((r) => r.status)).toEqual([
      206,
    ]);
  });

  it('serves a small file itself, with the git blob id as ETag, and answers CORS preflights', async () => {
    const bytes = readFileSync(join(TINY_DIR, 'manifest.json'));
    const response = await fetch(`${hub.endpoint}/${REPO}/resolve/main/manifest.json`, {
      redirect: 'manual',
    });
    expect(response.status).toBe(200);
    expect(response.headers.get('etag')).toBe(`"${gitBlobId(bytes)}"`);
    expect(response.headers.get('content-type')).toBe('application/json');
    expect(Buffer.from(await response.arrayBuffer()).equals(bytes)).toBe(true);
    const v1 = await fetch(`${hub.endpoint}/${REPO}/resolve/v1/manifest.json`);
    expect(await v1.json()).toEqual({ revision: 'v1' });
    const preflight = await fetch(`${hub.endpoint}/${REPO}/resolve/main/manifest.json`, {
      method: 'OPTIONS',
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-headers')).toContain('Range');
  });

  it('answers unknown repos, revisions and files with the Hub’s error codes', async () => {
    const cases = [
      [`/api/models/owner/missing`, 401, 'RepoNotFound'],
      [`/api/models/${REPO}/revision/v9`, 404, 'RevisionNotFound'],
      [`/${REPO}/resolve/main/missing.onnx`, 404, 'EntryNotFound'],
      [`/${REPO}/resolve/v9/manifest.json`, 404, 'RevisionNotFound'],
    ] as const;
    for (const [path, status, code] of cases) {
      const response = await fetch(hub.endpoint + path);
      expect([path, response.status, response.headers.get('x-error-code')]).toEqual([path, status, code]);
    }
    // Outside the base path nothing is served.
    expect((await fetch(`${new URL(hub.endpoint).origin}/api/models/${REPO}`)).status).toBe(404);
  });

  it('with a token, answers only requests that carry it', async () => {
    const url = `${privateHub.endpoint}/other/named/resolve/v2/manifest.json`;
    expect(privateHub.cdn).toBeNull();
    const anonymous = await fetch(url);
    expect([anonymous.status, anonymous.headers.get('x-error-code')]).toEqual([401, 'RepoNotFound']);
    expect((await fetch(url, { headers: { authorization: 'Bearer wrong' } })).status).toBe(401);
    expect((await fetch(url, { headers: { authorization: 'Bearer hf_test_token' } })).status).toBe(200);
    expect(privateHub.repos).toEqual(['other/named']);
    const named = await fetch(`${privateHub.endpoint}/api/models/other/named/revision/v2`, {
      headers: { authorization: 'Bearer hf_test_token' },
    });
    expect(((await named.json()) as Info).siblings).toHaveLength(FILES.length);
  });
});
