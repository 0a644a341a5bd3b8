/**
 * Progressive-web-app build configuration: the web manifest, the service worker (precache of the
 * app shell and the ORT runtime, never model weights) and the Content-Security-Policy.
 */
import type { Plugin } from 'vite';
import { VitePWA } from 'vite-plugin-pwa';
import { modelSourceConfig } from '../models/model-origins.ts';
import { ORT_RUNTIME_DIR } from './ort-runtime.ts';

/**
 * The CSP the built page carries (as a meta tag: a static host may not let us send headers).
 * Only the page's own origin, plus:
 * - 'wasm-unsafe-eval': compiling WebAssembly (onnxruntime-web) is "eval" to CSP;
 * - blob: images: results and gallery pictures are shown from object URLs;
 * - the origins model sets may come from (`modelOriginsFromEnv`), and nothing else.
 * Workers get no policy from this meta tag (a dedicated worker takes its policy from its own
 * script's response); the store in the worker enforces the same list itself, on the manifest URL
 * and on every response's final URL after redirects (workers/store/model-source.ts).
 * Not applied in `vite dev`, whose hot reload needs inline scripts and a websocket.
 */
export function contentSecurityPolicy(modelOrigins: readonly string[] = []): string {
  const connect = ["'self'", ...modelOrigins].join(' ');
  return [
    "default-src 'self'",
    "script-src 'self' 'wasm-unsafe-eval'",
    "worker-src 'self'",
    `connect-src ${connect}`,
    "img-src 'self' blob: data:",
    "style-src 'self'",
    "font-src 'self'",
    "object-src 'none'",
    "base-uri 'self'",
    "form-action 'self'",
  ].join('; ');
}

/**
 * The origins model sets may be downloaded from, as the build's environment lists them
 * (models/model-origins.ts: VITE_MODEL_URL's origin, VITE_MODEL_ORIGINS, and with VITE_HUB_IDS the
 * Hub endpoint and its content hosts). A value that can't be used stops the build.
 */
export function modelOriginsFromEnv(env: Readonly<Record<string, string | undefined>>): string[] {
  return [...modelSourceConfig(env).origins];
}

/** Adds the CSP meta tag to index.html at build time. */
export function cspMetaTag(modelOrigins: readonly string[]): Plugin {
  return {
    name: 'kandinsky:csp',
    apply: 'build',
    transformIndexHtml: {
      order: 'post',
      handler: () => [
        {
          tag: 'meta',
          attrs: { 'http-equiv': 'Content-Security-Policy', content: contentSecurityPolicy(modelOrigins) },
          injectTo: 'head-prepend',
        },
      ],
    },
  };
}

/** 64 MiB: onnxruntime-web's JSEP wasm is ~25 MB and must be precached for offline use. */
const MAX_PRECACHE_FILE_BYTES = 64 * 1024 * 1024;

export function pwa(): Plugin[] {
  return VitePWA({
    strategies: 'injectManifest',
    srcDir: 'workers',
    filename: 'service-worker.ts',
    // Relative: the service worker's scope follows the app wherever it is hosted.
    base: './',
    scope: './',
    registerType: 'prompt',
    // The page registers through virtual:pwa-register/react (src/pwa/UpdatePrompt.tsx).
    injectRegister: false,
    // globPatterns below already cover public/ (icons, favicon): listing them again duplicates entries.
    includeManifestIcons: false,
    injectManifest: {
      globPatterns: [
        // The web manifest is added by the plugin itself.
        '**/*.{js,css,html,svg,png}',
        `${ORT_RUNTIME_DIR}/*.{mjs,wasm}`,
        // The start-up self-test's 1 KB graph; model sets are never precached.
        'assets/matmul_sigmoid-*.onnx',
      ],
      globIgnores: ['**/node_modules/**', '**/*.map'],
      maximumFileSizeToCacheInBytes: MAX_PRECACHE_FILE_BYTES,
    },
    manifest: {
      id: './',
      name: 'Kandinsky Web',
      short_name: 'Kandinsky',
      description: 'Kandinsky 2.2 image generation, entirely on your device with WebGPU.',
      start_url: './',
      scope: './',
      display: 'standalone',
      background_color: '#13121c',
      theme_color: '#1d1b2e',
      categories: ['graphics', 'photo'],
      icons: [
        { src: 'icons/icon-192.png', sizes: '192x192', type: 'image/png', purpose: 'any' },
        { src: 'icons/icon-512.png', sizes: '512x512', type: 'image/png', purpose: 'any' },
        { src: 'icons/icon-maskable-512.png', sizes: '512x512', type: 'image/png', purpose: 'maskable' },
        { src: 'favicon.svg', sizes: 'any', type: 'image/svg+xml', purpose: 'any' },
      ],
    },
    devOptions: { enabled: false },
  });
}
