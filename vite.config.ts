import react from '@vitejs/plugin-react';
import { defaultClientConditions, defineConfig } from 'vite';
import { modelFixture } from './scripts/model-fixture.ts';
import { ortRuntime } from './scripts/ort-runtime.ts';
import { cspMetaTag, modelOriginsFromEnv, pwa } from './scripts/pwa.ts';

/**
 * Cross-origin isolation lets onnxruntime-web use multi-threaded wasm (SharedArrayBuffer).
 * Static hosts that can't send these headers still work, single-threaded.
 */
const isolationHeaders = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
};

export default defineConfig({
  // Relative base: the build works from any static host and under any sub-path.
  base: './',
  // pwa(): web manifest + service worker (app shell and ORT runtime precached, COOP/COEP added);
  // cspMetaTag: the page's Content-Security-Policy, built-in only (dev's hot reload needs inline code).
  // modelFixture(): the tiny demo model set at ./models/tiny/, so a fresh `npm start` works end to end.
  plugins: [react(), ortRuntime(), modelFixture(), ...pwa(), cspMetaTag(modelOriginsFromEnv(process.env))],
  resolve: {
    // Pick onnxruntime-web's entry that loads its .mjs/.wasm from `wasmPaths` (our origin)
    // instead of the variant that inlines the loader and lets the bundler emit another copy.
    conditions: ['onnxruntime-web-use-extern-wasm', ...defaultClientConditions],
  },
  worker: {
    format: 'es',
  },
  build: {
    target: 'es2022',
    sourcemap: true,
    // Model graphs are fetched by the worker; never inline them as data: URLs.
    assetsInlineLimit: 0,
  },
  server: { headers: isolationHeaders },
  preview: { headers: isolationHeaders },
});
