/**
 * The one module of the app that imports onnxruntime-web. Everything else receives the module
 * from here, so exactly one ORT runtime is bundled and configured in one place.
 */
import * as ort from 'onnxruntime-web';
import { countedDeviceTensors, type DeviceTensors } from './engine/ort';

let configured = false;

/** onnxruntime-web, configured to load its .mjs/.wasm runtime from the app's own origin. */
export function ortWeb(): typeof ort {
  if (!configured) {
    // The build copies the runtime files to <app>/ort/ (see scripts/ort-runtime.ts); this module is
    // bundled into <app>/assets/, and served from <app>/workers/ in dev: both sit one level below.
    ort.env.wasm.wasmPaths = new URL(/* @vite-ignore */ '../ort/', import.meta.url).href;
    // Our worker already keeps inference off the main thread; ORT's proxy worker can't use WebGPU.
    ort.env.wasm.proxy = false;
    // onnxruntime logs its warnings (e.g. nodes placed on the CPU) as console errors: keep the
    // console for real errors.
    ort.env.logLevel = 'error';
    configured = true;
  }
  return ort;
}

export type OrtWeb = typeof ort;

/**
 * GPU buffers on onnxruntime-web's own GPUDevice, as float32 tensors: the fixed inputs of a
 * graph-captured session (engine/ort.ts, DeviceTensors). The engine fills them through ORT runs
 * (pre-allocated outputs), so every write is ordered with ORT's own commands on the queue.
 */
export function webGpuDeviceTensors(): DeviceTensors {
  return countedDeviceTensors({
    async float32(dims) {
      const runtime = ortWeb();
      const device = await runtime.env.webgpu.device;
      const bytes = 4 * dims.reduce((product, d) => product * d, 1);
      const buffer = device.createBuffer({
        // WebGPU storage bindings want a multiple of 4 bytes and at least one element.
        size: Math.max(16, Math.ceil(bytes / 16) * 16),
        usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST,
      });
      return {
        tensor: runtime.Tensor.fromGpuBuffer(buffer, { dataType: 'float32', dims }),
        destroy: () => buffer.destroy(),
      };
    },
    async queueIdle() {
      // Set once onnxruntime's WebGPU backend has started; before that nothing can be queued.
      const device: GPUDevice | undefined = await ortWeb().env.webgpu.device;
      await device?.queue.onSubmittedWorkDone();
    },
  });
}
