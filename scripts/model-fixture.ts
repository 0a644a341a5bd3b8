import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Plugin } from 'vite';

/**
 * Serves the tiny random-weight model set (models/fixtures/tiny) from the app's own origin at
 * `<app>/models/tiny/` and copies it into the build: the demo model that makes `npm start` work on a
 * fresh machine, and the set every browser test downloads. Only files the manifest names are
 * published, with its quality sample pictures where it lists them (plus, for the browser parity
 * harness, the diffusers reference recordings).
 */
export interface ModelFixtureOptions {
  /** Folder of the set, relative to the project root. */
  readonly source?: string;
  /** URL folder under the app's base. */
  readonly target?: string;
  /**
   * Also publish the recorded diffusers intermediates, every `reference*` folder of the set
   * (`reference/`, `reference-mix/`, `reference-depth/`): test builds only.
   */
  readonly includeReference?: boolean;
}

function listFiles(root: string, dir = ''): string[] {
  return readdirSync(path.join(root, dir)).flatMap((name) => {
    const relative = dir ? `${dir}/${name}` : name;
    return statSync(path.join(root, relative)).isDirectory() ? listFiles(root, relative) : [relative];
  });
}

function publishedFiles(setDir: string, includeReference: boolean): string[] {
  type Sample = { reference: { path: string }; picture: { path: string } };
  const manifest = JSON.parse(readFileSync(path.join(setDir, 'manifest.json'), 'utf8')) as {
    components: Record<string, { files: { path: string }[] }>;
    quality?: { sample?: Sample };
  };
  const files = [
    'manifest.json',
    ...Object.values(manifest.components).flatMap((c) => c.files.map((f) => f.path)),
    // The `--quality` sample pictures the model manager compares (models/CONTRACT.md).
    ...(manifest.quality?.sample
      ? [manifest.quality.sample.reference.path, manifest.quality.sample.picture.path]
      : []),
  ];
  if (includeReference) {
    const recordings = readdirSync(setDir).filter(
      (name) => /^reference(-[\w-]+)?$/.test(name) && statSync(path.join(setDir, name)).isDirectory(),
    );
    for (const folder of recordings.sort()) files.push(...listFiles(setDir, folder));
  }
  return files;
}

function contentType(file: string): string {
  if (file.endsWith('.json')) return 'application/json';
  if (file.endsWith('.png')) return 'image/png';
  if (file.endsWith('.txt')) return 'text/plain';
  return 'application/octet-stream';
}

export function modelFixture(options: ModelFixtureOptions = {}): Plugin {
  const source = options.source ?? 'models/fixtures/tiny';
  const target = options.target ?? 'models/tiny';
  // The project root (this file is in scripts/), whatever root the app being built has.
  const root = fileURLToPath(new URL('..', import.meta.url));
  const published = new Set(publishedFiles(path.join(root, source), options.includeReference ?? false));
  return {
    name: 'kandinsky:model-fixture',
    configureServer(server) {
      server.middlewares.use((req, res, next) => {
        const url = decodeURIComponent((req.url ?? '').split('?')[0] ?? '');
        const at = url.indexOf(`/${target}/`);
        const file = at < 0 ? '' : url.slice(at + target.length + 2);
        if (!published.has(file)) return next();
        res.setHeader('Content-Type', contentType(file));
        res.end(readFileSync(path.join(root, source, file)));
      });
    },
    generateBundle() {
      for (const file of published) {
        this.emitFile({
          type: 'asset',
          fileName: `${target}/${file}`,
          source: readFileSync(path.join(root, source, file)),
        });
      }
    },
  };
}
