/**
 * The app at a phone's, a tablet's and a desktop's width: what a person came for (the prompt and
 * Generate) is on the first screen, nothing scrolls sideways, the skip link reaches the prompt,
 * presets outside the set's range say why, the mask painter fits and takes touch, and axe-core
 * finds no serious or critical violation on any screen. One page goes through every width and
 * screen (first-run setup, create, the model manager dialog, the gallery), saving a full-page
 * screenshot of each as a test artifact. No generation runs.
 */
import { createHash } from 'node:crypto';
import { readFileSync, writeFileSync } from 'node:fs';
import AxeBuilder from '@axe-core/playwright';
import { expect, type Page, type TestInfo, test } from '@playwright/test';
import { DEFAULT_SETTINGS } from '../workers/engine/settings';
import { closeModelManager, modelsDialog, openModelManager } from './app-page';
import { gradientPng, putGalleryPictures } from './pictures';

const WIDTHS = [
  { name: 'phone', width: 360, height: 740 },
  { name: 'tablet', width: 768, height: 1024 },
  { name: 'desktop', width: 1280, height: 800 },
] as const;

const tinyManifest = JSON.parse(
  readFileSync(new URL('../models/fixtures/tiny/manifest.json', import.meta.url), 'utf8'),
) as Record<string, unknown>;

/** Serious and critical axe violations on the page as it is now, with the page's own summary. */
async function seriousViolations(page: Page): Promise<string[]> {
  const results = await new AxeBuilder({ page }).analyze();
  return results.violations
    .filter((v) => v.impact === 'serious' || v.impact === 'critical')
    .map((v) => `${v.id} (${v.impact}): ${v.help} — ${v.nodes.map((n) => n.target.join(' ')).join(', ')}`);
}

/** Document width beyond the viewport, px (0: no sideways scroll). */
function sidewaysOverflow(page: Page): Promise<number> {
  return page.evaluate(() => {
    const root = (globalThis as unknown as { document: { scrollingElement: { scrollWidth: number } } })
      .document.scrollingElement;
    return root.scrollWidth - (globalThis as unknown as { innerWidth: number }).innerWidth;
  });
}

/** Whether an element lies wholly inside the first screen (the page scrolled to the top). */
async function inFirstScreen(page: Page, testId: string | { label: string }): Promise<boolean> {
  const locator =
    typeof testId === 'string' ? page.getByTestId(testId) : page.getByLabel(testId.label, { exact: true });
  const box = await locator.boundingBox();
  const viewport = page.viewportSize();
  if (!box || !viewport) return false;
  return box.y >= 0 && box.y + box.height <= viewport.height && box.x + box.width <= viewport.width;
}

/** Every width: no sideways scroll, a full-page screenshot as an artifact, axe-core's verdict. */
async function checkScreen(
  page: Page,
  testInfo: TestInfo,
  screen: string,
  atWidth?: (width: (typeof WIDTHS)[number]) => Promise<void>,
): Promise<Record<string, string[]>> {
  const found: Record<string, string[]> = {};
  for (const width of WIDTHS) {
    await page.setViewportSize({ width: width.width, height: width.height });
    await page.evaluate(() =>
      (globalThis as unknown as { scrollTo(x: number, y: number): void }).scrollTo(0, 0),
    );
    expect(
      await sidewaysOverflow(page),
      `${screen} at ${width.width} px scrolls sideways`,
    ).toBeLessThanOrEqual(0);
    await atWidth?.(width);
    const path = testInfo.outputPath(`${screen}-${width.name}-${width.width}.png`);
    await page.screenshot({ path, fullPage: true });
    await testInfo.attach(`${screen} at ${width.width}×${width.height}`, { path, contentType: 'image/png' });
    // axe-core takes ~4 s a run here; what it checks (names, roles, contrast) doesn't change
    // with the width, so it runs once per screen, at the narrowest.
    if (width === WIDTHS[0]) found[screen] = await seriousViolations(page);
  }
  return found;
}

