/**
 * The command-line generator: the engine on onnxruntime-node (CPU), reading a model set from a
 * folder, writing PNGs that carry their GenerationSettings (iTXt `kandinsky-web`, the same chunk
 * the app writes and reads). Also the driver for benchmarks (`--json` prints timings).
 *
 * Built into dist-cli/generate.mjs by scripts/cli.vite.config.ts (Node 20 cannot run .ts files),
 * entry scripts/generate-main.node.ts; tests call `runGenerateCli` directly.
 */
import { createHash, randomInt } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readFile, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { parseArgs } from 'node:util';
import * as ortNode from 'onnxruntime-node';
import type { ComponentId } from '../models/contract';
import { type Manifest, ManifestError, manifestFiles, manifestFromJson } from '../models/manifest';
import type { PipelineProgress } from '../workers/engine/hooks';
import type { MaskImage } from '../workers/engine/image';
import { ModelSet } from '../workers/engine/model-set';
import { nodeZlib } from '../workers/engine/node-zlib.node';
import type { OrtRuntime } from '../workers/engine/ort';
import { runPipeline } from '../workers/engine/pipeline';
import { decodePng, PngError, type RgbaImage } from '../workers/engine/png';
import { encodeImagePng, readSettingsFromPng, SettingsImportError } from '../workers/engine/png-settings';
import { componentsFor } from '../workers/engine/request';
import { resamplePixels, resizeRgb } from '../workers/engine/resample';
import {
  DECODER_SCHEDULERS,
  DEFAULT_SETTINGS,
  type GenerationSettings,
  MODES,
  SettingsError,
  validateSettings,
} from '../workers/engine/settings';
import { sizeLimitsFor } from '../workers/engine/size-limits';

export const USAGE = `Usage: npm run generate -- --model <dir> --prompt "..." [options]

  --model <dir>            model set folder (holds manifest.json)
  --prompt <text>          what to draw
  --negative <text>        what to avoid (default none)
  --seed <n>               0 … 2^53−1 (default: random, printed and stored in the PNG)
  --size <W>x<H>           output pixels (default 1024x1024; 64x64 for the tiny test set)
  --steps <n>              decoder steps (default ${DEFAULT_SETTINGS.steps})
  --prior-steps <n>        prior steps (default ${DEFAULT_SETTINGS.priorSteps})
  --guidance <x>           decoder guidance scale (default ${DEFAULT_SETTINGS.guidance})
  --prior-guidance <x>     prior guidance scale (default ${DEFAULT_SETTINGS.priorGuidance})
  --scheduler <name>       ${DECODER_SCHEDULERS.join(' | ')} (default ${DEFAULT_SETTINGS.scheduler})
  --seed-mode <mode>       combined (default: one generator through prior and decoder, as diffusers'
                           combined pipelines) | separate (prior and decoder pipelines each seeded)
  --images <n>             images per prompt; writes out-1.png, out-2.png, … (default 1)
  --mode <mode>            ${MODES.join(' | ')} (default txt2img)
  --image <file.png>       img2img / inpaint: the starting picture
  --strength <x>           img2img: how much is redrawn, (0, 1] (default ${DEFAULT_SETTINGS.strength})
  --prior-strength <x>     img2img: the prior also starts from the picture's image embedding
                           (its look), noised this far, (0, 1] (default: off)
  --mask <file.png>        inpaint: white = repaint, black = keep
  --depth-map <file.png>   depth: grey depth map, near = bright
  --from-png <file.png>    start from the settings stored in a PNG made by Kandinsky Web;
                           other options override them (input pictures must be given again)
  --out <file.png>         output file (default out.png)
  --low-memory             free each model before loading the next (slower, smaller peak)
  --threads <n>            onnxruntime CPU threads (default: onnxruntime's choice)
  --json                   print settings, output files and timings as JSON on stdout
  --help                   this text

Input pictures are PNG files. One of another size than the output is resized to it the way Pillow
does: bicubic (a = −0.5, support widened when shrinking) for pictures and depth maps, Lanczos for
masks (as diffusers resizes inpainting masks), after converting masks and depth maps to grey with
Pillow's "L" weights.`;

