import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';

/**
 * Bundles the Node CLI into one ES module, dist-cli/generate.mjs: Node 20 cannot run our .ts
 * sources (no type stripping, and their imports omit extensions). `ssr` keeps node_modules
 * packages (onnxruntime-node, zod, the tokenizer) as imports resolved at run time, so the bundle
 * holds only our code. The app's Vite config is not used: its plugins are for the browser build.
 */
export default defineConfig({
  root: fileURLToPath(new URL('..', import.meta.url)),
  logLevel: 'warn',
  publicDir: false,
  build: {
    ssr: 'scripts/generate-main.node.ts',
    outDir: 'dist-cli',
    emptyOutDir: true,
    target: 'node20',
    minify: false,
    sourcemap: true,
    rollupOptions: { output: { entryFileNames: 'generate.mjs' } },
  },
});
