/**
 * readQualitySample (workers/quality-sample.ts through the model-set session): a set whose
 * manifest lists quality samples for its own precision and for a variant, served by a real local
 * HTTP server, as a picked folder, and as the Hub hosts one (redirected to a content origin, under
 * the build's origin policy). The pictures come back byte for byte through the set's source;
 * tampered, resized, truncated, missing or non-PNG files are refused with their codes; an option
 * without a sample answers null.
 */
import { createHash } from 'node:crypto';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseManifest } from '../models/manifest';
import { errorOf, serviceOn } from '../test-support/generator-service.node';
import { startHostedSet } from '../test-support/hosted-set.node';
import {
  type FaultServer,
  FIXTURE_DIR,
  type ModelSet,
  newProfile,
  startFaultServer,
  tinyModelSet,
} from '../test-support/store.node';
import { ortCpu } from '../test-support/tiny-fixture.node';
import { nodeZlib } from './engine/node-zlib.node';
import { encodePng } from './engine/png';

/** A small RGBA test picture, PNG-encoded; `shade` makes each picture different. */
async function png(shade: number): Promise<Uint8Array> {
  const data = new Uint8Array(16 * 16 * 4).map((_, i) => (i % 4 === 3 ? 255 : (i * shade) & 0xff));
  return encodePng({ width: 16, height: 16, data }, {}, nodeZlib);
}

const sha = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');
const entry = (path: string, bytes: Uint8Array, listedBytes = bytes.byteLength) => ({
  path,
  bytes: listedBytes,
  sha256: sha(bytes),
});
const figure = (psnr: number) => ({
  psnr,
  ssim: 0.9,
  embeddingCosine: 0.999,
  prompts: 3,
  seeds: 2,
  steps: 10,
  priorSteps: 10,
  size: 64,
});

let server: FaultServer;
let pictures: Record<string, Uint8Array>;
let set: ModelSet;

beforeAll(async () => {
  const base = tinyModelSet();
  pictures = {
    'quality/reference.png': await png(3),
    'quality/picture.png': await png(5),
    'int4c6/quality/reference.png': await png(7),
    'int4c6/quality/picture.png': await png(11),
    'int8/quality/reference.png': await png(13),
    'int8/quality/picture.png': await png(17),
    'searched/quality/reference.png': new TextEncoder().encode('<html>not a picture</html>'),
    'searched/quality/picture.png': await png(19),
  };
  const p = (path: string) => pictures[path] as Uint8Array;
  const variant = (precision: string, quality: object) => ({
    precision,
    manifest: `manifest.${precision}.json`,
    requiredFeatures: [],
    textToImageBytes: 1000,
    quality,
  });
  const sampleOf = (prefix: string, seed: number, pictureBytes?: number) => ({
    prompt: `a red cat (${prefix || 'fp32'})`,
    seed,
    reference: entry(`${prefix}quality/reference.png`, p(`${prefix}quality/reference.png`)),
    picture: entry(`${prefix}quality/picture.png`, p(`${prefix}quality/picture.png`), pictureBytes),
  });
  const json = JSON.parse(base.manifestText);
  json.quality = { ...figure(61.5), sample: sampleOf('', 0) };
  json.variants = [
    variant('int4c6', { ...figure(22.25), sample: sampleOf('int4c6/', 42) }),
    variant('int4', figure(18)), // recorded without a sample
    // The manifest lists fewer bytes than the host serves.
    variant('int8', {
      ...figure(25),
      sample: sampleOf('int8/', 1, p('int8/quality/picture.png').byteLength - 9),
    }),
    // Hashes match, but the reference is no PNG.
    variant('searched', { ...figure(29), sample: sampleOf('searched/', 2) }),
  ];
  const manifestText = JSON.stringify(json);
  parseManifest(JSON.parse(manifestText)); // the schema takes it
  set = {
    manifestText,
    manifest: parseManifest(JSON.parse(manifestText)),
    files: new Map([...base.files, ...Object.entries(pictures)]),
  };
  server = await startFaultServer(set);
});
afterAll(async () => {
  await server.close();
});

