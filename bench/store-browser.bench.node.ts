/**
 * Model store download throughput where it runs: in Chromium, in a worker, into the browser's
 * IndexedDB, each 4 MiB chunk hashed with crypto.subtle, against a plain fetch of the same 1 GiB
 * from the same local server, alternated so drift hits both; and the two ceilings the store's work
 * has besides the network: IndexedDB alone (the same bytes written from memory, no network, no
 * hashing) and SHA-256 alone (crypto.subtle over the same bytes in 4 MiB pieces, from memory):
 *
 *   npx vite build --config e2e/harness/vite.config.ts && npx vitest run --config bench/bench.config.node.ts bench/store-browser.bench.node.ts
 *
 * Prints the figures and writes bench/store-browser.json; asserts nothing about time.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync, writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { chromium } from '@playwright/test';
import type * as Comlink from 'comlink';
import { expect, it } from 'vitest';
import { CHROMIUM_ARGS, CHROMIUM_PATH } from '../e2e/chromium';
import type { ParityHarness } from '../e2e/harness/parity.worker';
import { REPO } from './sets.node';
import { COMPONENT_BYTES, LIMITED_RATE, MiB, SET_DESCRIPTION, startStoreBenchSet } from './store-set.node';

const PORT = Number(process.env.BENCH_PORT ?? 4292);
const ROUNDS = Number(process.env.STORE_BENCH_ROUNDS ?? 3);
const CONCURRENCY = 3;

type Harness = { parity: Comlink.Remote<ParityHarness> };

it('store download vs plain fetch in Chromium', async () => {
  if (!existsSync(`${REPO}/dist-e2e/harness/index.html`))
    throw new Error('Build the harness first (see the header).');
  const set = await startStoreBenchSet();
  const server: ChildProcess = spawn(
    'npx',
    ['vite', 'preview', '--config', 'e2e/harness/vite.config.ts', '--port', String(PORT), '--strictPort'],
    { cwd: REPO, stdio: 'ignore' },
  );
  const browser = await chromium.launch({ executablePath: CHROMIUM_PATH, args: [...CHROMIUM_ARGS] });
  try {
    const page = await browser.newPage();
    for (let attempt = 0; ; attempt++) {
      try {
        await page.goto(`http://localhost:${PORT}/`);
        break;
      } catch (error) {
        if (attempt > 50) throw error;
        await new Promise((resolve) => setTimeout(resolve, 200));
      }
    }
    await page.waitForFunction(
      () =>
        (globalThis as { document?: { body?: { dataset?: { ready?: string } } } }).document?.body?.dataset
          ?.ready === 'true',
    );
    const time = (url: string, mode: 'plain' | 'store') =>
      page.evaluate(([u, m, c]) => (globalThis as unknown as Harness).parity.timeDownload(u, m, c), [
        url,
        mode,
        CONCURRENCY,
      ] as const);
    const seconds: Record<
      'plain' | 'store' | 'indexedDb' | 'sha256' | 'plainLimited' | 'storeLimited',
      number[]
    > = {
      plain: [],
      store: [],
      indexedDb: [],
      sha256: [],
      plainLimited: [],
      storeLimited: [],
    };
    for (let round = 0; round < ROUNDS; round++) {
      seconds.plain.push(await time(set.manifestUrl, 'plain'));
      seconds.store.push(await time(set.manifestUrl, 'store'));
      seconds.indexedDb.push(
        await page.evaluate(
          ([bytes, chunk, writers]) =>
            (globalThis as unknown as Harness).parity.timeIndexedDbWrites(bytes, chunk, writers),
          [COMPONENT_BYTES, 4 * MiB, CONCURRENCY] as const,
        ),
      );
      seconds.sha256.push(
        await page.evaluate(
          ([bytes, chunk, inFlight]) =>
            (globalThis as unknown as Harness).parity.timeDigests(bytes, chunk, inFlight),
          [COMPONENT_BYTES, 4 * MiB, 4] as const,
        ),
      );
    }
    seconds.plainLimited.push(await time(set.limitedManifestUrl, 'plain'));
    seconds.storeLimited.push(await time(set.limitedManifestUrl, 'store'));

    const best = (values: number[]) => Math.min(...values);
    const mbps = (s: number) => Math.round(COMPONENT_BYTES / 1e6 / s);
    const summary = {
      device: `Chromium ${browser.version()} headless, ${cpus().length} CPU cores (${cpus()[0]?.model ?? '?'})`,
      component: SET_DESCRIPTION,
      concurrency: CONCURRENCY,
      rounds: ROUNDS,
      seconds,
      plainMBps: mbps(best(seconds.plain)),
      storeMBps: mbps(best(seconds.store)),
      indexedDbMBps: mbps(best(seconds.indexedDb)),
      sha256MBps: mbps(best(seconds.sha256)),
      ratio: Number((best(seconds.plain) / best(seconds.store)).toFixed(3)),
      /**
       * Fetching, hashing and storing one after another, each at its measured speed: where the
       * machine's CPU is the limit (all three compete for it), the store can't beat this.
       */
      serialBoundMBps: Math.round(
        1 /
          (1 / mbps(best(seconds.plain)) +
            1 / mbps(best(seconds.indexedDb)) +
            1 / mbps(best(seconds.sha256))),
      ),
      /** The store's speed over IndexedDB's own write speed with no network and no hashing. */
      ofIndexedDbCeiling: Number((best(seconds.indexedDb) / best(seconds.store)).toFixed(3)),
      limitedRatePerFile: LIMITED_RATE,
      limitedRatio: Number((best(seconds.plainLimited) / best(seconds.storeLimited)).toFixed(3)),
    };
    console.log(JSON.stringify(summary, null, 2));
    writeFileSync(`${REPO}/bench/store-browser.json`, `${JSON.stringify(summary, null, 2)}\n`);
    expect(seconds.store).toHaveLength(ROUNDS);
  } finally {
    await browser.close();
    server.kill();
    set.stop();
  }
});
