import * as Comlink from 'comlink';
import type { ParityHarness } from './parity.worker';

/** The page side of the parity harness: Playwright calls `window.parity.runCase(name)`. */
const worker = new Worker(new URL('./parity.worker.ts', import.meta.url), { type: 'module' });
(window as Window & { parity?: Comlink.Remote<ParityHarness> }).parity = Comlink.wrap<ParityHarness>(worker);
document.body.dataset.ready = 'true';
