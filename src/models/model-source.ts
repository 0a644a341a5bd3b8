/** Where the app looks for a model set, and how the user's choice is remembered. */
import type { ErrorCode } from '../../workers/errors';

const SOURCE_KEY = 'kandinsky-web:model-url';

/**
 * The default model set: `VITE_MODEL_URL` at build time (the real Kandinsky 2.2 set on a host of
 * the deployer's choice), else the tiny demo set the app itself serves.
 */
export function defaultModelUrl(baseUri: string): string {
  const configured = import.meta.env.VITE_MODEL_URL as string | undefined;
  return new URL(configured && configured.length > 0 ? configured : './models/tiny/manifest.json', baseUri)
    .href;
}

export function savedModelUrl(storage: Pick<Storage, 'getItem'>, baseUri: string): string {
  return storage.getItem(SOURCE_KEY) ?? defaultModelUrl(baseUri);
}

export function saveModelUrl(storage: Pick<Storage, 'setItem'>, url: string): void {
  storage.setItem(SOURCE_KEY, url);
}

/**
 * Files from a folder pick, as the worker wants them: paths relative to the folder that holds
 * manifest.json (postMessage drops `webkitRelativePath`, so the path travels beside the file).
 */
export function pickedFolderFiles(files: Iterable<File>): { path: string; file: Blob }[] {
  const list = [...files];
  const pathOf = (file: File) => (file.webkitRelativePath.length > 0 ? file.webkitRelativePath : file.name);
  const manifest = list
    .map(pathOf)
    .filter((path) => path === 'manifest.json' || path.endsWith('/manifest.json'))
    .sort((a, b) => a.length - b.length)[0];
  const prefix = manifest ? manifest.slice(0, -'manifest.json'.length) : '';
  return list
    .filter((file) => pathOf(file).startsWith(prefix))
    .map((file) => ({ path: pathOf(file).slice(prefix.length), file }));
}

/**
 * Failures of a generation that mean the stored files are not what the model manager last showed:
 * a file found damaged on its first read was removed (INTEGRITY_MISMATCH), or something the
 * manager counted as stored is missing (NOT_CACHED). After one, the manager reads the cache
 * status again so it offers the missing bytes instead of saying "Downloaded".
 */
export function changesStoredModels(code: ErrorCode): boolean {
  return code === 'INTEGRITY_MISMATCH' || code === 'NOT_CACHED';
}

/** What each optional feature gives the user, for the "before you download" summary. */
export const FEATURE_LABELS: Readonly<Record<string, string>> = {
  'text-to-image': 'Text → image',
  'image-to-image': 'Image → image (start from a picture)',
  inpainting: 'Inpainting (repaint a masked area)',
  'depth-control': 'Depth ControlNet (follow a depth map’s layout)',
  'depth-from-photo': 'Depth from a photo (its layout estimated on your device)',
  'image-prompt': 'Image prompts (mix pictures into the prompt)',
};
