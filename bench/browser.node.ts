/**
 * Time to first image in Chromium with WebGPU on SwiftShader, on the tiny demo set the build
 * serves: the built app (`vite build` first) under `vite preview`, driven like a user would.
 *
 * cold: a new browser profile — the model download, then the first generation (sessions created);
 * warm: the page reloaded — models come from IndexedDB, sessions are created again;
 * warm, same page: a second generation — sessions reused.
 * Per-stage figures are GenerateResult.timings, read from the worker's reply as it leaves the
 * worker (a wrapper on the worker's postMessage), so the app needs no benchmark hook.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chromium, type Page, type Worker } from '@playwright/test';
import { closeModelManager, openModelManager, setSmallRun } from '../e2e/app-page';
import { CHROMIUM_ARGS, CHROMIUM_PATH } from '../e2e/chromium';
import { REPO } from './sets.node';

const PORT = Number(process.env.BENCH_PORT ?? 4290);

type Timings = Record<'load' | 'encode' | 'prior' | 'denoise' | 'decode', number>;

export interface BrowserRun {
  readonly label: string;
  /** Clicking Download until every file is stored and verified (cold only), ms. */
  readonly downloadMs?: number;
  /** Clicking Generate until the image is shown, ms. */
  readonly generateMs: number;
  /** Page navigation until the image is shown, ms (download included when cold). */
  readonly firstImageMs: number;
  readonly timings: Timings | null;
}

/** The worker's global scope, as far as the hook below uses it (this file compiles without DOM types). */
interface WorkerScope {
  __benchTimings?: Timings[];
  postMessage(message: unknown, transfer?: unknown[]): void;
}

async function hookWorker(worker: Worker): Promise<void> {
  if (!worker.url().includes('generator')) return;
  await worker
    .evaluate(() => {
      const scope = globalThis as unknown as WorkerScope;
      if (scope.__benchTimings) return;
      const seen: Timings[] = [];
      scope.__benchTimings = seen;
      const post = scope.postMessage.bind(scope);
      scope.postMessage = (message, transfer) => {
        const value = (message as { value?: { timings?: Timings; jobId?: string } } | null)?.value;
        if (value?.timings && value.jobId) seen.push(value.timings);
        post(message, transfer);
      };
    })
    .catch(() => undefined);
}

async function lastTimings(page: Page): Promise<Timings | null> {
  for (const worker of page.workers()) {
    if (!worker.url().includes('generator')) continue;
    const all = await worker
      .evaluate(() => (globalThis as unknown as WorkerScope).__benchTimings ?? [])
      .catch((): Timings[] => []);
    if (all.length > 0) return all[all.length - 1] ?? null;
  }
  return null;
}

async function generate(page: Page, seed: number): Promise<number> {
  await setSmallRun(page, { prompt: 'a red lighthouse on a cliff', seed });
  const started = performance.now();
  await page.getByTestId('generate').click();
  const done = page.getByTestId('result-seed').filter({ hasText: `Seed ${seed}` });
  const failed = page.getByRole('alert').filter({ hasText: /failed/i });
  await done.or(failed).first().waitFor({ timeout: 300_000 });
  if (await failed.isVisible())
    throw new Error(`generation failed in the app: ${await failed.textContent()}`);
  return performance.now() - started;
}

async function startPreview(): Promise<ChildProcess> {
  const server = spawn('npx', ['vite', 'preview', '--port', String(PORT), '--strictPort'], {
    cwd: REPO,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  for (let i = 0; i < 120; i++) {
    try {
      if ((await fetch(`http://localhost:${PORT}/`)).ok) return server;
    } catch {
      // not up yet
    }
    await new Promise((resolve) => setTimeout(resolve, 500));
  }
  server.kill();
  throw new Error(`vite preview did not answer on port ${PORT}`);
}

export async function measureBrowser(): Promise<
  { runs: BrowserRun[] } | { skipped: string } | { error: string; runs: BrowserRun[]; screenshot: string }
> {
  if (!existsSync(CHROMIUM_PATH)) return { skipped: `no Chromium at ${CHROMIUM_PATH}` };
  if (!existsSync(`${REPO}dist/index.html`))
    return { skipped: 'no app build in dist/: run `vite build` first' };
  const server = await startPreview();
  const browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: [...CHROMIUM_ARGS] });
  try {
    const context = await browser.newContext({ baseURL: `http://localhost:${PORT}/` });
    const page = await context.newPage();
    page.on('worker', (worker) => void hookWorker(worker));
    const runs: BrowserRun[] = [];
    try {
      await measureRuns(page, runs);
    } catch (error) {
      // Figures so far, what failed and what the page showed.
      const screenshot = `${REPO}bench/.cache/browser-failure.png`;
      await page.screenshot({ path: screenshot, fullPage: true }).catch(() => undefined);
      return { error: String(error).slice(0, 2000), runs, screenshot };
    }
    await context.close();
    return { runs };
  } finally {
    await browser.close();
    server.kill();
  }
}

async function measureRuns(page: Page, runs: BrowserRun[]): Promise<void> {
  {
    let opened = performance.now();
    await page.goto('./');
    const download = (await openModelManager(page)).getByTestId('download-models');
    await download.filter({ hasText: /Download \d/ }).waitFor({ timeout: 120_000 });
    const clicked = performance.now();
    await download.click();
    await download.filter({ hasText: 'Downloaded' }).waitFor({ timeout: 300_000 });
    const downloadMs = performance.now() - clicked;
    await closeModelManager(page);
    let generateMs = await generate(page, 101);
    runs.push({
      label: 'cold (new profile: download + first generation)',
      downloadMs,
      generateMs,
      firstImageMs: performance.now() - opened,
      timings: await lastTimings(page),
    });

    opened = performance.now();
    await page.reload();
    // In the closed dialog: attached, not visible.
    await download.filter({ hasText: 'Downloaded' }).waitFor({ state: 'attached', timeout: 120_000 });
    generateMs = await generate(page, 102);
    runs.push({
      label: 'warm (reload: models from IndexedDB, sessions created)',
      generateMs,
      firstImageMs: performance.now() - opened,
      timings: await lastTimings(page),
    });

    opened = performance.now();
    generateMs = await generate(page, 103);
    runs.push({
      label: 'warm, same page (sessions reused)',
      generateMs,
      firstImageMs: performance.now() - opened,
      timings: await lastTimings(page),
    });
  }
}
