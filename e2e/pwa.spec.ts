/**
 * The installable, offline app under a sub-path, served by a plain static server that sends no
 * COOP/COEP headers (like many static hosts): the service worker must precache the shell and the
 * ORT runtime, add the isolation headers itself, and keep the app working offline.
 */
import path from 'node:path';
import { expect, test } from '@playwright/test';
import { type StaticHost, serveStatic } from './static-host';

const DIST = path.resolve(import.meta.dirname, '../dist');
const SUB_PATH = '/apps/kandinsky/';
/** The browser globals the tests read inside page.evaluate (e2e files compile with Node types only). */
interface PageGlobals {
  readonly crossOriginIsolated: boolean;
  readonly navigator: { serviceWorker: { ready: Promise<{ scope: string }> } };
  readonly caches: {
    keys(): Promise<string[]>;
    open(name: string): Promise<{ keys(): Promise<readonly { url: string }[]> }>;
  };
}
const isolated = () => (globalThis as unknown as PageGlobals).crossOriginIsolated;

let host: StaticHost;
let origin = '';

test.beforeAll(async () => {
  host = await serveStatic(DIST, { subPath: SUB_PATH });
  origin = host.origin;
});

test.afterAll(async () => {
  await host.close();
});

test('under a sub-path without isolation headers: installable, isolated by the service worker, offline', async ({
  page,
  context,
}, testInfo) => {
  test.setTimeout(180_000);
  const appUrl = `${origin}${SUB_PATH}`;
  await page.goto(appUrl);
  await expect(page.getByRole('heading', { name: 'Create' })).toBeVisible();
  // The host sent no isolation headers, so the first visit is not cross-origin isolated.
  expect(await page.evaluate(isolated)).toBe(false);

  // Installable: a manifest with 192 and 512 px icons (one maskable), scoped to the sub-path.
  const manifestHref = await page.locator('link[rel="manifest"]').getAttribute('href');
  const manifest = (await (await page.request.get(new URL(manifestHref ?? '', appUrl).href)).json()) as {
    start_url: string;
    scope: string;
    display: string;
    icons: { src: string; sizes: string; purpose: string }[];
  };
  expect(manifest.display).toBe('standalone');
  expect(manifest.icons.map((i) => `${i.sizes} ${i.purpose}`)).toEqual(
    expect.arrayContaining(['192x192 any', '512x512 any', '512x512 maskable']),
  );
  for (const icon of manifest.icons) {
    const response = await page.request.get(new URL(icon.src, new URL(manifestHref ?? '', appUrl)).href);
    expect(response.status(), icon.src).toBe(200);
  }

  // The service worker installs with the sub-path as its scope and precaches the ORT runtime.
  const scope = await page.evaluate(
    async () => (await (globalThis as unknown as PageGlobals).navigator.serviceWorker.ready).scope,
  );
  expect(scope).toBe(appUrl);
  const cached = await page.evaluate(async () => {
    const { caches } = globalThis as unknown as PageGlobals;
    const urls: string[] = [];
    for (const name of await caches.keys()) {
      for (const request of await (await caches.open(name)).keys()) urls.push(new URL(request.url).pathname);
    }
    return urls;
  });
  expect(cached).toEqual(
    expect.arrayContaining([
      `${SUB_PATH}index.html`,
      `${SUB_PATH}ort/ort-wasm-simd-threaded.jsep.wasm`,
      `${SUB_PATH}ort/ort-wasm-simd-threaded.jsep.mjs`,
    ]),
  );
  expect(cached.some((url) => /\.(onnx|bin)$/.test(url) && !url.includes('matmul_sigmoid'))).toBe(false);

  // Second visit: served by the service worker, which adds COOP/COEP → cross-origin isolated.
  const second = await page.reload();
  expect(second?.fromServiceWorker()).toBe(true);
  expect(second?.headers()['cross-origin-embedder-policy']).toBe('require-corp');
  expect(await page.evaluate(isolated)).toBe(true);

  // Offline: the app still opens, and its WebGPU self-test (whose graph and ORT runtime are
  // precached) still runs under the CSP.
  await context.setOffline(true);
  await page.reload();
  await expect(page.getByRole('heading', { name: 'Create' })).toBeVisible();
  await expect(page.getByTestId('self-test')).toHaveAttribute('data-state', 'passed');
  await page.screenshot({ path: testInfo.outputPath('offline.png'), fullPage: true });
  await context.setOffline(false);
});

test('the built page carries a CSP that allows only its own origin', async ({ page }) => {
  const violations: string[] = [];
  await page.exposeFunction('reportViolation', (text: string) => violations.push(text));
  await page.addInitScript({
    content: `document.addEventListener('securitypolicyviolation', (event) =>
      window.reportViolation(event.violatedDirective + ' ' + event.blockedURI));`,
  });
  await page.goto('./');
  const csp = await page.locator('meta[http-equiv="Content-Security-Policy"]').getAttribute('content');
  expect(csp).toContain("default-src 'self'");
  expect(csp).toContain("script-src 'self' 'wasm-unsafe-eval'");
  expect(csp).not.toContain('unsafe-inline');
  // The WebGPU self-test (module worker, ORT wasm) passes under it, with no violations.
  await expect(page.getByTestId('self-test')).toHaveAttribute('data-state', /passed|failed/);
  expect(await page.getByTestId('self-test').getAttribute('data-state')).toBe('passed');
  // And an inline script, which the policy must block, is reported.
  await page.evaluate(`(() => {
    const script = document.createElement('script');
    script.textContent = 'window.inlineRan = true';
    document.head.append(script);
  })()`);
  await expect.poll(() => violations.some((v) => v.startsWith('script-src'))).toBe(true);
  expect(await page.evaluate('window.inlineRan')).toBeUndefined();
  expect(violations.filter((v) => !v.startsWith('script-src'))).toEqual([]);

  // An injected remote script and a beacon to another origin are blocked: nothing reaches them.
  const offOrigin: string[] = [];
  page.on('requestfinished', (request) => {
    if (new URL(request.url()).hostname.endsWith('example.com')) offOrigin.push(request.url());
  });
  const blocked: string[] = [];
  page.on('requestfailed', (request) => blocked.push(`${request.url()} ${request.failure()?.errorText}`));
  await page.evaluate(`(() => {
    const script = document.createElement('script');
    script.src = 'https://cdn.example.com/tracker.js';
    document.head.append(script);
  })()`);
  await expect
    .poll(() => violations.includes('script-src-elem https://cdn.example.com/tracker.js'))
    .toBe(true);
  const beacon = await page.evaluate(
    `fetch('https://collect.example.com/p', { method: 'POST', body: 'prompt' }).then(() => 'sent', (e) => e.name)`,
  );
  expect(beacon).toBe('TypeError');
  await expect.poll(() => violations.includes('connect-src https://collect.example.com/p')).toBe(true);
  expect(offOrigin).toEqual([]);
  expect(blocked).toEqual(['https://cdn.example.com/tracker.js csp']);
});