const OPTIONS = {
  model: { type: 'string' },
  prompt: { type: 'string' },
  negative: { type: 'string' },
  seed: { type: 'string' },
  size: { type: 'string' },
  steps: { type: 'string' },
  'prior-steps': { type: 'string' },
  guidance: { type: 'string' },
  'prior-guidance': { type: 'string' },
  scheduler: { type: 'string' },
  'seed-mode': { type: 'string' },
  images: { type: 'string' },
  mode: { type: 'string' },
  image: { type: 'string' },
  strength: { type: 'string' },
  'prior-strength': { type: 'string' },
  mask: { type: 'string' },
  'depth-map': { type: 'string' },
  'from-png': { type: 'string' },
  out: { type: 'string' },
  'low-memory': { type: 'boolean' },
  threads: { type: 'string' },
  json: { type: 'boolean' },
  help: { type: 'boolean' },
} as const;

/** The option that sets each settings field, to name it in error messages. */
const FLAG_OF: Record<keyof GenerationSettings, string> = {
  mode: '--mode',
  prompt: '--prompt',
  negativePrompt: '--negative',
  seed: '--seed',
  width: '--size',
  height: '--size',
  priorSteps: '--prior-steps',
  priorGuidance: '--prior-guidance',
  steps: '--steps',
  guidance: '--guidance',
  scheduler: '--scheduler',
  numImages: '--images',
  strength: '--strength',
  priorStrength: '--prior-strength',
  seedMode: '--seed-mode',
};

/** Where the CLI writes; tests pass collectors, the entry point passes process streams. */
export interface CliIo {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
}

/** A failure the user can fix; `usage` ones (exit 2) are about the command line itself. */
export class CliError extends Error {
  override readonly name = 'CliError';
  constructor(
    message: string,
    readonly usage = false,
  ) {
    super(message);
  }
}

export interface CliRunResult {
  readonly settings: GenerationSettings;
  readonly outputs: readonly string[];
  readonly timings: Readonly<Record<string, number>>;
  readonly totalMs: number;
  readonly truncatedPrompt?: { readonly keptText: string; readonly droppedTokens: number };
}

type Values = ReturnType<typeof parseArgs<{ options: typeof OPTIONS }>>['values'];

function numberOption(values: Values, flag: keyof Values & string): number | undefined {
  const raw = values[flag];
  if (raw === undefined || typeof raw !== 'string') return undefined;
  const value = Number(raw);
  if (raw.trim() === '' || !Number.isFinite(value)) {
    throw new CliError(`--${flag} must be a number; got "${raw}".`, true);
  }
  return value;
}

function parseSize(raw: string): { width: number; height: number } {
  const match = /^(\d+)\s*[x×]\s*(\d+)$/i.exec(raw.trim());
  if (!match) throw new CliError(`--size must look like 1024x576 (width x height); got "${raw}".`, true);
  return { width: Number(match[1]), height: Number(match[2]) };
}

async function readPngFile(file: string, what: string): Promise<Uint8Array> {
  try {
    return new Uint8Array(await readFile(file));
  } catch (error) {
    throw new CliError(
      `Cannot read ${what} "${file}": ${(error as NodeJS.ErrnoException).code ?? String(error)}.`,
    );
  }
}

async function readPicture(file: string, what: string): Promise<RgbaImage> {
  const bytes = await readPngFile(file, what);
  try {
    return await decodePng(bytes, nodeZlib, 64 * 1024 * 1024);
  } catch (error) {
    if (error instanceof PngError)
      throw new CliError(`${what} "${file}": ${error.message} (PNG files only).`);
    throw error;
  }
}

/** Pillow's RGB → "L" conversion (ITU-R 601-2 luma in 16-bit fixed point). */
function toGrey(image: RgbaImage): Uint8Array {
  const plane = image.width * image.height;
  const grey = new Uint8Array(plane);
  for (let i = 0; i < plane; i++) {
    const r = image.data[i * 4] ?? 0;
    const g = image.data[i * 4 + 1] ?? 0;
    const b = image.data[i * 4 + 2] ?? 0;
    grey[i] = (r * 19595 + g * 38470 + b * 7471 + 0x8000) >> 16;
  }
  return grey;
}

function greyToRgba(grey: Uint8Array, width: number, height: number): RgbaImage {
  const data = new Uint8Array(width * height * 4);
  grey.forEach((v, i) => {
    data.set([v, v, v, 255], i * 4);
  });
  return { width, height, data };
}

