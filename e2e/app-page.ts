/**
 * Driving the built app like a person would, shared by the e2e specs and the browser benchmark:
 * the smallest run the demo set makes (64×64, 2 prior steps, a fixed seed), and the model manager,
 * which lives in the "Device and models" dialog opened from the status line.
 */
import { expect, type Locator, type Page } from '@playwright/test';

export async function setSmallRun(
  page: Page,
  options: { readonly prompt: string; readonly seed: number; readonly steps?: number },
): Promise<void> {
  await page.getByLabel('Prompt', { exact: true }).fill(options.prompt);
  await page.getByRole('radio', { name: /Custom/ }).check();
  await page.getByLabel('Width (px)').fill('64');
  await page.getByLabel('Height (px)').fill('64');
  await page.getByRole('spinbutton', { name: 'Steps', exact: true }).fill(String(options.steps ?? 2));
  const advanced = page.locator('details.advanced');
  if ((await advanced.getAttribute('open')) === null) await advanced.locator('summary').click();
  await page.getByRole('spinbutton', { name: 'Prior steps', exact: true }).fill('2');
  const random = page.getByRole('checkbox', { name: 'New random seed each time' });
  if (await random.isChecked()) await random.uncheck();
  await page.getByRole('spinbutton', { name: 'Seed' }).fill(String(options.seed));
}

/** The "Device and models" dialog (open or closed). */
export function modelsDialog(page: Page): Locator {
  return page.getByTestId('models-dialog');
}

/** Opens the "Device and models" dialog if it is closed; returns the model manager inside. */
export async function openModelManager(page: Page): Promise<Locator> {
  const dialog = modelsDialog(page);
  if (!(await dialog.isVisible())) {
    await page.getByRole('button', { name: 'Device and models' }).click();
  }
  await expect(dialog).toBeVisible();
  return dialog.locator('[data-slot="model-manager"]');
}

/** Closes the dialog (the page behind a modal dialog takes no input). */
export async function closeModelManager(page: Page): Promise<void> {
  const dialog = modelsDialog(page);
  if (await dialog.isVisible()) await dialog.getByRole('button', { name: 'Close' }).click();
  await expect(dialog).toBeHidden();
}

/** Downloads text → image (and `features`) in the model manager, waits for it, closes the dialog. */
export async function downloadModels(page: Page, timeout = 120_000): Promise<void> {
  const manager = await openModelManager(page);
  const download = manager.getByTestId('download-models');
  await expect(download).toHaveText(/Download|Downloaded/);
  if ((await download.textContent()) !== 'Downloaded') await download.click();
  await expect(download).toHaveText('Downloaded', { timeout });
  await closeModelManager(page);
}
