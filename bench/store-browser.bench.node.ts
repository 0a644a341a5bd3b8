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
import { writeFileSync } from 'node:fs';
import { cpus } from 'node:os';
import { expect, it } from 'vitest';
import { type HarnessScope, openHarnessPage } from './harness-page.node';
import { REPO } from './sets.node';
import { COMPONENT_BYTES, LIMITED_RATE, MiB, SET_DESCRIPTION, startStoreBenchSet } from './store-set.node';

const PORT = Number(process.env.BENCH_PORT ?? 4292);
const ROUNDS = Number(process.env.STORE_BENCH_ROUNDS ?? 3);
const CONCURRENCY = 3;

it('store download vs plain fetch in Chromium', async () => {
  const set = await startStoreBenchSet();
  const harness = await openHarnessPage(PORT);
  const { browser, page } = harness;
  try {
    const time = (url: string, mode: 'plain' | 'store') =>
      page.evaluate(([u, m, c]) => (globalThis as unknown as HarnessScope).parity.timeDownload(u, m, c), [
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
            (globalThis as unknown as HarnessScope).parity.timeIndexedDbWrites(bytes, chunk, writers),
          [COMPONENT_BYTES, 4 * MiB, CONCURRENCY] as const,
        ),
      );
      seconds.sha256.push(
        await page.evaluate(
          ([bytes, chunk, inFlight]) =>
            (globalThis as unknown as HarnessScope).parity.timeDigests(bytes, chunk, inFlight),
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
    await harness.close();
    set.stop();
  }
});
