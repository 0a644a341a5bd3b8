/** Node-only access to the reference fixtures recorded by models/export/reference_schedulers.py. */

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseNpy, parseNpyFloat32 } from './npy';

export const SCHEDULER_FIXTURES_DIR = fileURLToPath(
  new URL('../../models/fixtures/schedulers/', import.meta.url),
);

export function readFixtureBytes(name: string): Uint8Array {
  return new Uint8Array(readFileSync(SCHEDULER_FIXTURES_DIR + name));
}

export function readFixtureJson<T>(name: string): T {
  return JSON.parse(readFileSync(SCHEDULER_FIXTURES_DIR + name, 'utf8')) as T;
}

export function readFixtureFloat32(name: string): { shape: readonly number[]; data: Float32Array } {
  return parseNpyFloat32(readFixtureBytes(name));
}

export function readFixtureNpy(name: string): ReturnType<typeof parseNpy> {
  return parseNpy(readFixtureBytes(name));
}

/** Largest |actual − expected| and the largest of it relative to max(|expected|, floor). */
export function compareFloat32(
  actual: ArrayLike<number>,
  expected: ArrayLike<number>,
  relativeFloor = 1,
): { maxAbs: number; maxRel: number; worstIndex: number } {
  if (actual.length !== expected.length) {
    throw new Error(`length mismatch: ${actual.length} vs ${expected.length}`);
  }
  let maxAbs = 0;
  let maxRel = 0;
  let worstIndex = -1;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i] as number;
    const e = expected[i] as number;
    const bothNaN = Number.isNaN(a) && Number.isNaN(e);
    const difference = a === e || bothNaN ? 0 : Math.abs(a - e);
    const abs = Number.isNaN(difference) ? Number.POSITIVE_INFINITY : difference;
    const rel = abs / Math.max(Math.abs(e), relativeFloor);
    if (rel > maxRel || worstIndex < 0) worstIndex = i;
    maxAbs = Math.max(maxAbs, abs);
    maxRel = Math.max(maxRel, rel);
  }
  return { maxAbs, maxRel, worstIndex };
}
