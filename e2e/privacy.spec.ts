/**
 * Privacy: prompts and pictures never leave the device. With the demo set stored, every request
 * from page load through a generation is recorded (the service worker's included): none goes to
 * another origin, and none at all is made while the picture is generated. The built files name no
 * third-party origin they could load from. (The CSP blocking injected code is in pwa.spec.ts.)
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { expect, test } from '@playwright/test';
import { closeModelManager, openModelManager, setSmallRun } from './app-page';

const DIST = path.resolve(import.meta.dirname, '../dist');

test('with the model stored, nothing leaves the origin from page load through a generation, and nothing is requested while generating', async ({
  page,
  context,
  baseURL,
}) => {
  test.setTimeout(6 * 60_000);
  const origin = new URL(baseURL ?? '').origin;
  // Setup (not recorded): the first visit installs the service worker and stores the demo set.
  await page.goto('./');
  const download = (await openModelManager(page)).getByTestId('download-models');
  await download.click();
  await expect(download).toHaveText('Downloaded', { timeout: 120_000 });
  await closeModelManager(page);

  const requests: { url: string; at: number; serviceWorker: boolean }[] = [];
  context.on('request', (request) =>
    requests.push({ url: request.url(), at: Date.now(), serviceWorker: request.serviceWorker() !== null }),
  );
  await page.reload();
  await expect(page.getByTestId('self-test')).toHaveAttribute('data-state', 'passed', { timeout: 120_000 });
  await expect(download).toHaveText('Downloaded');
  await setSmallRun(page, { prompt: 'a secret prompt that stays here', seed: 31 });
  const loaded = requests.length;
  const generationStart = Date.now();
  await page.getByTestId('generate').click();
  await expect(page.getByTestId('result-seed')).toHaveText(/Seed 31\b/, { timeout: 180_000 });
  const generationEnd = Date.now();
  await expect(page.getByTestId('gallery-item')).toHaveCount(1);

  // The page load did make requests (the check below is not vacuous), all to our own origin.
  expect(loaded).toBeGreaterThan(0);
  expect(requests.filter((r) => new URL(r.url).origin !== origin).map((r) => r.url)).toEqual([]);
  // From the click until the picture was shown: not one network request (in-memory blob: and
  // data: URLs of the result picture are not requests to anyone).
  const duringGeneration = requests.filter(
    (r) => r.at >= generationStart && r.at <= generationEnd && !/^(blob|data):/.test(r.url),
  );
  expect(duringGeneration.map((r) => r.url)).toEqual([]);
});

/**
 * Every host named in an http(s)/ws(s) URL in the built files, and why it is there. None of these
 * is loaded: they are XML namespaces, licence and documentation links in libraries' messages.
 */
const KNOWN_NON_LOADING_HOSTS: Readonly<Record<string, string>> = {
  'www.w3.org': 'SVG/XHTML/MathML namespace identifiers (React DOM)',
  'www.apache.org': 'licence text in onnxruntime-web',
  'react.dev': 'link in React’s minified error messages',
  'json-schema.org': '$schema identifiers in zod’s JSON-schema output',
  'web.dev': 'link in an onnxruntime-web console warning about cross-origin isolation',
  'rolldown.rs': 'link in the bundler’s error for a missing require()',
  'bit.ly': 'link in a Workbox console warning (service worker)',
  'models.example.org': 'an example origin (a reserved domain) in the message for a bad VITE_MODEL_ORIGINS',
  host: 'the source box’s placeholder text (https://host/set/manifest.json)',
  'huggingface.co':
    'the default Hub endpoint for repo ids (models/model-origins.ts): a build accepts repo ids and lists the Hub in its CSP only with VITE_HUB_IDS; the default build refuses them and its CSP allows no other origin (pwa.spec.ts)',
};

function builtTextFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const file = path.join(dir, name);
    if (statSync(file).isDirectory()) return builtTextFiles(file);
    return /\.(html|js|mjs|css|json|webmanifest|svg)$/.test(name) ? [file] : [];
  });
}

test('the built app names no third-party origin it could load from', () => {
  const files = builtTextFiles(DIST);
  expect(files.length).toBeGreaterThan(10);
  const hosts = new Map<string, Set<string>>();
  for (const file of files) {
    for (const match of readFileSync(file, 'utf8').matchAll(/\b(?:https?|wss?):\/\/([a-z0-9.-]+)/gi)) {
      const host = (match[1] ?? '').toLowerCase();
      hosts.set(host, (hosts.get(host) ?? new Set()).add(path.relative(DIST, file)));
    }
  }
  const unknown = [...hosts].filter(([host]) => !(host in KNOWN_NON_LOADING_HOSTS));
  expect(unknown.map(([host, where]) => `${host} in ${[...where].join(', ')}`)).toEqual([]);

  // Nothing the browser loads by itself points elsewhere: HTML attributes, CSS url(), the manifest.
  const html = readFileSync(path.join(DIST, 'index.html'), 'utf8');
  expect(html.match(/\b(?:src|href|content)="(?:[a-z]+:)?\/\/[^"]*"/gi) ?? []).toEqual([]);
  for (const css of files.filter((f) => f.endsWith('.css'))) {
    expect(readFileSync(css, 'utf8').match(/url\(\s*['"]?(?:[a-z]+:)?\/\/[^)]*\)/gi) ?? []).toEqual([]);
  }
  const manifest = readFileSync(path.join(DIST, 'manifest.webmanifest'), 'utf8');
  expect(manifest).not.toMatch(/(?:[a-z]+:)?\/\//i);
});
