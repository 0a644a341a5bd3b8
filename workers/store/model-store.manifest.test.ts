// The store reads manifest.json as the CLI does (models/manifest.ts manifestFromJson): a byte-order
// mark is read the same, and hostile manifests (prototype keys, absurd numbers) are refused with
// MANIFEST_INVALID carrying the manifest's own code and field.
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { manifestFromJson } from '../../models/manifest';
import { newProfile } from '../../test-support/store.node';
import { TINY_DIR } from '../../test-support/tiny-fixture.node';
import { FileSource } from './model-source';
import { StoreError } from './store-error';

const text = readFileSync(`${TINY_DIR}manifest.json`, 'utf8');
const BOM = new Uint8Array([0xef, 0xbb, 0xbf]);

function picked(bytes: Uint8Array): FileSource {
  return new FileSource(new Map([['manifest.json', new Blob([bytes])]]));
}

async function storeError(bytes: Uint8Array): Promise<StoreError> {
  const error = await newProfile()
    .openStore()
    .loadManifest(picked(bytes))
    .catch((e: unknown) => e);
  if (!(error instanceof StoreError)) throw new Error(`expected a StoreError, got ${String(error)}`);
  return error;
}

describe('ModelStore.loadManifest', () => {
  it('reads a manifest with a UTF-8 byte-order mark as the CLI reads the same bytes', async () => {
    const bytes = new Uint8Array([...BOM, ...new TextEncoder().encode(text)]);
    const manifest = await newProfile().openStore().loadManifest(picked(bytes));
    expect(manifest).toEqual(manifestFromJson(bytes));
  });

  it('refuses components.__proto__ with the manifest code and field', async () => {
    const hostile = text.replace('"components": {', '"components": { "__proto__": { "depth_estimator": 1 },');
    const error = await storeError(new TextEncoder().encode(hostile));
    expect(error.code).toBe('MANIFEST_INVALID');
    expect(error.details).toMatchObject({
      manifestCode: 'MANIFEST_UNSAFE_KEY',
      field: 'components.__proto__',
    });
  });

  it('refuses a billion training timesteps naming the field', async () => {
    const hostile = text.replace('"num_train_timesteps": 1000,', '"num_train_timesteps": 1000000000,');
    const error = await storeError(new TextEncoder().encode(hostile));
    expect(error.details).toMatchObject({ field: 'schedulers.prior.num_train_timesteps' });
    expect(error.message).toMatch(/whole number from \d+ to 10000/);
  });

  it('still says "not valid JSON" for text that is not JSON', async () => {
    const error = await storeError(new TextEncoder().encode('{"manifestVersion":'));
    expect(error.message).toMatch(/manifest\.json from the picked folder is not valid JSON\./);
    expect(error.cause).toMatchObject({ code: 'MANIFEST_NOT_JSON' });
  });
});
