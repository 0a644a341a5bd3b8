import { describe, expect, it } from 'vitest';
import { DEFAULT_SETTINGS, type GenerationSettings } from '../../workers/engine/settings';
import { DEFAULT_FORM, restoreForm, type StoredForm } from './form-storage';

const edited: StoredForm = {
  tab: 'img2img',
  randomSeed: false,
  settings: {
    ...DEFAULT_SETTINGS,
    mode: 'img2img',
    prompt: 'a red fox in deep snow',
    negativePrompt: 'blurry',
    width: 1344,
    height: 768,
    steps: 30,
    guidance: 6.5,
    seed: 123456789,
    scheduler: 'dpmpp-2m',
    strength: 0.45,
    numImages: 3,
    priorStrength: 0.7,
    seedMode: 'separate',
  },
};

describe('the stored form', () => {
  it('restores every setting it was saved with, through JSON', () => {
    expect(restoreForm(JSON.parse(JSON.stringify(edited)))).toEqual(edited);
  });

  it('restores the defaults as the defaults', () => {
    expect(restoreForm(JSON.parse(JSON.stringify(DEFAULT_FORM)))).toEqual(DEFAULT_FORM);
  });

  it('takes the default for each field of the wrong type, keeping the rest', () => {
    const restored = restoreForm({
      tab: 'sketch',
      randomSeed: 'no',
      settings: {
        ...edited.settings,
        steps: null, // NaN, as JSON writes it
        width: '1344',
        scheduler: 'euler',
        seedMode: 'other',
        mode: 'video',
        prompt: 42,
      },
    });
    const expected: GenerationSettings = {
      ...edited.settings,
      steps: DEFAULT_SETTINGS.steps,
      width: DEFAULT_SETTINGS.width,
      scheduler: DEFAULT_SETTINGS.scheduler,
      mode: DEFAULT_SETTINGS.mode,
      prompt: DEFAULT_SETTINGS.prompt,
    };
    delete (expected as { seedMode?: unknown }).seedMode;
    expect(restored).toEqual({ tab: 'txt2img', randomSeed: true, settings: expected });
  });

  it('ignores what is not a stored form at all', () => {
    for (const value of [null, 7, 'form', [edited]]) expect(restoreForm(value)).toBeUndefined();
    expect(restoreForm({})).toEqual(DEFAULT_FORM);
  });
});
