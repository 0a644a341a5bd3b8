import { describe, expect, it } from 'vitest';
import type { GpuReport, ModelSetInfo } from '../workers/api';
import { KANDINSKY_SIZE_LIMITS } from '../workers/engine/settings';
import type { SelfTest } from './self-test';
import { connectionText, deviceState, type ModelView, modelText } from './status-text';

function gpu(shaderF16: boolean): GpuReport {
  return {
    available: true,
    adapter: {
      vendor: 'v',
      architecture: 'a',
      device: 'd',
      description: '',
      shaderF16,
      maxBufferSize: 2 ** 30,
      maxStorageBufferBindingSize: 2 ** 30,
      features: [],
    },
  };
}

function info(stored: boolean, manifestRefreshFailure: string | null = null): ModelSetInfo {
  return {
    modelId: 'k22',
    name: 'Kandinsky 2.2',
    license: 'Apache-2.0',
    demo: false,
    sourceDescription: 'https://example.org/manifest.json',
    manifestRefreshFailure,
    precision: { current: 'fp16', choice: 'auto', reason: 'fp16', options: [] },
    components: [],
    features: [
      { feature: 'text-to-image', ready: stored, missingBytes: stored ? 0 : 1e9 },
      { feature: 'inpainting', ready: false, missingBytes: 1e9 },
    ],
    sizeLimits: KANDINSKY_SIZE_LIMITS,
    decoderScheduler: 'ddpm',
    usageBytes: null,
    quotaBytes: null,
    persisted: null,
  };
}

const view = (partial: Partial<ModelView>): ModelView => ({
  info: null,
  busy: null,
  progress: null,
  error: null,
  ...partial,
});

describe('the status line', () => {
  it('says whether the GPU is ready, limited, being checked or missing', () => {
    const passed: SelfTest = {
      state: 'passed',
      result: {
        executionProvider: 'webgpu',
        outputShape: [1],
        output: new Float32Array(1),
        createMs: 1,
        runMs: 1,
      },
    };
    expect(deviceState(gpu(true), passed, null)).toEqual({ value: 'ok', text: 'GPU ready' });
    expect(deviceState(gpu(false), passed, null).value).toBe('limited');
    expect(deviceState(null, { state: 'running' }, null).value).toBe('checking');
    expect(deviceState(gpu(true), { state: 'running' }, null).value).toBe('checking');
    expect(
      deviceState({ available: false, reason: 'no-api', detail: '' }, { state: 'skipped' }, null).value,
    ).toBe('unavailable');
    expect(
      deviceState(gpu(true), { state: 'failed', error: { code: 'ORT_INIT_FAILED', message: 'x' } }, null)
        .value,
    ).toBe('unavailable');
    expect(deviceState(null, { state: 'running' }, { code: 'ORT_INIT_FAILED', message: 'x' }).value).toBe(
      'unavailable',
    );
  });

  it('names the set and what of it is stored or downloading', () => {
    expect(modelText(view({}))).toBe('Opening the model set…');
    expect(modelText(view({ error: { code: 'SOURCE_UNREACHABLE', message: 'x' } }))).toBe(
      'The model set could not be opened',
    );
    expect(modelText(view({ info: info(false) }))).toBe('Kandinsky 2.2: not downloaded yet');
    expect(modelText(view({ info: info(true) }))).toBe('Kandinsky 2.2: ready (1 of 2 modes stored)');
    expect(
      modelText(
        view({
          info: info(false),
          busy: 'downloading',
          progress: {
            stage: 'downloading',
            componentId: 'unet',
            path: null,
            totalBytesDone: 250,
            totalBytesTotal: 1000,
            bytesPerSecond: null,
            etaSeconds: null,
          },
        }),
      ),
    ).toBe('Kandinsky 2.2: downloading 25%');
  });

  it('says plainly when it is offline or could not refresh the manifest, and nothing when all is well', () => {
    expect(connectionText(view({ info: info(true) }), false)).toBe('Offline — using the stored model set.');
    expect(connectionText(view({ info: info(false) }), false)).toMatch(/^Offline — .*back online/);
    expect(connectionText(view({ info: info(true, 'Could not reach the host.') }), true)).toBe(
      "Couldn't check for model updates: Could not reach the host. Using the stored copy.",
    );
    expect(connectionText(view({ info: info(true) }), true)).toBeNull();
  });
});
