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
    expect(steps).toBeLessThanOrEqual(MANIFEST_LIMITS.trainTimesteps.max);
  }
  expect(decoder.beta_start).toBeLessThan(decoder.beta_end);
  expect(decoder.beta_end).toBeLessThan(1);
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
});
