/**
 * The CLI on the tiny fixture set: what it writes decodes, carries its settings and holds exactly
 * runPipeline's pixels; bad command lines and damaged model sets fail with a message naming the
 * problem and a non-zero exit code; the bundled dist-cli build runs under plain Node.
 */
import { execFile } from 'node:child_process';
import { cp, mkdtemp, readFile, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { nodeZlib } from '../workers/engine/node-zlib.node';
import { runPipeline } from '../workers/engine/pipeline';
import { decodePng, encodePng, type RgbaImage } from '../workers/engine/png';
import { readSettingsFromPng } from '../workers/engine/png-settings';
import { resizeRgb } from '../workers/engine/resample';
import type { GenerationSettings } from '../workers/engine/settings';
import { TINY_SIZE_LIMITS } from '../workers/engine/size-limits';
import { openTinyModelSet, TINY_DIR } from '../workers/engine/tiny-fixture.node';
import { runGenerateCli } from './generate.node';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const run = promisify(execFile);

let work: string;

beforeAll(async () => {
  work = await mkdtemp(path.join(tmpdir(), 'kandinsky-cli-'));
});

afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

async function cli(...argv: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = '';
  let stderr = '';
  const code = await runGenerateCli(argv, {
    stdout: (text) => {
      stdout += text;
    },
    stderr: (text) => {
      stderr += text;
    },
  });
  return { code, stdout, stderr };
}

async function readPng(file: string): Promise<{ image: RgbaImage; settings: GenerationSettings }> {
  const bytes = new Uint8Array(await readFile(file));
  return {
    image: await decodePng(bytes, nodeZlib, 1e6),
    settings: readSettingsFromPng(bytes, TINY_SIZE_LIMITS),
  };
}

const TINY = [
  '--model',
  TINY_DIR,
  '--size',
  '64x64',
  '--steps',
  '2',
  '--prior-steps',
  '2',
  '--threads',
  '1',
] as const;

describe('npm run generate (in process)', () => {
  it('writes PNGs that hold the settings and exactly the pipeline’s pixels, and regenerates them from a PNG', async () => {
    const out = path.join(work, 'cat.png');
    const result = await cli(
      ...TINY,
      '--prompt',
      'a red cat',
      '--negative',
      'blurry',
      '--seed',
      '42',
      '--images',
      '2',
      '--out',
      out,
      '--json',
    );
    expect(result.stderr).toMatch(/denoise 2\/2/);
    expect(result.code).toBe(0);
    const report = JSON.parse(result.stdout) as { outputs: string[]; timings: Record<string, number> };
    expect(report.outputs).toEqual([path.join(work, 'cat-1.png'), path.join(work, 'cat-2.png')]);
    expect(Object.keys(report.timings).sort()).toEqual(['decode', 'denoise', 'encode', 'load', 'prior']);

    const expectedSettings: GenerationSettings = {
      mode: 'txt2img',
      prompt: 'a red cat',
      negativePrompt: 'blurry',
      seed: 42,
      width: 64,
      height: 64,
      priorSteps: 2,
      priorGuidance: 4,
      steps: 2,
      guidance: 4,
      scheduler: 'ddpm',
      numImages: 2,
      strength: 0.3,
    };
    const reference = await runPipeline(openTinyModelSet(), { settings: expectedSettings });
    for (const [i, file] of report.outputs.entries()) {
      const { image, settings } = await readPng(file);
      expect(settings).toEqual(expectedSettings);
      expect([image.width, image.height]).toEqual([64, 64]);
      expect(Buffer.from(image.data).equals(Buffer.from(reference.images[i]?.data ?? []))).toBe(true);
    }
    // The two images of a batch differ (each has its own noise).
    expect(
      Buffer.from(reference.images[0]?.data ?? []).equals(Buffer.from(reference.images[1]?.data ?? [])),
    ).toBe(false);

    // --from-png: the same settings give the same pixels; options override what the PNG says.
    const again = path.join(work, 'again.png');
    const replay = await cli(
      '--model',
      TINY_DIR,
      '--threads',
      '1',
      '--from-png',
      report.outputs[0] as string,
      '--out',
      again,
    );
    expect(replay.code).toBe(0);
    const first = await readPng(report.outputs[0] as string);
    const replayed = await readPng(path.join(work, 'again-1.png'));
    expect(replayed.settings).toEqual(expectedSettings);
    expect(Buffer.from(replayed.image.data).equals(Buffer.from(first.image.data))).toBe(true);

    const changed = await cli(
      '--model',
      TINY_DIR,
      '--from-png',
      again.replace('.png', '-1.png'),
      '--seed',
      '7',
      '--images',
      '1',
      '--out',
      again,
    );
    expect(changed.code).toBe(0);
    expect((await readPng(again)).settings).toEqual({ ...expectedSettings, seed: 7, numImages: 1 });
  });

  it('resizes an input picture of another size to the output size (Pillow bicubic) for img2img', async () => {
    const big = path.join(TINY_DIR, 'reference-mix/inputs/down_wide.png'); // 400×300
    const out = path.join(work, 'img2img.png');
    const result = await cli(
      ...TINY,
      '--mode',
      'img2img',
      '--image',
      big,
      '--strength',
      '0.5',
      '--prompt',
      'a house',
      '--seed',
      '3',
      '--out',
      out,
    );
    expect(result.stderr).toMatch(/resized .*down_wide\.png from 400×300 to 64×64 \(bicubic\)/);
    expect(result.code).toBe(0);
    const written = await readPng(out);
    const source = await decodePng(new Uint8Array(await readFile(big)), nodeZlib, 1e6);
    const reference = await runPipeline(openTinyModelSet(), {
      settings: written.settings,
      initImage: resizeRgb(source, 64, 64, 'bicubic'),
    });
    expect(Buffer.from(written.image.data).equals(Buffer.from(reference.images[0]?.data ?? []))).toBe(true);
  });

  it('runs inpainting and depth from PNG inputs', async () => {
    const inputs = path.join(TINY_DIR, 'reference/inputs');
    const inpaint = await cli(
      ...TINY,
      '--mode',
      'inpaint',
      '--image',
      `${inputs}/img2img_input.png`,
      '--mask',
      `${inputs}/inpaint_mask.png`,
      '--prompt',
      'a yellow flower',
      '--out',
      path.join(work, 'inpaint.png'),
    );
    expect(inpaint.stderr).not.toMatch(/^error/m);
    expect(inpaint.code).toBe(0);
    const depth = await cli(
      ...TINY,
      '--mode',
      'depth',
      '--depth-map',
      `${inputs}/depth_hint.png`,
      '--prompt',
      'a robot',
      '--low-memory',
      '--out',
      path.join(work, 'depth.png'),
    );
    expect(depth.code).toBe(0);
    expect((await readPng(path.join(work, 'depth.png'))).settings.mode).toBe('depth');
    const look = await cli(
      ...TINY,
      '--mode',
      'img2img',
      '--image',
      `${inputs}/img2img_input.png`,
      '--strength',
      '0.5',
      '--prior-strength',
      '0.85',
      '--prompt',
      'a robot',
      '--out',
      path.join(work, 'look.png'),
    );
    expect(look.stderr).not.toMatch(/^error/m);
    expect(look.code).toBe(0);
    expect((await readPng(path.join(work, 'look.png'))).settings).toMatchObject({
      mode: 'img2img',
      priorStrength: 0.85,
    });
  });

  it.each([
    [['--prompt', 'x'], /--model <dir> is required/],
    [['--model', TINY_DIR, '--prompt', 'x', '--bogus'], /Unknown option '--bogus'/],
    [['--model', TINY_DIR], /--prompt is required/],
    [
      ['--model', TINY_DIR, '--prompt', 'x', '--size', '100x64'],
      /--size: The width must be a multiple of 64 pixels; 100 is not — use 64 or 128/,
    ],
    [
      ['--model', TINY_DIR, '--prompt', 'x', '--size', '1024x1024'],
      /--size: The width must be from 64 to 512 pixels/,
    ],
    [['--model', TINY_DIR, '--prompt', 'x', '--size', 'big'], /--size must look like 1024x576/],
    [['--model', TINY_DIR, '--prompt', 'x', '--steps', 'abc'], /--steps must be a number; got "abc"/],
    [
      ['--model', TINY_DIR, '--prompt', 'x', '--prior-steps', '1'],
      /--prior-steps: Prior steps must be a whole number from 2/,
    ],
    [
      ['--model', TINY_DIR, '--prompt', 'x', '--scheduler', 'euler'],
      /--scheduler: Unknown scheduler "euler"/,
    ],
    [
      ['--model', TINY_DIR, '--prompt', 'x', '--mode', 'inpaint', '--image', 'a.png'],
      /--mode inpaint needs --mask/,
    ],
    [['--model', TINY_DIR, '--prompt', 'x', '--mask', 'm.png'], /--mask is not used by --mode txt2img/],
    [
      ['--model', TINY_DIR, '--prompt', 'x', '--prior-strength', '0.5'],
      /--prior-strength: .*needs img2img or depth mode, not txt2img/,
    ],
    [['--model', path.join(TINY_DIR, 'tokenizer'), '--prompt', 'x'], /No manifest\.json/],
  ])('rejects %j with exit code 2', async (argv, message) => {
    const result = await cli(...argv);
    expect(result.stderr).toMatch(message);
    expect(result.code).toBe(2);
  });

  it('fails with exit code 1 on a missing input picture or one that is not a PNG', async () => {
    const missing = await cli(
      ...TINY,
      '--prompt',
      'x',
      '--mode',
      'img2img',
      // int(2 steps × 0.5) = 1 step: the settings pass, so the picture is what fails.
      '--strength',
      '0.5',
      '--image',
      path.join(work, 'nope.png'),
    );
    expect(missing.stderr).toMatch(/Cannot read the --image ".*nope\.png": ENOENT/);
    expect(missing.code).toBe(1);
    const notPng = path.join(work, 'not.png');
    await writeFile(notPng, 'GIF89a');
    const bad = await cli(
      ...TINY,
      '--prompt',
      'x',
      '--mode',
      'img2img',
      '--strength',
      '0.5',
      '--image',
      notPng,
    );
    expect(bad.stderr).toMatch(/not a PNG image/);
    expect(bad.code).toBe(1);
  });

  it('verifies every file it uses against the manifest and names the one that is wrong', async () => {
    const copy = path.join(work, 'set');
    await cp(TINY_DIR, copy, { recursive: true, filter: (source) => !source.includes('reference') });
    const ok = await cli(
      '--model',
      copy,
      '--prompt',
      'x',
      '--steps',
      '1',
      '--prior-steps',
      '2',
      '--out',
      path.join(work, 'ok.png'),
    );
    expect(ok.code).toBe(0);

    const prior = path.join(copy, 'prior.onnx');
    const bytes = await readFile(prior);
    bytes[bytes.length - 100] = (bytes[bytes.length - 100] ?? 0) ^ 0xff;
    await writeFile(prior, bytes);
    const damaged = await cli('--model', copy, '--prompt', 'x', '--out', path.join(work, 'bad.png'));
    expect(damaged.stderr).toMatch(/prior\.onnx \(component prior\) fails verification: sha256 [0-9a-f]{64}/);
    expect(damaged.code).toBe(1);

    // External data is handed to onnxruntime by path (never read into memory): it is still verified.
    bytes[bytes.length - 100] = (bytes[bytes.length - 100] ?? 0) ^ 0xff;
    await writeFile(prior, bytes);
    const shard = path.join(copy, 'unet.onnx.data-02');
    const shardBytes = await readFile(shard);
    shardBytes[7] = (shardBytes[7] ?? 0) ^ 0x01;
    await writeFile(shard, shardBytes);
    const damagedShard = await cli('--model', copy, '--prompt', 'x', '--out', path.join(work, 'bad.png'));
    expect(damagedShard.stderr).toMatch(/unet\.onnx\.data-02 \(component unet\) fails verification/);
    expect(damagedShard.code).toBe(1);

    await truncate(path.join(copy, 'unet.onnx.data-01'), 10);
    const short = await cli('--model', copy, '--prompt', 'x');
    expect(short.stderr).toMatch(/unet\.onnx\.data-01 \(component unet\) is 10 bytes; the manifest says \d+/);
    expect(short.code).toBe(1);

    await rm(path.join(copy, 'unet_inpaint.onnx'));
    const gone = await cli(
      '--model',
      copy,
      '--prompt',
      'x',
      '--mode',
      'inpaint',
      '--image',
      'a.png',
      '--mask',
      'b.png',
    );
    expect(gone.stderr).toMatch(/missing unet_inpaint\.onnx \(component unet_inpaint\)/);
    expect(gone.code).toBe(1);
  });

  it('refuses a PNG without settings for --from-png', async () => {
    const plain = path.join(work, 'plain.png');
    await writeFile(plain, await encodePng({ width: 1, height: 1, data: new Uint8Array(4) }, {}, nodeZlib));
    const result = await cli('--model', TINY_DIR, '--from-png', plain);
    expect(result.stderr).toMatch(/--from-png .*carries no Kandinsky Web settings/);
    expect(result.code).toBe(1);
  });
});

describe('dist-cli bundle (what npm run generate runs)', () => {
  it('builds and generates under plain Node', async () => {
    // Inside the checkout, so that the bundle's imports resolve from node_modules as dist-cli's do.
    const outDir = path.join(ROOT, 'node_modules/.cache/kandinsky-cli-test');
    const vite = path.join(ROOT, 'node_modules/vite/bin/vite.js');
    await run(
      process.execPath,
      [vite, 'build', '--config', 'scripts/cli.vite.config.ts', '--outDir', outDir],
      {
        cwd: ROOT,
      },
    );
    const bundle = path.join(outDir, 'generate.mjs');
    const help = await run(process.execPath, [bundle, '--help']);
    expect(help.stdout).toMatch(/^Usage: npm run generate/);
    const out = path.join(work, 'bundled.png');
    const generated = await run(process.execPath, [
      bundle,
      ...TINY,
      '--prompt',
      'a red cat',
      '--seed',
      '1',
      '--out',
      out,
      '--json',
    ]);
    expect((JSON.parse(generated.stdout) as { outputs: string[] }).outputs).toEqual([out]);
    expect((await readPng(out)).settings.seed).toBe(1);
    await expect(run(process.execPath, [bundle, '--model', TINY_DIR])).rejects.toMatchObject({
      code: 2,
      stderr: expect.stringMatching(/--prompt is required/),
    });
    await rm(outDir, { recursive: true, force: true });
  });
});
