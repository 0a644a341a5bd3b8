import { describe, expect, it } from 'vitest';
import { nodeZlib } from './node-zlib.node';
import { decodePng, encodePng } from './png';
import { encodeImagePng, readSettingsFromPng, SETTINGS_KEYWORD, SettingsImportError } from './png-settings';
import { DEFAULT_SETTINGS, type GenerationSettings, KANDINSKY_SIZE_LIMITS } from './settings';
import { webZlib } from './web-zlib';

const settings: GenerationSettings = {
  ...DEFAULT_SETTINGS,
  mode: 'img2img',
  prompt: 'a lighthouse in a storm, oil on canvas — 嵐の灯台',
  negativePrompt: 'blurry',
  seed: 2 ** 40 + 7,
  width: 1344,
  height: 768,
  steps: 30,
  guidance: 5.5,
  scheduler: 'dpmpp-2m',
  strength: 0.45,
};
const image = {
  width: 6,
  height: 4,
  data: Uint8Array.from({ length: 6 * 4 * 4 }, (_, i) => (i * 29) & 0xff),
};

describe('webZlib (CompressionStream), which the gallery writes with', () => {
  it('writes zlib that Node’s inflate reads, and reads Node’s deflate', async () => {
    const bytes = new TextEncoder().encode('kandinsky '.repeat(200));
    expect(await nodeZlib.inflate(await webZlib.deflate(bytes), bytes.length)).toEqual(bytes);
    expect(await webZlib.inflate(await nodeZlib.deflate(bytes), bytes.length)).toEqual(bytes);
  });
});

describe('PNG settings', () => {
  it('round-trips pixels and every setting through the PNG the gallery stores', async () => {
    const png = await encodeImagePng(image, settings, webZlib);
    expect(readSettingsFromPng(png, KANDINSKY_SIZE_LIMITS)).toEqual(settings);
    const decoded = await decodePng(png, webZlib, 1e6);
    expect(decoded.data).toEqual(image.data);
  });

  it('round-trips the optional prior strength, and reads settings saved without it', async () => {
    const depth: GenerationSettings = { ...settings, mode: 'depth', priorStrength: 0.85 };
    expect(readSettingsFromPng(await encodeImagePng(image, depth, webZlib), KANDINSKY_SIZE_LIMITS)).toEqual(
      depth,
    );
    const read = readSettingsFromPng(await encodeImagePng(image, settings, webZlib), KANDINSKY_SIZE_LIMITS);
    expect('priorStrength' in read).toBe(false);
  });

  it('round-trips "the set’s own scheduler" (none picked) and a picked one; refuses an unknown one', async () => {
    const { scheduler: _picked, ...own } = settings;
    const read = readSettingsFromPng(await encodeImagePng(image, own, webZlib), KANDINSKY_SIZE_LIMITS);
    expect(read).toEqual(own);
    expect('scheduler' in read).toBe(false);
    // PNGs from before sets named their own scheduler hold 'ddpm' (then the default): it stays picked.
    const ddpm = readSettingsFromPng(
      await encodeImagePng(image, { ...settings, scheduler: 'ddpm' }, webZlib),
      KANDINSKY_SIZE_LIMITS,
    );
    expect(ddpm.scheduler).toBe('ddpm');
    for (const scheduler of ['euler', 3]) {
      const png = await encodePng(
        image,
        { [SETTINGS_KEYWORD]: JSON.stringify({ ...settings, scheduler }) },
        webZlib,
      );
      expect(() => readSettingsFromPng(png, KANDINSKY_SIZE_LIMITS)).toThrow(SettingsImportError);
    }
  });

  it('round-trips the seed mode, and reads settings saved without it as combined', async () => {
    const separate: GenerationSettings = { ...settings, seedMode: 'separate' };
    const png = await encodeImagePng(image, separate, webZlib);
    expect(readSettingsFromPng(png, KANDINSKY_SIZE_LIMITS)).toEqual(separate);
    const read = readSettingsFromPng(await encodeImagePng(image, settings, webZlib), KANDINSKY_SIZE_LIMITS);
    expect(read.seedMode ?? 'combined').toBe('combined');
    const unknown = await encodePng(
      image,
      { [SETTINGS_KEYWORD]: JSON.stringify({ ...settings, seedMode: 'per-step' }) },
      webZlib,
    );
    expect(() => readSettingsFromPng(unknown, KANDINSKY_SIZE_LIMITS)).toThrow(/Unknown seed mode "per-step"/);
  });

  it('drops unknown fields from a newer app version', async () => {
    const png = await encodePng(
      image,
      { [SETTINGS_KEYWORD]: JSON.stringify({ ...settings, loraWeights: [1, 2] }) },
      nodeZlib,
    );
    expect(readSettingsFromPng(png, KANDINSKY_SIZE_LIMITS)).toEqual(settings);
  });

  const withText = (text: Record<string, string>) => encodePng(image, text, nodeZlib);

  it.each([
    ['garbage text', { [SETTINGS_KEYWORD]: '{not json at all' }, /not valid JSON/],
    ['a JSON array', { [SETTINGS_KEYWORD]: '[1,2,3]' }, /not a settings object/],
    ['no settings at all', { Comment: 'made elsewhere' }, /carries no Kandinsky Web settings/],
    [
      'a missing field',
      { [SETTINGS_KEYWORD]: JSON.stringify({ ...settings, steps: undefined }) },
      /have no “steps”/,
    ],
    [
      'a field of the wrong type',
      { [SETTINGS_KEYWORD]: JSON.stringify({ ...settings, seed: '42' }) },
      /“seed” of the wrong type/,
    ],
    [
      'a prior strength of the wrong type',
      { [SETTINGS_KEYWORD]: JSON.stringify({ ...settings, priorStrength: '0.5' }) },
      /“priorStrength” of the wrong type/,
    ],
    [
      'a size out of range',
      { [SETTINGS_KEYWORD]: JSON.stringify({ ...settings, width: 4096 }) },
      /out of range: The width must be from 256 to 2048 pixels; got 4096/,
    ],
  ])('refuses %s with a message saying why', async (_, text, message) => {
    const png = await withText(text);
    expect(() => readSettingsFromPng(png, KANDINSKY_SIZE_LIMITS)).toThrow(SettingsImportError);
    expect(() => readSettingsFromPng(png, KANDINSKY_SIZE_LIMITS)).toThrow(message);
  });

  it('refuses a file that is not a PNG', () => {
    const jpeg = Uint8Array.of(0xff, 0xd8, 0xff, 0xe0, 0, 0);
    expect(() => readSettingsFromPng(jpeg, KANDINSKY_SIZE_LIMITS)).toThrow(/not a PNG image/);
  });
});
