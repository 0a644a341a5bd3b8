import { describe, expect, it } from 'vitest';
import { DEFAULT_SETTINGS, KANDINSKY_SIZE_LIMITS } from '../../workers/engine/settings';
import { EMPTY_MASK, invertMask } from '../inpaint/mask';
import { buildRequest, type ScreenInputs } from './build-request';

const fitted: { width: number; height: number }[] = [];
const inputs: ScreenInputs = {
  tab: 'txt2img',
  settings: { ...DEFAULT_SETTINGS, prompt: 'a fox', seed: 5, width: 1344, height: 768 },
  randomSeed: null,
  fitSource: (width, height) => {
    fitted.push({ width, height });
    return { width, height, data: new Uint8Array(width * height * 4) };
  },
  depthSource: 'photo',
  mask: EMPTY_MASK,
  mixDrafts: [],
};

describe('buildRequest', () => {
  it('sends text→image with the fixed seed and previews on', () => {
    const check = buildRequest(inputs, KANDINSKY_SIZE_LIMITS);
    expect(check).toEqual({
      ok: true,
      request: { settings: { ...inputs.settings, mode: 'txt2img' }, previews: true },
    });
  });

  it('uses the random seed when one was drawn', () => {
    const check = buildRequest({ ...inputs, randomSeed: 777 }, KANDINSKY_SIZE_LIMITS);
    expect(check.ok && check.request.settings.seed).toBe(777);
  });

  it('names the field a setting is wrong in', () => {
    const check = buildRequest(
      { ...inputs, settings: { ...inputs.settings, steps: 0 } },
      KANDINSKY_SIZE_LIMITS,
    );
    expect(check).toMatchObject({ ok: false, field: 'steps' });
    const empty = buildRequest(
      { ...inputs, settings: { ...inputs.settings, prompt: ' ' } },
      KANDINSKY_SIZE_LIMITS,
    );
    expect(empty).toMatchObject({ ok: false, field: 'prompt' });
  });

  it('fits the picture to the output size for image→image', () => {
    fitted.length = 0;
    const check = buildRequest({ ...inputs, tab: 'img2img' }, KANDINSKY_SIZE_LIMITS);
    expect(fitted).toEqual([{ width: 1344, height: 768 }]);
    expect(check.ok && check.request.settings.mode).toBe('img2img');
    expect(check.ok && check.request.initImage?.width).toBe(1344);
    const none = buildRequest({ ...inputs, tab: 'img2img', fitSource: () => null }, KANDINSKY_SIZE_LIMITS);
    expect(none).toMatchObject({ ok: false, field: 'image' });
  });

  it("keeps the picture's look (prior strength) only for image→image and depth from a photo", () => {
    const withLook = { ...inputs, settings: { ...inputs.settings, priorStrength: 0.85 } };
    const strengthOf = (change: Partial<ScreenInputs>) => {
      const check = buildRequest({ ...withLook, ...change }, KANDINSKY_SIZE_LIMITS);
      expect(check.ok).toBe(true);
      return check.ok ? check.request.settings.priorStrength : 'refused';
    };
    expect(strengthOf({ tab: 'img2img' })).toBe(0.85);
    expect(strengthOf({ tab: 'depth', depthSource: 'photo' })).toBe(0.85);
    expect(strengthOf({ tab: 'depth', depthSource: 'depth-map' })).toBeUndefined();
    expect(strengthOf({ tab: 'txt2img' })).toBeUndefined();
  });

  it('sends an inpainting mask at the output size, and refuses an empty one', () => {
    expect(buildRequest({ ...inputs, tab: 'inpaint' }, KANDINSKY_SIZE_LIMITS)).toMatchObject({
      ok: false,
      field: 'mask',
    });
    const check = buildRequest(
      { ...inputs, tab: 'inpaint', mask: invertMask(EMPTY_MASK) },
      KANDINSKY_SIZE_LIMITS,
    );
    if (!check.ok) throw new Error(check.message);
    expect(check.request.mask?.width).toBe(1344);
    expect(check.request.mask?.height).toBe(768);
    expect(check.request.mask?.data.every((v) => v === 255)).toBe(true);
  });

  it('sends a depth map as depthMap and a photo as initImage', () => {
    const map = buildRequest({ ...inputs, tab: 'depth', depthSource: 'depth-map' }, KANDINSKY_SIZE_LIMITS);
    expect(map.ok && map.request.depthMap !== undefined && map.request.initImage === undefined).toBe(true);
    const photo = buildRequest({ ...inputs, tab: 'depth' }, KANDINSKY_SIZE_LIMITS);
    expect(photo.ok && photo.request.initImage !== undefined && photo.request.depthMap === undefined).toBe(
      true,
    );
  });

  it('sends a mix through the text→image decoder with normalised weights', () => {
    const check = buildRequest(
      {
        ...inputs,
        tab: 'mix',
        mixDrafts: [
          { id: '1', kind: 'prompt', prompt: 'a castle', weight: 1 },
          { id: '2', kind: 'prompt', prompt: 'a forest', weight: 1 },
        ],
      },
      KANDINSKY_SIZE_LIMITS,
    );
    if (!check.ok) throw new Error(check.message);
    expect(check.request.settings.mode).toBe('txt2img');
    expect(check.request.mix?.map((m) => m.weight)).toEqual([0.5, 0.5]);
  });
});
