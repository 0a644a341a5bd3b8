import react from '@vitejs/plugin-react';
import { defaultClientConditions, defineConfig } from 'vite';
import { ortRuntime } from './scripts/ort-runtime.ts';

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
  plugins: [react(), ortRuntime()],
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
