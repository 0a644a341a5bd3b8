import { describe, expect, it } from 'vitest';
import { changesStoredModels, pickedFolderFiles } from './model-source';

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
