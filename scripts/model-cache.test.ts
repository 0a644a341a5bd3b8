/**
 * The CLI on a hosted set: `--model` as a Hub repo id or URL, downloaded into the cache through
 * the store's file download (resumable, verified) across a redirect to another origin, then
 * generating exactly what the same set generates from a folder.
 */
import { mkdtemp, readdir, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { manifestFromJson } from '../models/manifest';
import { type HostedSet, startHostedSet } from '../test-support/hosted-set.node';
import { TINY_DIR } from '../test-support/tiny-fixture.node';
import { UrlSource } from '../workers/store/model-source';
import { StoreError } from '../workers/store/store-error';
import { runGenerateCli } from './generate.node';
import { cacheFolderFor, downloadToCache, FolderFileDatabase } from './model-cache';

const SHARD = 'unet.onnx.data-00';
const CHUNK = 64 * 1024;
const DROP_AT = 300_000;
const MAX_RESUME_AT = Math.floor(DROP_AT / CHUNK) * CHUNK;
const HUB_PATH = '/hub/me/tiny/resolve/v1/';

let work: string;
let hosted: HostedSet;
beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'kandinsky-cache-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});
afterEach(async () => {
  await hosted.close();
});

async function cli(...argv: string[]): Promise<{ code: number; stderr: string }> {
  let stderr = '';
  const code = await runGenerateCli(argv, {
    stdout: () => undefined,
    stderr: (text) => {
      stderr += text;
    },
  });
  return { code, stderr };
}

describe('downloadToCache', () => {
  it('resumes an interrupted download across the redirect and names each file only once verified', async () => {
    hosted = await startHostedSet();
    const source = new UrlSource(hosted.manifestUrl());
    const manifestText = await source.readManifestText();
    const manifest = manifestFromJson(manifestText);
    const dir = cacheFolderFor(path.join(work, 'resume'), hosted.manifestUrl());
    const job = { source, manifest, manifestText, components: ['unet'], dir, chunkBytes: CHUNK };

    hosted.content.dropAfter.set(SHARD, DROP_AT);
    const first = await downloadToCache({
      ...job,
      retry: { attempts: 0, baseDelayMs: 1, maxDelayMs: 1 },
    }).then(
      () => null,
      (e: unknown) => e,
    );
    expect(first).toBeInstanceOf(StoreError);
    // The interrupted file is not under its name: only its verified chunks are kept, aside.
    expect(await readdir(dir)).not.toContain(SHARD);
    // How much of the body the reader took before the connection dropped depends on timing (a
    // response body that errors drops what it had buffered), so the kept chunks are read back: at
    // least one, none past the drop.
    const shardFile = manifest.components.unet?.files.find((f) => f.path === SHARD);
    const kept = shardFile
      ? await new FolderFileDatabase(path.join(dir, '.partial')).getFile(shardFile.sha256)
      : undefined;
    const resumeAt = (kept?.storedChunks ?? 0) * CHUNK;
    expect(resumeAt).toBeGreaterThan(0);
    expect(resumeAt).toBeLessThanOrEqual(MAX_RESUME_AT);

    await downloadToCache(job);
    for (const file of manifest.components.unet?.files ?? []) {
      const cached = await readFile(path.join(dir, file.path));
      expect(cached.equals(await readFile(path.join(TINY_DIR, file.path))), file.path).toBe(true);
    }
    expect(hosted.contentRequests.filter((r) => r.path === SHARD).map((r) => r.rangeStart)).toEqual([
      null,
      resumeAt,
    ]);
    expect((await readdir(dir)).sort()).toEqual(
      ['manifest.json', ...(manifest.components.unet?.files ?? []).map((f) => f.path)].sort(),
    );
  });
});

describe('generate --model <repo id>', () => {
  it('downloads the set from the Hub endpoint into the cache, the fixture’s bytes exactly, generates, then gives the same picture from the cache offline', async () => {
    hosted = await startHostedSet({ subPaths: [HUB_PATH] });
    const cache = path.join(work, 'cli-cache');
    const args = [
      '--prompt',
      'a red cat',
      '--seed',
      '42',
      '--size',
      '64x64',
      '--steps',
      '2',
      '--prior-steps',
      '2',
    ];
    const saved = process.env.HF_ENDPOINT;
    process.env.HF_ENDPOINT = `${hosted.frontOrigin}/hub`;
    try {
      const hub = await cli(
        '--model',
        'me/tiny@v1',
        '--cache',
        cache,
        ...args,
        '--out',
        path.join(work, 'hub.png'),
      );
      expect(hub.code, hub.stderr).toBe(0);
      expect(hub.stderr).toContain(`me/tiny@v1 → ${hosted.frontOrigin}${HUB_PATH}manifest.json`);
      expect(hub.stderr).toMatch(/downloaded unet\.onnx\.data-00 \(\d+ bytes, verified\)/);
      expect(hosted.contentRequests.some((r) => r.path === SHARD)).toBe(true);

      // The cache holds the fixture's bytes under the manifest's names: the folder's set, exactly.
      const dir = cacheFolderFor(cache, `${hosted.frontOrigin}${HUB_PATH}manifest.json`);
      const fixture = manifestFromJson(await readFile(path.join(TINY_DIR, 'manifest.json')));
      for (const id of ['tokenizer', 'text_encoder', 'prior', 'unet', 'movq_decoder'] as const) {
        for (const file of fixture.components[id]?.files ?? []) {
          const cached = await readFile(path.join(dir, file.path));
          expect(cached.equals(await readFile(path.join(TINY_DIR, file.path))), file.path).toBe(true);
        }
      }
      const fromHub = await readFile(path.join(work, 'hub.png'));

      // The host gone: the cached manifest and files serve the same command.
      await hosted.close();
      const offline = await cli(
        '--model',
        'me/tiny@v1',
        '--cache',
        cache,
        ...args,
        '--out',
        path.join(work, 'again.png'),
      );
      expect(offline.code, offline.stderr).toBe(0);
      expect(offline.stderr).toContain('every file needed was already in the cache');
      expect((await readFile(path.join(work, 'again.png'))).equals(fromHub)).toBe(true);
    } finally {
      if (saved === undefined) delete process.env.HF_ENDPOINT;
      else process.env.HF_ENDPOINT = saved;
    }
  });

  it('refuses --cache with a folder, and names an unreachable host', async () => {
    hosted = await startHostedSet();
    const folder = await cli('--model', TINY_DIR, '--cache', work, '--prompt', 'x');
    expect([folder.code, folder.stderr]).toEqual([
      2,
      expect.stringContaining('--cache applies to a hosted set'),
    ]);
    const down = await cli('--model', 'http://127.0.0.1:9/set/', '--cache', work, '--prompt', 'x');
    expect(down.code).toBe(1);
    expect(down.stderr).toContain('Could not reach http://127.0.0.1:9/set/manifest.json');
  });
});
