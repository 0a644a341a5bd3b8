/**
 * What the generator-service tests share: a service on a profile (its own IndexedDB, as one page
 * load would have), the smallest run the tiny set makes, and a job's error as it crosses the worker.
 */
import type { IDBFactory } from 'fake-indexeddb';
import { createStore } from 'idb-keyval';
import type { GenerateRequest, GenerateResult } from '../workers/api';
import { nodeZlib } from '../workers/engine/node-zlib.node';
import type { InferenceSession, OrtRuntime } from '../workers/engine/ort';
import { decodePng } from '../workers/engine/png';
import { DEFAULT_SETTINGS } from '../workers/engine/settings';
import { toWireError, type WireError } from '../workers/errors';
import { GeneratorService } from '../workers/generator-service';
import type { AdapterFeatures } from '../workers/precision';
import type { OriginPolicy } from '../workers/store';
import type { Profile } from './store.node';

/**
 * A service whose store and settings live in `profile`'s IndexedDB, running on `ort` (CPU provider
 * unless `sessionOptions` say otherwise); `fetch` replaces the network it opens model sets over;
 * `adapter` is the GPU's features it chooses precisions by.
 */
export function serviceOn(
  profile: Profile,
  ort: OrtRuntime,
  options: {
    readonly sessionOptions?: InferenceSession.SessionOptions;
    readonly fetch?: typeof fetch;
    /** The adapter's features (workers/precision.ts); without it, no adapter is reported. */
    readonly adapter?: AdapterFeatures | null;
    /** The origins sets may come from (the worker passes its build's); without it, any. */
    readonly originPolicy?: OriginPolicy;
  } = {},
): GeneratorService {
  // idb-keyval's createStore opens the global indexedDB; point it at this profile's.
  (globalThis as { indexedDB?: InstanceType<typeof IDBFactory> }).indexedDB = profile.indexedDB;
  return new GeneratorService({
    ort,
    store: profile.openStore(),
    sessionOptions: options.sessionOptions ?? { executionProviders: ['cpu'] },
    settingsStore: createStore('kandinsky-web-settings', 'kv'),
    ...(options.fetch ? { fetch: options.fetch } : {}),
    ...(options.originPolicy ? { originPolicy: options.originPolicy } : {}),
    ...(options.adapter !== undefined ? { adapter: async () => options.adapter ?? null } : {}),
  });
}

/** 64×64, 2 prior and 2 decoder steps, seed 7. */
export function smallRequest(previews: boolean): GenerateRequest {
  return {
    settings: {
      ...DEFAULT_SETTINGS,
      prompt: 'a red cat',
      width: 64,
      height: 64,
      priorSteps: 2,
      steps: 2,
      seed: 7,
    },
    previews,
  };
}

/** The job's error as the UI receives it; null when it succeeded. */
export const errorOf = (promise: Promise<unknown>): Promise<WireError | null> =>
  promise.then(
    () => null,
    (e: unknown) => toWireError(e),
  );

/** The RGBA pixels of image `index` of a result (its PNG decoded), to compare runs. */
export async function pixelsOf(result: GenerateResult, index = 0): Promise<Uint8Array | undefined> {
  const png = result.images[index]?.png;
  if (!png) return undefined;
  return (await decodePng(new Uint8Array(await png.arrayBuffer()), nodeZlib, 1e7)).data;
}