test('phone, tablet and desktop: create first, no sideways scroll, skip link, presets, mask, axe', async ({
  page,
}, testInfo) => {
  test.setTimeout(180_000);
  // The tiny set presented as a real one with a 256–1024 px range: 1:1 fits, the other presets don't.
  // It publishes an end-to-end quality figure with a sample picture pair (the model manager's
  // comparison); the reference picture is served damaged once, then as listed.
  const sample = { reference: await gradientPng(96, 96), picture: await gradientPng(96, 80) };
  const listed = (path: string, bytes: Buffer) => ({
    path,
    bytes: bytes.byteLength,
    sha256: createHash('sha256').update(bytes).digest('hex'),
  });
  const quality = {
    psnr: 34.2,
    ssim: 0.97,
    embeddingCosine: 0.9999,
    prompts: 3,
    seeds: 2,
    steps: 25,
    priorSteps: 25,
    size: 96,
    sample: {
      prompt: 'a red cat, 4k photo',
      seed: 42,
      reference: listed('quality/reference.png', sample.reference),
      picture: listed('quality/picture.png', sample.picture),
    },
  };
  await page.route('**/models/tiny/manifest.json', (route) =>
    route.fulfill({
      json: { ...tinyManifest, source: 'pretrained', sizeRange: { minSide: 256, maxSide: 1024 }, quality },
    }),
  );
  let damagedOnce = false;
  await page.route('**/models/tiny/quality/*.png', (route) => {
    const name = new URL(route.request().url()).pathname.endsWith('/reference.png') ? 'reference' : 'picture';
    const body = Buffer.from(sample[name]);
    if (name === 'reference' && !damagedOnce) {
      damagedOnce = true;
      const at = body.byteLength - 20;
      body.writeUInt8(body.readUInt8(at) ^ 0xff, at);
    }
    return route.fulfill({ body, contentType: 'image/png' });
  });
  const errors: string[] = [];
  page.on('pageerror', (error) => errors.push(error.message));
  page.on('console', (message) => {
    if (message.type() === 'error') errors.push(message.text());
  });
  const axe: Record<string, string[]> = {};
  await page.setViewportSize({ width: 360, height: 740 });
  await page.goto('./');

  // First run: a short setup that says how big the download is, where the pictures will appear.
  const setup = page.getByTestId('first-run-setup');
  await expect(setup.getByTestId('setup-download')).toHaveText(/^Download \d+(\.\d)? MB$/);
  await expect(setup.getByTestId('setup-size')).toHaveText(/\d+(\.\d)? MB/);
  await expect(page.getByTestId('model-components')).toBeHidden();
  await expect(page.getByTestId('device-state')).toHaveAttribute('data-state', /ok|limited/, {
    timeout: 60_000,
  });

  // The skip link is the first Tab stop and lands in the prompt; the prompt comes early.
  await page.keyboard.press('Tab');
  const skip = page.getByRole('link', { name: 'Skip to prompt' });
  await expect(skip).toBeFocused();
  await page.keyboard.press('Enter');
  await expect(page.getByLabel('Prompt', { exact: true })).toBeFocused();
  await page.keyboard.type('a lighthouse at dusk');
  await skip.focus();
  let tabsToPrompt = 0;
  while (tabsToPrompt < 12) {
    await page.keyboard.press('Tab');
    tabsToPrompt++;
    if (
      await page
        .getByLabel('Prompt', { exact: true })
        .evaluate((e) => (e as unknown as { matches(selector: string): boolean }).matches(':focus'))
    )
      break;
  }
  expect(tabsToPrompt, 'Tab stops from the skip link to the prompt').toBeLessThanOrEqual(5);

  Object.assign(
    axe,
    await checkScreen(page, testInfo, 'first-run', async () => {
      expect(await inFirstScreen(page, { label: 'Prompt' })).toBe(true);
      expect(await inFirstScreen(page, 'generate')).toBe(true);
    }),
  );

  // The set's range is up front; presets outside it are disabled and say why.
  await expect(page.getByTestId('size-range')).toHaveText(
    'This model set makes 256–1024 px per side (in steps of 64).',
  );
  await expect(page.getByRole('radio', { name: /Square 1:1/ })).toBeEnabled();
  for (const name of [/Wide 16:9/, /Cinema 21:9/, /Portrait 9:16/, /Photo 3:2/]) {
    const preset = page.getByRole('radio', { name });
    await expect(preset).toBeDisabled();
    await expect(preset).toHaveAccessibleDescription(/This model set makes 256–1024 px per side/);
    await expect(page.locator('.size-preset', { has: preset })).toHaveAttribute(
      'title',
      /This model set makes 256–1024 px pictures; \d+×\d+ is outside it\./,
    );
  }

  // One button downloads text → image; then the setup gives way to the picture area.
  await setup.getByTestId('setup-download').click();
  await expect(setup).toBeHidden({ timeout: 120_000 });
  await expect(page.getByTestId('model-state')).toHaveText(/ready/);
  // Advanced open, so its checkboxes are in the screenshots and axe's check.
  await page.locator('details.advanced summary').click();
  await expect(page.getByRole('checkbox', { name: /Low-memory mode/ })).toBeVisible();

  Object.assign(
    axe,
    await checkScreen(page, testInfo, 'create', async (width) => {
      expect(await inFirstScreen(page, { label: 'Prompt' }), `prompt at ${width.width}`).toBe(true);
      expect(await inFirstScreen(page, 'generate'), `Generate at ${width.width}`).toBe(true);
      // Presets wrap inside their box rather than widening it.
      const presets = await page.locator('.size-preset').evaluateAll((labels) =>
        labels.map((l) => {
          const r = (
            l as unknown as { getBoundingClientRect(): { top: number; right: number } }
          ).getBoundingClientRect();
          return { top: r.top, right: r.right };
        }),
      );
      const box = await page.locator('.size-presets').boundingBox();
      if (!box) throw new Error('no size presets');
      for (const p of presets) expect(p.right).toBeLessThanOrEqual(box.x + box.width + 1);
      if (width.width === 360) expect(new Set(presets.map((p) => Math.round(p.top))).size).toBeGreaterThan(1);
    }),
  );

  // The model manager: a dialog opened from the status line, fitting every width.
  await openModelManager(page);
  // The precision's sample pair, on demand: a damaged picture is refused by name, then shown.
  const compare = modelsDialog(page).getByTestId('quality-compare');
  await compare.getByTestId('quality-compare-load').click();
  await expect(compare.getByRole('alert')).toHaveAttribute('data-code', 'INTEGRITY_MISMATCH');
  await expect(compare.getByTestId('quality-reference')).toHaveCount(0);
  await compare.getByTestId('quality-compare-load').click();
  await expect(compare.getByTestId('quality-reference')).toHaveJSProperty('naturalWidth', 96);
  await expect(compare.getByTestId('quality-picture')).toHaveJSProperty('naturalWidth', 96);
  await expect(compare.getByTestId('quality-picture')).toHaveJSProperty('naturalHeight', 80);
  await expect(compare).toContainText('fp32 — PSNR 34.2 dB, small differences');
  await expect(compare).toContainText('“a red cat, 4k photo”, seed 42');
  Object.assign(
    axe,
    await checkScreen(page, testInfo, 'model-manager', async (width) => {
      const box = await modelsDialog(page).boundingBox();
      expect(box && box.x >= 0 && box.x + box.width <= width.width).toBe(true);
      await expect(modelsDialog(page).getByTestId('model-components')).toBeVisible();
      await compare.screenshot({
        path: testInfo.outputPath(`quality-compare-${width.name}-${width.width}.png`),
      });
      // The two pictures sit inside the dialog at every width.
      for (const id of ['quality-reference', 'quality-picture']) {
        const picture = await compare.getByTestId(id).boundingBox();
        expect(
          picture && box && picture.x >= box.x && picture.x + picture.width <= box.x + box.width,
          id,
        ).toBe(true);
      }
    }),
  );
  await page.keyboard.press('Escape');
  await expect(modelsDialog(page)).toBeHidden();
  await closeModelManager(page);

  // Inpaint: the mask painter fits the width and paints with a finger.
  await page.getByRole('tab', { name: 'Inpaint' }).click();
  await page.getByLabel('Choose picture…').setInputFiles({
    name: 'gradient.png',
    mimeType: 'image/png',
    buffer: await gradientPng(300, 200),
  });
  const mask = page.getByTestId('mask-canvas');
  await expect(mask).toHaveCSS('touch-action', 'none');
  const cdp = await page.context().newCDPSession(page);
  for (const width of WIDTHS) {
    await page.setViewportSize({ width: width.width, height: width.height });
    await mask.scrollIntoViewIfNeeded();
    const box = await mask.boundingBox();
    if (!box) throw new Error('mask canvas not laid out');
    expect(box.x).toBeGreaterThanOrEqual(0);
    expect(box.x + box.width).toBeLessThanOrEqual(width.width);
    expect(await sidewaysOverflow(page)).toBeLessThanOrEqual(0);
    if (width.width === 360) {
      // A touch stroke (touch events, which Chromium turns into touch pointer events).
      const at = (fx: number, fy: number) => [{ x: box.x + box.width * fx, y: box.y + box.height * fy }];
      await cdp.send('Input.dispatchTouchEvent', { type: 'touchStart', touchPoints: at(0.3, 0.3) });
      for (const f of [0.35, 0.4, 0.45, 0.5]) {
        await cdp.send('Input.dispatchTouchEvent', { type: 'touchMove', touchPoints: at(f, f) });
      }
      await cdp.send('Input.dispatchTouchEvent', { type: 'touchEnd', touchPoints: [] });
      await expect(mask).toHaveAttribute('aria-label', /painted areas/);
    }
  }
  await page.getByRole('tab', { name: 'Text → Image' }).click();

  // The gallery, after a reload: the form (not the pictures) came back as it was.
  await putGalleryPictures(
    page,
    [1, 2, 3].map((seed) => ({
      ...DEFAULT_SETTINGS,
      seed,
      prompt: `picture ${seed}`,
      width: 256,
      height: 256,
    })),
  );
  // The model host is down this time: the stored set opens, and the status line says what failed.
  await page.unroute('**/models/tiny/manifest.json');
  await page.context().route('**/models/tiny/manifest.json', (route) => route.abort('connectionrefused'));
  await page.reload();
  await expect(page.getByTestId('connection-status')).toHaveText(
    /^Couldn't check for model updates: .+ Using the stored copy\.$/,
  );
  await expect(page.getByTestId('model-state')).toHaveText(/ready/);
  await expect(page.getByLabel('Prompt', { exact: true })).toHaveValue('a lighthouse at dusk');
  await expect(page.getByTestId('gallery-item')).toHaveCount(3);
  Object.assign(
    axe,
    await checkScreen(page, testInfo, 'gallery', async (width) => {
      // Every gallery button fits inside its picture's column.
      for (const item of await page.getByTestId('gallery-item').all()) {
        const itemBox = await item.boundingBox();
        if (!itemBox) throw new Error('gallery item not laid out');
        for (const button of await item.getByRole('button').all()) {
          const b = await button.boundingBox();
          if (b)
            expect(b.x + b.width, `gallery button at ${width.width}`).toBeLessThanOrEqual(
              itemBox.x + itemBox.width + 1,
            );
        }
      }
    }),
  );

  const axePath = testInfo.outputPath('axe-serious-critical.json');
  writeFileSync(axePath, JSON.stringify(axe, null, 2));
  await testInfo.attach('axe serious and critical violations per screen', {
    path: axePath,
    contentType: 'application/json',
  });
  expect(axe).toEqual(Object.fromEntries(Object.keys(axe).map((screen) => [screen, []])));
  expect(errors).toEqual([]);
});
