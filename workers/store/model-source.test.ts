import { describe, expect, it } from 'vitest';
import { REQUIRED_COMPONENTS } from '../../models/contract';
import { newProfile, tinyModelSet } from '../../test-support/store.node';
import { FileSource, UrlSource } from './model-source';
import { StoreError } from './store-error';

const set = tinyModelSet();

function codeOf(run: () => unknown): string | undefined {
  try {
    run();
  } catch (error) {
    return error instanceof StoreError ? error.code : `not a StoreError: ${String(error)}`;
  }
  return undefined;
}

describe('UrlSource', () => {
  const source = new UrlSource('https://models.example/sets/k22/manifest.json?v=3');

  it('resolves manifest paths inside the set folder', () => {
    expect(source.resolve('unet.onnx.data-00').href).toBe(
      'https://models.example/sets/k22/unet.onnx.data-00',
    );
    expect(source.resolve('tokenizer/vocab.json').href).toBe(
      'https://models.example/sets/k22/tokenizer/vocab.json',
    );
  });

  it.each([
    '../other/unet.onnx',
    'a/../../x',
    '/etc/passwd',
    'https://evil.example/unet.onnx',
    '//evil.example/unet.onnx',
    'unet%2F..%2F..%2Fx',
    'a\\b',
    '',
  ])('refuses %j with SOURCE_FORBIDDEN', (path) => {
    expect(codeOf(() => source.resolve(path))).toBe('SOURCE_FORBIDDEN');
  });

  it('accepts only http(s) manifest URLs', () => {
    expect(codeOf(() => new UrlSource('file:///models/manifest.json'))).toBe('SOURCE_FORBIDDEN');
    expect(codeOf(() => new UrlSource('manifest.json'))).toBe('SOURCE_FORBIDDEN');
  });

  it('reports an unreachable server as SOURCE_UNREACHABLE, retryable', async () => {
    const offline = new UrlSource('http://127.0.0.1:9/manifest.json', {
      fetch: () => Promise.reject(new TypeError('fetch failed')),
    });
    const error = await offline.readManifestText().catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StoreError);
    expect((error as StoreError).code).toBe('SOURCE_UNREACHABLE');
    expect((error as StoreError).retryable).toBe(true);
  });
});

describe('FileSource (import from disk, no network)', () => {
  function pickedFolder(): (File & { webkitRelativePath: string })[] {
    // As <input webkitdirectory> gives them: paths start with the picked folder's name.
    const files = [new File([set.manifestText], 'manifest.json')];
    for (const [path, bytes] of set.files)
      files.push(new File([new Uint8Array(bytes)], path.split('/').pop() ?? path));
    const paths = ['manifest.json', ...set.files.keys()];
    return files.map((file, i) => Object.assign(file, { webkitRelativePath: `kandinsky-tiny/${paths[i]}` }));
  }

  it('imports a picked folder into the store without any fetch', async () => {
    const source = FileSource.fromPickedFiles(pickedFolder());
    const store = newProfile().openStore();
    const manifest = await store.loadManifest(source);
    const result = await store.download(source, manifest);
    expect(result.components).toEqual([...REQUIRED_COMPONENTS]);
    const status = await store.getCacheStatus(manifest);
    expect(status.components.filter((c) => c.state === 'complete').map((c) => c.componentId)).toEqual([
      ...REQUIRED_COMPONENTS,
    ]);
    const vocab = await store.openFile(manifest, 'tokenizer', 'tokenizer/vocab.json', { verify: true });
    expect(Buffer.from(vocab).equals(Buffer.from(set.files.get('tokenizer/vocab.json') ?? []))).toBe(true);
  });

  it('names the missing file when the folder is incomplete', async () => {
    const folder = pickedFolder().filter((f) => !f.webkitRelativePath.endsWith('unet.onnx.data-02'));
    const source = FileSource.fromPickedFiles(folder);
    const store = newProfile().openStore();
    const manifest = await store.loadManifest(source);
    const error = (await store.download(source, manifest).catch((e: unknown) => e)) as StoreError;
    expect(error.code).toBe('SOURCE_FILE_MISSING');
    expect(error.message).toContain('unet.onnx.data-02');
  });

  it('rejects a folder without manifest.json', async () => {
    const source = FileSource.fromPickedFiles(pickedFolder().slice(1));
    const error = (await source.readManifestText().catch((e: unknown) => e)) as StoreError;
    expect(error.code).toBe('SOURCE_FILE_MISSING');
  });
});

describe('ModelStore.loadManifest', () => {
  it.each([
    ['not JSON', '{"modelId": ', undefined],
    [
      'a path escaping the set',
      set.manifestText.replace('"path": "prior.onnx"', '"path": "../prior.onnx"'),
      'MANIFEST_UNSAFE_PATH',
    ],
    [
      'a bad hash',
      set.manifestText.replace(/"sha256": "[0-9a-f]{64}"/, '"sha256": "abc"'),
      'MANIFEST_INVALID_HASH',
    ],
  ])('rejects %s with MANIFEST_INVALID before storing anything', async (_, text, manifestCode) => {
    const source = new FileSource(new Map([['manifest.json', new Blob([text])]]));
    const store = newProfile().openStore();
    const error = (await store.loadManifest(source).catch((e: unknown) => e)) as StoreError;
    expect(error).toBeInstanceOf(StoreError);
    expect(error.code).toBe('MANIFEST_INVALID');
    expect(error.details.manifestCode).toBe(manifestCode);
  });
});
