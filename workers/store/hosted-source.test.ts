/**
 * The store against sets hosted as real hosts serve them (test-support/hosted-set.node.ts): file
 * URLs that redirect to another origin, hosts without Range, hosts without CORS, and the build's
 * list of origins.
 */
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { REQUIRED_COMPONENTS } from '../../models/contract';
import { type HostedSet, startHostedSet } from '../../test-support/hosted-set.node';
import {
  filesOf,
  newProfile,
  type Profile,
  TEST_CHUNK_BYTES,
  tinyModelSet,
} from '../../test-support/store.node';
import { type FetchFunction, noCorsProbe, type OriginPolicy, UrlSource } from './model-source';
import type { ModelStore } from './model-store';
import { StoreError } from './store-error';

const set = tinyModelSet();
const REQUIRED = [...REQUIRED_COMPONENTS];
/** A UNet external-data shard of ~1 MB: many chunks, so a drop leaves part of it stored. */
const SHARD = 'unet.onnx.data-00';
const shardBytes = set.files.get(SHARD)?.byteLength ?? 0;
const DROP_AT = 300_000;
/** Where a resume of SHARD starts: the last whole chunk stored before the drop. */
const RESUME_AT = Math.floor(DROP_AT / TEST_CHUNK_BYTES) * TEST_CHUNK_BYTES;

let hosted: HostedSet;
let profile: Profile;
beforeEach(async () => {
  hosted = await startHostedSet();
  profile = newProfile();
});
afterEach(async () => {
  await hosted.close();
});

async function rejection(promise: Promise<unknown>): Promise<StoreError> {
  const error = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(error, 'expected a StoreError').toBeInstanceOf(StoreError);
  return error as StoreError;
}

async function expectExact(store: ModelStore, source: UrlSource): Promise<void> {
  const manifest = await store.loadManifest(source);
  const status = await store.getCacheStatus(manifest);
  for (const id of REQUIRED) {
    expect(status.components.find((c) => c.componentId === id)?.state, id).toBe('complete');
    for (const file of filesOf(manifest, id)) {
      const bytes = await store.openFile(manifest, id, file.path, { verify: true });
      expect(Buffer.from(bytes).equals(Buffer.from(set.files.get(file.path) ?? [])), file.path).toBe(true);
    }
  }
}

function bothOrigins(): OriginPolicy {
  return { origins: [hosted.frontOrigin, hosted.contentOrigin], pageOrigin: null };
}

const requestsFor = (list: readonly { path: string; rangeStart: number | null }[], path: string) =>
  list.filter((r) => r.path === path).map((r) => r.rangeStart);

/**
 * fetch as a browser page at `pageOrigin` sees it: each cross-origin response (redirects included)
 * must carry Access-Control-Allow-Origin or the request fails with a bare TypeError, and only
 * safelisted or exposed headers are readable. `no-cors` requests answer opaquely.
 */
function browserFetch(pageOrigin: string): FetchFunction {
  const safelisted = ['cache-control', 'content-language', 'content-length', 'content-type', 'expires'];
  return async (input, init = {}) => {
    if (init.mode === 'no-cors') {
      const response = await fetch(input, { method: init.method ?? 'GET' });
      await response.body?.cancel();
      return new Response(null, { status: 200 });
    }
    let url = input;
    let tainted = false;
    for (let hop = 0; hop < 20; hop++) {
      const response = await fetch(url, { ...init, redirect: 'manual' });
      const origin = new URL(url).origin;
      if (origin !== pageOrigin) {
        const allow = response.headers.get('access-control-allow-origin');
        if (allow !== '*' && allow !== (tainted ? 'null' : pageOrigin)) {
          await response.body?.cancel();
          throw new TypeError('Failed to fetch');
        }
      }
      const location = response.headers.get('location');
      if (response.status >= 300 && response.status < 400 && location !== null) {
        const next = new URL(location, url).href;
        if (new URL(next).origin !== origin) tainted = true;
        url = next;
        continue;
      }
      const exposed = (response.headers.get('access-control-expose-headers') ?? '')
        .toLowerCase()
        .split(/\s*,\s*/);
      const headers = new Headers();
      for (const [name, value] of response.headers) {
        if (origin === pageOrigin || safelisted.includes(name) || exposed.includes(name))
          headers.set(name, value);
      }
      const visible = new Response(response.body, { status: response.status, headers });
      Object.defineProperty(visible, 'url', { value: url });
      Object.defineProperty(visible, 'type', { value: origin === pageOrigin ? 'basic' : 'cors' });
      return visible;
    }
    throw new TypeError('Failed to fetch: too many redirects');
  };
}

