// The worker refuses settings that would run no denoising step (depth from a photo, img2img) with
// INVALID_INPUT naming the fix, before it looks for a single stored model file (issue 19).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorOf, serviceOn, smallRequest } from '../test-support/generator-service.node';
import { type FaultServer, newProfile, startFaultServer, tinyModelSet } from '../test-support/store.node';
import { ortCpu } from '../test-support/tiny-fixture.node';

let server: FaultServer;
beforeAll(async () => {
  server = await startFaultServer(tinyModelSet());
});
afterAll(async () => {
  await server.close();
});

const photo = { width: 64, height: 64, data: new Uint8Array(64 * 64 * 4).fill(128) };

describe('GeneratorService: settings checked at the door', () => {
  it('refuses a photo run whose int(steps × strength) is 0 before needing any model', async () => {
    const service = serviceOn(newProfile(), ortCpu);
    await service.openModelSet({ kind: 'url', url: server.manifestUrl });
    const small = smallRequest(false);
    const settings = { ...small.settings, steps: 2, strength: 0.3 };
    for (const request of [
      { ...small, settings: { ...settings, mode: 'depth' as const }, initImage: photo },
      { ...small, settings: { ...settings, mode: 'img2img' as const }, initImage: photo },
    ]) {
      // Nothing is downloaded: were the settings let through, the job would fail NOT_CACHED.
      expect(await errorOf(service.generate('no-step', request, () => {}))).toMatchObject({
        code: 'INVALID_INPUT',
        message: expect.stringMatching(
          /Strength 0\.3 with 2 steps runs no denoising step; raise the strength/,
        ),
      });
    }
    // From a depth map alone the strength is not used: the job gets as far as the missing models.
    const fromMap = { ...small, settings: { ...settings, mode: 'depth' as const }, depthMap: photo };
    expect(await errorOf(service.generate('map', fromMap, () => {}))).toMatchObject({ code: 'NOT_CACHED' });
    await service.dispose();
  });
});
