import { describe, expect, it } from 'vitest';
import {
  hubManifestUrl,
  ModelSourceConfigError,
  modelSourceConfig,
  originAllowed,
  parseHubRepoId,
  resolveModelSource,
} from './model-origins';

describe('parseHubRepoId', () => {
  it('reads owner/name and owner/name@revision', () => {
    expect(parseHubRepoId('kandinsky-community/kandinsky-2-2-decoder')).toEqual({
      owner: 'kandinsky-community',
      name: 'kandinsky-2-2-decoder',
      revision: null,
    });
    expect(parseHubRepoId('me/k22.onnx@v1.0')).toEqual({ owner: 'me', name: 'k22.onnx', revision: 'v1.0' });
    expect(parseHubRepoId('me/set@refs/pr/3')?.revision).toBe('refs/pr/3');
  });

  it('refuses what the Hub would refuse, and URLs and paths', () => {
    for (const text of [
      'name-only',
      'a/b/c',
      '/abs/path',
      './models/tiny',
      'https://huggingface.co/a/b',
      'a/-b',
      'a/b-',
      'a/b--c',
      'a/b..c',
      'a b/c',
      'a/b@',
      'a/b@rev with space',
      'a/b@x?y',
      `a/${'x'.repeat(97)}`,
    ]) {
      expect(parseHubRepoId(text), text).toBeNull();
    }
  });
});

describe('hubManifestUrl', () => {
  it('resolves to the Hub’s resolve URL, main by default, the revision as one encoded segment', () => {
    expect(hubManifestUrl({ owner: 'me', name: 'set', revision: null })).toBe(
      'https://huggingface.co/me/set/resolve/main/manifest.json',
    );
    expect(hubManifestUrl({ owner: 'me', name: 'set', revision: 'refs/pr/3' })).toBe(
      'https://huggingface.co/me/set/resolve/refs%2Fpr%2F3/manifest.json',
    );
  });

  it('keeps an endpoint’s sub-path (a mirror under a path)', () => {
    expect(hubManifestUrl({ owner: 'me', name: 'set', revision: 'v2' }, 'http://localhost:4681/hub')).toBe(
      'http://localhost:4681/hub/me/set/resolve/v2/manifest.json',
    );
  });
});

describe('modelSourceConfig', () => {
  it('allows nothing beyond the page by default, and no repo ids', () => {
    expect(modelSourceConfig({})).toEqual({
      hubIds: false,
      hubEndpoint: 'https://huggingface.co',
      origins: [],
    });
  });

  it('allows VITE_MODEL_URL’s origin and the listed origins, each once', () => {
    const config = modelSourceConfig({
      VITE_MODEL_URL: 'https://models.example.org/k22/manifest.json',
      VITE_MODEL_ORIGINS: 'https://models.example.org, https://*.cdn.example.net  http://localhost:8080/',
    });
    expect(config.origins).toEqual([
      'https://models.example.org',
      'https://*.cdn.example.net',
      'http://localhost:8080',
    ]);
    expect(config.hubIds).toBe(false);
  });

  it('with repo ids on: the Hub endpoint and, for huggingface.co, its content hosts', () => {
    expect(modelSourceConfig({ VITE_HUB_IDS: 'true' }).origins).toEqual([
      'https://huggingface.co',
      'https://*.huggingface.co',
      'https://*.hf.co',
    ]);
    // A mirror: its own origin only; its file host is the deployer's to list.
    const mirror = modelSourceConfig({
      VITE_HUB_IDS: '1',
      VITE_HF_ENDPOINT: 'https://hf-mirror.example.org/',
    });
    expect(mirror).toEqual({
      hubIds: true,
      hubEndpoint: 'https://hf-mirror.example.org',
      origins: ['https://hf-mirror.example.org'],
    });
    // A repo id as the default set turns repo ids on.
    expect(modelSourceConfig({ VITE_MODEL_URL: 'me/set@v1' }).hubIds).toBe(true);
  });

  it('stops the build on an origin with a path, a bad scheme or a bad endpoint', () => {
    expect(() => modelSourceConfig({ VITE_MODEL_ORIGINS: 'https://a.example/models' })).toThrow(
      ModelSourceConfigError,
    );
    expect(() => modelSourceConfig({ VITE_MODEL_ORIGINS: "'unsafe-inline'" })).toThrow(/VITE_MODEL_ORIGINS/);
    expect(() => modelSourceConfig({ VITE_MODEL_ORIGINS: '*' })).toThrow(/not an origin/);
    expect(() => modelSourceConfig({ VITE_HF_ENDPOINT: 'ftp://x' })).toThrow(/VITE_HF_ENDPOINT/);
  });
});

