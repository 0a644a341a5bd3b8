import * as Comlink from 'comlink';
import type { GeneratorApi } from '../workers/api';
import { TEST_HOOKS_WORKER_NAME, type TestHooksApi } from '../workers/test-hooks';

export interface GeneratorClient {
  readonly api: Comlink.Remote<GeneratorApi>;
  /** Set only when the worker was started with test hooks (a `?test-hooks` page URL). */
  readonly testHooks: Comlink.Remote<TestHooksApi> | null;
  terminate(): void;
}

/** Whether this page asked for the worker's test hooks: only end-to-end tests open it so. */
export function testHooksRequested(search: string): boolean {
  return new URLSearchParams(search).has('test-hooks');
}

/** Starts the generator worker; the UI talks to models only through this typed client. */
export function startGenerator(options: { readonly testHooks?: boolean } = {}): GeneratorClient {
  const worker = new Worker(new URL('../workers/generator.worker.ts', import.meta.url), {
    type: 'module',
    name: options.testHooks ? TEST_HOOKS_WORKER_NAME : 'generator',
  });
  const remote = Comlink.wrap<GeneratorApi & TestHooksApi>(worker);
  return {
    api: remote,
    testHooks: options.testHooks ? remote : null,
    terminate() {
      remote[Comlink.releaseProxy]();
      worker.terminate();
    },
  };
}
