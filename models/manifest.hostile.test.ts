// Hostile manifests (issue 19): absurd numbers, prototype keys, a byte-order mark, oversized or
// deeply nested text. Each is refused with a ManifestError naming the field, before anything
// allocates or runs on its numbers, or read the same on every path.
import { readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import {
  MANIFEST_LIMITS,
  ManifestError,
  type ManifestErrorCode,
  manifestFromJson,
  parseManifest,
} from './manifest';

const FIXTURE = join(dirname(fileURLToPath(import.meta.url)), 'fixtures', 'tiny', 'manifest.json');
const fixtureText = readFileSync(FIXTURE, 'utf8');
const good: unknown = JSON.parse(fixtureText);

// biome-ignore lint/suspicious/noExplicitAny: tests edit raw JSON on purpose
type Json = any;

function refusal(run: () => unknown): ManifestError {
  try {
    run();
  } catch (error) {
    if (error instanceof ManifestError) return error;
    throw error;
  }
  throw new Error('manifest was accepted');
}

function edited(edit: (m: Json) => void): Json {
  const manifest = structuredClone(good) as Json;
  edit(manifest);
  return manifest;
}

function expectRefused(edit: (m: Json) => void, field: string, code: ManifestErrorCode = 'MANIFEST_INVALID') {
  const error = refusal(() => parseManifest(edited(edit)));
  expect({ code: error.code, field: error.field }).toEqual({ code, field });
  expect(error.message).toContain(field);
}

describe('parseManifest: every number has sensible bounds', () => {
  it('refuses a scheduler with a billion training timesteps (it would allocate that many betas)', () => {
    expectRefused(
      (m) => (m.schedulers.decoder.num_train_timesteps = 1_000_000_000),
      'schedulers.decoder.num_train_timesteps',
    );
    expectRefused(
      (m) => (m.schedulers.prior.num_train_timesteps = 1_000_000_000),
      'schedulers.prior.num_train_timesteps',
    );
    // Fewer training timesteps than the steps the app lets a person ask for fails mid-run.
    expectRefused(
      (m) => (m.schedulers.decoder.num_train_timesteps = 10),
      'schedulers.decoder.num_train_timesteps',
    );
  });

  it('refuses betas outside (0, 1), decreasing betas, and absurd clip ranges and offsets', () => {
    expectRefused((m) => (m.schedulers.decoder.beta_start = 1.5), 'schedulers.decoder.beta_start');
    expectRefused((m) => (m.schedulers.decoder.beta_end = 1), 'schedulers.decoder.beta_end');
    expectRefused((m) => (m.schedulers.decoder.beta_end = 0), 'schedulers.decoder.beta_end');
    expectRefused(
      (m) => (m.schedulers.decoder.beta_start = 0.5),
      'schedulers.decoder.beta_end',
      'MANIFEST_INCONSISTENT',
    );
    expectRefused(
      (m) => (m.schedulers.decoder.clip_sample_range = 1e300),
      'schedulers.decoder.clip_sample_range',
    );
    expectRefused(
      (m) => (m.schedulers.prior.clip_sample_range = 1e300),
      'schedulers.prior.clip_sample_range',
    );
    expectRefused((m) => (m.schedulers.decoder.steps_offset = 5000), 'schedulers.decoder.steps_offset');
  });

  it('refuses absurd dims', () => {
    for (const field of [
      'textMaxLength',
      'textHiddenSize',
      'imageEmbedDim',
      'imageEncoderSize',
      'latentChannels',
      'movqScaleFactor',
      'depthImageSize',
    ]) {
      expectRefused((m) => (m.dims[field] = 2 ** 40), `dims.${field}`);
    }
  });

  it('refuses Infinity (JSON 1e999), huge tensor shapes and check numbers, and overlong lists', () => {
    const text = fixtureText.replace('"latentChannels": 4', '"latentChannels": 1e999');
    expect(refusal(() => manifestFromJson(text)).field).toBe('dims.latentChannels');
    expectRefused(
      (m) => (m.components.prior_clip_mean.shape = [2 ** 40, 2 ** 40]),
      'components.prior_clip_mean.shape[0]',
    );
    expectRefused(
      (m) => (m.components.prior_clip_mean.shape = Array(100).fill(1)),
      'components.prior_clip_mean.shape',
    );
    expectRefused(
      (m) => (m.components.text_encoder.check.maxAbsError = 1e300),
      'components.text_encoder.check.maxAbsError',
    );
    expectRefused(
      (m) => (m.components.unet.files = Array(5000).fill(m.components.unet.files[1])),
      'components.unet.files',
    );
    expectRefused(
      (m) => (m.components.unet.files[0].chunks.sha256 = Array(40_000).fill('0'.repeat(64))),
      'components.unet.files[0].chunks.sha256',
    );
    expectRefused(
      (m) => (m.contractVersion = 'x'.repeat(1000)),
      'contractVersion',
      'MANIFEST_UNSUPPORTED_VERSION',
    );
    expect(
      refusal(() => parseManifest(edited((m) => (m.contractVersion = 'x'.repeat(1000))))).message.length,
    ).toBeLessThan(200);
  });

  it('refuses variants with absurd sizes and too many variants', () => {
    const variant = {
      precision: 'int8',
      manifest: 'int8/manifest.json',
      requiredFeatures: [],
      textToImageBytes: 1000,
    };
    expect(() => parseManifest(edited((m) => (m.variants = [variant])))).not.toThrow();
    expectRefused(
      (m) => (m.variants = [{ ...variant, textToImageBytes: 2 ** 60 }]),
      'variants[0].textToImageBytes',
    );
    expectRefused((m) => (m.variants = Array(100).fill(variant)), 'variants');
  });

  it('refuses quality sample pictures of absurd sizes, paths and prompts, and prototype keys in them', () => {
    const picture = { path: 'quality/picture.png', bytes: 4096, sha256: 'c'.repeat(64) };
    const withSample = (sample: Record<string, unknown>) => (m: Json) => {
      m.quality = {
        psnr: 30,
        ssim: 0.9,
        embeddingCosine: 1,
        prompts: 1,
        seeds: 1,
        steps: 10,
        priorSteps: 10,
        size: 64,
        sample: {
          prompt: 'a red cat',
          seed: 0,
          reference: { ...picture, path: 'quality/reference.png' },
          picture,
          ...sample,
        },
      };
    };
    expect(() => parseManifest(edited(withSample({})))).not.toThrow();
    for (const bytes of [1e300, 2 ** 53, Number.MAX_SAFE_INTEGER]) {
      expectRefused(
        withSample({ picture: { ...picture, bytes } }),
        'quality.sample.picture.bytes',
        'MANIFEST_INVALID_SIZE',
      );
    }
    expectRefused(
      withSample({ picture: { ...picture, path: `${'a/'.repeat(150)}p.png` } }),
      'quality.sample.picture.path',
      'MANIFEST_UNSAFE_PATH',
    );
    expectRefused(withSample({ prompt: 'x'.repeat(1_000_000) }), 'quality.sample.prompt');
    expectRefused(withSample({ seed: 1e300 }), 'quality.sample.seed');
    const text = JSON.stringify(edited(withSample({}))).replace(
      '"picture":{',
      '"picture":{"__proto__":{"bytes":1},',
    );
    const error = refusal(() => manifestFromJson(text));
    expect({ code: error.code, field: error.field }).toEqual({
      code: 'MANIFEST_UNSAFE_KEY',
      field: 'quality.sample.picture.__proto__',
    });
  });
});

describe('parseManifest: prototype keys', () => {
  it('refuses components.__proto__ (accepted and silently dropped before), naming it', () => {
    const text = fixtureText.replace(
      '"components": {',
      '"components": { "__proto__": { "depth_estimator": 1 },',
    );
    const error = refusal(() => manifestFromJson(text));
    expect({ code: error.code, field: error.field }).toEqual({
      code: 'MANIFEST_UNSAFE_KEY',
      field: 'components.__proto__',
    });
    // JSON.parse makes it an own property, so parseManifest sees it too.
    expect(refusal(() => parseManifest(JSON.parse(text))).code).toBe('MANIFEST_UNSAFE_KEY');
  });

  it('refuses constructor and prototype keys anywhere', () => {
    for (const key of ['constructor', 'prototype', '__proto__']) {
      const text = fixtureText.replace('"dims": {', `"dims": { "${key}": {},`);
      const error = refusal(() => manifestFromJson(text));
      expect({ code: error.code, field: error.field }).toEqual({
        code: 'MANIFEST_UNSAFE_KEY',
        field: `dims.${key}`,
      });
    }
    const nested = edited((m) => (m.components.unet.files[2].chunks = JSON.parse('{"constructor": 1}')));
    expect(refusal(() => parseManifest(nested)).field).toBe('components.unet.files[2].chunks.constructor');
  });
});

describe('manifestFromJson: one reading of manifest.json for every path', () => {
  const bom = new Uint8Array([0xef, 0xbb, 0xbf]);
  const bytes = new TextEncoder().encode(fixtureText);
  const withBom = new Uint8Array([...bom, ...bytes]);

  it('reads bytes with a UTF-8 byte-order mark as fetch and File.text() do', async () => {
    const viaFetch = await new Response(withBom).text();
    expect(manifestFromJson(withBom)).toEqual(manifestFromJson(viaFetch));
    expect(manifestFromJson(withBom)).toEqual(parseManifest(good));
    // A second mark is not whitespace to JSON on either path.
    const twice = new Uint8Array([...bom, ...withBom]);
    expect(refusal(() => manifestFromJson(twice)).code).toBe('MANIFEST_NOT_JSON');
    expect(refusal(() => manifestFromJson(new TextDecoder().decode(twice))).code).toBe('MANIFEST_NOT_JSON');
  });

  it('refuses text that is not JSON with its own code', () => {
    const error = refusal(() => manifestFromJson('{"manifestVersion": 1,'));
    expect(error.code).toBe('MANIFEST_NOT_JSON');
    expect(error.message).toMatch(/not valid JSON/);
  });

  it('refuses oversized text before parsing it', () => {
    const huge = ' '.repeat(MANIFEST_LIMITS.textBytes + 1);
    expect(refusal(() => manifestFromJson(huge)).code).toBe('MANIFEST_TOO_LARGE');
    expect(refusal(() => manifestFromJson(new Uint8Array(MANIFEST_LIMITS.textBytes + 1))).code).toBe(
      'MANIFEST_TOO_LARGE',
    );
  });

  it('refuses deep nesting without overflowing the stack', () => {
    const depth = 200_000;
    const text = `{"dims": ${'['.repeat(depth)}${']'.repeat(depth)}}`;
    const error = refusal(() => manifestFromJson(text));
    expect(error.code).toBe('MANIFEST_TOO_LARGE');
    expect(error.field).toMatch(/^dims(\[0\])+$/);
  });
});
