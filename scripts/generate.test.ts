/**
 * The CLI on the tiny fixture set: what it writes decodes, carries its settings and holds exactly
 * runPipeline's pixels; bad command lines and damaged model sets fail with a message naming the
 * problem and a non-zero exit code; the bundled dist-cli build runs under plain Node.
 */
import { execFile, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { cp, mkdir, mkdtemp, readFile, rm, symlink, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import * as ortNode from 'onnxruntime-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseManifest } from '../models/manifest';
import { parseNpy } from '../test-support/npy';
import { checkpointSet, openTinyModelSet, TINY_DIR } from '../test-support/tiny-fixture.node';
import { ModelSet } from '../workers/engine/model-set';
import { nodeZlib } from '../workers/engine/node-zlib.node';
import type { OrtRuntime } from '../workers/engine/ort';
import { runPipeline } from '../workers/engine/pipeline';
import { decodePng, encodePng, type RgbaImage } from '../workers/engine/png';
import { readSettingsFromPng } from '../workers/engine/png-settings';
import { resizeRgb } from '../workers/engine/resample';
import type { GenerationSettings } from '../workers/engine/settings';
import { TINY_SIZE_LIMITS } from '../workers/engine/size-limits';
import { runGenerateCli, verifiedReader } from './generate.node';

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

/** A copy of the tiny set (without its reference data) to damage. */
async function copyTinySet(name: string): Promise<string> {
  const copy = path.join(work, name);
  await cp(TINY_DIR, copy, { recursive: true, filter: (source) => !source.includes('reference') });
  return copy;
}

/** Makes the copy's manifest list `filePath` with `bytes` (as a hostile or re-exported set might). */
async function relist(set: string, filePath: string, bytes: Uint8Array): Promise<void> {
  const manifestFile = path.join(set, 'manifest.json');
  const manifest = JSON.parse(await readFile(manifestFile, 'utf8')) as {
    components: Record<
      string,
      { files: { path: string; bytes: number; sha256: string; chunks?: unknown }[] }
    >;
  };
  for (const component of Object.values(manifest.components)) {
    for (const file of component.files) {
      if (file.path !== filePath) continue;
      file.bytes = bytes.length;
      file.sha256 = createHash('sha256').update(bytes).digest('hex');
      delete file.chunks;
    }
  }
  await writeFile(manifestFile, JSON.stringify(manifest));
}

const mkfifo = (file: string) => run('mkfifo', [file]);

/** 10,000 characters (the prompt limit), 30 KB of UTF-8. */
const LONG_CJK_PROMPT = '猫'.repeat(10_000);

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

  it('--embeds-out writes the prior’s image embeddings, those of the same run, with the same pixels', async () => {
    const out = path.join(work, 'embeds.png');
    const embedsFile = path.join(work, 'embeds.json');
    const result = await cli(
      ...TINY,
      '--prompt',
      'a red cat',
      '--seed',
      '7',
      '--out',
      out,
      '--embeds-out',
      embedsFile,
    );
    expect(result.code).toBe(0);
    const written = JSON.parse(await readFile(embedsFile, 'utf8')) as { dims: number[]; data: number[] };
    const settings = (await readPng(out)).settings;
    let traced: number[] = [];
    const reference = await runPipeline(
      openTinyModelSet(),
      { settings },
      {
        trace: (name, data) => {
          if (name === 'image_embeds') traced = Array.from(data, Number);
        },
      },
    );
    expect(written.dims).toEqual([1, traced.length]);
    expect(written.data).toEqual(traced);
    const { image } = await readPng(out);
    expect(Buffer.from(image.data).equals(Buffer.from(reference.images[0]?.data ?? []))).toBe(true);
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

  /** The recorded diffusers picture of a reference case, as 8-bit values. */
  const referencePixels = async (name: string, folder = 'reference', set = TINY_DIR): Promise<Uint8Array> => {
    const npy = parseNpy(
      new Uint8Array(await readFile(path.join(set, `${folder}/${name}/output_image.npy`))),
    );
    return Uint8Array.from(npy.data as Float32Array, (v) => Math.round(v * 255));
  };
  /** The largest difference between a PNG's RGB and a recorded picture's, in 8-bit levels. */
  const levelsOff = (image: RgbaImage, expected: Uint8Array) => {
    let worst = 0;
    for (let i = 0; i < image.width * image.height; i++) {
      for (let c = 0; c < 3; c++) {
        worst = Math.max(worst, Math.abs((image.data[i * 4 + c] ?? 0) - (expected[i * 3 + c] ?? 0)));
      }
    }
    return worst;
  };

  it('rounds --size 96x64 up to 128x64, says so, and gives diffusers’ picture for width 96', async () => {
    const out = path.join(work, 'w96.png');
    const result = await cli(
      ...['--model', TINY_DIR, '--size', '96x64', '--steps', '2', '--prior-steps', '3', '--threads', '1'],
      ...['--prompt', 'portrait of a horse in a field at sunset', '--seed', '42', '--out', out],
    );
    expect(result.code).toBe(0);
    expect(result.stderr).toMatch(
      /--size 96x64 rounds up to 128x64: sides are multiples of 64, as in diffusers/,
    );
    const { image, settings } = await readPng(out);
    expect([image.width, image.height, settings.width, settings.height]).toEqual([128, 64, 128, 64]);
    // Recorded from KandinskyV22CombinedPipeline(height=64, width=96).
    expect(levelsOff(image, await referencePixels('txt2img_h64_w96'))).toBeLessThanOrEqual(1);
  });

  it('--seed-mode separate gives the picture of diffusers’ prior and decoder pipelines, each seeded', async () => {
    const out = path.join(work, 'separate.png');
    const args = [
      ...['--model', TINY_DIR, '--size', '64x64', '--steps', '3', '--prior-steps', '2', '--threads', '1'],
      ...['--prompt', 'a red cat, 4k photo', '--negative', 'low quality, bad quality', '--seed', '0'],
    ];
    const result = await cli(...args, '--seed-mode', 'separate', '--out', out);
    expect(result.code).toBe(0);
    const { image, settings } = await readPng(out);
    expect(settings.seedMode).toBe('separate');
    expect(levelsOff(image, await referencePixels('txt2img_64_neg_separate'))).toBeLessThanOrEqual(1);
    // The default, combined, is the other recording: the decoder's noise continues the prior's generator.
    const combined = path.join(work, 'combined.png');
    expect((await cli(...args, '--out', combined)).code).toBe(0);
    expect(
      levelsOff((await readPng(combined)).image, await referencePixels('txt2img_64_neg')),
    ).toBeLessThanOrEqual(1);
    expect((await cli(...args, '--seed-mode', 'per-step', '--out', combined)).stderr).toMatch(
      /--seed-mode: Unknown seed mode "per-step"/,
    );
  });

  it('on checkpoints made elsewhere: the set’s own scheduler (DDIM) by default, --scheduler ddpm from its config', async () => {
    // models/fixtures/tiny-diffusers: exported through the real-checkpoint path from diffusers folders
    // whose decoder scheduler is DDIMScheduler with set_alpha_to_one false.
    const set = checkpointSet.dir;
    const args = [
      ...['--model', set, '--size', '64x64', '--steps', '3', '--prior-steps', '2', '--threads', '1'],
      ...['--prompt', 'a red cat, 4k photo', '--seed', '0'],
    ];
    const separate = path.join(work, 'checkpoints-separate.png');
    const result = await cli(
      ...args,
      '--negative',
      'low quality, bad quality',
      '--seed-mode',
      'separate',
      '--out',
      separate,
    );
    expect(result.code).toBe(0);
    expect(result.stderr).toMatch(/3 ddim \(the set's own\) steps/);
    const written = await readPng(separate);
    expect(written.settings.scheduler).toBeUndefined();
    expect(
      levelsOff(written.image, await referencePixels('txt2img_64_neg_separate', 'reference', set)),
    ).toBeLessThanOrEqual(1);
    // DDPMScheduler.from_config(the checkpoint's DDIM config), in the combined pipeline.
    const ddpm = path.join(work, 'checkpoints-ddpm.png');
    expect((await cli(...args, '--scheduler', 'ddpm', '--out', ddpm)).code).toBe(0);
    const picked = await readPng(ddpm);
    expect(picked.settings.scheduler).toBe('ddpm');
    expect(
      levelsOff(picked.image, await referencePixels('txt2img_64_ddpm', 'reference', set)),
    ).toBeLessThanOrEqual(1);
  });

  it('--mix reproduces KandinskyV22PriorPipeline.interpolate, with prompts and pictures', async () => {
    const steps = ['--size', '64x64', '--prior-steps', '2', '--steps', '3', '--threads', '1'];
    const prompts = path.join(work, 'mix-prompts.png');
    const result = await cli(
      ...['--model', TINY_DIR, ...steps, '--seed', '0', '--out', prompts],
      ...['--mix', '0.3:a red cat, 4k photo', '--mix', '0.7:a blue dragon over the mountains'],
    );
    expect(result.code).toBe(0);
    const written = await readPng(prompts);
    expect(written.settings.prompt).toBe('0.3:a red cat, 4k photo | 0.7:a blue dragon over the mountains');
    expect(
      levelsOff(written.image, await referencePixels('mix_two_prompts', 'reference-mix')),
    ).toBeLessThanOrEqual(1);

    const withPicture = path.join(work, 'mix-picture.png');
    const picture = path.join(TINY_DIR, 'reference-mix/inputs/mix_image.png');
    const mixed = await cli(
      ...['--model', TINY_DIR, ...steps, '--seed', '5', '--out', withPicture],
      ...['--mix', '0.6:a red cat, 4k photo', '--mix', `0.4:@${picture}`],
    );
    expect(mixed.code).toBe(0);
    expect(
      levelsOff(
        (await readPng(withPicture)).image,
        await referencePixels('mix_prompt_image', 'reference-mix'),
      ),
    ).toBeLessThanOrEqual(1);

    const usage = (...argv: string[]) => cli('--model', TINY_DIR, ...steps, ...argv);
    expect((await usage('--prompt', 'x', '--mix', '1:y')).stderr).toMatch(/--mix replaces --prompt/);
    expect((await usage('--mix', 'heavy:y')).stderr).toMatch(/--mix 1 \("heavy:y"\): give it as WEIGHT:TEXT/);
    expect((await usage('--mix', '0.5:')).stderr).toMatch(/--mix 1: the prompt after the weight is empty/);
    expect((await usage('--mix', '1:@/dev/zero', '--out', withPicture)).stderr).toMatch(
      /is a character device/,
    );
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
    [['--prompt', 'x'], /--model is required: the model set folder, its manifest URL or a Hub repo id/],
    [['--model', TINY_DIR, '--prompt', 'x', '--bogus'], /Unknown option '--bogus'/],
    [['--model', TINY_DIR], /--prompt is required/],
    [
      ['--model', TINY_DIR, '--prompt', 'x', '--size', '600x64'],
      /--size: The width must be from 64 to 512 pixels; got 600/,
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
    [
      ['--model', TINY_DIR, '--prompt', 'x', '--seed', '0x10'],
      /--seed must be a whole decimal number .*"0x10"/,
    ],
    [
      ['--model', TINY_DIR, '--prompt', 'x', '--seed', '1e3'],
      /--seed must be a whole decimal number .*"1e3"/,
    ],
    [['--model', TINY_DIR, '--prompt', 'x', '--seed=-1'], /--seed must be a whole decimal number/],
    [['--model', TINY_DIR, '--prompt', 'x', '--threads', '0'], /--threads must be from 1 to \d+ .*got 0/],
    [
      ['--model', TINY_DIR, '--prompt', 'x', '--threads', '100000'],
      /--threads must be from 1 to \d+ .*got 100000/,
    ],
    [['--model', TINY_DIR, '--prompt', 'x', '--threads', '1.5'], /--threads must be a whole decimal number/],
    [
      ['--model', TINY_DIR, '--prompt', 'x', '--strength', '0.5'],
      /--strength has no effect with --mode txt2img: .*use --mode img2img/,
    ],
    [
      ['--model', TINY_DIR, '--prompt', 'x', '--mode', 'depth', '--depth-map', 'd.png', '--strength', '0.5'],
      /--strength has no effect with --mode depth/,
    ],
    [
      ['--model', TINY_DIR, '--prompt', 'x', '--prompt-file', 'p.txt'],
      /--prompt and --prompt-file both give the prompt/,
    ],
    [['--model', TINY_DIR, '--prompt-file', '-', '--negative-file', '-'], /cannot both read standard input/],
    [
      ['--model', TINY_DIR, '--prompt', 'x', '--out', '/nonexistent-kandinsky-folder/x.png'],
      /--out "\/nonexistent-kandinsky-folder\/x\.png": the folder \/nonexistent-kandinsky-folder does not exist/,
    ],
  ])('rejects %j with exit code 2', async (argv, message) => {
    const result = await cli(...argv);
    expect(result.stderr).toMatch(message);
    expect(result.code).toBe(2);
  });

  it('checks the output path before loading any model', async () => {
    // A folder as --out used to fail with EISDIR after the whole generation.
    for (const out of [work, path.join(work, 'no-such-folder', 'x.png')]) {
      const result = await cli(...TINY, '--prompt', 'x', '--out', out);
      expect(result.stderr).toMatch(/--out .*(is a folder|does not exist)/);
      expect(result.stderr).not.toMatch(/^load /m);
      expect(result.code).toBe(2);
    }
    // Each of a batch's files: out-2.png here.
    await mkdir(path.join(work, 'batch-2.png'));
    const batch = await cli(...TINY, '--prompt', 'x', '--images', '2', '--out', path.join(work, 'batch.png'));
    expect(batch.stderr).toMatch(/--out ".*batch-2\.png" is a folder/);
    expect(batch.code).toBe(2);
  });

  it('reads long prompts from a file or standard input, at the prompt limit', async () => {
    const promptFile = path.join(work, 'prompt.txt');
    await writeFile(promptFile, `${LONG_CJK_PROMPT}\n`);
    const negativeFile = path.join(work, 'negative.txt');
    await writeFile(negativeFile, 'blurry, 低品質\r\n');
    const out = path.join(work, 'long.png');
    const result = await cli(
      ...TINY,
      '--prompt-file',
      promptFile,
      '--negative-file',
      negativeFile,
      '--seed',
      '5',
      '--out',
      out,
    );
    expect(result.stderr).toMatch(/tokens were dropped/);
    expect(result.code).toBe(0);
    const { settings } = await readPng(out);
    expect(settings.prompt).toBe(LONG_CJK_PROMPT);
    expect(settings.negativePrompt).toBe('blurry, 低品質');

    const over = path.join(work, 'over.txt');
    await writeFile(over, 'x'.repeat(40_001));
    const tooLong = await cli(...TINY, '--prompt-file', over);
    expect(tooLong.stderr).toMatch(
      /--prompt-file ".*over\.txt" is over 40000 bytes; a prompt is at most 10000 characters/,
    );
    expect(tooLong.code).toBe(2);
    const latin1 = path.join(work, 'latin1.txt');
    await writeFile(latin1, Uint8Array.of(0x63, 0x61, 0x66, 0xe9));
    const notUtf8 = await cli(...TINY, '--prompt-file', latin1);
    expect(notUtf8.stderr).toMatch(/latin1\.txt" is not UTF-8 text/);
    expect(notUtf8.code).toBe(2);
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

  it('reads input pictures only from regular files of bounded size', async () => {
    const img2img = (image: string) =>
      cli(...TINY, '--prompt', 'x', '--mode', 'img2img', '--strength', '0.5', '--image', image);
    const zero = await img2img('/dev/zero'); // used to read until memory ran out
    expect(zero.stderr).toMatch(/the --image "\/dev\/zero" is a character device, not a regular file/);
    expect(zero.code).toBe(1);
    const link = path.join(work, 'zero.png');
    await symlink('/dev/zero', link);
    expect((await img2img(link)).stderr).toMatch(/zero\.png" is a character device/);
    const fifo = path.join(work, 'fifo.png');
    await mkfifo(fifo); // used to wait for a writer for ever
    const fromFifo = await img2img(fifo);
    expect(fromFifo.stderr).toMatch(/fifo\.png" is a FIFO \(named pipe\), not a regular file/);
    expect(fromFifo.code).toBe(1);
    const huge = path.join(work, 'huge.png');
    await writeFile(huge, '');
    await truncate(huge, 400 * 2 ** 20); // sparse: no disk used
    const tooBig = await img2img(huge);
    expect(tooBig.stderr).toMatch(/huge\.png" is 419430400 bytes; the limit is \d+ bytes/);
    expect(tooBig.code).toBe(1);
    const fromPng = await cli('--model', TINY_DIR, '--from-png', fifo);
    expect(fromPng.stderr).toMatch(/--from-png file ".*fifo\.png" is a FIFO/);
  });

  it('refuses a set whose manifest lists a FIFO or a link to /dev/zero as a file, without reading it', async () => {
    const set = await copyTinySet('hostile-set');
    const target = 'tokenizer/tokenizer_config.json';
    await relist(set, target, new Uint8Array(0)); // stat says 0 bytes for both
    await rm(path.join(set, target));
    await symlink('/dev/zero', path.join(set, target));
    const zero = await cli('--model', set, '--prompt', 'x', '--out', path.join(work, 'hostile.png'));
    expect(zero.stderr).toMatch(
      /tokenizer_config\.json \(component tokenizer\) is a character device, not a regular file/,
    );
    expect(zero.code).toBe(1);
    await rm(path.join(set, target));
    await mkfifo(path.join(set, target));
    const fifo = await cli('--model', set, '--prompt', 'x', '--out', path.join(work, 'hostile.png'));
    expect(fifo.stderr).toMatch(/tokenizer_config\.json \(component tokenizer\) is a FIFO/);
    expect(fifo.code).toBe(1);
    const manifest = path.join(set, 'manifest.json');
    await rm(manifest);
    await mkfifo(manifest);
    const fifoManifest = await cli('--model', set, '--prompt', 'x');
    expect(fifoManifest.stderr).toMatch(/the manifest ".*manifest\.json" is a FIFO/);
    expect(fifoManifest.code).toBe(1);
  });

  it('names a tokenizer file that is not JSON, before loading any model', async () => {
    const set = await copyTinySet('bad-tokenizer');
    const notJson = new TextEncoder().encode('<html>502 Bad Gateway</html>');
    await writeFile(path.join(set, 'tokenizer/tokenizer.json'), notJson);
    await relist(set, 'tokenizer/tokenizer.json', notJson);
    const result = await cli('--model', set, '--prompt', 'x', '--out', path.join(work, 'tok.png'));
    expect(result.stderr).toMatch(/The tokenizer file tokenizer\/tokenizer\.json is not valid JSON/);
    expect(result.stderr).not.toMatch(/^load /m);
    expect(result.code).toBe(1);
  });

  it('hands onnxruntime the bytes it verified, not a path to open again', async () => {
    const set = await copyTinySet('swapped');
    const manifest = parseManifest(JSON.parse(await readFile(path.join(set, 'manifest.json'), 'utf8')));
    const files = await verifiedReader(set, manifest, ['prior']);
    const prior = path.join(set, 'prior.onnx');
    const size = (await readFile(prior)).length;
    const created: string[] = [];
    // Between the check and onnxruntime's load, the file on disk is swapped for another.
    const swapping = {
      ...ortNode,
      InferenceSession: {
        create: async (model: string | Uint8Array, options: ortNode.InferenceSession.SessionOptions) => {
          await writeFile(prior, new Uint8Array(size).fill(0x41));
          if (typeof model === 'string') {
            created.push('path');
            return ortNode.InferenceSession.create(model, options);
          }
          created.push('bytes');
          return ortNode.InferenceSession.create(model, options);
        },
      },
    } as unknown as OrtRuntime;
    const models = new ModelSet(swapping, manifest, files, {
      sessionOptions: { executionProviders: ['cpu'] },
    });
    try {
      const session = await models.session('prior');
      expect(session.inputNames.length).toBeGreaterThan(0);
    } finally {
      await models.releaseAll();
    }
    expect(created).toEqual(['bytes']);
    // And the next read sees the swap: every read is verified, not just the first.
    await expect(files.read('prior.onnx')).rejects.toThrow(
      /prior\.onnx \(component prior\) fails verification/,
    );
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

    // External data shards are verified as well as graphs.
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

    // A command line of 60 KB (prompt and negative prompt at the limit, CJK): onnxruntime's load
    // used to overflow the main thread's stack on it (a segfault, exit code 139).
    const long = path.join(work, 'bundled-long.png');
    const longRun = await run(process.execPath, [
      bundle,
      ...TINY,
      '--prompt',
      LONG_CJK_PROMPT,
      '--negative',
      LONG_CJK_PROMPT,
      '--out',
      long,
    ]);
    expect(longRun.stderr).toMatch(/wrote .*bundled-long\.png/);
    expect((await readPng(long)).settings.negativePrompt).toBe(LONG_CJK_PROMPT);

    // --prompt-file - reads standard input.
    const piped = path.join(work, 'bundled-stdin.png');
    const child = spawn(process.execPath, [bundle, ...TINY, '--prompt-file', '-', '--out', piped]);
    let childErr = '';
    child.stderr.on('data', (piece: Buffer) => {
      childErr += piece.toString();
    });
    child.stdin.end(`${LONG_CJK_PROMPT}\n`);
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(childErr).toMatch(/wrote /);
    expect(code).toBe(0);
    expect((await readPng(piped)).settings.prompt).toBe(LONG_CJK_PROMPT);
    await expect(run(process.execPath, [bundle, '--model', TINY_DIR])).rejects.toMatchObject({
      code: 2,
      stderr: expect.stringMatching(/--prompt is required/),
    });
    await rm(outDir, { recursive: true, force: true });
  });
});