async function openService() {
  const service = serviceOn(newProfile(), ortCpu);
  const info = await service.openModelSet({ kind: 'url', url: server.manifestUrl });
  return { service, info };
}

describe('readQualitySample', () => {
  it('reads the opened set’s pair and a variant’s byte for byte, nothing else, on demand', async () => {
    server.fault = () => undefined;
    const { service, info } = await openService();
    expect(info.precision.current).toBe('fp32');
    expect(info.precision.options.map((o) => [o.precision, o.quality?.sample?.seed ?? null])).toEqual([
      ['fp32', 0],
      ['int4c6', 42],
      ['int4', null],
      ['int8', 1],
      ['searched', 2],
    ]);
    const before = server.requests.length;
    const own = await service.readQualitySample('fp32');
    expect(own).toMatchObject({ precision: 'fp32', prompt: 'a red cat (fp32)', seed: 0, psnr: 61.5 });
    expect(own?.reference).toEqual(pictures['quality/reference.png']);
    expect(own?.picture).toEqual(pictures['quality/picture.png']);
    const variant = await service.readQualitySample('int4c6');
    expect(variant).toMatchObject({ prompt: 'a red cat (int4c6/)', seed: 42, psnr: 22.25 });
    expect(variant?.reference).toEqual(pictures['int4c6/quality/reference.png']);
    expect(variant?.picture).toEqual(pictures['int4c6/quality/picture.png']);
    // Exactly the four pictures, each once, whole (no Range), and no model file.
    expect(server.requests.slice(before).map((r) => [r.path, r.rangeStart])).toEqual([
      ['quality/reference.png', 0],
      ['quality/picture.png', 0],
      ['int4c6/quality/reference.png', 0],
      ['int4c6/quality/picture.png', 0],
    ]);
    await service.dispose();
  });

  it('answers null for an option without a sample, INVALID_INPUT for one the set lacks', async () => {
    server.fault = () => undefined;
    const { service } = await openService();
    const before = server.requests.length;
    expect(await service.readQualitySample('int4')).toBeNull();
    expect(await errorOf(service.readQualitySample('fp16'))).toMatchObject({ code: 'INVALID_INPUT' });
    expect(server.requests.length).toBe(before);
    const closed = serviceOn(newProfile(), ortCpu);
    expect(await errorOf(closed.readQualitySample('fp32'))).toMatchObject({ code: 'NOT_CACHED' });
    await service.dispose();
  });

  it('refuses a tampered, resized, cut short, missing or non-PNG picture with its code', async () => {
    const { service } = await openService();
    const failure = async (precision: 'fp32' | 'int8' | 'searched', fault: FaultServer['fault']) => {
      server.fault = fault;
      try {
        return await errorOf(service.readQualitySample(precision));
      } finally {
        server.fault = () => undefined;
      }
    };
    const onPicture =
      (fault: NonNullable<ReturnType<FaultServer['fault']>>): FaultServer['fault'] =>
      (r) =>
        r.path === 'quality/picture.png' ? fault : undefined;

    expect(await failure('fp32', onPicture({ kind: 'flip', atOffset: 40 }))).toMatchObject({
      code: 'INTEGRITY_MISMATCH',
      message: expect.stringContaining('quality/picture.png'),
    });
    // A one-byte flip inside the PNG signature is caught by the hash first, too.
    expect(await failure('fp32', onPicture({ kind: 'flip', atOffset: 1 }))).toMatchObject({
      code: 'INTEGRITY_MISMATCH',
    });
    expect(await failure('fp32', onPicture({ kind: 'truncate', afterBytes: 30 }))).toMatchObject({
      code: 'SIZE_MISMATCH',
      message: expect.stringContaining('ended after 30 bytes'),
    });
    expect(await failure('fp32', onPicture({ kind: 'wrong-length', extraBytes: 5 }))).toMatchObject({
      code: 'SIZE_MISMATCH',
    });
    expect(await failure('fp32', onPicture({ kind: 'status', status: 404 }))).toMatchObject({
      code: 'SOURCE_FILE_MISSING',
    });
    // The host serves more than the manifest lists: refused by its Content-Length, and without
    // one, by counting (reading stops past the listed bytes).
    expect(await failure('int8', () => undefined)).toMatchObject({ code: 'SIZE_MISMATCH' });
    const served = (pictures['int8/quality/picture.png'] as Uint8Array).byteLength;
    expect(
      await failure('int8', (r) =>
        r.path === 'int8/quality/picture.png' ? { kind: 'truncate', afterBytes: served } : undefined,
      ),
    ).toMatchObject({ code: 'SIZE_MISMATCH', message: expect.stringContaining('is longer') });
    // The bytes are the listed ones, but not a picture: the manifest is wrong.
    expect(await failure('searched', () => undefined)).toMatchObject({
      code: 'MANIFEST_INVALID',
      message: expect.stringContaining('not a PNG'),
    });
    // The good pair still reads after every refusal.
    expect((await service.readQualitySample('fp32'))?.picture).toEqual(pictures['quality/picture.png']);
    await service.dispose();
  });

  it('reads the pair from a picked folder too', async () => {
    const service = serviceOn(newProfile(), ortCpu);
    const files = [['manifest.json', new TextEncoder().encode(set.manifestText)] as const, ...set.files].map(
      ([path, bytes]) => ({ path, file: new Blob([bytes as Uint8Array<ArrayBuffer>]) }),
    );
    await service.openModelSet({ kind: 'files', files });
    const sample = await service.readQualitySample('int4c6');
    expect(sample?.reference).toEqual(pictures['int4c6/quality/reference.png']);
    expect(sample?.picture).toEqual(pictures['int4c6/quality/picture.png']);
    await service.dispose();
  });

  it('follows the set’s origin policy: a redirect to an origin the build does not list is refused', async () => {
    // The set in a folder, hosted as the Hub hosts one: file URLs redirect to a content origin.
    const dir = mkdtempSync(join(tmpdir(), 'kandinsky-sample-hosted-'));
    const hosted = await (async () => {
      for (const name of readdirSync(FIXTURE_DIR)) {
        if (name !== 'manifest.json') symlinkSync(join(FIXTURE_DIR, name), join(dir, name));
      }
      writeFileSync(join(dir, 'manifest.json'), set.manifestText);
      for (const [path, bytes] of Object.entries(pictures)) {
        mkdirSync(join(dir, dirname(path)), { recursive: true });
        writeFileSync(join(dir, path), bytes);
      }
      return startHostedSet({ dir });
    })();
    try {
      const read = async (origins: string[]) => {
        const service = serviceOn(newProfile(), ortCpu, { originPolicy: { origins, pageOrigin: null } });
        await service.openModelSet({ kind: 'url', url: hosted.manifestUrl() });
        try {
          return await service.readQualitySample('int4c6');
        } finally {
          await service.dispose();
        }
      };
      const refused = await errorOf(read([hosted.frontOrigin]));
      expect(refused).toMatchObject({ code: 'SOURCE_FORBIDDEN' });
      expect(refused?.message).toContain(hosted.contentOrigin);
      // fetch followed the redirect, the store refused its answer: nothing past the first picture.
      expect(hosted.contentRequests.map((r) => r.path)).toEqual(['int4c6/quality/reference.png']);
      const before = hosted.contentRequests.length;
      const sample = await read([hosted.frontOrigin, hosted.contentOrigin]);
      expect(sample?.picture).toEqual(pictures['int4c6/quality/picture.png']);
      expect(hosted.contentRequests.slice(before).map((r) => r.path)).toEqual([
        'int4c6/quality/reference.png',
        'int4c6/quality/picture.png',
      ]);
    } finally {
      await hosted.close();
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
