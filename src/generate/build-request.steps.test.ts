// The generate screen refuses a run that would do no denoising step where the picture is the
// starting point (image→image, depth from a photo), and lets the same settings through for depth
// from a depth map, which starts from noise (issue 19).
import { describe, expect, it } from 'vitest';
import { DEFAULT_SETTINGS, KANDINSKY_SIZE_LIMITS } from '../../workers/engine/settings';
import { EMPTY_MASK } from '../inpaint/mask';
import { buildRequest, type ScreenInputs } from './build-request';

const inputs: ScreenInputs = {
  tab: 'img2img',
  settings: { ...DEFAULT_SETTINGS, prompt: 'a fox', steps: 3, strength: 0.3 },
  randomSeed: null,
  fitSource: (width, height) => ({ width, height, data: new Uint8Array(width * height * 4) }),
  depthSource: 'photo',
  mask: EMPTY_MASK,
  mixDrafts: [],
};

describe('buildRequest: steps × strength', () => {
  it('names strength when int(steps × strength) is 0 for image→image and depth from a photo', () => {
    for (const tab of ['img2img', 'depth'] as const) {
      expect(buildRequest({ ...inputs, tab }, KANDINSKY_SIZE_LIMITS)).toMatchObject({
        ok: false,
        field: 'strength',
        message: expect.stringMatching(/runs no denoising step/),
      });
    }
  });

  it('lets depth from a depth map through, and image→image once a step remains', () => {
    expect(
      buildRequest({ ...inputs, tab: 'depth', depthSource: 'depth-map' }, KANDINSKY_SIZE_LIMITS).ok,
    ).toBe(true);
    const fourSteps = { ...inputs, settings: { ...inputs.settings, steps: 4 } };
    expect(buildRequest(fourSteps, KANDINSKY_SIZE_LIMITS).ok).toBe(true);
  });

  it('names priorStrength when int(priorSteps × priorStrength) is 0', () => {
    const settings = { ...inputs.settings, steps: 50, priorSteps: 4, priorStrength: 0.2 };
    expect(buildRequest({ ...inputs, settings }, KANDINSKY_SIZE_LIMITS)).toMatchObject({
      ok: false,
      field: 'priorStrength',
    });
  });
});
