/// <reference lib="webworker" />
/**
 * The generator worker: everything that touches models runs here, off the UI thread. It exposes
 * the typed GeneratorApi (workers/api.ts) over comlink; errors carry a stable `code`.
 */
import * as Comlink from 'comlink';
import smokeModelUrl from '../models/smoke/matmul_sigmoid.onnx?url';
import type { GenerateResult, GeneratorApi, SmokeTestResult } from './api';
import { installErrorCodeTransfer } from './error-transfer';
import { KandinskyError } from './errors';
import { GeneratorService } from './generator-service';
import { probeGpu } from './gpu-probe';
import { ortWeb } from './ort-web';
import { createWorkerModelStore } from './store';

installErrorCodeTransfer();

const service = new GeneratorService({
  ort: ortWeb(),
  store: createWorkerModelStore(),
  sessionOptions: { executionProviders: ['webgpu'], graphOptimizationLevel: 'all' },
});

/** Hands the images' pixel buffers over to the UI instead of copying them. */
function transferImages(result: GenerateResult): GenerateResult {
  return Comlink.transfer(
    result,
    result.images.map(({ image }) => image.data.buffer as ArrayBuffer),
  );
}

const api: GeneratorApi = {
  probeGpu,

  async generate(jobId, request, onProgress) {
    return transferImages(await service.generate(jobId, request, onProgress));
  },
  cancel: (jobId) => service.cancel(jobId),
  openModelSet: (source) => service.openModelSet(source),
  modelSetInfo: () => service.modelSetInfo(),
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

Comlink.expose(api);

async function fetchBytes(url: string): Promise<Uint8Array> {
  const response = await fetch(url);
  if (!response.ok) {
    throw new KandinskyError('MODEL_LOAD_FAILED', `Could not fetch ${url}: HTTP ${response.status}.`);
  }
  return new Uint8Array(await response.arrayBuffer());
}