describe('originAllowed', () => {
  const allowed = ['https://models.example.org', 'https://*.hf.co', 'http://localhost:4682'];
  const page = 'http://localhost:4680';
  it('matches as CSP host sources do: scheme, host or subdomain, port', () => {
    expect(originAllowed(new URL('http://localhost:4680/x'), allowed, page)).toBe(true);
    expect(originAllowed(new URL('https://models.example.org:443/a'), allowed, page)).toBe(true);
    expect(originAllowed(new URL('https://cas-bridge.xethub.hf.co/x'), allowed, page)).toBe(true);
    expect(originAllowed(new URL('http://localhost:4682/f'), allowed, page)).toBe(true);
    expect(originAllowed(new URL('https://hf.co/x'), allowed, page)).toBe(false);
    expect(originAllowed(new URL('https://evil-hf.co/x'), allowed, page)).toBe(false);
    expect(originAllowed(new URL('http://models.example.org/a'), allowed, page)).toBe(false);
    expect(originAllowed(new URL('https://models.example.org:8443/a'), allowed, page)).toBe(false);
    expect(originAllowed(new URL('http://localhost:4683/f'), allowed, page)).toBe(false);
    expect(originAllowed(new URL('http://localhost:4680/x'), allowed, null)).toBe(false);
  });
});

describe('resolveModelSource', () => {
  const base = 'http://localhost:4680/app/';
  const page = 'http://localhost:4680';
  const hub = modelSourceConfig({
    VITE_HUB_IDS: 'true',
    VITE_HF_ENDPOINT: 'http://localhost:4681/hub',
    VITE_MODEL_ORIGINS: 'http://localhost:4682',
  });

  it('opens a relative or same-origin URL, and a folder URL as its manifest.json', () => {
    expect(resolveModelSource('./models/tiny/manifest.json', modelSourceConfig({}), base, page)).toEqual({
      kind: 'url',
      manifestUrl: 'http://localhost:4680/app/models/tiny/manifest.json',
    });
    expect(resolveModelSource(' http://localhost:4682/sets/k22/ ', hub, base, page)).toEqual({
      kind: 'url',
      manifestUrl: 'http://localhost:4682/sets/k22/manifest.json',
    });
  });

  it('resolves a repo id to the configured endpoint', () => {
    expect(resolveModelSource('me/tiny@v1', hub, base, page)).toEqual({
      kind: 'hub',
      repo: { owner: 'me', name: 'tiny', revision: 'v1' },
      manifestUrl: 'http://localhost:4681/hub/me/tiny/resolve/v1/manifest.json',
    });
  });

  it('refuses, naming the build variable, a source the build does not allow', () => {
    const refused = resolveModelSource('https://elsewhere.example/set/manifest.json', hub, base, page);
    expect(refused.kind).toBe('invalid');
    expect(refused.kind === 'invalid' && refused.message).toMatch(
      /https:\/\/elsewhere\.example is not among .*VITE_MODEL_ORIGINS/,
    );
    const noHub = resolveModelSource('me/tiny', modelSourceConfig({}), base, page);
    expect(noHub.kind === 'invalid' && noHub.message).toMatch(/VITE_HUB_IDS=true/);
    const ftp = resolveModelSource('ftp://host/set/manifest.json', hub, base, page);
    expect(ftp.kind === 'invalid' && ftp.message).toMatch(/http\(s\) only/);
    const empty = resolveModelSource('  ', hub, base, page);
    expect(empty.kind).toBe('invalid');
  });
});
