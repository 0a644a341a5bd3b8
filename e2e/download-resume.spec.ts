/**
 * The model store in the browser, on a set hosted as real hosts serve one: a download interrupted
 * by a reload resumes where it stopped (files already verified are never fetched again, the cut
 * file from its last stored chunk), and the resumed set generates diffusers' picture.
 *
 * The app is built as a deployer builds it (VITE_MODEL_ORIGINS lists the set's origins,
 * VITE_HUB_IDS with VITE_HF_ENDPOINT pointing at the second origin) and served from its own origin;
 * the set is served by a second origin under a sub-path whose file URLs answer 302 to a third
 * origin that serves the bytes with Range (test-support/hosted-set.node.ts). The app refuses an
 * origin the build does not list, names the missing CORS header of a host without it, downloads
 * across the redirect, resumes across it after a reload, opens the same set by repo id and
 * generates the recorded case's picture.
 */
import { execFile } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import path from 'node:path';
import { promisify } from 'node:util';
import { expect, test } from '@playwright/test';
import { type HostedSet, startHostedSet } from '../test-support/hosted-set.node';
import { reference, referenceTensor } from '../test-support/tiny-fixture.node';
import { nodeZlib } from '../workers/engine/node-zlib.node';
import { decodePng } from '../workers/engine/png';
import { closeModelManager, openModelManager, setSmallRun } from './app-page';
import { type StaticHost, serveStatic } from './static-host';

const ROOT = path.resolve(import.meta.dirname, '..');
const DIST = path.join(ROOT, 'dist-e2e/hosted');
/** The app's origin, the set's host and its content host: three origins on this brief's ports. */
const APP_PORT = 4680;
const FRONT_PORT = 4681;
const CONTENT_PORT = 4682;
const APP = `http://localhost:${APP_PORT}/`;
const FRONT = `http://localhost:${FRONT_PORT}`;
const CONTENT = `http://localhost:${CONTENT_PORT}`;
/** An origin the build does not list, answering anything: it must never be asked. */
const UNLISTED_PORT = 4683;
const UNLISTED = `http://localhost:${UNLISTED_PORT}`;
const SET_PATH = '/static/kandinsky/tiny/';
const HUB_PATH = '/hub/me/tiny/resolve/v1/';
/** The store's chunk in this build: the tiny set's ~1 MB files span several, so a resume starts inside one. */
const CHUNK = 64 * 1024;
const STALLED = 'unet.onnx.data-00';
const STALL_AT = 300_000;
/** The case whose picture the run must give: 64×64, 2 prior and 2 decoder steps, no guidance. */
const CASE = 'txt2img_64_noguidance';

const manifest = JSON.parse(readFileSync(path.join(ROOT, 'models/fixtures/tiny/manifest.json'), 'utf8')) as {
  components: Record<string, { optional: boolean; files: { path: string; bytes: number }[] }>;
};
const requiredFiles = Object.values(manifest.components)
  .filter((c) => !c.optional)
  .flatMap((c) => c.files);
const requiredBytes = requiredFiles.reduce((n, f) => n + f.bytes, 0);

let app: StaticHost | undefined;
let unlisted: Server;
let unlistedRequests = 0;
let hosted: HostedSet;

test.beforeAll(async () => {
  test.setTimeout(180_000);
  // The deployer's build: the set's two origins listed, repo ids from the second origin's /hub.
  await promisify(execFile)('npx', ['vite', 'build', '--outDir', DIST, '--logLevel', 'warn'], {
    cwd: ROOT,
    env: {
      ...process.env,
      VITE_MODEL_ORIGINS: `${FRONT} ${CONTENT}`,
      VITE_HUB_IDS: 'true',
      VITE_HF_ENDPOINT: `${FRONT}/hub`,
      VITE_STORE_CHUNK_BYTES: String(CHUNK),
    },
  });
  // A static host: no isolation headers, so the first visit is not cross-origin isolated (where a
  // CORS failure can be told from no network); from the reload on, the service worker isolates it.
  app = await serveStatic(DIST, { port: APP_PORT });
  unlisted = createServer((_request, response) => {
    unlistedRequests++;
    response.writeHead(200, { 'Access-Control-Allow-Origin': '*' }).end('{}');
  });
  await new Promise<void>((resolve) => unlisted.listen(UNLISTED_PORT, '127.0.0.1', resolve));
  hosted = await startHostedSet({
    subPaths: [SET_PATH, HUB_PATH],
    ports: { front: FRONT_PORT, content: CONTENT_PORT },
    host: 'localhost',
  });
});

