import { readFileSync } from 'node:fs';
/**
 * The generate screen, picture inputs, mask painting and gallery, driven like a person would.
 * Generation itself needs a model set; these tests cover what works without one (layout,
 * validation, keyboard, picture loading, gallery persistence and PNG import), and save a
 * screenshot of each screen as a test artifact.
 */
import { expect, type Page, test } from '@playwright/test';
import { DEFAULT_SETTINGS, type GenerationSettings } from '../workers/engine/settings';
import { gradientPng, putGalleryPictures } from './pictures';

interface CanvasLike {
  readonly width: number;
  readonly height: number;
  getContext(
    kind: '2d',
  ): { getImageData(x: number, y: number, w: number, h: number): { data: Uint8ClampedArray } } | null;
}

const savedSettings: GenerationSettings = {
  ...DEFAULT_SETTINGS,
  prompt: 'a red fox in deep snow, woodcut',
  negativePrompt: 'blurry',
  seed: 123456789,
  width: 1344,
  height: 768,
  steps: 30,
  scheduler: 'ddim',
};

const tinyManifest = JSON.parse(
  readFileSync(new URL('../models/fixtures/tiny/manifest.json', import.meta.url), 'utf8'),
) as Record<string, unknown>;

async function open(page: Page) {
  // These tests are about the form at Kandinsky 2.2's real sizes (256–2048 px): present the demo
  // set as a real one, so its 64–512 px limits don't apply.
  await page.route('**/models/tiny/manifest.json', (route) =>
    route.fulfill({
      json: { ...tinyManifest, source: 'pretrained', sizeRange: { minSide: 256, maxSide: 2048 } },
    }),
  );
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(error.message));
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(message.text());
  });
  await page.goto('./');
  await expect(page.getByRole('heading', { name: 'Create' })).toBeVisible();
  // Once the adapter and the set are known, the form takes this device's defaults: on this software
  // adapter the set's smallest size and 6 steps (device-defaults.ts). Wait for them, so that what a
  // test does next is not overwritten by them arriving late (a slow machine's race).
  await expect(page.getByRole('spinbutton', { name: 'Steps', exact: true })).toHaveValue('6');
  await expect(page.getByLabel('Width (px)')).toHaveValue('256');
  return errors;
}

test('the generate screen: modes by keyboard, size validation, prompt required, Ctrl+Enter', async ({
  page,
}, testInfo) => {
  const errors = await open(page);
  const tabs = page.getByRole('tablist', { name: 'Mode' });
  await expect(tabs.getByRole('tab')).toHaveText([
    'Text → Image',
    'Image → Image',
    'Inpaint',
    'Depth',
    'Mix',
  ]);
  await expect(page.getByRole('radio', { name: /Custom/ })).toBeChecked();
  await expect(page.getByText('1536×640')).toBeVisible();
  await page.screenshot({ path: testInfo.outputPath('generate-txt2img.png'), fullPage: true });

  // Arrow keys move between modes (one tab stop, WAI-ARIA tabs).
  await tabs.getByRole('tab', { name: 'Text → Image' }).focus();
  await page.keyboard.press('ArrowRight');
  await expect(tabs.getByRole('tab', { name: 'Image → Image' })).toBeFocused();
  await expect(tabs.getByRole('tab', { name: 'Image → Image' })).toHaveAttribute('aria-selected', 'true');
  await expect(page.getByRole('slider', { name: /Strength/ })).toBeVisible();
  await page.keyboard.press('Home');
  await expect(tabs.getByRole('tab', { name: 'Text → Image' })).toHaveAttribute('aria-selected', 'true');

  // Custom size: a side that is not a multiple of 64 rounds up, as in diffusers, and the form says so.
  await page.getByRole('radio', { name: /Custom/ }).check();
  await page.getByLabel('Width (px)').fill('1000');
  await expect(page.getByTestId('size-note')).toHaveText(/the picture will be 1024×\d+/);
  await expect(page.getByTestId('size-error')).toHaveCount(0);
  await page.getByLabel('Width (px)').fill('1280');
  await page.getByLabel('Height (px)').fill('704');
  await expect(page.getByTestId('size-error')).toHaveCount(0);

  // Out-of-range steps: the field names the range.
  await page.getByRole('spinbutton', { name: 'Steps', exact: true }).fill('0');
  await expect(page.getByTestId('error-steps')).toHaveText(/Steps must be a whole number from 1 to 200/);
  await page.getByRole('spinbutton', { name: 'Steps', exact: true }).fill('20');
  await expect(page.getByTestId('error-steps')).toHaveCount(0);

  // Ctrl+Enter with an empty prompt asks for one instead of starting a job.
  await page.getByLabel('Prompt', { exact: true }).focus();
  await page.keyboard.press('Control+Enter');
  await expect(page.getByTestId('error-prompt')).toHaveText(/Write a prompt/);

  // With a prompt, Ctrl+Enter starts a job: it runs, or (no model set yet) fails with an
  // explained error code, never silently.
  await page.getByLabel('Prompt', { exact: true }).fill('a lighthouse at dusk');
  await page.keyboard.press('Control+Enter');
  await expect(page.getByTestId('progress').or(page.getByTestId('error-notice'))).toBeVisible();
  const notice = page.getByTestId('error-notice');
  if (await notice.isVisible()) {
    await expect(notice).toHaveAttribute('data-code', /^[A-Z_]+$/);
    await expect(notice.locator('strong')).not.toBeEmpty();
  }
  await page.screenshot({ path: testInfo.outputPath('generate-after-run.png'), fullPage: true });
  expect(errors).toEqual([]);
});

