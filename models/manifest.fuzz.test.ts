// Property-based fuzzing of the manifest reader (issue 19): random JSON, mutations of the real
// fixture manifest and edits of its text each end in a Manifest or a ManifestError — never another
// exception, a hang or a huge allocation — and whatever is accepted holds the schema's bounds.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MANIFEST_LIMITS, type Manifest, ManifestError, manifestFromJson, parseManifest } from './manifest';

const FIXTURE = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'tiny', 'manifest.json');
const fixtureText = readFileSync(FIXTURE, 'utf8');
const fixture: unknown = JSON.parse(fixtureText);

/** Runs `read`; a ManifestError is an answer, anything else thrown fails the property. */
function outcome(read: () => Manifest): Manifest | ManifestError {
  try {
    return read();
  } catch (error) {
    if (error instanceof ManifestError) return error;
    throw error;
  }
}

/** What every accepted manifest holds, whatever it was made from. */
function checkAccepted(result: Manifest | ManifestError): void {
  if (result instanceof ManifestError) {
    expect(result.message.length).toBeLessThan(2000);
    return;
  }
  const { prior, decoder } = result.schedulers;
  for (const steps of [prior.num_train_timesteps, decoder.num_train_timesteps]) {
    expect(steps ?? 1000).toBeLessThanOrEqual(MANIFEST_LIMITS.trainTimesteps.max);
  }
  if (!decoder.trained_betas) {
    // diffusers' defaults where a config leaves them out.
    expect(decoder.beta_start ?? 0.0001).toBeLessThan(decoder.beta_end ?? 0.02);
    expect(decoder.beta_end ?? 0.02).toBeLessThan(1);
  }
  // No prototype was swapped in: every component is an own, validated entry.
  expect(Object.getPrototypeOf(result.components)).toBe(Object.prototype);
}

/** Every path to a value in a JSON tree. */
function paths(value: unknown, prefix: (string | number)[] = []): (string | number)[][] {
  if (typeof value !== 'object' || value === null) return [prefix];
  const keys: (string | number)[] = Array.isArray(value) ? value.map((_, i) => i) : Object.keys(value);
  return [
    prefix,
    ...keys.flatMap((key) => paths((value as Record<string | number, unknown>)[key], [...prefix, key])),
  ];
}
const fixturePaths = paths(fixture);

/** Numbers that break naive checks. */
const nastyNumber = fc.constantFrom(
  0,
  -0,
  -1,
  0.5,
  1,
  1e9,
  2 ** 31,
  2 ** 53,
  2 ** 53 + 2,
  1e308,
  Number.MAX_VALUE,
  Number.MIN_VALUE,
  Number.NaN,
  Number.POSITIVE_INFINITY,
  Number.NEGATIVE_INFINITY,
);
const nastyKey = fc.constantFrom(
  '__proto__',
  'constructor',
  'prototype',
  'toString',
  'hasOwnProperty',
  '',
  'unet',
);
const replacement = fc.oneof(
  nastyNumber,
  fc.double(),
  fc.integer(),
  fc.jsonValue({ maxDepth: 3 }),
  fc.string({ maxLength: 300 }),
  fc.constantFrom(null, true, [], {}, '../../etc/passwd', 'https://example.com/x'),
);

type Mutation =
  | { kind: 'set'; at: number; value: unknown }
  | { kind: 'delete'; at: number }
  | { kind: 'add'; at: number; key: string; value: unknown };
const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant('set' as const), at: fc.nat(), value: replacement }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat() }),
  fc.record({ kind: fc.constant('add' as const), at: fc.nat(), key: nastyKey, value: replacement }),
);

/** The fixture with the mutations applied (own properties, as JSON.parse would make them). */
function mutated(mutations: readonly Mutation[]): unknown {
  const root = structuredClone(fixture) as Record<string | number, unknown>;
  for (const m of mutations) {
    const path = fixturePaths[m.at % fixturePaths.length] ?? [];
    if (path.length === 0) continue;
    let parent: unknown = root;
    for (const key of path.slice(0, -1))
      parent = (parent as Record<string | number, unknown> | undefined)?.[key];
    if (typeof parent !== 'object' || parent === null) continue;
    const last = path[path.length - 1] as string | number;
    const target = parent as Record<string | number, unknown>;
    if (m.kind === 'set') target[last] = m.value;
    else if (m.kind === 'delete') delete target[last];
    else {
      const holder = target[last];
      if (typeof holder === 'object' && holder !== null) {
        Object.defineProperty(holder, m.key, {
          value: m.value,
          enumerable: true,
          writable: true,
          configurable: true,
        });
      }
    }
  }
  return root;
}