interface Inputs {
  initImage?: RgbaImage;
  mask?: MaskImage;
  depthMap?: RgbaImage;
}

async function loadInputs(values: Values, settings: GenerationSettings, io: CliIo): Promise<Inputs> {
  const { mode, width, height } = settings;
  const note = (file: string, image: { width: number; height: number }, how: string) =>
    io.stderr(`resized ${file} from ${image.width}×${image.height} to ${width}×${height} (${how})\n`);
  const need = (flag: 'image' | 'mask' | 'depth-map'): string => {
    const file = values[flag];
    if (!file) throw new CliError(`--mode ${mode} needs --${flag} <file.png>.`, true);
    return file;
  };
  // Every flag problem before any file is read: one run shows the whole command-line mistake.
  for (const flag of ['image', 'mask', 'depth-map'] as const) {
    const used =
      flag === 'image'
        ? mode === 'img2img' || mode === 'inpaint'
        : flag === 'mask'
          ? mode === 'inpaint'
          : mode === 'depth';
    if (used) need(flag);
    else if (values[flag]) throw new CliError(`--${flag} is not used by --mode ${mode}.`, true);
  }
  const inputs: Inputs = {};
  if (mode === 'img2img' || mode === 'inpaint') {
    const file = need('image');
    let image = await readPicture(file, 'the --image');
    if (image.width !== width || image.height !== height) {
      note(file, image, 'bicubic');
      image = resizeRgb(image, width, height, 'bicubic');
    }
    inputs.initImage = image;
  }
  if (mode === 'inpaint') {
    const file = need('mask');
    const picture = await readPicture(file, 'the --mask');
    let grey = toGrey(picture);
    if (picture.width !== width || picture.height !== height) {
      note(file, picture, 'Lanczos');
      grey = resamplePixels(grey, picture.width, picture.height, 1, width, height, 'lanczos');
    }
    if (!grey.some((v) => v >= 128)) {
      throw new CliError(
        `The mask "${file}" has no white (repaint) pixels: paint the area to repaint in white.`,
      );
    }
    inputs.mask = { width, height, data: grey };
  }
  if (mode === 'depth') {
    const file = need('depth-map');
    const picture = await readPicture(file, 'the --depth-map');
    let grey = toGrey(picture);
    if (picture.width !== width || picture.height !== height) {
      note(file, picture, 'bicubic');
      grey = resamplePixels(grey, picture.width, picture.height, 1, width, height, 'bicubic');
    }
    inputs.depthMap = greyToRgba(grey, width, height);
  }
  return inputs;
}

async function loadManifest(dir: string): Promise<Manifest> {
  const file = path.join(dir, 'manifest.json');
  let bytes: Uint8Array;
  try {
    bytes = await readFile(file);
  } catch {
    throw new CliError(`No manifest.json in "${dir}": --model must be a model set folder.`, true);
  }
  try {
    // Decoded as the browser decodes it (a byte-order mark and all): the same set reads the same.
    return manifestFromJson(bytes);
  } catch (error) {
    if (error instanceof ManifestError) {
      throw new CliError(`${file} is not a valid manifest: ${error.message}`);
    }
    throw error;
  }
}

/**
 * A ModelFiles reader over a folder that checks every file against the manifest: sizes of all the
 * files a run needs up front (a missing or truncated download fails before minutes of work), and
 * each file's sha256 as it is read (the bytes are in memory then; hashing them costs one pass).
 */