describe('a set whose file URLs redirect to another origin', () => {
  it('follows the redirect with Range, and a reload resumes from the stored chunks through a new redirect', async () => {
    // The first session ends mid-file: the content host drops the shard's connection.
    hosted.content.dropAfter.set(SHARD, DROP_AT);
    const first = profile.openStore({ retry: { attempts: 0, baseDelayMs: 1, maxDelayMs: 1 } });
    const source = new UrlSource(hosted.manifestUrl(), { policy: bothOrigins() });
    const manifest = await first.loadManifest(source);
    const stopped = await rejection(first.download(source, manifest));
    expect(stopped.code).toBe('SOURCE_UNREACHABLE');

    // A reload: a new store on the same database resumes each file where it stopped.
    const second = profile.openStore();
    const again = new UrlSource(hosted.manifestUrl(), { policy: bothOrigins() });
    const result = await second.download(again, await second.loadManifest(again));
    expect(result.reusedBytes).toBeGreaterThanOrEqual(RESUME_AT);
    await expectExact(second, again);

    // Each request went to the original URL, was redirected again, and the Range header followed.
    expect(requestsFor(hosted.frontRequests, SHARD)).toEqual([null, RESUME_AT]);
    expect(requestsFor(hosted.contentRequests, SHARD)).toEqual([null, RESUME_AT]);
    expect(hosted.contentBytes.get(SHARD)).toBe(DROP_AT + shardBytes - RESUME_AT);
  });

  it('refuses, naming VITE_MODEL_ORIGINS, a redirect to an origin the build does not list', async () => {
    const store = profile.openStore();
    const source = new UrlSource(hosted.manifestUrl(), {
      policy: { origins: [hosted.frontOrigin], pageOrigin: null },
    });
    const error = await rejection(store.download(source, await store.loadManifest(source)));
    expect(error.code).toBe('SOURCE_FORBIDDEN');
    expect(error.message).toContain(`redirected to ${hosted.contentOrigin} is not among the origins`);
    expect(error.message).toContain('VITE_MODEL_ORIGINS');
    // And a manifest URL outside the list is refused before any request.
    const requests = hosted.frontRequests.length;
    expect(() => new UrlSource(hosted.manifestUrl(), { policy: { origins: [], pageOrigin: null } })).toThrow(
      /VITE_MODEL_ORIGINS/,
    );
    expect(hosted.frontRequests.length).toBe(requests);
  });
});

describe('a content host without Range', () => {
  it('sends whole files: a dropped file starts over and the set still completes, verified', async () => {
    hosted.content.range = false;
    hosted.content.dropAfter.set(SHARD, DROP_AT);
    const store = profile.openStore();
    const source = new UrlSource(hosted.manifestUrl());
    await store.download(source, await store.loadManifest(source));
    await expectExact(store, source);
    // The retry asked for the rest; the host sent the whole file, which replaced the partial one.
    expect(requestsFor(hosted.contentRequests, SHARD)).toEqual([null, RESUME_AT]);
    expect(hosted.contentBytes.get(SHARD)).toBe(DROP_AT + shardBytes);
  });
});

describe('a host without CORS, as a browser sees it', () => {
  const page = 'http://app.localhost:4680';

  it('fails with SOURCE_NO_CORS naming Access-Control-Allow-Origin, not as a network failure', async () => {
    hosted.content.cors = 'none';
    const fetchFn = browserFetch(page);
    const store = profile.openStore();
    const source = new UrlSource(hosted.manifestUrl(), {
      fetch: fetchFn,
      probe: noCorsProbe(fetchFn, () => true),
    });
    const error = await rejection(store.download(source, await store.loadManifest(source)));
    expect(error.code).toBe('SOURCE_NO_CORS');
    expect(error.message).toContain('Access-Control-Allow-Origin');
    // Not retried: it is not a transport fault.
    expect(profile.sleeps).toEqual([]);
  });

  it('fails with SOURCE_NO_CORS naming Content-Range when a resumed 206 hides it', async () => {
    hosted.content.cors = 'no-expose';
    hosted.content.dropAfter.set(SHARD, DROP_AT);
    const fetchFn = browserFetch(page);
    const store = profile.openStore();
    const source = new UrlSource(hosted.manifestUrl(), {
      fetch: fetchFn,
      probe: noCorsProbe(fetchFn, () => true),
    });
    const error = await rejection(store.download(source, await store.loadManifest(source)));
    expect(error.code).toBe('SOURCE_NO_CORS');
    expect(error.message).toMatch(/without exposing its Content-Range header.*Access-Control-Expose-Headers/);
  });

  it('tells offline and a host that does not answer from a CORS failure', async () => {
    const fetchFn = browserFetch(page);
    const offline = new UrlSource(hosted.manifestUrl(), {
      fetch: fetchFn,
      probe: noCorsProbe(fetchFn, () => false),
    });
    const closed = new UrlSource('http://127.0.0.1:9/set/manifest.json', {
      fetch: fetchFn,
      probe: noCorsProbe(fetchFn, () => true),
    });
    hosted.content.cors = 'none';
    await hosted.close();
    const offlineError = await rejection(offline.readManifestText());
    expect([offlineError.code, offlineError.message]).toEqual([
      'SOURCE_UNREACHABLE',
      expect.stringMatching(/offline/),
    ]);
    const closedError = await rejection(closed.readManifestText());
    expect([closedError.code, closedError.message]).toEqual([
      'SOURCE_UNREACHABLE',
      expect.stringMatching(/check the connection and the model URL\.$/),
    ]);
    // A cross-origin isolated page can't probe (COEP blocks the no-cors answer): it says both.
    const isolated = new UrlSource('http://127.0.0.1:9/set/manifest.json', {
      fetch: fetchFn,
      probe: noCorsProbe(
        fetchFn,
        () => true,
        () => true,
      ),
    });
    const isolatedError = await rejection(isolated.readManifestText());
    expect([isolatedError.code, isolatedError.message]).toEqual([
      'SOURCE_UNREACHABLE',
      expect.stringMatching(/may not send the Access-Control-Allow-Origin header/),
    ]);
    expect(isolatedError.retryable).toBe(true);
  });
});
