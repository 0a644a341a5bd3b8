/**
 * Driving the built app's generate form like a person would, shared by the e2e specs and the
 * browser benchmark: the smallest run the demo set makes (64×64, 2 prior steps), a fixed seed.
 */
import type { Page } from '@playwright/test';

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
