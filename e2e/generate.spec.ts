/**
 * A new user's first session, end to end in Chromium with WebGPU (SwiftShader) on the tiny demo set:
 * download the model, generate, see the seed, cancel a run, reload (gallery and model kept), go
 * offline and generate again, download a PNG whose text chunks hold the settings.
 */
import { readFileSync } from 'node:fs';
import { expect, test } from '@playwright/test';
import { readPngText } from '../workers/engine/png';
import { closeModelManager, openModelManager, setSmallRun } from './app-page';

test.describe.configure({ mode: 'serial' });

test('first session: download, generate, cancel, reload, offline, PNG with settings', async ({
  page,
  context,
}, testInfo) => {
  test.setTimeout(10 * 60_000);
  const shot = (name: string) =>
    page.screenshot({ path: testInfo.outputPath(`${name}.png`), fullPage: true });
  await page.goto('./');

  // The first run says what a download costs before anything is fetched; the model manager (a
  // dialog from the status line) shows the demo set and its components.
  await expect(page.getByTestId('setup-download')).toHaveText(/Download \d+(\.\d)? MB/);
  const manager = await openModelManager(page);
  await expect(manager.getByTestId('demo-badge')).toBeVisible();
  const download = manager.getByTestId('download-models');
  await expect(download).toHaveText(/Download \d+(\.\d)? MB/);
  await shot('1-model-manager');
  await download.click();
  await expect(download).toHaveText('Downloaded', { timeout: 120_000 });
  await expect(manager.locator('tr[data-component="unet"]')).toHaveAttribute('data-state', 'complete');
  await closeModelManager(page);
  await expect(page.getByTestId('first-run-setup')).toHaveCount(0);
  // Before any run on this software adapter (SwiftShader) the defaults are the set's smallest size
  // and few steps (device-defaults.ts); no estimate is shown until a run has measured the device.
  await expect(page.getByLabel('Width (px)')).toHaveValue('64');
  await expect(page.getByRole('spinbutton', { name: 'Steps', exact: true })).toHaveValue('6');
  await expect(page.getByTestId('job-estimate')).toHaveCount(0);

  // Generate: preview and progress while it runs, then the picture with its seed.
  await setSmallRun(page, { steps: 2, seed: 4242, prompt: 'a red lighthouse on a cliff' });
  await page.getByTestId('generate').click();
  await expect(page.getByTestId('progress')).toBeVisible();
  await expect(page.getByTestId('result-seed')).toHaveText(/Seed 4242/, { timeout: 180_000 });
  const result = page.getByTestId('results').locator('img').first();
  await expect(result).toHaveJSProperty('naturalWidth', 64);
  await shot('2-generated');

  // The gallery saved it.
  await expect(page.getByTestId('gallery-item')).toHaveCount(1);
  // That run measured this device: the next job's cost shows beside Generate.
  await expect(page.getByTestId('job-estimate')).toHaveText(/^(about .+|less than a second) on this device$/);

  // Download the PNG: its text chunks hold the settings.
  const [png] = await Promise.all([
    page.waitForEvent('download'),
    page.getByTestId('results').getByRole('button', { name: 'Download PNG' }).click(),
  ]);
  const text = readPngText(new Uint8Array(readFileSync(await png.path())));
  const settings = JSON.parse(text['kandinsky-web'] ?? '{}') as Record<string, unknown>;
  expect(settings).toMatchObject({
    prompt: 'a red lighthouse on a cliff',
    seed: 4242,
    width: 64,
    height: 64,
    steps: 2,
  });

  // A longer run, cancelled after its first denoising step.
  await page.getByRole('spinbutton', { name: 'Steps', exact: true }).fill('40');
  await page.getByTestId('generate').click();
  await expect(page.getByTestId('progress-label')).toHaveText(/Denoising|step/i, { timeout: 120_000 });
  await page.getByTestId('progress').getByRole('button', { name: 'Cancel' }).click();
  await expect(page.getByTestId('cancelled')).toBeVisible({ timeout: 60_000 });
  await shot('3-cancelled');
  await expect(page.getByTestId('gallery-item')).toHaveCount(1);

  // Reload: the gallery and the downloaded model are still there.
  await page.reload();
  await expect(page.getByTestId('gallery-item')).toHaveCount(1);
  await expect(manager.getByTestId('download-models')).toHaveText('Downloaded');

  // Offline (after the service worker took over): the app loads and generates from the stored model.
  await context.setOffline(true);
  await page.reload();
  await expect(manager.getByTestId('download-models')).toHaveText('Downloaded');
  await expect(page.getByTestId('connection-status')).toHaveText('Offline — using the stored model set.');
  await setSmallRun(page, { steps: 2, seed: 7, prompt: 'offline fox' });
  await page.getByTestId('generate').click();
  await expect(page.getByTestId('result-seed')).toHaveText(/Seed 7/, { timeout: 180_000 });
  await expect(page.getByTestId('gallery-item')).toHaveCount(2);
  await shot('4-offline');
  await context.setOffline(false);
});
