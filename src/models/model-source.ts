/** Where the app looks for a model set, and how the user's choice is remembered. */
import {
  type ModelSourceConfig,
  modelSourceConfig,
  parseHubRepoId,
  resolveModelSource,
} from '../../models/model-origins';
import type { ErrorCode, WireError } from '../../workers/errors';

const SOURCE_KEY = 'kandinsky-web:model-url';

/** What this build may open (VITE_MODEL_URL, VITE_MODEL_ORIGINS, VITE_HUB_IDS, VITE_HF_ENDPOINT). */
export function buildSourceConfig(): ModelSourceConfig {
  return modelSourceConfig(import.meta.env);
}

/**
 * The default model set as the source box shows it: `VITE_MODEL_URL` at build time (a manifest
 * URL or a Hub repo id), else the tiny demo set the app itself serves.
 */
export function defaultModelSource(baseUri: string): string {
  const configured = (import.meta.env.VITE_MODEL_URL as string | undefined)?.trim();
  if (configured && parseHubRepoId(configured) !== null) return configured;
  return new URL(configured && configured.length > 0 ? configured : './models/tiny/manifest.json', baseUri)
    .href;
}

/** The source the user opened last (a URL or a repo id, as typed), else the default. */
export function savedModelSource(storage: Pick<Storage, 'getItem'>, baseUri: string): string {
  return storage.getItem(SOURCE_KEY) ?? defaultModelSource(baseUri);
}

export function saveModelSource(storage: Pick<Storage, 'setItem'>, source: string): void {
  storage.setItem(SOURCE_KEY, source);
}

/**
 * What the source box holds, as the manifest URL to open: a URL (relative to the page, a folder
 * URL gets manifest.json) or a Hub repo id, refused with a message when this build's CSP would not
 * allow its origin. The page's own origin is always allowed.
 */
export function sourceManifestUrl(
  input: string,
  config: ModelSourceConfig,
  baseUri: string,
): { readonly manifestUrl: string } | { readonly error: WireError } {
  const resolved = resolveModelSource(input, config, baseUri, new URL(baseUri).origin);
  if (resolved.kind !== 'invalid') return { manifestUrl: resolved.manifestUrl };
  const code = resolved.reason === 'forbidden' ? 'SOURCE_FORBIDDEN' : 'INVALID_INPUT';
  return { error: { code, message: resolved.message } };
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