describe('manifest fuzzing', () => {
  it('random JSON values: a Manifest or a ManifestError', () => {
    fc.assert(
      fc.property(fc.jsonValue({ maxDepth: 6 }), (json) => {
        checkAccepted(outcome(() => parseManifest(json)));
        checkAccepted(outcome(() => manifestFromJson(JSON.stringify(json) ?? 'null')));
      }),
      { numRuns: 1000 },
    );
  });

  it('mutations of the fixture manifest (values, deletions, prototype and other keys)', () => {
    fc.assert(
      fc.property(fc.array(mutation, { minLength: 1, maxLength: 4 }), (mutations) => {
        const json = mutated(mutations);
        checkAccepted(outcome(() => parseManifest(json)));
      }),
      { numRuns: 1000 },
    );
  });

  it('edits of the fixture text and its bytes (a BOM, cut, spliced, bytes flipped)', () => {
    const bytes = new TextEncoder().encode(fixtureText);
    const edit = fc.record({
      at: fc.nat({ max: bytes.length }),
      cut: fc.nat({ max: 40 }),
      insert: fc.uint8Array({ maxLength: 12 }),
      bom: fc.boolean(),
    });
    fc.assert(
      fc.property(fc.array(edit, { minLength: 1, maxLength: 3 }), (edits) => {
        let current = bytes;
        for (const e of edits) {
          const at = Math.min(e.at, current.length);
          const head = e.bom ? 3 : 0;
          const tail = current.subarray(Math.min(current.length, at + e.cut));
          const next = new Uint8Array(head + at + e.insert.length + tail.length);
          next.set([0xef, 0xbb, 0xbf].slice(0, head));
          next.set(current.subarray(0, at), head);
          next.set(e.insert, head + at);
          next.set(tail, head + at + e.insert.length);
          current = next;
        }
        checkAccepted(outcome(() => manifestFromJson(current)));
      }),
      { numRuns: 500 },
    );
  });

  it('scheduler configs: any field of the decoder and prior classes set to any value', () => {
    // The checkpoint set's manifest carries a DDIM decoder config as diffusers saves it.
    const checkpointManifest = JSON.parse(
      readFileSync(join(dirname(FIXTURE), '..', 'tiny-diffusers', 'manifest.json'), 'utf8'),
    ) as { schedulers: Record<'prior' | 'decoder', Record<string, unknown>> };
    const field = fc.constantFrom(...SCHEDULER_FIELDS);
    const value = fc.oneof(replacement, fc.constantFrom(...SCHEDULER_VALUES));
    fc.assert(
      fc.property(
        fc.constantFrom('prior' as const, 'decoder' as const),
        fc.array(fc.tuple(field, value), { minLength: 1, maxLength: 4 }),
        (which, edits) => {
          const json = structuredClone(checkpointManifest);
          for (const [key, v] of edits) json.schedulers[which][key] = v;
          const result = outcome(() => parseManifest(json));
          checkAccepted(result);
          // A refusal names a scheduler field (or the manifest's first bad field).
          if (result instanceof ManifestError && result.field.startsWith('schedulers.')) {
            expect(result.message).toMatch(/schedulers\.(prior|decoder)/);
          }
        },
      ),
      { numRuns: 300 },
    );
  });
});

/** Every config field diffusers 0.31's UnCLIP, DDPM, DDIM and DPM-Solver++ schedulers read, and some they do not. */
const SCHEDULER_FIELDS = [
  'class_name',
  'num_train_timesteps',
  'beta_start',
  'beta_end',
  'beta_schedule',
  'trained_betas',
  'variance_type',
  'clip_sample',
  'clip_sample_range',
  'prediction_type',
  'thresholding',
  'dynamic_thresholding_ratio',
  'sample_max_value',
  'timestep_spacing',
  'steps_offset',
  'rescale_betas_zero_snr',
  'set_alpha_to_one',
  'solver_order',
  'algorithm_type',
  'solver_type',
  'lower_order_final',
  'euler_at_final',
  'use_karras_sigmas',
  'use_exponential_sigmas',
  'use_beta_sigmas',
  'use_lu_lambdas',
  'final_sigmas_type',
  'lambda_min_clipped',
  'skip_prk_steps',
  '_diffusers_version',
  '_class_name',
  'interpolation_type',
] as const;

/** Values those fields take in diffusers, supported here or not. */
const SCHEDULER_VALUES = [
  'UnCLIPScheduler',
  'DDPMScheduler',
  'DDIMScheduler',
  'DPMSolverMultistepScheduler',
  'EulerDiscreteScheduler',
  'linear',
  'scaled_linear',
  'squaredcos_cap_v2',
  'sigmoid',
  'fixed_small',
  'fixed_small_log',
  'fixed_large',
  'fixed_large_log',
  'learned_range',
  'epsilon',
  'sample',
  'v_prediction',
  'leading',
  'trailing',
  'linspace',
  'dpmsolver++',
  'sde-dpmsolver++',
  'midpoint',
  'heun',
  'zero',
  'sigma_min',
  0,
  1,
  2,
  3,
  0.00085,
  0.012,
  0.995,
  1000,
  [0.1, 0.2],
  Array.from({ length: 1000 }, (_, i) => 0.0001 + i * 1e-5),
];
