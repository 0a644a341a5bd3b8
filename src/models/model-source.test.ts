import { describe, expect, it } from 'vitest';
import { modelSourceConfig } from '../../models/model-origins';
import { changesStoredModels, pickedFolderFiles, sourceManifestUrl } from './model-source';

function picked(path: string): File {
  const file = new File(['x'], path.split('/').pop() ?? path);
  Object.defineProperty(file, 'webkitRelativePath', { value: path });
  return file;
}

describe('pickedFolderFiles', () => {
  it('makes paths relative to the folder holding manifest.json and drops files outside it', () => {
    const files = pickedFolderFiles([
      picked('downloads/kandinsky/manifest.json'),
      picked('downloads/kandinsky/unet.onnx'),
      picked('downloads/kandinsky/tokenizer/tokenizer.json'),
      picked('downloads/notes.txt'),
    ]);
    expect(files.map((f) => f.path)).toEqual(['manifest.json', 'unet.onnx', 'tokenizer/tokenizer.json']);
  });

  it('uses the nearest manifest.json when a folder holds several sets', () => {
    const files = pickedFolderFiles([
      picked('a/manifest.json'),
      picked('a/old/manifest.json'),
      picked('a/x.bin'),
    ]);
    expect(files.map((f) => f.path)).toEqual(['manifest.json', 'old/manifest.json', 'x.bin']);
  });
});

describe('changesStoredModels', () => {
  it('is true for the failures that mean stored files were removed or are missing', () => {
    expect(changesStoredModels('INTEGRITY_MISMATCH')).toBe(true);
    expect(changesStoredModels('NOT_CACHED')).toBe(true);
    expect(changesStoredModels('WEBGPU_DEVICE_LOST')).toBe(false);
    expect(changesStoredModels('INVALID_INPUT')).toBe(false);
    expect(changesStoredModels('CANCELLED')).toBe(false);
  });
});

describe('sourceManifestUrl', () => {
  const base = 'https://app.example.org/kandinsky/';
  const config = modelSourceConfig({
    VITE_HUB_IDS: 'true',
    VITE_MODEL_ORIGINS: 'https://models.example.org',
  });

  it('opens the demo set, an allowed host’s folder and a repo id', () => {
    expect(sourceManifestUrl('./models/tiny/manifest.json', modelSourceConfig({}), base)).toEqual({
      manifestUrl: 'https://app.example.org/kandinsky/models/tiny/manifest.json',
    });
    expect(sourceManifestUrl('https://models.example.org/k22/fp16/', config, base)).toEqual({
      manifestUrl: 'https://models.example.org/k22/fp16/manifest.json',
    });
    expect(sourceManifestUrl('me/kandinsky-2-2-web@v1', config, base)).toEqual({
      manifestUrl: 'https://huggingface.co/me/kandinsky-2-2-web/resolve/v1/manifest.json',
    });
  });

  it('refuses with a coded error a host the CSP would block, and what is no source at all', () => {
    const refused = sourceManifestUrl('https://other.example.net/set/manifest.json', config, base);
    expect(refused).toEqual({
      error: { code: 'SOURCE_FORBIDDEN', message: expect.stringMatching(/VITE_MODEL_ORIGINS/) },
    });
    expect(sourceManifestUrl('http://[bad', config, base)).toEqual({
      error: {
        code: 'INVALID_INPUT',
        message: expect.stringMatching(/neither a URL nor a Hugging Face repo id/),
      },
    });
  });
});