test('image → image and inpaint: pick a picture, see it cropped, paint and clear a mask', async ({
  page,
}, testInfo) => {
  await open(page);
  await page.getByRole('radio', { name: /Square 1:1/ }).check();
  await page.getByRole('tab', { name: 'Image → Image' }).click();
  await page.getByLabel('Choose picture…').setInputFiles({
    name: 'gradient.png',
    mimeType: 'image/png',
    buffer: await gradientPng(400, 300),
  });
  await expect(page.getByTestId('source-info')).toHaveText(
    /gradient\.png: 400×300, used centre-cropped at 1024×1024/,
  );
  await page.getByRole('button', { name: 'Match the picture’s shape' }).click();
  await expect(page.getByTestId('source-info')).toHaveText(/at 1216×896/);
  await page.screenshot({ path: testInfo.outputPath('img2img.png'), fullPage: true });

  // The same picture carries over to inpainting, where the mask is painted over it.
  await page.getByRole('tab', { name: 'Inpaint' }).click();
  const mask = page.getByTestId('mask-canvas');
  await expect(mask).toHaveAttribute('aria-label', /nothing painted yet/);
  await mask.scrollIntoViewIfNeeded();
  const box = await mask.boundingBox();
  if (!box) throw new Error('mask canvas not laid out');
  await page.mouse.move(box.x + box.width * 0.3, box.y + box.height * 0.3);
  await page.mouse.down();
  await page.mouse.move(box.x + box.width * 0.6, box.y + box.height * 0.5, { steps: 8 });
  await page.mouse.up();
  await expect(mask).toHaveAttribute('aria-label', /painted areas/);
  // The overlay really has paint where the stroke went, and none far from it.
  const alphaAt = (fx: number, fy: number) =>
    mask.evaluate(
      (element, [x, y]) =>
        ((canvas: CanvasLike) => {
          const px = Math.floor(canvas.width * x);
          const py = Math.floor(canvas.height * y);
          return canvas.getContext('2d')?.getImageData(px, py, 1, 1).data[3] ?? -1;
        })(element as unknown as CanvasLike),
      [fx, fy] as const,
    );
  expect(await alphaAt(0.45, 0.4)).toBe(255);
  expect(await alphaAt(0.9, 0.9)).toBe(0);
  await page.screenshot({ path: testInfo.outputPath('inpaint.png'), fullPage: true });
  await page.getByRole('button', { name: 'Clear mask' }).click();
  await expect(mask).toHaveAttribute('aria-label', /nothing painted yet/);
  expect(await alphaAt(0.45, 0.4)).toBe(0);
});

test('a picture over 50 megapixels is refused from its header, an unreadable one explained', async ({
  page,
}) => {
  await open(page);
  await page.getByRole('tab', { name: 'Depth' }).click();
  // A PNG that claims 10000 × 6000 pixels: refused before any decoding.
  const huge = await gradientPng(4, 4);
  huge.writeUInt32BE(10_000, 16);
  huge.writeUInt32BE(6_000, 20);
  await page
    .getByLabel('Choose picture…')
    .setInputFiles({ name: 'huge.png', mimeType: 'image/png', buffer: huge });
  await expect(page.getByTestId('image-error')).toHaveText(/60\.0 megapixels\); the limit is 50 megapixels/);
  await page.getByLabel('Choose picture…').setInputFiles({
    name: 'notes.png',
    mimeType: 'image/png',
    buffer: Buffer.from('this is not an image'),
  });
  await expect(page.getByTestId('image-error')).toHaveText(/“notes\.png” could not be read as an image/);
  await expect(page.getByTestId('source-info')).toHaveCount(0);
});

