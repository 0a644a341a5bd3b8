import { createHash } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type MockHub, startMockHub } from '../test-support/mock-hub.node';
import { refEnv } from '../test-support/refenv.node';
import { type Manifest, manifestFromJson } from './manifest';

const MODELS = fileURLToPath(new URL('.', import.meta.url));
const TINY_DIR = join(MODELS, 'fixtures', 'tiny');
const EXPORT = join(MODELS, 'export');
const PYTHON = '/usr/bin/python3';
const TOKEN = 'hf_mock_token';
const REPOS = {
  prior: 'tiny-hub/kandinsky-2-2-prior',
  decoder: 'tiny-hub/kandinsky-2-2-decoder',
  inpaint: 'tiny-hub/kandinsky-2-2-decoder-inpaint',
  depth: 'tiny-hub/kandinsky-2-2-controlnet-depth',
  depthEstimator: 'tiny-hub/depth-anything-tiny',
};

// KANDINSKY_REFENV, when set, is the only place looked at (a missing path skips the tests).
const ref = refEnv(import.meta.url, ['torch', 'diffusers', 'huggingface_hub']);
const skip = ref.skip;
/** Runs a Python script of models/export in the reference environment, online against the mock Hub. */
const python = (args: string[], env: Record<string, string> = {}) =>
  ref.python(args, { env: { HF_HUB_OFFLINE: '0', TRANSFORMERS_OFFLINE: '0', ...env } });

const sha256 = (path: string): string => createHash('sha256').update(readFileSync(path)).digest('hex');
/** A file's bytes as float32 (a copy: aligned, whatever pool the read used). */
const float32s = (bytes: Uint8Array): Float32Array => new Float32Array(Uint8Array.from(bytes).buffer);
// manifestFromJson: the one reading of manifest.json the store and the CLI use.
const readManifest = (path: string): Manifest => manifestFromJson(readFileSync(path));
const snapshotFiles = (cache: string, repo: string): string[] => {
  const snapshots = join(cache, 'hub', `models--${repo.replace('/', '--')}`, 'snapshots');
  const [commit] = readdirSync(snapshots);
  return readdirSync(join(snapshots, commit as string), { recursive: true, encoding: 'utf8' })
    .filter((path) => statSync(join(snapshots, commit as string, path)).isFile())
    .sort();
};

let work = '';
let hub: MockHub;
let decoderCommit = '';
const ready = () => join(work, 'ready');
const readyFp16 = () => join(work, 'ready-fp16');

