/**
 * The model store in the browser: a download interrupted by a reload resumes where it stopped
 * (files already verified are never fetched again), and the resumed model generates.
 */
import { readFileSync } from 'node:fs';
import { expect, test } from '@playwright/test';
import { closeModelManager, openModelManager } from './app-page';

const manifest = JSON.parse(
  readFileSync(new URL('../models/fixtures/tiny/manifest.json', import.meta.url), 'utf8'),
) as { components: Record<string, { optional: boolean; files: { path: string; bytes: number }[] }> };
const requiredFiles = Object.values(manifest.components)
  .filter((c) => !c.optional)
  .flatMap((c) => c.files);
const requiredBytes = requiredFiles.reduce((n, f) => n + f.bytes, 0);
/** A file the test holds back so the download is still running when the page reloads. */
const STALLED = 'movq_decoder.onnx.data-02';

test('a download interrupted by a reload resumes without refetching verified files, then generates', async ({
  page,
}) => {
  test.setTimeout(6 * 60_000);
  const served = new Map<string, number>();
  let stall = true;
  let releaseStalled: () => void = () => {};
  const stalled = new Promise<void>((resolve) => {
    releaseStalled = resolve;
  });
  await page.route('**/models/tiny/**', async (route) => {
    const path = new URL(route.request().url()).pathname.split('/models/tiny/')[1] ?? '';
    if (path === STALLED && stall) {
      await stalled;
      await route.abort().catch(() => {});
      return;
    }
    const response = await route.fetch();
    const body = await response.body();
    served.set(path, (served.get(path) ?? 0) + body.length);
    await route.fulfill({ response, body });
  });

  await page.goto('./');
  const manager = await openModelManager(page);
  const download = manager.getByTestId('download-models');
  await expect(download).toHaveText(/Download/);
  await download.click();
  // Wait until every other required file has been served, so the stalled one is all that is left.
  await expect
    .poll(() => requiredFiles.filter((f) => f.path !== STALLED && served.has(f.path)).length, {
      timeout: 120_000,
    })
    .toBe(requiredFiles.length - 1);
  // Give the store a moment to verify and commit what it received, then reload mid-download.
  await expect(manager.getByTestId('download-progress')).toBeVisible();
  await page.waitForTimeout(1000);
  served.clear();
  stall = false;
  await page.reload();
  releaseStalled();

  // After the reload the set is partly stored; resuming fetches only what was missing.
  await expect(manager.locator('tr[data-component="movq_decoder"]')).not.toHaveAttribute(
    'data-state',
    'complete',
  );
  const remaining = (await openModelManager(page)).getByTestId('download-models');
  await expect(remaining).toHaveText(/Download/);
  await remaining.click();
  await expect(remaining).toHaveText('Downloaded', { timeout: 120_000 });
  await closeModelManager(page);
  const refetched = [...served.entries()].filter(([path]) => path !== 'manifest.json');
  const refetchedBytes = refetched.reduce((n, [, bytes]) => n + bytes, 0);
  expect(refetched.map(([path]) => path)).toContain(STALLED);
  expect(refetchedBytes).toBeLessThan(requiredBytes / 2);
  console.log(`resumed: ${refetched.length} files, ${refetchedBytes} of ${requiredBytes} bytes refetched`);

  // And the resumed model generates.
  await page.getByLabel('Prompt', { exact: true }).fill('resumed');
  await page.getByRole('radio', { name: /Custom/ }).check();
  await page.getByLabel('Width (px)').fill('64');
  await page.getByLabel('Height (px)').fill('64');
  await page.getByRole('spinbutton', { name: 'Steps', exact: true }).fill('1');
  await page.locator('details.advanced summary').click();
  await page.getByRole('spinbutton', { name: 'Prior steps', exact: true }).fill('2');
  await page.getByTestId('generate').click();
  await expect(page.getByTestId('result-seed')).toBeVisible({ timeout: 180_000 });
});