test.afterAll(async () => {
  await hosted?.close();
  await app?.close();
  await new Promise((resolve) => unlisted?.close(resolve));
});

test('a set hosted across three origins: opened by URL and repo id, a download cut by a reload resumes across the redirect, then generates diffusers’ picture', async ({
  page,
}) => {
  test.setTimeout(6 * 60_000);
  await page.goto(APP);
  // The CSP allows the page's origin and the two listed ones, and nothing else.
  const csp = await page.locator('meta[http-equiv="Content-Security-Policy"]').getAttribute('content');
  expect(csp).toContain(`connect-src 'self' ${FRONT} ${CONTENT};`);
  // And enforces it: the page reaches a listed origin, and an unlisted one is blocked before any request.
  const reach = (url: string) =>
    page.evaluate(
      (u) =>
        fetch(u, { method: 'HEAD' }).then(
          (r) => r.status,
          (e: Error) => e.name,
        ),
      url,
    );
  expect(await reach(`${FRONT}${SET_PATH}manifest.json`)).toBe(200);
  expect(await reach(`${UNLISTED}/sets/k22/manifest.json`)).toBe('TypeError');
  expect(hosted.frontRequests.map((r) => r.path)).toEqual(['manifest.json']);
  expect(unlistedRequests).toBe(0);

  const manager = await openModelManager(page);
  const sourceBox = manager.getByLabel(/Model set \(manifest URL or Hugging Face repo id\)/);
  const openSource = async (text: string) => {
    await sourceBox.fill(text);
    await manager.getByRole('button', { name: 'Open', exact: true }).click();
  };
  const error = manager.getByTestId('model-error');

  // An origin the build does not list is refused before any request, naming the build variable.
  await openSource(`${UNLISTED}/sets/k22/`);
  await expect(error).toHaveAttribute('data-code', 'SOURCE_FORBIDDEN');
  await expect(error).toContainText('VITE_MODEL_ORIGINS');
  expect(unlistedRequests).toBe(0);

  // By URL: the set's folder on the second origin.
  await openSource(`${FRONT}${SET_PATH}`);
  await expect(error).toBeHidden();
  await expect(manager.getByTestId('model-set')).toBeVisible();
  const download = manager.getByTestId('download-models');
  await expect(download).toHaveText(/Download/);

  // A content host without CORS: a coded error naming the header, not "offline".
  hosted.content.cors = 'none';
  await download.click();
  await expect(error).toHaveAttribute('data-code', 'SOURCE_NO_CORS', { timeout: 60_000 });
  await expect(error).toContainText('Access-Control-Allow-Origin');
  hosted.content.cors = 'full';

  // Downloading across the redirect; one file stops after 300 kB, and the page reloads then.
  let release: () => void = () => {};
  hosted.content.stall.set(STALLED, { afterBytes: STALL_AT, release: new Promise((r) => (release = r)) });
  await download.click();
  await expect
    .poll(
      () =>
        requiredFiles.every((f) =>
          f.path === STALLED
            ? (hosted.contentBytes.get(f.path) ?? 0) >= STALL_AT
            : (hosted.contentBytes.get(f.path) ?? 0) >= f.bytes,
        ),
      { timeout: 120_000 },
    )
    .toBe(true);
  // Time to verify and store what arrived, then a reload mid-download.
  await page.waitForTimeout(1500);
  const servedBefore = new Map(hosted.contentBytes);
  const requestsBefore = hosted.contentRequests.length;
  await page.reload();
  release();

  // The service worker now isolates the page (COEP): the set's CORS downloads still work.
  expect(
    await page.evaluate(() => (globalThis as { crossOriginIsolated?: boolean }).crossOriginIsolated),
  ).toBe(true);
  // The reload reopens the saved source; the download resumes from the stored chunks.
  await openModelManager(page);
  await expect(manager.locator('tr[data-component="unet"]')).not.toHaveAttribute('data-state', 'complete');
  await expect(download).toHaveText(/Download/);
  await download.click();
  await expect(download).toHaveText('Downloaded', { timeout: 120_000 });
  const resumed = hosted.contentRequests.slice(requestsBefore);
  // The cut file was asked for again at the original URL, redirected again, and resumed from inside
  // it: from the last chunk stored before the reload (262144, all four whole chunks, unless the
  // reload beat the store to the last of them).
  const again = resumed.filter((r) => r.path === STALLED).map((r) => r.rangeStart);
  expect(again).toHaveLength(1);
  const resumeAt = again[0] ?? 0;
  expect(resumeAt).toBeGreaterThan(0);
  expect(resumeAt % CHUNK).toBe(0);
  expect(resumeAt).toBeLessThanOrEqual(STALL_AT);
  expect(hosted.frontRequests.filter((r) => r.path === STALLED).at(-1)?.rangeStart).toBe(resumeAt);
  const refetched = [...hosted.contentBytes].reduce(
    (n, [file, bytes]) => n + bytes - (servedBefore.get(file) ?? 0),
    0,
  );
  expect(refetched).toBeLessThan(requiredBytes / 2);
  console.log(
    `resumed ${STALLED} from byte ${resumeAt}; ${refetched} of ${requiredBytes} bytes fetched after the reload`,
  );

  // By repo id: the same set through the Hub endpoint; its verified files are already stored.
  const hubRequests = hosted.frontRequests.length;
  await openSource('me/tiny@v1');
  await expect
    .poll(() => hosted.frontRequests.slice(hubRequests))
    .toEqual([{ subPath: HUB_PATH, path: 'manifest.json', rangeStart: null }]);
  await expect(manager.getByRole('button', { name: 'Open', exact: true })).toBeEnabled();
  await expect(error).toBeHidden();
  await expect(download).toHaveText('Downloaded');

  // It generates the recorded case's picture (diffusers, same seed), within the browser tolerance
  // of e2e/parity.spec.ts (1/255) plus the PNG's rounding to 8 bits (half a level).
  const testCase = reference.cases.find((c) => c.name === CASE);
  if (!testCase) throw new Error(`No reference case ${CASE}`);
  await closeModelManager(page);
  await setSmallRun(page, {
    prompt: testCase.params.prompt,
    seed: testCase.params.seed,
    steps: testCase.params.num_inference_steps,
  });
  await page.getByRole('spinbutton', { name: 'Guidance', exact: true }).fill('1');
  await page.getByRole('spinbutton', { name: 'Prior guidance', exact: true }).fill('1');
  const generating = Date.now();
  await page.getByTestId('generate').click();
  await expect(page.getByTestId('result-seed')).toHaveText(new RegExp(`Seed ${testCase.params.seed}\\b`), {
    timeout: 180_000,
  });
  console.log(`generation: ${((Date.now() - generating) / 1000).toFixed(1)} s`);
  const [png] = await Promise.all([
    page.waitForEvent('download'),
    page.getByTestId('results').getByRole('button', { name: 'Download PNG' }).click(),
  ]);
  const image = await decodePng(new Uint8Array(readFileSync(await png.path())), nodeZlib, 1e6);
  const expected = referenceTensor(testCase, 'output_image');
  expect(expected?.shape).toEqual([1, 64, 64, 3]);
  expect([image.width, image.height]).toEqual([64, 64]);
  let worst = 0;
  for (let pixel = 0; pixel < 64 * 64; pixel++) {
    for (let channel = 0; channel < 3; channel++) {
      const want = Number(expected?.data[pixel * 3 + channel]) * 255;
      worst = Math.max(worst, Math.abs((image.data[pixel * 4 + channel] ?? 0) - want));
    }
  }
  console.log(`${CASE} from the hosted set: largest difference from diffusers ${worst.toFixed(2)} of 255`);
  expect(worst).toBeLessThanOrEqual(1.5);
});
