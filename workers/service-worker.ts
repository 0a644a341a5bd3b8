/// <reference lib="webworker" />
/**
 * The app's service worker (built by vite-plugin-pwa's injectManifest from this file).
 *
 * - Precaches the app shell and the onnxruntime-web runtime (dist/ort/) so the app starts offline
 *   after the first visit. Model weights are never precached: the model store keeps them.
 * - Adds the cross-origin isolation headers (COOP/COEP) to everything it serves, so that on a
 *   static host that can't send them, the second visit on is cross-origin isolated and ORT can
 *   use multi-threaded wasm (DESIGN.md, "Static hosting"). Without either, ORT runs single-threaded.
 * - Waits for the page to say SKIP_WAITING ("update available — reload") instead of taking over
 *   by itself: a new version must not replace the code under a running generation.
 */
import {
  addPlugins,
  cleanupOutdatedCaches,
  createHandlerBoundToURL,
  type PrecacheEntry,
  precacheAndRoute,
} from 'workbox-precaching';
import { NavigationRoute, registerRoute } from 'workbox-routing';

declare const self: ServiceWorkerGlobalScope & { __WB_MANIFEST: (string | PrecacheEntry)[] };

const ISOLATION_HEADERS: Readonly<Record<string, string>> = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
  // Same-origin resources are always allowed under COEP; saying so costs nothing.
  'Cross-Origin-Resource-Policy': 'same-origin',
};

/** A copy of a same-origin response with the isolation headers set; anything else unchanged. */
function withIsolationHeaders(response: Response): Response {
  // Opaque and error responses can't be rebuilt; redirects must stay redirects.
  if (response.type !== 'basic' && response.type !== 'default') return response;
  if (response.status === 0 || response.redirected) return response;
  const headers = new Headers(response.headers);
  for (const [name, value] of Object.entries(ISOLATION_HEADERS)) headers.set(name, value);
  return new Response(response.body, { status: response.status, statusText: response.statusText, headers });
}

addPlugins([{ handlerWillRespond: async ({ response }) => withIsolationHeaders(response) }]);
precacheAndRoute(self.__WB_MANIFEST);
cleanupOutdatedCaches();
// Any navigation inside the scope (the app has one page) gets the cached shell, so a deep link
// or a reload while offline still opens the app. Relative URL: the app may live under a sub-path.
registerRoute(new NavigationRoute(createHandlerBoundToURL('index.html')));

self.addEventListener('message', (event) => {
  if ((event.data as { type?: unknown } | null)?.type === 'SKIP_WAITING') void self.skipWaiting();
});