test('mix mode: rows of prompts and pictures with weights shown as shares', async ({ page }, testInfo) => {
  await open(page);
  await page.getByRole('tab', { name: 'Mix' }).click();
  await page.getByLabel('Prompt 1').fill('a castle');
  await page.getByLabel('Prompt 2').fill('a forest');
  await page.getByLabel('Weight of item 2').fill('3');
  await expect(page.locator('.mix-weight small')).toHaveText(['25%', '75%']);
  await page.getByRole('button', { name: 'Add a picture' }).click();
  await expect(page.getByRole('group', { name: 'Picture 3' })).toBeVisible();
  await page.getByRole('button', { name: 'Generate' }).click();
  await expect(page.getByTestId('error-mix')).toHaveText(/Mix item 3: choose a picture/);
  await page.screenshot({ path: testInfo.outputPath('mix.png'), fullPage: true });
});

test('importing a PNG restores its settings; a PNG with garbage settings changes nothing', async ({
  page,
}) => {
  await open(page);
  const prompt = page.getByLabel('Prompt', { exact: true });
  await prompt.fill('my own prompt');
  await page.getByTestId('import-png').setInputFiles({
    name: 'garbage.png',
    mimeType: 'image/png',
    buffer: await gradientPng(8, 8, { 'kandinsky-web': '{"prompt": "half a JSON' }),
  });
  await expect(page.getByTestId('import-message')).toHaveText(
    /garbage\.png: .*not valid JSON.*Nothing was changed/,
  );
  await expect(prompt).toHaveValue('my own prompt');

  await page.getByTestId('import-png').setInputFiles({
    name: 'fox.png',
    mimeType: 'image/png',
    buffer: await gradientPng(8, 8, { 'kandinsky-web': JSON.stringify(savedSettings) }),
  });
  await expect(page.getByTestId('import-message')).toHaveText(/Settings restored from fox\.png/);
  await expect(prompt).toHaveValue(savedSettings.prompt);
  await expect(page.getByLabel('Negative prompt')).toHaveValue('blurry');
  await expect(page.getByRole('radio', { name: /Wide 16:9/ })).toBeChecked();
  await expect(page.getByLabel('Seed', { exact: true })).toHaveValue('123456789');
  await expect(page.getByRole('spinbutton', { name: 'Steps', exact: true })).toHaveValue('30');
  await expect(page.getByLabel('Scheduler')).toHaveValue('ddim');
});

test('the gallery keeps pictures across reloads: open, compare, delete', async ({ page }, testInfo) => {
  await open(page);
  await expect(page.getByTestId('gallery-empty')).toBeVisible();
  // Store two pictures the way the app does, as generation can't run without a model set.
  await putGalleryPictures(
    page,
    [1, 2].map((seed) => ({ ...savedSettings, seed, prompt: `picture ${seed}`, width: 256, height: 256 })),
  );
  await page.reload();
  const items = page.getByTestId('gallery-item');
  await expect(items).toHaveCount(2);
  // Newest first.
  await expect(items.first()).toContainText('picture 2');
  await page.screenshot({ path: testInfo.outputPath('gallery.png'), fullPage: true });

  await items
    .first()
    .getByRole('button', { name: /Open: picture 2/ })
    .click();
  const dialog = page.getByRole('dialog', { name: 'Picture' });
  await expect(dialog).toBeVisible();
  await expect(dialog.getByRole('img')).toBeVisible();
  await page.screenshot({ path: testInfo.outputPath('gallery-open.png') });
  await page.keyboard.press('Escape');
  await expect(dialog).toHaveCount(0);

  await items.nth(0).getByLabel('Compare').check();
  await items.nth(1).getByLabel('Compare').check();
  await page.getByRole('button', { name: 'Compare selected (2/2)' }).click();
  const compare = page.getByRole('dialog', { name: 'Compare' });
  await expect(compare.getByRole('img')).toHaveCount(2);
  // Only the prompt and the seed differ, and they are highlighted.
  await expect(compare.locator('.differs dt').first()).toHaveText('Prompt');
  await page.screenshot({ path: testInfo.outputPath('gallery-compare.png') });
  await compare.getByRole('button', { name: 'Close' }).click();

  // Reuse settings fills the form; delete removes the picture for good.
  await items.first().getByRole('button', { name: /Open/ }).click();
  await dialog.getByRole('button', { name: 'Reuse settings' }).click();
  await expect(page.getByLabel('Prompt', { exact: true })).toHaveValue('picture 2');
  await items.first().getByRole('button', { name: /Open/ }).click();
  await dialog.getByRole('button', { name: 'Delete' }).click();
  await expect(items).toHaveCount(1);
  await page.reload();
  await expect(page.getByTestId('gallery-item')).toHaveCount(1);
  await expect(page.getByTestId('gallery-item')).toContainText('picture 1');
});
