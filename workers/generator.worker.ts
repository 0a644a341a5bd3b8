/// <reference lib="webworker" />
/**
 * The generator worker: everything that touches models runs here, off the UI thread. It exposes
 * the typed GeneratorApi (workers/api.ts) over comlink; errors carry a stable `code`.
 */
import * as Comlink from 'comlink';
import { modelSourceConfig } from '../models/model-origins';
import smokeModelUrl from '../models/smoke/matmul_sigmoid.onnx?url';
import type { GeneratorApi, SmokeTestResult } from './api';
import { liveOrtObjects } from './engine/ort';
import { installErrorCodeTransfer } from './error-transfer';
import { KandinskyError } from './errors';
import { GeneratorService } from './generator-service';
import { probeGpu } from './gpu-probe';
import { ortWeb, webGpuDeviceTensors } from './ort-web';
import { createWorkerModelStore } from './store';
import { TEST_HOOKS_WORKER_NAME, type TestHooksApi } from './test-hooks';

installErrorCodeTransfer();

/**
 * VITE_STORE_CHUNK_BYTES: the size of one stored record, bytes (default the store's 4 MiB). A
 * tuning knob; the hosted-set e2e build uses 64 KiB so the tiny set's files span several chunks
 * and a download cut mid-file resumes from inside it.
 */
function storeChunkOption(value: unknown): { chunkBytes?: number } {
  const bytes = typeof value === 'string' ? Number(value) : Number.NaN;
  return Number.isSafeInteger(bytes) && bytes >= 4096 ? { chunkBytes: bytes } : {};
}

const service = new GeneratorService({
  ort: ortWeb(),
  store: createWorkerModelStore(storeChunkOption(import.meta.env.VITE_STORE_CHUNK_BYTES)),
  // The origins this build's CSP allows the page; nothing applies that CSP here, so the store does.
  originPolicy: {
    origins: modelSourceConfig(import.meta.env).origins,
    pageOrigin: self.location.origin,
  },
  sessionOptions: { executionProviders: ['webgpu'], graphOptimizationLevel: 'all' },
  // Each denoising loop's UNet is graph-captured: recorded once, then replayed per step.
  deviceTensors: webGpuDeviceTensors(),
  // The precision a set opens in follows the adapter (shader-f16 → fp16).
  adapter: async () => {
    const report = await probeGpu();
    return report.available ? { shaderF16: report.adapter.shaderF16 } : null;
  },
});

/** onnxruntime's GPUDevice, once its WebGPU backend has started (it defines the property then). */
function ortGpuDevice(): GPUDevice | null {
  const descriptor = Object.getOwnPropertyDescriptor(ortWeb().env.webgpu, 'device');
  return (descriptor && 'value' in descriptor ? (descriptor.value as GPUDevice | undefined) : null) ?? null;
}

let watchedDevice: GPUDevice | null = null;
/**
 * Fails the running job and every later one with WEBGPU_DEVICE_LOST when onnxruntime's device is
 * lost (driver reset, GPU removed, out of memory, destroyed): onnxruntime itself may never return
 * from the call it was in. Called whenever onnxruntime may have started its backend.
 */
function watchGpuDevice(): void {
  const device = ortGpuDevice();
  if (!device || device === watchedDevice) return;
  watchedDevice = device;
  void device.lost.then((info) => service.deviceLost(`${info.reason}: ${info.message || 'no details'}`));
}

