import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parseManifest } from '../../models/manifest';
import { ortCpu, TINY_DIR, tinyManifest } from '../../test-support/tiny-fixture.node';
import { toWireError } from '../errors';
import { StoreError } from '../store/store-error';
import { buildCopyGraph } from './denoise/step-graphs';
import { contractMismatch, ModelSet } from './model-set';
import { type InferenceSession, liveOrtObjects, type OrtRuntime } from './ort';

describe('graphs are checked against the contract when loaded', () => {
  it('accepts every graph of the fixture set', async () => {
    const models = new ModelSet(ortCpu, tinyManifest, {
      read: async (path) => new Uint8Array(readFileSync(TINY_DIR + path)),
    });
    for (const id of [
      'text_encoder',
      'prior',
      'unet',
      'unet_inpaint',
      'unet_depth',
      'movq_decoder',
    ] as const) {
      await expect(models.session(id)).resolves.toBeDefined();
    }
    await models.releaseAll();
  });

  it('refuses a graph whose inputs are another component’s, before anything runs', async () => {
    // A set whose "unet.onnx" holds the text encoder's graph (its manifest entry hashes match it).
    const textEncoderGraph = tinyManifest.components.text_encoder?.files[0];
    if (!textEncoderGraph) throw new Error('fixture has no text encoder');
    const manifest = parseManifest({
      ...tinyManifest,
      components: {
        ...tinyManifest.components,
        unet: { ...tinyManifest.components.unet, files: [{ ...textEncoderGraph, path: 'unet.onnx' }] },
      },
    });
    const before = liveOrtObjects().sessions;
    const models = new ModelSet(ortCpu, manifest, {
      read: async (path) =>
        new Uint8Array(readFileSync(TINY_DIR + (path === 'unet.onnx' ? textEncoderGraph.path : path))),
    });
    const error = toWireError(await models.session('unet').catch((e: unknown) => e));
    expect(error.code).toBe('MODEL_LOAD_FAILED');
    expect(error.message).toMatch(
      /unet of "kandinsky-2.2-tiny-random" does not match model-set contract 1: its inputs are \[input_ids\], the contract's are \[image_embeds, sample, timestep\]/,
    );
    expect(liveOrtObjects().sessions).toBe(before);
  });

  it('names a missing output', () => {
    expect(
      contractMismatch('text_encoder', { inputNames: ['input_ids'], outputNames: ['text_embeds'] }),
    ).toBe('it has no output last_hidden_state');
  });
});

describe('graphs built at run time', () => {
  it('get one intra-op thread and otherwise the set’s session options', async () => {
    const created: InferenceSession.SessionOptions[] = [];
    const recording: OrtRuntime = {
      Tensor: ortCpu.Tensor,
      InferenceSession: {
        create: async (model, options) => {
          created.push(options ?? {});
          return ortCpu.InferenceSession.create(model, options);
        },
      },
    };
    const models = new ModelSet(
      recording,
      tinyManifest,
      { read: async () => new Uint8Array() },
      {
        sessionOptions: { executionProviders: ['cpu'], graphOptimizationLevel: 'all' },
      },
    );
    await models.runtimeSession('copy:2', () => buildCopyGraph(2), 'device');
    await models.releaseAll();
    // Worker threads of their own would spin after each run, taking cores from the next UNet call.
    expect(created).toEqual([
      { executionProviders: ['cpu'], graphOptimizationLevel: 'all', intraOpNumThreads: 1 },
    ]);
  });
});

describe('a reader with local files', () => {
  const feeds = (ort: OrtRuntime) => {
    const { latentChannels: c, imageEmbedDim: d } = tinyManifest.dims;
    const ramp = (n: number) => Float32Array.from({ length: n }, (_, i) => Math.sin(i));
    return {
      sample: new ort.Tensor('float32', ramp(c * 64), [1, c, 8, 8]),
      timestep: new ort.Tensor('float32', new Float32Array([500]), [1]),
      image_embeds: new ort.Tensor('float32', ramp(d), [1, d]),
    };
  };
  const noisePred = async (models: ModelSet) => {
    const session = await models.session('unet');
    const inputs = feeds(ortCpu);
    const out = await session.run(inputs);
    const prediction = out.noise_pred;
    if (!prediction) throw new Error('the UNet gave no noise_pred');
    const data = (prediction.data as Float32Array).slice();
    for (const tensor of [...Object.values(inputs), ...Object.values(out)]) tensor.dispose();
    await models.releaseAll();
    return data;
  };

  it('hands onnxruntime the graph’s path: no external-data byte is read into JS, the outputs are the same', async () => {
    const read = async (path: string) => new Uint8Array(readFileSync(TINY_DIR + path));
    const expected = await noisePred(new ModelSet(ortCpu, tinyManifest, { read }));
    const asked: string[] = [];
    const local = new ModelSet(ortCpu, tinyManifest, {
      // Only the graph itself, to see which external-data files it names (onnx-external-data.ts).
      read: async (path) => {
        if (path !== 'unet.onnx') throw new Error(`read ${path}`);
        return read(path);
      },
      localPath: async (path) => {
        asked.push(path);
        return TINY_DIR + path;
      },
    });
    expect(await noisePred(local)).toEqual(expected);
    expect(asked).toEqual(tinyManifest.components.unet?.files.map((f) => f.path));
  });

  it('reads bytes when a shard is not beside the graph as the graph names it', async () => {
    const reads: string[] = [];
    const models = new ModelSet(ortCpu, tinyManifest, {
      read: async (path) => {
        reads.push(path);
        return new Uint8Array(readFileSync(TINY_DIR + path));
      },
      localPath: async (path) => (path.endsWith('data-01') ? `/elsewhere/${path}` : TINY_DIR + path),
    });
    expect((await noisePred(models)).length).toBeGreaterThan(0);
    expect(reads).toEqual(tinyManifest.components.unet?.files.map((f) => f.path));
  });
});