describe.skipIf(skip !== null)('kandinsky_export.py --hub (mock Hub)', () => {
  beforeAll(async () => {
    work = mkdtempSync(join(tmpdir(), 'kandinsky-hub-export-'));
    await python([join(EXPORT, 'tiny_checkpoints.py'), join(work, 'repos')]);
    hub = await startMockHub(join(work, 'repos'), { redirect: true, token: TOKEN, python: PYTHON });
    const headers = { authorization: `Bearer ${TOKEN}` };
    const info = await fetch(`${hub.endpoint}/api/models/${REPOS.decoder}`, { headers });
    decoderCommit = ((await info.json()) as { sha: string }).sha;
    const env = { HF_ENDPOINT: hub.endpoint, HF_TOKEN: TOKEN };
    const common = ['--size-range', '64-512', '--shard-mb', '1'];
    // The decoder by commit id (owner/name@revision); the others at main.
    const repos = [REPOS.prior, `${REPOS.decoder}@${decoderCommit}`, REPOS.inpaint, REPOS.depth];
    await python(
      [
        join(EXPORT, 'kandinsky_export.py'),
        ...['--hub', ...repos, '--hub-depth-estimator', REPOS.depthEstimator],
        ...['--precisions', 'fp32', 'fp16', '--out', ready(), ...common],
      ],
      { ...env, HF_HOME: join(work, 'hf') },
    );
    // --variant fp16, two components: the text encoder from its fp16 file, the sharded inpainting
    // UNet (no fp16 files) from its fp32 shards.
    await python(
      [
        join(EXPORT, 'kandinsky_export.py'),
        ...['--hub', ...repos, '--variant', 'fp16', '--components', 'text_encoder', 'unet_inpaint'],
        ...['--precisions', 'fp32', '--out', readyFp16(), ...common],
      ],
      { ...env, HF_HOME: join(work, 'hf-fp16') },
    );
  }, 2_400_000); // a hang guard: the exports took 18 min on a loaded 2-core machine
  afterAll(async () => {
    await hub?.stop();
    if (work) rmSync(work, { recursive: true, force: true });
  });

  it('writes a ready-to-host folder the app reads: manifests, every file as listed, the check report, HOSTING.md', () => {
    expect(readdirSync(ready()).sort()).toEqual([
      'HOSTING.md',
      'check_report.json',
      'fp16',
      'fp32',
      'manifest.fp16.json',
      'manifest.json',
    ]);
    const opened = readManifest(join(ready(), 'manifest.json'));
    const fp16 = readManifest(join(ready(), 'manifest.fp16.json'));
    expect(opened.sizeRange).toEqual({ minSide: 64, maxSide: 512 });
    expect(opened.variants?.map((v) => [v.precision, v.manifest])).toEqual([['fp16', 'manifest.fp16.json']]);
    expect(opened.variants?.[0]?.checkCosine).toBeGreaterThan(0.9999);
    for (const manifest of [opened, fp16]) {
      expect(Object.keys(manifest.components).sort()).toEqual(
        Object.keys(readManifest(join(TINY_DIR, 'manifest.json')).components).sort(),
      );
      for (const component of Object.values(manifest.components))
        for (const file of component.files) {
          const path = join(ready(), file.path);
          expect([file.path, statSync(path).size, sha256(path)]).toEqual([
            file.path,
            file.bytes,
            file.sha256,
          ]);
        }
    }
    const report = JSON.parse(readFileSync(join(ready(), 'check_report.json'), 'utf8')) as Record<
      string,
      Record<string, { outputs: Record<string, { cosine: number }> }>
    >;
    expect(Object.keys(report)).toEqual(['fp32', 'fp16']);
    for (const [precision, components] of Object.entries(report)) {
      expect(Object.keys(components)).toHaveLength(9); // every graph, the depth estimator included
      for (const { outputs } of Object.values(components))
        for (const { cosine } of Object.values(outputs))
          expect(cosine).toBeGreaterThan(precision === 'fp32' ? 0.999999 : 0.9999);
    }
    const notes = readFileSync(join(ready(), 'HOSTING.md'), 'utf8');
    for (const needed of [
      'Access-Control-Allow-Origin',
      'Access-Control-Expose-Headers: Content-Length, Content-Range, Accept-Ranges, ETag',
      'Accept-Ranges: bytes',
      'huggingface-cli upload',
      'put-bucket-cors',
      '| `manifest.json` | fp32 |',
      '| `manifest.fp16.json` | fp16 |',
    ])
      expect(notes).toContain(needed);
  });

  it('exports the fixture’s fp32 graphs byte for byte from the fp32 checkpoints, the sharded one included', () => {
    const opened = readManifest(join(ready(), 'manifest.json'));
    const fixture = readManifest(join(TINY_DIR, 'manifest.json'));
    const differing: string[] = [];
    for (const [name, component] of Object.entries(opened.components)) {
      const paths = component.files.map((f) => f.path.replace(/^fp32\//, ''));
      expect(paths).toEqual(
        fixture.components[name as keyof typeof fixture.components]?.files.map((f) => f.path),
      );
      for (const path of paths)
        if (sha256(join(ready(), 'fp32', path)) !== sha256(join(TINY_DIR, path))) differing.push(path);
    }
    // The ControlNet repo publishes fp16 weights only; the negative image embedding is computed at
    // export (threads move it by ~1e-7).
    expect(differing.filter((path) => !path.startsWith('unet_depth.'))).toEqual([
      'negative_image_embeds.bin',
    ]);
    const embeds = float32s(readFileSync(join(ready(), 'fp32', 'negative_image_embeds.bin')));
    const expected = float32s(readFileSync(join(TINY_DIR, 'negative_image_embeds.bin')));
    expect(embeds.length).toBe(expected.length);
    for (let i = 0; i < embeds.length; i++)
      expect(Math.abs((embeds[i] as number) - (expected[i] as number))).toBeLessThan(1e-6);
  });

  it('reads an fp16-only repo: its weights are the fixture’s rounded to float16', () => {
    const paths =
      readManifest(join(TINY_DIR, 'manifest.json'))
        .components.unet_depth?.files.filter((f) => f.path.includes('.data-'))
        .map((f) => f.path) ?? [];
    const floats = (folder: string) =>
      float32s(Buffer.concat(paths.map((p) => readFileSync(join(folder, p)))));
    const got = floats(join(ready(), 'fp32'));
    const fixture = floats(TINY_DIR);
    expect(got.length).toBe(fixture.length);
    let rounded = 0;
    let outside = 0;
    for (let i = 0; i < got.length; i++) {
      const a = got[i] as number;
      const b = fixture[i] as number;
      // float16 keeps 11 significant bits (relative error <= 2^-11), subnormals below 2^-14
      if (Math.abs(a - b) > Math.abs(b) * 2 ** -11 + 2 ** -25) outside++;
      if (a !== b) rounded++;
    }
    expect(outside).toBe(0);
    expect(rounded).toBeGreaterThan(got.length / 2);
  });

  it('downloads only what the export reads, through the redirect, with the token', async () => {
    const prior = snapshotFiles(join(work, 'hf'), REPOS.prior);
    expect(prior).toEqual([
      'image_encoder/config.json',
      'image_encoder/model.safetensors',
      'model_index.json',
      'prior/config.json',
      'prior/diffusion_pytorch_model.safetensors',
      'scheduler/scheduler_config.json',
      'text_encoder/config.json',
      'text_encoder/model.safetensors',
      'tokenizer/merges.txt',
      'tokenizer/special_tokens_map.json',
      'tokenizer/tokenizer_config.json',
      'tokenizer/vocab.json',
    ]);
    expect(snapshotFiles(join(work, 'hf'), REPOS.inpaint).filter((f) => f.startsWith('unet/'))).toEqual([
      'unet/config.json',
      'unet/diffusion_pytorch_model-00001-of-00002.safetensors',
      'unet/diffusion_pytorch_model-00002-of-00002.safetensors',
      'unet/diffusion_pytorch_model.safetensors.index.json',
    ]);
    // Only the UNet: the MoVQ comes from the decoder repo.
    expect(snapshotFiles(join(work, 'hf'), REPOS.depth).filter((f) => f.includes('safetensors'))).toEqual([
      'unet/diffusion_pytorch_model.fp16.safetensors',
    ]);
    // huggingface_hub asks the Hub (HEAD, answered 302 with the sha256 and size) and fetches the
    // bytes from the content host, without the token there.
    const log = await hub.requests();
    const heads = log.filter((r) => r.port === 'hub' && r.method === 'HEAD' && /\.safetensors$/.test(r.path));
    const fromCdn = log.filter((r) => r.port === 'cdn');
    expect(heads.length).toBeGreaterThan(0);
    expect(heads.every((r) => r.status === 302)).toBe(true);
    expect(fromCdn.map((r) => [r.method, r.status])).toEqual(heads.map(() => ['GET', 200]));
    expect(log.filter((r) => r.status === 401)).toEqual([]);
    expect(
      log.some((r) => r.path === `/api/models/${REPOS.decoder}/revision/${decoderCommit}?blobs=True`),
    ).toBe(true);
  });

  it('--variant fp16 downloads the fp16 files where a folder has them, the fp32 ones where not', async () => {
    const prior = snapshotFiles(join(work, 'hf-fp16'), REPOS.prior).filter((f) => f.includes('safetensors'));
    expect(prior).toEqual(['text_encoder/model.fp16.safetensors']);
    const inpaint = snapshotFiles(join(work, 'hf-fp16'), REPOS.inpaint).filter((f) =>
      f.includes('safetensors'),
    );
    expect(inpaint).toEqual([
      'unet/diffusion_pytorch_model-00001-of-00002.safetensors',
      'unet/diffusion_pytorch_model-00002-of-00002.safetensors',
      'unet/diffusion_pytorch_model.safetensors.index.json',
    ]);
    // Two components are not a set the app opens (no prior): read the manifest's file list only.
    const manifest = JSON.parse(readFileSync(join(readyFp16(), 'manifest.json'), 'utf8')) as {
      components: Record<string, { files: { path: string }[] }>;
    };
    expect(Object.keys(manifest.components).sort()).toEqual(['text_encoder', 'tokenizer', 'unet_inpaint']);
    expect(manifest.components.unet_inpaint?.files).toHaveLength(5);
    for (const file of manifest.components.unet_inpaint?.files ?? [])
      expect(sha256(join(readyFp16(), file.path))).toBe(
        sha256(join(TINY_DIR, file.path.replace(/^fp32\//, ''))),
      );

    // The text encoder from float16 weights: close to the fixture's, not equal.
    const ort = await import('onnxruntime-node'); // here, so that CI's skipped run does not load it
    const ids = new BigInt64Array(77).fill(1n);
    ids.set([0n, 320n, 530n, 2n]);
    const outputs = [];
    for (const graph of [
      join(readyFp16(), 'fp32', 'text_encoder.onnx'),
      join(TINY_DIR, 'text_encoder.onnx'),
    ]) {
      const session = await ort.InferenceSession.create(graph);
      const input = new ort.Tensor('int64', ids, [1, 77]);
      const result = await session.run({ input_ids: input });
      outputs.push(Float32Array.from(result.text_embeds?.data as Float32Array));
      input.dispose();
      for (const tensor of Object.values(result)) tensor.dispose();
      await session.release();
    }
    const [half, full] = outputs as [Float32Array, Float32Array];
    let dot = 0;
    let nh = 0;
    let nf = 0;
    let maxDiff = 0;
    for (let i = 0; i < full.length; i++) {
      dot += (half[i] as number) * (full[i] as number);
      nh += (half[i] as number) ** 2;
      nf += (full[i] as number) ** 2;
      maxDiff = Math.max(maxDiff, Math.abs((half[i] as number) - (full[i] as number)));
    }
    expect(maxDiff).toBeGreaterThan(0);
    expect(dot / Math.sqrt(nh * nf)).toBeGreaterThan(0.9999);
  });

  it('names the repo and what to do when the Hub does not know it or refuses the token', async () => {
    const fail = (repo: string, token: string) =>
      python([join(EXPORT, 'kandinsky_export.py'), '--hub', repo, '--out', join(work, 'failed')], {
        HF_ENDPOINT: hub.endpoint,
        HF_TOKEN: token,
        HF_HOME: join(work, 'hf'),
      }).then(
        () => 'exit 0',
        (error: { stderr: string; code: number }) => `exit ${error.code}: ${error.stderr}`,
      );
    const missing = await fail('tiny-hub/missing', TOKEN);
    expect(missing).toMatch(/^exit 1: /);
    expect(missing).toContain(`tiny-hub/missing: repository not found on ${hub.endpoint}`);
    expect(missing).toContain('HF_TOKEN');
    const refused = await fail(REPOS.prior, 'hf_wrong');
    expect(refused).toMatch(/^exit 1: /);
    expect(refused).toContain(
      `${REPOS.prior}: ${hub.endpoint} answered 401 Invalid credentials in Authorization header`,
    );
    expect(existsSync(join(work, 'failed'))).toBe(false);
  }, 600_000); // a hang guard, not a speed check
});
