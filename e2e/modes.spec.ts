/**
 * Every picture-input mode produces an image of the requested size in the browser (tiny demo set,
 * SwiftShader WebGPU): image → image, inpainting with a painted mask, and depth from a photo with
 * the estimated depth map shown.
 */
import { expect, type Page, test } from '@playwright/test';
import { nodeZlib } from '../workers/engine/node-zlib.node';
import { encodePng } from '../workers/engine/png';
import { closeModelManager, openModelManager } from './app-page';

async function photoPng(width: number, height: number): Promise<Buffer> {
  const data = new Uint8Array(width * height * 4);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      // A bright disc on a gradient: something with depth-like structure.
      const inside = (x - width / 2) ** 2 + (y - height / 2) ** 2 < (width / 4) ** 2;
      data.set(
        inside ? [240, 220, 200, 255] : [(x * 255) / width, (y * 255) / height, 90, 255],
        (y * width + x) * 4,
      );
    }
  }
  return Buffer.from(await encodePng({ width, height, data }, {}, nodeZlib));
}

async function smallRun(page: Page, prompt: string) {
  await page.getByLabel('Prompt', { exact: true }).fill(prompt);
  await page.getByRole('radio', { name: /Custom/ }).check();
  await page.getByLabel('Width (px)').fill('64');
  await page.getByLabel('Height (px)').fill('64');
  await page.getByRole('spinbutton', { name: 'Steps', exact: true }).fill('4');
  const advanced = page.locator('details.advanced');
  if (!(await advanced.getAttribute('open'))) await advanced.locator('summary').click();
  await page.getByRole('spinbutton', { name: 'Prior steps', exact: true }).fill('2');
}

async function expectImage(page: Page, width: number, height: number) {
  await page.getByTestId('generate').click();
  const image = page.getByTestId('results').locator('img').first();
  await expect(image).toBeVisible({ timeout: 180_000 });
  await expect(image).toHaveJSProperty('naturalWidth', width);
  await expect(image).toHaveJSProperty('naturalHeight', height);
}

test('image → image, inpaint and depth from a photo each make an image of the requested size', async ({
  page,
}, testInfo) => {
  test.setTimeout(10 * 60_000);
  await page.goto('./');
  const manager = await openModelManager(page);
  for (const feature of [/Image → image/, /Inpainting/, /Depth from a photo/]) {
    await manager.getByRole('checkbox', { name: feature }).check();
  }
  const download = manager.getByTestId('download-models');
  await download.click();
  await expect(download).toHaveText('Downloaded', { timeout: 120_000 });
  await closeModelManager(page);
  const photo = { name: 'photo.png', mimeType: 'image/png', buffer: await photoPng(96, 96) };

  await page.getByRole('tab', { name: 'Image → Image' }).click();
  await page.getByLabel('Choose picture…').setInputFiles(photo);
  await smallRun(page, 'an oil painting');
  await page.getByRole('slider', { name: /Strength/ }).fill('0.5');
  await expectImage(page, 64, 64);
  await page.screenshot({ path: testInfo.outputPath('img2img.png'), fullPage: true });

  await page.getByRole('tab', { name: 'Inpaint' }).click();
  const mask = page.getByTestId('mask-canvas');
  await mask.scrollIntoViewIfNeeded();
  const box = await mask.boundingBox();
  if (!box) throw new Error('mask canvas not laid out');
  await page.mouse.move(box.x + box.width * 0.3, box.y + box.height * 0.3);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width * 0.7, box.y + box.height * 0.6, { steps: 8 });
  await page.mouse.up();
  await expectImage(page, 64, 64);
  await page.screenshot({ path: testInfo.outputPath('inpaint.png'), fullPage: true });

  await page.getByRole('tab', { name: 'Depth' }).click();
  await page.getByRole('radio', { name: /A photo/ }).check();
  await expectImage(page, 64, 64);
  const depth = page.getByTestId('depth-preview');
  await expect(depth).toBeVisible();
  await expect(depth).toHaveAttribute('data-width', '64');
  await page.screenshot({ path: testInfo.outputPath('depth.png'), fullPage: true });
});
