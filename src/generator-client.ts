import * as Comlink from 'comlink';
import type { GeneratorApi } from '../workers/api';

export interface GeneratorClient {
  readonly api: Comlink.Remote<GeneratorApi>;
  terminate(): void;
}

/** Starts the generator worker; the UI talks to models only through this typed client. */
export function startGenerator(): GeneratorClient {
  const worker = new Worker(new URL('../workers/generator.worker.ts', import.meta.url), {
    type: 'module',
    name: 'generator',
  });
  const api = Comlink.wrap<GeneratorApi>(worker);
  return {
    api,
    terminate() {
      api[Comlink.releaseProxy]();
      worker.terminate();
    },
  };
}
