/** Node-only access to the reference fixtures recorded by models/export/reference_schedulers.py. */

import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { parseNpy, parseNpyFloat32 } from './npy';

export { compareFloat32 } from './compare';

export const SCHEDULER_FIXTURES_DIR = fileURLToPath(
  new URL('../models/fixtures/schedulers/', import.meta.url),
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