const api: GeneratorApi = {
  probeGpu,

  async generate(jobId, request, onProgress) {
    watchGpuDevice();
    try {
      // The images are PNG Blobs: posting one hands over a reference, not the bytes.
      return await service.generate(jobId, request, (progress) => {
        watchGpuDevice();
        onProgress(progress);
      });
    } finally {
      watchGpuDevice();
    }
  },
  cancel: (jobId) => service.cancel(jobId),
  openModelSet: (source, precision) => service.openModelSet(source, precision),
  modelSetInfo: () => service.modelSetInfo(),
  async readQualitySample(precision) {
    const sample = await service.readQualitySample(precision);
    return sample && Comlink.transfer(sample, [sample.reference.buffer, sample.picture.buffer]);
  },
  downloadModels: (features, onProgress) => service.downloadModels(features, onProgress),
  pauseDownload: () => service.pauseDownload(),
  deleteModels: (ids) => service.deleteModels(ids),
  verifyModels: () => service.verifyModels(),
  requestPersistence: () => service.requestPersistence(),

  async runSmokeTest(input: Float32Array): Promise<SmokeTestResult> {
    if (input.length !== 6) {
      throw new KandinskyError(
        'INVALID_INPUT',
        `The smoke graph takes 2×3 floats, got ${input.length} values.`,
      );
    }
    const report = await probeGpu();
    if (!report.available) {
      throw new KandinskyError(
        report.reason === 'no-adapter' ? 'WEBGPU_NO_ADAPTER' : 'WEBGPU_UNAVAILABLE',
        report.detail,
      );
    }
    const modelBytes = await fetchBytes(smokeModelUrl);
    const ort = ortWeb();
    const createStart = performance.now();
    let session: Awaited<ReturnType<typeof ort.InferenceSession.create>>;
    try {
      // Only 'webgpu' is listed: if it can't start, ORT throws rather than falling back to wasm.
      session = await ort.InferenceSession.create(modelBytes, { executionProviders: ['webgpu'] });
    } catch (error) {
      throw new KandinskyError(
        'ORT_INIT_FAILED',
        `onnxruntime-web could not start on WebGPU: ${String(error)}`,
        {
          cause: error,
        },
      );
    }
    const createMs = performance.now() - createStart;
    watchGpuDevice();
    const x = new ort.Tensor('float32', input, [2, 3]);
    try {
      const runStart = performance.now();
      const outputs = await session.run({ x });
      const runMs = performance.now() - runStart;
      const y = outputs.y;
      try {
        if (!y) throw new KandinskyError('INFERENCE_FAILED', 'The smoke graph returned no output "y".');
        const data = (await y.getData()) as Float32Array;
        return {
          executionProvider: 'webgpu',
          outputShape: [...y.dims],
          output: data.slice(),
          createMs,
          runMs,
        };
      } finally {
        for (const tensor of Object.values(outputs)) tensor.dispose();
      }
    } catch (error) {
      if (error instanceof KandinskyError) throw error;
      throw new KandinskyError('INFERENCE_FAILED', `The WebGPU session failed to run: ${String(error)}`, {
        cause: error,
      });
    } finally {
      x.dispose();
      await session.release();
    }
  },
};

/**
 * Test hooks: only in a worker the page started under TEST_HOOKS_WORKER_NAME, which the UI does
 * only for a `?test-hooks` page URL (src/generator-client.ts). They read counters and can destroy
 * this worker's own GPU device — nothing a page could use against the user, but not part of the
 * API either, so a normal page's worker doesn't have them.
 */
const testHooks: TestHooksApi = {
  liveOrtObjects: async () => liveOrtObjects(),
  async destroyGpuDevice() {
    const device = ortGpuDevice();
    if (!device) return false;
    watchGpuDevice();
    device.destroy();
    return true;
  },
  async blockThread(ms) {
    const end = performance.now() + Math.min(ms, 600_000);
    while (performance.now() < end) {
      // Busy: a synchronous WebAssembly call looks the same from outside.
    }
  },
};

Comlink.expose(self.name === TEST_HOOKS_WORKER_NAME ? { ...api, ...testHooks } : api);

async function fetchBytes(url: string): Promise<Uint8Array> {
  const response = await fetch(url);
  if (!response.ok) {
    throw new KandinskyError('MODEL_LOAD_FAILED', `Could not fetch ${url}: HTTP ${response.status}.`);
  }
  return new Uint8Array(await response.arrayBuffer());
}
