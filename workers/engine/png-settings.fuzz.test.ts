/**
 * Property-based fuzzing of the settings reader a re-imported PNG goes through: random bytes,
 * damaged Kandinsky Web PNGs, and settings chunks holding any JSON (random values, and real
 * settings with fields replaced by anything). Every case must end in valid settings or a
 * SettingsImportError / PngError: never another exception.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { repairChecksums, PNG_SIGNATURE as SIGNATURE } from '../../test-support/png-fuzz.node';
import { nodeZlib } from './node-zlib.node';
import { encodePng, PngError } from './png';
import { encodeImagePng, readSettingsFromPng, SETTINGS_KEYWORD, SettingsImportError } from './png-settings';
import {
  DEFAULT_SETTINGS,
  type GenerationSettings,
  KANDINSKY_SIZE_LIMITS,
  validateSettings,
} from './settings';

const image = { width: 2, height: 2, data: new Uint8Array(16) };

function readsSettingsOrRefuses(png: Uint8Array): void {
  let settings: GenerationSettings;
  try {
    settings = readSettingsFromPng(png, KANDINSKY_SIZE_LIMITS);
  } catch (error) {
    if (error instanceof SettingsImportError || error instanceof PngError) return;
    throw error;
  }
  // What it returns is whole and valid.
  expect(validateSettings(settings, KANDINSKY_SIZE_LIMITS)).toEqual(settings);
}

const SETTINGS_FIELDS = [...Object.keys(DEFAULT_SETTINGS), 'priorStrength'];

/** Real settings with some fields replaced by anything JSON can hold (or removed). */
const nearlySettingsArb = fc
  .record({
    replaced: fc.dictionary(
      fc.constantFrom(...SETTINGS_FIELDS),
      fc.oneof(fc.jsonValue(), fc.constant(undefined)),
      {
        maxKeys: 3,
      },
    ),
    extra: fc.dictionary(fc.string({ maxLength: 8 }), fc.jsonValue(), { maxKeys: 2 }),
  })
  .map(({ replaced, extra }) =>
    JSON.stringify({ ...extra, ...DEFAULT_SETTINGS, prompt: 'a cat', width: 512, height: 512, ...replaced }),
  );

const chunkTextArb = fc.oneof(
  fc.jsonValue().map((value) => JSON.stringify(value)),
  nearlySettingsArb,
  fc.string({ maxLength: 200 }),
);

describe('settings chunk fuzzing (fast-check)', () => {
  it('ends random bytes in settings or a SettingsImportError / PngError', () => {
    const bytesArb = fc.oneof(
      fc.uint8Array({ maxLength: 300 }),
      fc.uint8Array({ maxLength: 300 }).map((tail) => Uint8Array.from([...SIGNATURE, ...tail])),
    );
    fc.assert(fc.property(bytesArb, readsSettingsOrRefuses), { numRuns: 3000 });
  });

  it('ends any settings chunk text in settings or a SettingsImportError', async () => {
    await fc.assert(
      fc.asyncProperty(chunkTextArb, async (text) => {
        readsSettingsOrRefuses(await encodePng(image, { [SETTINGS_KEYWORD]: text }, nodeZlib));
      }),
      { numRuns: 3000 },
    );
  });

  it('ends damaged Kandinsky Web PNGs (checksums repaired) in settings or a refusal', async () => {
    const png = await encodeImagePng(
      image,
      { ...DEFAULT_SETTINGS, prompt: 'a cat', width: 512, height: 512 },
      nodeZlib,
    );
    const editsArb = fc.array(
      fc.record({ at: fc.nat(png.length - 1), value: fc.integer({ min: 0, max: 255 }) }),
      {
        minLength: 1,
        maxLength: 6,
      },
    );
    fc.assert(
      fc.property(editsArb, fc.boolean(), (edits, repair) => {
        const damaged = png.slice();
        for (const { at, value } of edits) damaged[at] = value;
        readsSettingsOrRefuses(repair ? repairChecksums(damaged) : damaged);
      }),
      { numRuns: 3000 },
    );
  });
});
