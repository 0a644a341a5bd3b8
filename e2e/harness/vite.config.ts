import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';
import { modelFixture } from '../../scripts/model-fixture.ts';
import { ortRuntime } from '../../scripts/ort-runtime.ts';
import appConfig from '../../vite.config.ts';

/** The browser parity harness: a test-only page served beside, never inside, the app build. */
export default defineConfig({
  root: fileURLToPath(new URL('.', import.meta.url)),
  base: './',
  publicDir: false,
  plugins: [ortRuntime(), modelFixture({ includeReference: true })],
  resolve: appConfig.resolve,
  worker: { format: 'es' },
  build: {
    outDir: fileURLToPath(new URL('../../dist-e2e/harness', import.meta.url)),
    emptyOutDir: true,
    target: 'es2022',
    assetsInlineLimit: 0,
  },
  preview: appConfig.preview,
});
