// Property-based fuzzing of settings validation (issue 19): any value — near-valid settings with
// fields swapped for hostile ones, or anything at all — ends in the settings unchanged or a
// KandinskyError INVALID_INPUT naming a field; and what passes always runs at least one step.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { KandinskyError } from '../errors';
import {
  DECODER_SCHEDULERS,
  DEFAULT_SETTINGS,
  type GenerationSettings,
  KANDINSKY_SIZE_LIMITS,
  LIMITS,
  MODES,
  SettingsError,
  type SettingsInputs,
  validateSettings,
} from './settings';

const FIELDS = Object.keys({
  ...DEFAULT_SETTINGS,
  priorStrength: 0.5,
  seedMode: 'combined',
  scheduler: 'ddpm',
}) as (keyof GenerationSettings)[];

function check(settings: unknown, inputs: SettingsInputs): void {
  let accepted: GenerationSettings;
  try {
    accepted = validateSettings(settings as GenerationSettings, KANDINSKY_SIZE_LIMITS, inputs);
  } catch (error) {
    // Not just the code: the class, so a TypeError with a code-like shape can't pass.
    expect(error).toBeInstanceOf(SettingsError);
    expect(error).toBeInstanceOf(KandinskyError);
    expect((error as SettingsError).code).toBe('INVALID_INPUT');
    expect(FIELDS).toContain((error as SettingsError).field);
    expect((error as Error).message.length).toBeLessThan(500);
    return;
  }
  // The same settings, each side rounded up to a multiple of 64 (as diffusers does), within range.
  const given = settings as GenerationSettings;
  const up = (side: number) => Math.ceil(side / 64) * 64;
  expect(accepted).toEqual({ ...given, width: up(given.width), height: up(given.height) });
  for (const side of [accepted.width, accepted.height]) {
    expect(
      side % 64 === 0 && side >= KANDINSKY_SIZE_LIMITS.minSide && side <= KANDINSKY_SIZE_LIMITS.maxSide,
    ).toBe(true);
  }
  const { steps, priorSteps, strength, priorStrength, mode } = accepted;
  expect(Number.isInteger(steps) && steps >= LIMITS.steps.min && steps <= LIMITS.steps.max).toBe(true);
  expect(Number.isInteger(priorSteps) && priorSteps <= LIMITS.priorSteps.max).toBe(true);
  if (mode === 'img2img' || (mode === 'depth' && (inputs.fromPhoto || priorStrength !== undefined))) {
    expect(Math.trunc(steps * strength)).toBeGreaterThanOrEqual(1);
  }
  if (priorStrength !== undefined) expect(Math.trunc(priorSteps * priorStrength)).toBeGreaterThanOrEqual(1);
}

/** Values that break naive checks: wrong types, non-finite numbers, unprintable objects. */
const hostile = fc.oneof(
  fc.constantFrom(
    Number.NaN,
    Number.POSITIVE_INFINITY,
    Number.NEGATIVE_INFINITY,
    -0,
    2 ** 53,
    1e308,
    Number.MIN_VALUE,
    null,
    undefined,
    '',
    '5',
    [],
    {},
    Object.create(null),
    Symbol('x'),
    10n,
    () => 1,
  ),
  fc.anything({ withNullPrototype: true, withBigInt: true, withMap: true, withSet: true, maxDepth: 2 }),
);

/** A side in pixels: mostly one a Kandinsky set takes (multiples of 64), so many cases pass. */
const side = () =>
  fc.oneof(
    { arbitrary: fc.integer({ min: 4, max: 32 }).map((n) => n * 64), weight: 4 },
    { arbitrary: fc.integer({ min: 0, max: 4096 }), weight: 1 },
  );

/** A plausible value per field, from the full range a person or a saved PNG could give. */
const plausible: { [K in keyof GenerationSettings]-?: fc.Arbitrary<unknown> } = {
  mode: fc.constantFrom(...MODES),
  prompt: fc.string({ maxLength: 40 }),
  negativePrompt: fc.string({ maxLength: 40 }),
  seed: fc.oneof(fc.nat(), fc.maxSafeNat()),
  width: side(),
  height: side(),
  priorSteps: fc.integer({ min: -2, max: 120 }),
  priorGuidance: fc.double({ min: -1, max: 40 }),
  steps: fc.integer({ min: -2, max: 250 }),
  guidance: fc.double({ min: -1, max: 40 }),
  scheduler: fc.constantFrom(...DECODER_SCHEDULERS, 'euler', undefined),
  numImages: fc.integer({ min: 0, max: 10 }),
  strength: fc.double({ min: 0, max: 1.1, noNaN: true }),
  priorStrength: fc.option(fc.double({ min: 0, max: 1.1, noNaN: true }), { nil: undefined }),
  seedMode: fc.option(fc.constantFrom('combined', 'separate', 'per-step'), { nil: undefined }),
};

const settingsArb = fc
  .record(plausible)
  .chain((base) =>
    fc
      .array(fc.tuple(fc.constantFrom(...FIELDS), hostile), { maxLength: 2 })
      .map((swaps) => ({ ...base, ...Object.fromEntries(swaps) })),
  );
const inputsArb: fc.Arbitrary<SettingsInputs> = fc.record({ fromPhoto: fc.boolean() }, { requiredKeys: [] });

describe('settings fuzzing', () => {
  it('near-valid settings with hostile fields: valid settings or INVALID_INPUT', () => {
    fc.assert(
      fc.property(settingsArb, inputsArb, (settings, inputs) => check(settings, inputs)),
      { numRuns: 3000 },
    );
  });

  it('anything at all: INVALID_INPUT, never another exception', () => {
    fc.assert(
      fc.property(hostile, inputsArb, (value, inputs) => check(value, inputs)),
      { numRuns: 1000 },
    );
  });
});
