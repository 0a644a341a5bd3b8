import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import path from 'node:path';
import type { Plugin } from 'vite';

/**
 * The onnxruntime-web runtime files the app ships: the JSEP WebGPU build (TESTING.md: the native
 * WebGPU build miscomputes 3×3 convs with 9 input channels, which the inpainting UNet has).
 * ORT fetches them by these exact names from `env.wasm.wasmPaths`, so they are copied unhashed.
 */
export const ORT_RUNTIME_FILES = [
  'ort-wasm-simd-threaded.jsep.mjs',
  'ort-wasm-simd-threaded.jsep.wasm',
] as const;

/** Folder under the app's root where the runtime files are served from (dev) or written to (build). */
export const ORT_RUNTIME_DIR = 'ort';

function ortDistDir(root: string): string {
  const require = createRequire(path.join(root, 'package.json'));
  // The package's CommonJS entry lives in dist/, next to the runtime files.
  return path.dirname(require.resolve('onnxruntime-web'));
}

function contentType(file: string): string {
  return file.endsWith('.wasm') ? 'application/wasm' : 'text/javascript';
}

/** Serves the ORT runtime from the app's own origin in dev and copies it into the build. */
export function ortRuntime(): Plugin {
  let root = process.cwd();
  return {
    name: 'kandinsky:ort-runtime',
    configResolved(config) {
      root = config.root;
    },
    configureServer(server) {
      server.middlewares.use((req, res, next) => {
        const match = /\/ort\/([^/?#]+)/.exec(req.url ?? '');
        const file = match?.[1];
        if (!file || !(ORT_RUNTIME_FILES as readonly string[]).includes(file)) return next();
        res.setHeader('Content-Type', contentType(file));
        res.end(readFileSync(path.join(ortDistDir(root), file)));
      });
    },
    generateBundle(_options, bundle) {
      // One runtime only: if a dependency pulled a second copy of ORT's wasm into the bundle,
      // the app would download and initialise two runtimes. Fail the build instead.
      const strays = Object.keys(bundle).filter((name) => /ort-wasm|ort\..*\.wasm/.test(name));
      if (strays.length > 0) {
        this.error(
          `A second onnxruntime-web runtime was bundled: ${strays.join(', ')}. Ship only ${ORT_RUNTIME_DIR}/.`,
        );
      }
      for (const file of ORT_RUNTIME_FILES) {
        this.emitFile({
          type: 'asset',
          fileName: `${ORT_RUNTIME_DIR}/${file}`,
          source: readFileSync(path.join(ortDistDir(root), file)),
        });
      }
    },
  };
}
