/**
 * The generator worker's API, driven directly (no UI, no worker): a real local HTTP server serves
 * the tiny model set, a real IndexedDB implementation stores it, onnxruntime-node runs it.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorOf, pixelsOf, serviceOn, smallRequest } from '../test-support/generator-service.node';
import { type FaultServer, newProfile, startFaultServer, tinyModelSet } from '../test-support/store.node';
import { ortCpu } from '../test-support/tiny-fixture.node';
import type { JobProgress, ModelDownloadProgress } from './api';

let server: FaultServer;
beforeAll(async () => {
  server = await startFaultServer(tinyModelSet());
});
afterAll(async () => {
  await server.close();
});

function newService(profile = newProfile()) {
  return { service: serviceOn(profile, ortCpu), profile };
}

const request = smallRequest(true);

describe('GeneratorService', () => {
  it('opens a set, shows sizes before downloading, downloads with progress, then generates', async () => {
    const { service } = newService();
    const before = await service.openModelSet({ kind: 'url', url: server.manifestUrl });
    expect(before.demo).toBe(true);
    expect(before.components.every((c) => c.state === 'absent' && c.bytes > 0)).toBe(true);
    const txt2img = before.features.find((f) => f.feature === 'text-to-image');
    expect(txt2img).toMatchObject({ ready: false });
    expect(txt2img?.missingBytes).toBeGreaterThan(0);

    // Generating before downloading says what to do.
    expect(await errorOf(service.generate('early', request, () => {}))).toMatchObject({
      code: 'NOT_CACHED',
      message: expect.stringMatching(/^Download .* first \(.* MB left\)/),
    });

    const progress: ModelDownloadProgress[] = [];
    const after = await service.downloadModels(['text-to-image'], (p) => progress.push(p));
    expect(after.features.find((f) => f.feature === 'text-to-image')).toMatchObject({
      ready: true,
      missingBytes: 0,
    });
    expect(progress.at(-1)?.totalBytesDone).toBe(txt2img?.missingBytes);

    const events: JobProgress[] = [];
    const result = await service.generate('job-1', request, (p) => events.push(p));
    expect(result.images).toHaveLength(1);
    expect(result.images[0]).toMatchObject({ width: 64, height: 64 });
    expect((await pixelsOf(result))?.length).toBe(64 * 64 * 4);
    expect(result.images[0]?.settings.seed).toBe(7);
    expect(events.map((e) => e.stage)).toContain('denoise');
    expect(events.filter((e) => e.stage === 'denoise').every((e) => 'preview' in e && e.preview)).toBe(true);

    // Inpainting needs components that were not downloaded.
    const inpaint = await errorOf(
      service.generate(
        'job-2',
        {
          ...request,
          settings: { ...request.settings, mode: 'inpaint' },
          initImage: { width: 64, height: 64, data: new Uint8Array(64 * 64 * 4) },
          mask: { width: 64, height: 64, data: new Uint8Array(64 * 64).fill(255) },
        },
        () => {},
      ),
    );
    expect(inpaint).toMatchObject({ code: 'NOT_CACHED', message: expect.stringMatching(/unet_inpaint/) });
    // Taking the input picture's look (prior strength) needs the image encoder too.
    const imagePrior = await errorOf(
      service.generate(
        'job-3',
        {
          ...request,
          // int(2 prior steps × 0.5) and int(2 steps × 0.5) keep one step each: the settings pass.
          settings: { ...request.settings, mode: 'img2img', strength: 0.5, priorStrength: 0.5 },
          initImage: { width: 64, height: 64, data: new Uint8Array(64 * 64 * 4) },
        },
        () => {},
      ),
    );
    expect(imagePrior).toMatchObject({ code: 'NOT_CACHED', message: expect.stringMatching(/image_encoder/) });
    await service.dispose();
  });

  it('rejects bad settings naming the field, before touching the model', async () => {
    const { service } = newService();
    await service.openModelSet({ kind: 'url', url: server.manifestUrl });
    const bad = await errorOf(
      service.generate('bad', { ...request, settings: { ...request.settings, width: 1000 } }, () => {}),
    );
    expect(bad).toMatchObject({
      code: 'INVALID_INPUT',
      message: expect.stringMatching(/width must be from 64 to 512 pixels; got 1000/),
    });
  });

  it('queues jobs, cancels a waiting one, and the queue keeps working', async () => {
    const { service } = newService();
    await service.openModelSet({ kind: 'url', url: server.manifestUrl });
    await service.downloadModels([], () => {});
    const positions: number[] = [];
    const first = service.generate('a', request, () => {});
    const second = service.generate('b', request, (p) => {
      if (p.stage === 'queued') positions.push(p.position);
    });
    const third = service.generate('c', { ...request, settings: { ...request.settings, seed: 8 } }, () => {});
    expect(await service.cancel('b')).toBe(true);
    await expect(errorOf(second)).resolves.toMatchObject({ code: 'CANCELLED' });
    expect(positions[0]).toBe(0);
    const [a, c] = await Promise.all([first, third]);
    expect(await pixelsOf(a)).not.toEqual(await pixelsOf(c));
    expect(await service.cancel('nope')).toBe(false);
    await service.dispose();
  });

  it('reopens the last set offline from the saved manifest, and refuses an unknown one', async () => {
    const profile = newProfile();
    const online = newService(profile);
    const fetched = await online.service.openModelSet({ kind: 'url', url: server.manifestUrl });
    expect(fetched.manifestRefreshFailure).toBeNull();
    await online.service.downloadModels([], () => {});

    const offlineFetch = (async () => {
      throw new TypeError('Failed to fetch');
    }) as typeof fetch;
    const offline = serviceOn(profile, ortCpu, { fetch: offlineFetch });
    const info = await offline.openModelSet({ kind: 'url', url: server.manifestUrl });
    expect(info.features.find((f) => f.feature === 'text-to-image')?.ready).toBe(true);
    // The UI says the saved copy stands in, and why the fetch failed.
    expect(info.manifestRefreshFailure).toMatch(/./);
    expect((await offline.modelSetInfo()).manifestRefreshFailure).toBe(info.manifestRefreshFailure);
    const result = await offline.generate('offline', request, () => {});
    expect(result.images).toHaveLength(1);
    expect(
      await errorOf(offline.openModelSet({ kind: 'url', url: `${server.manifestUrl}?other` })),
    ).toMatchObject({
      code: 'SOURCE_UNREACHABLE',
    });
    await offline.dispose();
  });

  it('deletes components and says so in the status', async () => {
    const { service } = newService();
    await service.openModelSet({ kind: 'url', url: server.manifestUrl });
    await service.downloadModels([], () => {});
    const info = await service.deleteModels(['unet']);
    expect(info.components.find((c) => c.id === 'unet')?.state).toBe('absent');
    expect(info.components.find((c) => c.id === 'prior')?.state).toBe('complete');
    expect(await errorOf(service.generate('x', request, () => {}))).toMatchObject({ code: 'NOT_CACHED' });
  });
});
