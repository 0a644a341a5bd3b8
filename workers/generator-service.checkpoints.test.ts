/**
 * The worker's API on the checkpoint set (models/fixtures/tiny-diffusers: tiny checkpoints made in
 * diffusers' folder layout, other dimensions, exported through the real-checkpoint path): served
 * over HTTP, stored in IndexedDB, run on onnxruntime-node, its picture is diffusers' own — with the
 * set's own DDIM scheduler when none is picked, and its size range from the manifest.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorOf, pixelsOf, serviceOn } from '../test-support/generator-service.node';
import type { ReferenceCase } from '../test-support/reference-cases';
import { type FaultServer, fixtureModelSet, newProfile, startFaultServer } from '../test-support/store.node';
import { checkpointSet, ortCpu, settingsOf } from '../test-support/tiny-fixture.node';

let server: FaultServer;
beforeAll(async () => {
  server = await startFaultServer(fixtureModelSet(checkpointSet.dir));
});
afterAll(async () => {
  await server.close();
});

/** The recorded diffusers picture of a case, as RGBA 8-bit values. */
function recordedRgba(testCase: ReferenceCase): Uint8Array {
  const recorded = checkpointSet.referenceTensor(testCase, 'output_image');
  if (!recorded) throw new Error(`${testCase.name} has no output_image`);
  const rgb = Array.from(recorded.data, Number);
  const rgba = new Uint8Array((rgb.length / 3) * 4);
  for (let i = 0; i < rgb.length / 3; i++) {
    for (let c = 0; c < 3; c++) rgba[i * 4 + c] = Math.round((rgb[i * 3 + c] ?? 0) * 255);
    rgba[i * 4 + 3] = 255;
  }
  return rgba;
}

function caseNamed(name: string): ReferenceCase {
  const found = checkpointSet.reference.cases.find((c) => c.name === name);
  if (!found) throw new Error(`no recorded case ${name}`);
  return found;
}

describe('GeneratorService on checkpoints made elsewhere', () => {
  it('says the set’s own scheduler and size range, and gives diffusers’ two-pipeline picture', async () => {
    const service = serviceOn(newProfile(), ortCpu);
    const info = await service.openModelSet({ kind: 'url', url: server.manifestUrl });
    expect(info.decoderScheduler).toBe('ddim');
    expect(info.sizeLimits).toMatchObject({ minSide: 64, maxSide: 512 });
    await service.downloadModels(['text-to-image'], () => {});

    for (const name of ['txt2img_64_neg_separate']) {
      const testCase = caseNamed(name);
      const settings = settingsOf(testCase);
      expect(settings.scheduler).toBeUndefined(); // the set's own
      const result = await service.generate(name, { settings, previews: false }, () => {});
      const image = result.images[0];
      expect(image?.settings.scheduler).toBeUndefined();
      const pixels = (await pixelsOf(result)) ?? new Uint8Array();
      const expected = recordedRgba(testCase);
      expect(pixels.length).toBe(expected.length);
      let worst = 0;
      for (let i = 0; i < expected.length; i++)
        worst = Math.max(worst, Math.abs((pixels[i] ?? 0) - (expected[i] ?? 0)));
      expect(worst, `${name}: 8-bit levels from diffusers`).toBeLessThanOrEqual(1);
    }
    // A scheduler this build does not know is refused by name.
    const settings = { ...settingsOf(caseNamed('txt2img_64_ddpm')), scheduler: 'euler' as 'ddpm' };
    expect(await errorOf(service.generate('bad', { settings, previews: false }, () => {}))).toMatchObject({
      code: 'INVALID_INPUT',
      message: expect.stringMatching(
        /Unknown scheduler "euler"; use one of ddpm, ddim, dpmpp-2m, or none for the set's own/,
      ),
    });
  });
});
