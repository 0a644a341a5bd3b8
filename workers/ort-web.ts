/**
 * The one module of the app that imports onnxruntime-web. Everything else receives the module
 * from here, so exactly one ORT runtime is bundled and configured in one place.
 */
import * as ort from 'onnxruntime-web';

let configured = false;

/** onnxruntime-web, configured to load its .mjs/.wasm runtime from the app's own origin. */
export function ortWeb(): typeof ort {
  if (!configured) {
    // The build copies the runtime files to <app>/ort/ (see scripts/ort-runtime.ts); this module is
    // bundled into <app>/assets/, and served from <app>/workers/ in dev: both sit one level below.
    ort.env.wasm.wasmPaths = new URL(/* @vite-ignore */ '../ort/', import.meta.url).href;
    // Our worker already keeps inference off the main thread; ORT's proxy worker can't use WebGPU.
    ort.env.wasm.proxy = false;
    configured = true;
  }
  return ort;
}

export type OrtWeb = typeof ort;