async function verifiedReader(dir: string, manifest: Manifest, needed: readonly ComponentId[]) {
  const entries = new Map(
    manifestFiles(manifest).map(({ component, file }) => [file.path, { component, file }]),
  );
  for (const [filePath, { component, file }] of entries) {
    if (!needed.includes(component)) continue;
    const size = await stat(path.join(dir, filePath)).then(
      (s) => s.size,
      () => -1,
    );
    if (size < 0) throw new CliError(`The model set is missing ${filePath} (component ${component}).`);
    if (size !== file.bytes) {
      throw new CliError(
        `${filePath} (component ${component}) is ${size} bytes; the manifest says ${file.bytes}. Download it again.`,
      );
    }
  }
  const verified = new Set<string>();
  const entryOf = (filePath: string) => {
    const entry = entries.get(filePath);
    if (!entry) throw new CliError(`The engine asked for ${filePath}, which the manifest does not list.`);
    return entry;
  };
  const check = (filePath: string, sha256: string, bytes: number) => {
    const { component, file } = entryOf(filePath);
    if (bytes !== file.bytes || sha256 !== file.sha256) {
      throw new CliError(
        `${filePath} (component ${component}) fails verification: sha256 ${sha256}, ${bytes} bytes; ` +
          `the manifest says ${file.sha256}, ${file.bytes} bytes. Download it again.`,
      );
    }
    verified.add(filePath);
  };
  return {
    async read(filePath: string): Promise<Uint8Array> {
      entryOf(filePath);
      const bytes = new Uint8Array(await readFile(path.join(dir, filePath)));
      if (!verified.has(filePath))
        check(filePath, createHash('sha256').update(bytes).digest('hex'), bytes.length);
      return bytes;
    },
    /** Hashed as a stream (the file is never held in memory), then handed to onnxruntime by path. */
    async localPath(filePath: string): Promise<string> {
      entryOf(filePath);
      const file = path.join(dir, filePath);
      if (!verified.has(filePath)) {
        const hash = createHash('sha256');
        let bytes = 0;
        for await (const piece of createReadStream(file, {
          highWaterMark: 4 << 20,
        }) as AsyncIterable<Buffer>) {
          hash.update(piece);
          bytes += piece.length;
        }
        check(filePath, hash.digest('hex'), bytes);
      }
      return file;
    },
  };
}

function outputPaths(out: string, count: number): string[] {
  if (count === 1) return [out];
  const ext = path.extname(out) || '.png';
  const base = out.slice(0, out.length - path.extname(out).length);
  return Array.from({ length: count }, (_, i) => `${base}-${i + 1}${ext}`);
}

function progressLine(p: PipelineProgress): string {
  switch (p.stage) {
    case 'load':
      return `load ${p.component} (${p.index + 1}/${p.count})`;
    case 'encode':
      return 'encode prompt';
    case 'depth':
      return `depth map ${p.depthMap.width}×${p.depthMap.height} estimated from the photo`;
    case 'prior':
      return `prior ${p.step}/${p.steps}`;
    case 'denoise':
      return `denoise ${p.step}/${p.steps}`;
    case 'decode':
      return `decode ${p.image}/${p.images}`;
  }
}

async function buildSettings(values: Values, manifest: Manifest): Promise<GenerationSettings> {
  const limits = sizeLimitsFor(manifest);
  let base: GenerationSettings = {
    ...DEFAULT_SETTINGS,
    ...(manifest.source === 'tiny-random' ? { width: 64, height: 64 } : {}),
    // torch seeds mt19937 from the low 32 bits only: 2^32 seeds are all the distinct ones.
    seed: randomInt(0, 2 ** 32),
  };
  const fromPng = values['from-png'];
  if (fromPng) {
    try {
      base = readSettingsFromPng(await readPngFile(fromPng, 'the --from-png file'), limits);
    } catch (error) {
      if (error instanceof SettingsImportError)
        throw new CliError(`--from-png "${fromPng}": ${error.message}`);
      throw error;
    }
  } else if (values.prompt === undefined && values.mode !== 'depth') {
    throw new CliError('--prompt is required (or --from-png to reuse the settings of a PNG).', true);
  }
  const size = values.size !== undefined ? parseSize(values.size) : undefined;
  const overrides: Partial<Record<keyof GenerationSettings, unknown>> = {
    mode: values.mode,
    prompt: values.prompt,
    negativePrompt: values.negative,
    seed: numberOption(values, 'seed'),
    width: size?.width,
    height: size?.height,
    steps: numberOption(values, 'steps'),
    priorSteps: numberOption(values, 'prior-steps'),
    guidance: numberOption(values, 'guidance'),
    priorGuidance: numberOption(values, 'prior-guidance'),
    scheduler: values.scheduler,
    numImages: numberOption(values, 'images'),
    strength: numberOption(values, 'strength'),
    priorStrength: numberOption(values, 'prior-strength'),
    seedMode: values['seed-mode'],
  };
  const settings = { ...base } as Record<keyof GenerationSettings, unknown>;
  for (const [field, value] of Object.entries(overrides)) {
    if (value !== undefined) settings[field as keyof GenerationSettings] = value;
  }
  try {
    // The CLI's depth mode takes a depth map (--depth-map), never a photo to estimate one from.
    return validateSettings(settings as unknown as GenerationSettings, limits, { fromPhoto: false });
  } catch (error) {
    if (error instanceof SettingsError) throw new CliError(`${FLAG_OF[error.field]}: ${error.message}`, true);
    throw error;
  }
}