describe('the denoising loop’s graph-captured UNet', () => {
  const { latentChannels: c, imageEmbedDim: d } = tinyManifest.dims;
  const dims = { sample: [2, c, 8, 8], timestep: [2], image_embeds: [2, d] };

  it('fails with the store’s error when a UNet file is found damaged, and reads it only once', async () => {
    const damaged = tinyManifest.components.unet?.files.find((f) => f.role !== 'graph')?.path;
    if (!damaged) throw new Error('the fixture UNet has no external-data shard');
    // The store's behaviour (workers/store): the first read finds the damage and removes the file,
    // so any later read of it finds nothing stored.
    const reads: string[] = [];
    const models = new ModelSet(
      ortCpu,
      tinyManifest,
      {
        read: async (path) => {
          if (path !== damaged) return new Uint8Array(readFileSync(TINY_DIR + path));
          reads.push(path);
          throw reads.length === 1
            ? new StoreError('INTEGRITY_MISMATCH', `The stored copy of "${path}" is damaged.`)
            : new StoreError('NOT_CACHED', `"${path}" is not stored.`);
        },
      },
      {
        sessionOptions: { executionProviders: ['webgpu'] },
        deviceTensors: {
          float32: async () => {
            throw new Error('no GPU buffer is made before the weights are read');
          },
        },
      },
    );
    expect(models.graphCapture).toBe(true);
    const error = toWireError(await models.loopSession('unet', dims).catch((e: unknown) => e));
    expect(error).toEqual({
      code: 'INTEGRITY_MISMATCH',
      message: `The stored copy of "${damaged}" is damaged.`,
    });
    expect(reads).toEqual([damaged]);
    // Not taken for onnxruntime refusing the capture: the next loop tries the capture again.
    expect(models.captureRefused().size).toBe(0);
    await models.releaseAll();
  });
});

describe('a new session is handed out once the device has taken its weights', () => {
  const read = async (path: string) => new Uint8Array(readFileSync(TINY_DIR + path));
  /** A device whose queue goes idle when the test says so. */
  function deviceWithQueue() {
    const waits: { resolve: () => void; reject: (error: Error) => void }[] = [];
    return {
      waits,
      deviceTensors: {
        float32: () => Promise.reject(new Error('not used here')),
        queueIdle: () => new Promise<void>((resolve, reject) => waits.push({ resolve, reject })),
      },
    };
  }
  /** Whether `promise` has settled once the model set is waiting for the queue (or 10 s passed). */
  const settledWhileWaiting = async (promise: Promise<unknown>, waits: readonly unknown[]) => {
    let done = false;
    void promise.then(
      () => (done = true),
      () => (done = true),
    );
    for (let i = 0; i < 1000 && !done && waits.length === 0; i++) {
      await new Promise((resolve) => setTimeout(resolve, 10));
    }
    // A few more turns: a session handed out without waiting would have settled by now.
    for (let i = 0; i < 5; i++) await new Promise((resolve) => setTimeout(resolve, 10));
    return done;
  };

  it('waits for the queue after creating a session, once per session', async () => {
    const device = deviceWithQueue();
    const models = new ModelSet(ortCpu, tinyManifest, { read }, { deviceTensors: device.deviceTensors });
    try {
      const pending = models.session('movq_decoder');
      expect(await settledWhileWaiting(pending, device.waits)).toBe(false);
      expect(device.waits).toHaveLength(1);
      device.waits[0]?.resolve();
      await expect(pending).resolves.toBeDefined();
      // The same session again: nothing new was uploaded, nothing to wait for.
      await models.session('movq_decoder');
      expect(device.waits).toHaveLength(1);
    } finally {
      await models.releaseAll();
    }
  });

  it('fails the load and releases the session when the device fails meanwhile', async () => {
    const before = liveOrtObjects().sessions;
    const device = deviceWithQueue();
    const models = new ModelSet(ortCpu, tinyManifest, { read }, { deviceTensors: device.deviceTensors });
    const pending = models.session('movq_decoder').catch((e: unknown) => e);
    expect(await settledWhileWaiting(pending, device.waits)).toBe(false);
    const lost = new Error('A valid external Instance reference no longer exists.');
    device.waits[0]?.reject(lost);
    const error = toWireError(await pending);
    expect(error.code).toBe('MODEL_LOAD_FAILED');
    expect(error.message).toMatch(/Could not load movq_decoder: .*Instance reference no longer exists/);
    expect(liveOrtObjects().sessions).toBe(before);
    await models.releaseAll();
  });
});