/** Generates as the command line says; returns what was written. Throws CliError for user errors. */
export async function generate(argv: readonly string[], io: CliIo): Promise<CliRunResult | null> {
  let values: Values;
  try {
    values = parseArgs({ args: [...argv], options: OPTIONS, strict: true, allowPositionals: false }).values;
  } catch (error) {
    throw new CliError((error as Error).message, true);
  }
  if (values.help) {
    io.stdout(`${USAGE}\n`);
    return null;
  }
  if (!values.model) throw new CliError('--model <dir> is required: the model set folder.', true);
  const threads = numberOption(values, 'threads');
  if (threads !== undefined && (!Number.isInteger(threads) || threads < 1)) {
    throw new CliError(`--threads must be a whole number ≥ 1; got ${threads}.`, true);
  }
  const started = performance.now();
  const manifest = await loadManifest(values.model);
  const settings = await buildSettings(values, manifest);

  // The CLI's depth mode takes a depth map; it has no mixing or prior strength.
  const needed: ComponentId[] = componentsFor({ settings });
  for (const id of needed) {
    if (!manifest.components[id]) {
      throw new CliError(
        `The model set "${manifest.modelId}" has no ${id} component, which --mode ${settings.mode} needs.`,
      );
    }
  }
  const files = await verifiedReader(values.model, manifest, needed);
  const inputs = await loadInputs(values, settings, io);
  const models = new ModelSet(ortNode as unknown as OrtRuntime, manifest, files, {
    sessionOptions: { executionProviders: ['cpu'], ...(threads ? { intraOpNumThreads: threads } : {}) },
  });
  io.stderr(
    `${manifest.name}: ${settings.mode} ${settings.width}×${settings.height}, seed ${settings.seed}, ` +
      `${settings.priorSteps} prior + ${settings.steps} ${settings.scheduler} steps\n`,
  );
  try {
    const result = await runPipeline(
      models,
      { settings, ...inputs },
      {
        lowMemory: values['low-memory'] === true,
        onProgress: (p) => io.stderr(`${progressLine(p)}\n`),
      },
    );
    if (result.truncatedPrompt) {
      io.stderr(
        `warning: the prompt is longer than CLIP's 77 tokens; ${result.truncatedPrompt.droppedTokens} tokens were dropped after "${result.truncatedPrompt.keptText}"\n`,
      );
    }
    const outputs = outputPaths(values.out ?? 'out.png', result.images.length);
    for (const [i, image] of result.images.entries()) {
      const file = outputs[i] as string;
      await writeFile(file, await encodeImagePng(image, settings, nodeZlib));
      io.stderr(`wrote ${file}\n`);
    }
    const totalMs = performance.now() - started;
    const run: CliRunResult = {
      settings,
      outputs,
      timings: result.timings,
      totalMs,
      ...(result.truncatedPrompt ? { truncatedPrompt: result.truncatedPrompt } : {}),
    };
    if (values.json) io.stdout(`${JSON.stringify(run, null, 2)}\n`);
    return run;
  } finally {
    await models.releaseAll();
  }
}

/** The whole command: exit code 0 on success, 2 for a bad command line, 1 for any other failure. */
export async function runGenerateCli(argv: readonly string[], io: CliIo): Promise<number> {
  try {
    await generate(argv, io);
    return 0;
  } catch (error) {
    if (error instanceof CliError) {
      io.stderr(`error: ${error.message}\n${error.usage ? 'Run with --help for the options.\n' : ''}`);
      return error.usage ? 2 : 1;
    }
    const { code, message } = error as { code?: unknown; message?: unknown };
    io.stderr(
      `error${typeof code === 'string' ? ` (${code})` : ''}: ${typeof message === 'string' ? message : String(error)}\n`,
    );
    return 1;
  }
}
