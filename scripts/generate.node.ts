/**
 * The command-line generator: the engine on onnxruntime-node (CPU), reading a model set from a
 * folder, writing PNGs that carry their GenerationSettings (iTXt `kandinsky-web`, the same chunk
 * the app writes and reads). Also the driver for benchmarks (`--json` prints timings).
 *
 * Built into dist-cli/generate.mjs by scripts/cli.vite.config.ts (Node 20 cannot run .ts files),
 * entry scripts/generate-main.node.ts; tests call `runGenerateCli` directly.
 */
import { createHash, randomInt } from 'node:crypto';
import { constants, createReadStream, readFileSync, type Stats } from 'node:fs';
import { access, type FileHandle, open, readFile, stat, writeFile } from 'node:fs/promises';
import { availableParallelism } from 'node:os';
import path from 'node:path';
import { parseArgs } from 'node:util';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import * as ortNode from 'onnxruntime-node';
import type { ComponentId } from '../models/contract';
import { type Manifest, ManifestError, manifestFiles, manifestFromJson } from '../models/manifest';
import { DEFAULT_HUB_ENDPOINT, hubManifestUrl, parseHubRepoId } from '../models/model-origins';
import type { PipelineProgress } from '../workers/engine/hooks';
import type { MaskImage } from '../workers/engine/image';
import { type ModelFiles, ModelSet } from '../workers/engine/model-set';
import { nodeZlib } from '../workers/engine/node-zlib.node';
import type { OrtRuntime } from '../workers/engine/ort';
import { runPipeline } from '../workers/engine/pipeline';
import { decodePng, PngError, type RgbaImage } from '../workers/engine/png';
import { encodeImagePng, readSettingsFromPng, SettingsImportError } from '../workers/engine/png-settings';
import { componentsFor } from '../workers/engine/request';
import { resamplePixels, resizeRgb } from '../workers/engine/resample';
import { ownDecoderScheduler, type SchedulerConfigJson } from '../workers/engine/schedulers';
import {
  DECODER_SCHEDULERS,
  DEFAULT_SETTINGS,
  type GenerationSettings,
  LIMITS,
  MODES,
  SettingsError,
  validateSettings,
} from '../workers/engine/settings';
import { sizeLimitsFor } from '../workers/engine/size-limits';
import type { MixItem } from '../workers/engine/stages/mix';
import { ClipTokenizer, TokenizerError } from '../workers/engine/tokenizer';
import { UrlSource } from '../workers/store/model-source';
import { isStoreError } from '../workers/store/store-error';
import { cacheFolderFor, defaultCacheRoot, downloadToCache } from './model-cache';

export const USAGE = `Usage: npm run generate -- --model <dir|url|owner/name> --prompt "..." [options]

  --model <set>            the model set: a folder (holds manifest.json), the URL of a hosted set's
                           manifest.json (or its folder, ending in /), or a Hugging Face repo id
                           owner/name[@revision] (from $HF_ENDPOINT, default ${DEFAULT_HUB_ENDPOINT});
                           a hosted set is downloaded, verified and resumable, into the cache
  --cache <dir>            where hosted sets are kept (default $XDG_CACHE_HOME/kandinsky-web or
                           ~/.cache/kandinsky-web), one folder per source
  --prompt <text>          what to draw
  --prompt-file <file>     read the prompt from a UTF-8 text file (- for stdin), for long prompts
  --mix "WEIGHT:TEXT"      in place of --prompt: blend prompts and pictures ("WEIGHT:@FILE.png"),
                           repeatable, as diffusers' KandinskyV22PriorPipeline.interpolate
  --negative <text>        what to avoid (default none)
  --negative-file <file>   read the negative prompt from a file (- for stdin)
  --seed <n>               0 … 2^53−1, decimal (default: random, printed and stored in the PNG)
  --size <W>x<H>           output pixels (default 1024x1024; 64x64 for the tiny test set)
  --steps <n>              decoder steps (default ${DEFAULT_SETTINGS.steps})
  --prior-steps <n>        prior steps (default ${DEFAULT_SETTINGS.priorSteps})
  --guidance <x>           decoder guidance scale (default ${DEFAULT_SETTINGS.guidance})
  --prior-guidance <x>     prior guidance scale (default ${DEFAULT_SETTINGS.priorGuidance})
  --scheduler <name>       ${DECODER_SCHEDULERS.join(' | ')} (default: the set's own, its checkpoint's
                           scheduler config; another is built from that config as diffusers' from_config)
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
  --embeds-out <file.json> also write the prior's image embeddings (dims, data) as JSON: the export
                           tool's --quality compares them with torch's (a traced run: same pixels)
  --low-memory             free each model before loading the next (slower, smaller peak)
  --threads <n>            onnxruntime CPU threads, 1 … the CPUs there are (default: onnxruntime's choice)
  --json                   print settings, output files and timings as JSON on stdout
  --help                   this text

Input pictures are PNG files. One of another size than the output is resized to it the way Pillow
does: bicubic (a = −0.5, support widened when shrinking) for pictures and depth maps, Lanczos for
masks (as diffusers resizes inpainting masks), after converting masks and depth maps to grey with
Pillow's "L" weights.`;

const OPTIONS = {
  model: { type: 'string' },
  cache: { type: 'string' },
  prompt: { type: 'string' },
  'prompt-file': { type: 'string' },
  negative: { type: 'string' },
  'negative-file': { type: 'string' },
  seed: { type: 'string' },
  size: { type: 'string' },
  steps: { type: 'string' },
  'prior-steps': { type: 'string' },
  guidance: { type: 'string' },
  'prior-guidance': { type: 'string' },
  scheduler: { type: 'string' },
  mix: { type: 'string', multiple: true },
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
  'embeds-out': { type: 'string' },
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

/** A whole decimal number (`0x10`, `1e3`, `4.0` are refused: they read as something else elsewhere). */
function decimalOption(values: Values, flag: 'seed' | 'threads'): number | undefined {
  const raw = values[flag];
  if (raw === undefined) return undefined;
  if (!/^\d{1,16}$/.test(raw)) {
    throw new CliError(`--${flag} must be a whole decimal number such as 42; got "${raw}".`, true);
  }
  return Number(raw);
}

function parseSize(raw: string): { width: number; height: number } {
  const match = /^(\d+)\s*[x×]\s*(\d+)$/i.exec(raw.trim());
  if (!match) throw new CliError(`--size must look like 1024x576 (width x height); got "${raw}".`, true);
  return { width: Number(match[1]), height: Number(match[2]) };
}

/** The largest input picture file, bytes: a 64-megapixel RGBA PNG stored uncompressed and then some. */
const MAX_PICTURE_BYTES = 320 * 1024 * 1024;
/** The most pixels an input picture may decode to. */
const MAX_PICTURE_PIXELS = 64 * 1024 * 1024;
/** The largest manifest.json, bytes (real ones are a few KiB). */
const MAX_MANIFEST_BYTES = 16 * 1024 * 1024;
/** A prompt is at most LIMITS.promptChars UTF-16 units, each at most 3 bytes of UTF-8; with slack. */
const MAX_PROMPT_FILE_BYTES = LIMITS.promptChars * 4;

/** Why a file could not be read as asked. */
type FileProblem =
  | { readonly kind: 'unreadable'; readonly code: string }
  | { readonly kind: 'not-regular'; readonly type: string }
  | { readonly kind: 'size'; readonly size: number }
  | { readonly kind: 'changed' };

class FileProblemError extends Error {
  constructor(readonly problem: FileProblem) {
    super(problem.kind);
  }
}

function errnoCode(error: unknown): string {
  return (error as NodeJS.ErrnoException).code ?? String(error);
}

function fileType(stats: Stats): string {
  if (stats.isDirectory()) return 'a folder';
  if (stats.isFIFO()) return 'a FIFO (named pipe)';
  if (stats.isCharacterDevice()) return 'a character device';
  if (stats.isBlockDevice()) return 'a block device';
  if (stats.isSocket()) return 'a socket';
  return 'not a regular file';
}

/** The size of a regular file (through symlinks); anything else is a FileProblemError. */
async function regularFileSize(file: string): Promise<number> {
  let stats: Stats;
  try {
    stats = await stat(file);
  } catch (error) {
    throw new FileProblemError({ kind: 'unreadable', code: errnoCode(error) });
  }
  if (!stats.isFile()) throw new FileProblemError({ kind: 'not-regular', type: fileType(stats) });
  return stats.size;
}

/**
 * Reads a regular file whole (a symlink to one is fine): a FIFO, device, socket or folder is refused
 * before it is read (a FIFO would block, /dev/zero never ends), and the file must be `exactly` so
 * many bytes or `atMost` so many. Never reads past that size: a file that grows or shrinks while it
 * is read is refused. Errors are FileProblemErrors; callers word them.
 */
async function readRegularFile(
  file: string,
  limit: { readonly exactly: number } | { readonly atMost: number },
): Promise<Uint8Array> {
  await regularFileSize(file); // before opening: opening a device can have effects of its own
  let handle: FileHandle;
  try {
    // Non-blocking: if a FIFO was swapped in after the check, opening it doesn't wait for a writer.
    handle = await open(file, constants.O_RDONLY | (constants.O_NONBLOCK ?? 0));
  } catch (error) {
    throw new FileProblemError({ kind: 'unreadable', code: errnoCode(error) });
  }
  try {
    const stats = await handle.stat(); // the file opened, whatever the path names now
    if (!stats.isFile()) throw new FileProblemError({ kind: 'not-regular', type: fileType(stats) });
    const size = stats.size;
    if ('exactly' in limit ? size !== limit.exactly : size > limit.atMost) {
      throw new FileProblemError({ kind: 'size', size });
    }
    const bytes = new Uint8Array(size);
    let filled = 0;
    while (filled < size) {
      const { bytesRead } = await handle.read(bytes, filled, size - filled, filled);
      if (bytesRead === 0) throw new FileProblemError({ kind: 'changed' });
      filled += bytesRead;
    }
    if ((await handle.read(new Uint8Array(1), 0, 1, size)).bytesRead !== 0) {
      throw new FileProblemError({ kind: 'changed' });
    }
    return bytes;
  } finally {
    await handle.close();
  }
}

/** An input file's problem as a CliError naming the option and the file. */
function inputFileError(problem: FileProblem, what: string, file: string, maxBytes: number): CliError {
  switch (problem.kind) {
    case 'unreadable':
      return new CliError(`Cannot read ${what} "${file}": ${problem.code}.`);
    case 'not-regular':
      return new CliError(`${what} "${file}" is ${problem.type}, not a regular file: give a file.`);
    case 'size':
      return new CliError(
        `${what} "${file}" is ${problem.size} bytes; the limit is ${maxBytes} bytes (${(maxBytes / 2 ** 20).toFixed(0)} MiB).`,
      );
    case 'changed':
      return new CliError(
        `${what} "${file}" changed while it was read: run again once nothing writes to it.`,
      );
  }
}

async function readInputFile(file: string, what: string, maxBytes: number): Promise<Uint8Array> {
  try {
    return await readRegularFile(file, { atMost: maxBytes });
  } catch (error) {
    if (error instanceof FileProblemError) throw inputFileError(error.problem, what, file, maxBytes);
    throw error;
  }
}

function readPngFile(file: string, what: string): Promise<Uint8Array> {
  return readInputFile(file, what, MAX_PICTURE_BYTES);
}

async function readPicture(file: string, what: string): Promise<RgbaImage> {
  const bytes = await readPngFile(file, what);
  try {
    return await decodePng(bytes, nodeZlib, MAX_PICTURE_PIXELS);
  } catch (error) {
    if (error instanceof PngError)
      throw new CliError(`${what} "${file}": ${error.message} (PNG files only).`);
    throw error;
  }
}

/** Standard input, at most `maxBytes` of it (a pipe that never ends is refused, not held). */
async function readStdin(maxBytes: number): Promise<Uint8Array> {
  const pieces: Buffer[] = [];
  let total = 0;
  const stream = createReadStream('', { fd: 0, autoClose: false, highWaterMark: 64 * 1024 });
  try {
    for await (const piece of stream as AsyncIterable<Buffer>) {
      total += piece.length;
      if (total > maxBytes) throw new FileProblemError({ kind: 'size', size: total });
      pieces.push(piece);
    }
  } catch (error) {
    if (error instanceof FileProblemError) throw error;
    throw new FileProblemError({ kind: 'unreadable', code: errnoCode(error) });
  } finally {
    stream.destroy();
  }
  return new Uint8Array(Buffer.concat(pieces));
}

const strictUtf8 = new TextDecoder('utf-8', { fatal: true });

/**
 * The text of `--<flag>` or of the file `--<flag>-file` names (`-`: standard input): UTF-8, a
 * leading byte-order mark and the trailing line breaks an editor adds removed.
 */
async function textOption(
  values: Values,
  flag: 'prompt' | 'negative',
  file: string | undefined,
): Promise<string | undefined> {
  const text = values[flag];
  if (file === undefined) return text;
  if (text !== undefined) {
    throw new CliError(
      `--${flag} and --${flag}-file both give the ${flag === 'prompt' ? 'prompt' : 'negative prompt'}: use one.`,
      true,
    );
  }
  const what = `the --${flag}-file`;
  let bytes: Uint8Array;
  try {
    bytes =
      file === '-'
        ? await readStdin(MAX_PROMPT_FILE_BYTES)
        : await readRegularFile(file, { atMost: MAX_PROMPT_FILE_BYTES });
  } catch (error) {
    if (!(error instanceof FileProblemError)) throw error;
    if (error.problem.kind === 'size') {
      throw new CliError(
        `${what} ${file === '-' ? '(standard input)' : `"${file}"`} is over ${MAX_PROMPT_FILE_BYTES} bytes; a prompt is at most ${LIMITS.promptChars} characters.`,
        true,
      );
    }
    throw inputFileError(error.problem, what, file, MAX_PROMPT_FILE_BYTES);
  }
  try {
    return strictUtf8.decode(bytes).replace(/(\r?\n)+$/, '');
  } catch {
    throw new CliError(`${what} "${file}" is not UTF-8 text: save it as UTF-8.`, true);
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
  mix?: MixItem[];
}

/** One --mix ingredient as given: a weighted prompt, or a weighted picture file not yet read. */
type MixSpec =
  | { readonly kind: 'prompt'; readonly weight: number; readonly prompt: string }
  | { readonly kind: 'image'; readonly weight: number; readonly file: string };

/** --mix "WEIGHT:TEXT" or "WEIGHT:@FILE.png", each checked before anything is read. */
function parseMix(values: Values, hasPrompt: boolean): MixSpec[] {
  const given = values.mix ?? [];
  if (given.length === 0) return [];
  if (hasPrompt) throw new CliError('--mix replaces --prompt: give one or the other.', true);
  return given.map((raw, index) => {
    const colon = raw.indexOf(':');
    const weightText = colon < 0 ? '' : raw.slice(0, colon).trim();
    const rest = colon < 0 ? '' : raw.slice(colon + 1);
    const weight = Number(weightText);
    if (!/^-?(\d+\.?\d*|\.\d+)$/.test(weightText) || !Number.isFinite(weight)) {
      throw new CliError(
        `--mix ${index + 1} ("${raw.slice(0, 40)}"): give it as WEIGHT:TEXT or WEIGHT:@FILE.png, the weight a decimal number such as 0.5.`,
        true,
      );
    }
    if (rest.startsWith('@')) {
      const file = rest.slice(1);
      if (file === '') throw new CliError(`--mix ${index + 1}: name the picture after the @.`, true);
      return { kind: 'image', weight, file };
    }
    if (rest.trim() === '')
      throw new CliError(`--mix ${index + 1}: the prompt after the weight is empty.`, true);
    if (rest.length > LIMITS.promptChars) {
      throw new CliError(`--mix ${index + 1}: the prompt is over ${LIMITS.promptChars} characters.`, true);
    }
    return { kind: 'prompt', weight, prompt: rest };
  });
}

function mixDescription(mix: readonly MixSpec[]): string {
  const text = mix
    .map((item) => `${item.weight}:${item.kind === 'prompt' ? item.prompt : `@${path.basename(item.file)}`}`)
    .join(' | ');
  return text.length > LIMITS.promptChars ? text.slice(0, LIMITS.promptChars) : text;
}

/** The mix's pictures, read (regular files, bounded, PNG) in item order. */
async function loadMix(mix: readonly MixSpec[]): Promise<MixItem[]> {
  const items: MixItem[] = [];
  for (const [index, item] of mix.entries()) {
    items.push(
      item.kind === 'prompt'
        ? item
        : {
            kind: 'image',
            weight: item.weight,
            image: await readPicture(item.file, `the --mix ${index + 1} picture`),
          },
    );
  }
  return items;
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
    bytes = await readRegularFile(file, { atMost: MAX_MANIFEST_BYTES });
  } catch (error) {
    if (!(error instanceof FileProblemError)) throw error;
    if (error.problem.kind === 'unreadable' && error.problem.code === 'ENOENT') {
      throw new CliError(`No manifest.json in "${dir}": --model must be a model set folder.`, true);
    }
    throw inputFileError(error.problem, 'the manifest', file, MAX_MANIFEST_BYTES);
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
 * each file's sha256 every time it is read. Only regular files are read (a FIFO or a link to
 * /dev/zero listed as a file is refused, not waited on), and never more than the manifest's size.
 * The bytes hashed are the bytes returned, which the engine hands to onnxruntime: there is no
 * `localPath`, since a file opened again by path after its check may no longer be the file checked.
 */
export async function verifiedReader(
  dir: string,
  manifest: Manifest,
  needed: readonly ComponentId[],
): Promise<Required<Pick<ModelFiles, 'read'>>> {
  const entries = new Map(
    manifestFiles(manifest).map(({ component, file }) => [file.path, { component, file }]),
  );
  const fail = (problem: FileProblem, filePath: string, component: string, expected: number): CliError => {
    const name = `${filePath} (component ${component})`;
    switch (problem.kind) {
      case 'unreadable':
        return new CliError(
          problem.code === 'ENOENT'
            ? `The model set is missing ${name}.`
            : `Cannot read ${name}: ${problem.code}.`,
        );
      case 'not-regular':
        return new CliError(
          `${name} is ${problem.type}, not a regular file: a model set holds only files. Download it again.`,
        );
      case 'size':
        return new CliError(
          `${name} is ${problem.size} bytes; the manifest says ${expected}. Download it again.`,
        );
      case 'changed':
        return new CliError(
          `${name} changed while it was read: run again once nothing writes to the model set.`,
        );
    }
  };
  for (const [filePath, { component, file }] of entries) {
    if (!needed.includes(component)) continue;
    try {
      const size = await regularFileSize(path.join(dir, filePath));
      if (size !== file.bytes) throw new FileProblemError({ kind: 'size', size });
    } catch (error) {
      if (error instanceof FileProblemError) throw fail(error.problem, filePath, component, file.bytes);
      throw error;
    }
  }
  return {
    async read(filePath: string): Promise<Uint8Array> {
      const entry = entries.get(filePath);
      if (!entry) throw new CliError(`The engine asked for ${filePath}, which the manifest does not list.`);
      const { component, file } = entry;
      let bytes: Uint8Array;
      try {
        bytes = await readRegularFile(path.join(dir, filePath), { exactly: file.bytes });
      } catch (error) {
        if (error instanceof FileProblemError) throw fail(error.problem, filePath, component, file.bytes);
        throw error;
      }
      const sha256 = createHash('sha256').update(bytes).digest('hex');
      if (sha256 !== file.sha256) {
        throw new CliError(
          `${filePath} (component ${component}) fails verification: sha256 ${sha256}, ${bytes.length} bytes; ` +
            `the manifest says ${file.sha256}, ${file.bytes} bytes. Download it again.`,
        );
      }
      return bytes;
    },
  };
}

/** Builds the tokenizer once from its verified files: a damaged one fails here, named, before any model loads. */
/** The decoder scheduler a generation runs, as the summary line says it. */
function schedulerDescription(settings: GenerationSettings, manifest: Manifest): string {
  const decoder = manifest.schedulers.decoder as SchedulerConfigJson;
  return settings.scheduler ?? `${ownDecoderScheduler(decoder)} (the set's own)`;
}

async function checkTokenizer(manifest: Manifest, files: Pick<ModelFiles, 'read'>): Promise<void> {
  const listed = manifest.components.tokenizer?.files ?? [];
  const find = (name: string) => listed.find((f) => f.path.split('/').pop() === name)?.path;
  const tokenizerPath = find('tokenizer.json');
  const configPath = find('tokenizer_config.json');
  if (!tokenizerPath || !configPath) return; // the engine says which one is missing
  try {
    ClipTokenizer.fromFiles(
      { path: tokenizerPath, bytes: await files.read(tokenizerPath) },
      { path: configPath, bytes: await files.read(configPath) },
    );
  } catch (error) {
    if (error instanceof TokenizerError) throw new CliError(error.message);
    throw error;
  }
}

function outputPaths(out: string, count: number): string[] {
  if (count === 1) return [out];
  const ext = path.extname(out) || '.png';
  const base = out.slice(0, out.length - path.extname(out).length);
  return Array.from({ length: count }, (_, i) => `${base}-${i + 1}${ext}`);
}

/**
 * Checks before any model loads that every output can be written: its folder exists and is
 * writable, and the path is not a folder itself (minutes of generating must not end in EISDIR).
 */
async function checkOutputs(outputs: readonly string[]): Promise<void> {
  for (const file of outputs) {
    const existing = await stat(file).catch(() => undefined);
    if (existing?.isDirectory()) {
      throw new CliError(
        `--out "${file}" is a folder: give a file name, such as ${path.join(file, 'out.png')}.`,
        true,
      );
    }
    const folder = path.dirname(path.resolve(file));
    const folderStats = await stat(folder).catch(() => undefined);
    if (!folderStats?.isDirectory()) {
      throw new CliError(`--out "${file}": the folder ${folder} does not exist; create it first.`, true);
    }
    try {
      await access(existing ? file : folder, constants.W_OK);
    } catch (error) {
      throw new CliError(
        `--out "${file}" can't be written (${errnoCode(error)}): choose another place, or allow writing there.`,
        true,
      );
    }
  }
}

function progressLine(p: PipelineProgress): string {
  switch (p.stage) {
    case 'load':
      return `load ${p.component} (${p.index + 1}/${p.count})`;
    case 'session':
      return `create the ${p.component} session`;
    case 'loop-start':
      return `${p.loop}: ${p.steps} steps`;
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

async function buildSettings(
  values: Values,
  manifest: Manifest,
  texts: { readonly prompt: string | undefined; readonly negative: string | undefined },
  mix: readonly MixSpec[],
): Promise<GenerationSettings> {
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
  } else if (texts.prompt === undefined && values.mode !== 'depth' && mix.length === 0) {
    throw new CliError(
      '--prompt is required (or --mix, or --from-png to reuse the settings of a PNG).',
      true,
    );
  }
  const size = values.size !== undefined ? parseSize(values.size) : undefined;
  const overrides: Partial<Record<keyof GenerationSettings, unknown>> = {
    mode: values.mode,
    // A mix's prompts stand in the PNG's prompt, for the record (the prior runs each on its own).
    prompt: mix.length > 0 ? mixDescription(mix) : texts.prompt,
    negativePrompt: texts.negative,
    seed: decimalOption(values, 'seed'),
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
  let valid: GenerationSettings;
  try {
    // The CLI's depth mode takes a depth map (--depth-map), never a photo to estimate one from.
    valid = validateSettings(settings as unknown as GenerationSettings, limits, { fromPhoto: false });
  } catch (error) {
    if (error instanceof SettingsError) throw new CliError(`${FLAG_OF[error.field]}: ${error.message}`, true);
    throw error;
  }
  // The CLI's depth mode takes a map, not a photo: img2img is the only mode that redraws a picture.
  if (values.strength !== undefined && valid.mode !== 'img2img') {
    throw new CliError(
      `--strength has no effect with --mode ${valid.mode}: it sets how much of the --image img2img redraws. Leave it out, or use --mode img2img.`,
      true,
    );
  }
  return valid;
}

/** A model set to generate from: its folder (a cache folder for a hosted set) and manifest. */
interface OpenedModel {
  readonly dir: string;
  readonly manifest: Manifest;
  /** A hosted set: brings the components into `dir`, verified (none for a folder). */
  readonly download: ((components: readonly string[]) => Promise<void>) | null;
}

/**
 * `--model` as a folder, a hosted set's URL or a Hub repo id. A hosted set's manifest is read from
 * its host (nothing is downloaded before every argument is checked); its files come later through
 * the model store's download (scripts/model-cache.ts) into the cache folder.
 */
async function openModel(model: string, cacheOption: string | undefined, io: CliIo): Promise<OpenedModel> {
  const local = await stat(model).catch(() => undefined);
  const repo = /^https?:\/\//i.test(model) ? null : parseHubRepoId(model);
  if (local?.isDirectory() || (!/^https?:\/\//i.test(model) && repo === null)) {
    if (cacheOption !== undefined)
      throw new CliError('--cache applies to a hosted set (a URL or repo id), not a folder.', true);
    return { dir: model, manifest: await loadManifest(model), download: null };
  }
  let manifestUrl: string;
  if (repo !== null) {
    manifestUrl = hubManifestUrl(repo, process.env.HF_ENDPOINT?.trim() || DEFAULT_HUB_ENDPOINT);
  } else {
    const url = new URL(model);
    if (url.pathname.endsWith('/')) url.pathname += 'manifest.json';
    manifestUrl = url.href;
  }
  const dir = cacheFolderFor(cacheOption ?? defaultCacheRoot(process.env), manifestUrl);
  const source = new UrlSource(manifestUrl);
  const fromStore = <T>(task: () => Promise<T>): Promise<T> =>
    task().catch((error: unknown) => {
      if (isStoreError(error)) throw new CliError(`${error.message} (${error.code})`);
      throw error;
    });
  let manifestText: string;
  try {
    manifestText = await source.readManifestText();
  } catch (error) {
    // Offline, or the host is down: the manifest saved with the cached files stands in.
    const saved = isStoreError(error, 'SOURCE_UNREACHABLE')
      ? await readFile(path.join(dir, 'manifest.json'), 'utf8').catch(() => null)
      : null;
    if (saved === null) throw isStoreError(error) ? new CliError(`${error.message} (${error.code})`) : error;
    io.stderr(`${error instanceof Error ? error.message : String(error)} Using the copy in ${dir}.\n`);
    manifestText = saved;
  }
  let manifest: Manifest;
  try {
    manifest = manifestFromJson(manifestText);
  } catch (error) {
    if (error instanceof ManifestError)
      throw new CliError(`${manifestUrl} is not a valid manifest: ${error.message}`);
    throw error;
  }
  return {
    dir,
    manifest,
    download: async (components) => {
      io.stderr(`${repo !== null ? `${model} → ` : ''}${manifestUrl}: model files in ${dir}\n`);
      let fetched = 0;
      await fromStore(() =>
        downloadToCache({
          source,
          manifest,
          manifestText,
          components,
          dir,
          onFile: (file, bytes, wasFetched) => {
            if (wasFetched) {
              fetched++;
              io.stderr(`downloaded ${file} (${bytes} bytes, verified)\n`);
            }
          },
        }),
      );
      if (fetched === 0) io.stderr('every file needed was already in the cache\n');
    },
  };
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
  if (!values.model) {
    throw new CliError('--model is required: the model set folder, its manifest URL or a Hub repo id.', true);
  }
  const threads = decimalOption(values, 'threads');
  const cpus = availableParallelism();
  if (threads !== undefined && (threads < 1 || threads > cpus)) {
    throw new CliError(
      `--threads must be from 1 to ${cpus} (the CPUs this machine has); got ${threads}.`,
      true,
    );
  }
  if (values['prompt-file'] === '-' && values['negative-file'] === '-') {
    throw new CliError('--prompt-file and --negative-file cannot both read standard input (-).', true);
  }
  const texts = {
    prompt: await textOption(values, 'prompt', values['prompt-file']),
    negative: await textOption(values, 'negative', values['negative-file']),
  };
  const mix = parseMix(values, texts.prompt !== undefined);
  const started = performance.now();
  const model = await openModel(values.model, values.cache, io);
  const manifest = model.manifest;
  const settings = await buildSettings(values, manifest, texts, mix);
  const asked = values.size !== undefined ? parseSize(values.size) : null;
  if (asked && (asked.width !== settings.width || asked.height !== settings.height)) {
    io.stderr(
      `--size ${asked.width}x${asked.height} rounds up to ${settings.width}x${settings.height}: sides are multiples of ${sizeLimitsFor(manifest).multiple}, as in diffusers.\n`,
    );
  }
  const outputs = outputPaths(values.out ?? 'out.png', settings.numImages);
  await checkOutputs(outputs);

  // The CLI's depth mode takes a depth map, never a photo.
  const needed: ComponentId[] = componentsFor({ settings, mix });
  for (const id of needed) {
    if (!manifest.components[id]) {
      throw new CliError(
        `The model set "${manifest.modelId}" has no ${id} component, which --mode ${settings.mode} needs.`,
      );
    }
  }
  if (model.download) await model.download(needed);
  const files = await verifiedReader(model.dir, manifest, needed);
  await checkTokenizer(manifest, files);
  const inputs = await loadInputs(values, settings, io);
  if (mix.length > 0) inputs.mix = await loadMix(mix);
  const models = new ModelSet(ortNode as unknown as OrtRuntime, manifest, files, {
    sessionOptions: { executionProviders: ['cpu'], ...(threads ? { intraOpNumThreads: threads } : {}) },
  });
  io.stderr(
    `${manifest.name}: ${settings.mode} ${settings.width}×${settings.height}, seed ${settings.seed}, ` +
      `${settings.priorSteps} prior + ${settings.steps} ${schedulerDescription(settings, manifest)} steps\n`,
  );
  let imageEmbeds: { dims: readonly number[]; data: number[] } | undefined;
  const embedsOut = values['embeds-out'];
  try {
    const result = await runPipeline(
      models,
      { settings, ...inputs },
      {
        lowMemory: values['low-memory'] === true,
        onProgress: (p) => io.stderr(`${progressLine(p)}\n`),
        ...(embedsOut
          ? {
              trace: (name: string, data: Float32Array | BigInt64Array, dims: readonly number[]) => {
                if (name === 'image_embeds' && data instanceof Float32Array) {
                  imageEmbeds = { dims: [...dims], data: Array.from(data) };
                }
              },
            }
          : {}),
      },
    );
    if (embedsOut) {
      if (!imageEmbeds)
        throw new CliError(`--embeds-out: the ${settings.mode} run made no prior image embedding.`);
      await writeFile(embedsOut, `${JSON.stringify(imageEmbeds)}\n`);
    }
    if (result.truncatedPrompt) {
      io.stderr(
        `warning: the prompt is longer than CLIP's 77 tokens; ${result.truncatedPrompt.droppedTokens} tokens were dropped after "${result.truncatedPrompt.keptText}"\n`,
      );
    }
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

/** The whole command in this thread: exit code 0 on success, 2 for a bad command line, 1 otherwise. */
async function runHere(argv: readonly string[], io: CliIo): Promise<number> {
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

/** What the generating thread is started with. */
interface GenerateJob {
  readonly kind: 'kandinsky-generate';
  readonly argv: readonly string[];
}

/** What the generating thread sends back: its output, then its exit code. */
type GenerateReport =
  | { readonly stream: 'stdout' | 'stderr'; readonly text: string }
  | { readonly exitCode: number };

function isGenerateJob(data: unknown): data is GenerateJob {
  return (
    typeof data === 'object' && data !== null && (data as { kind?: unknown }).kind === 'kandinsky-generate'
  );
}

/**
 * Stack for the generating thread, MiB. onnxruntime-node's first session creation starts the
 * telemetry SDK linked into libonnxruntime, which reads /proc/self/cmdline and matches it with a
 * std::regex, `(.*)[ ]*.*`; libstdc++'s regex matcher recurses once per character, about 280 bytes
 * of stack each. So a command line of ~30 KB (a 10,000-character CJK prompt) overflows the main
 * thread's 8 MiB stack: a segfault, whatever the prompt limit. The thread gets 1 KiB of stack per
 * command-line byte (3.5× that need) on top of 64 MiB; the pages are only committed when touched.
 */
export function generationStackMb(): number {
  let bytes: number;
  try {
    bytes = readFileSync('/proc/self/cmdline').length;
  } catch {
    bytes = [process.argv0, ...process.execArgv, ...process.argv.slice(1)].reduce(
      (sum, arg) => sum + Buffer.byteLength(arg) + 1,
      0,
    );
  }
  return 64 + Math.ceil(bytes / 1024);
}

/** Runs the command in a worker thread with a stack sized for this process's command line. */
function runInThread(argv: readonly string[], io: CliIo): Promise<number> {
  return new Promise((resolve) => {
    const job: GenerateJob = { kind: 'kandinsky-generate', argv };
    const stackSizeMb = generationStackMb();
    let worker: Worker;
    try {
      worker = new Worker(new URL(import.meta.url), { workerData: job, resourceLimits: { stackSizeMb } });
    } catch (error) {
      io.stderr(
        `error: could not start the generating thread with a ${stackSizeMb} MiB stack (${(error as Error).message}): shorten the command line, e.g. with --prompt-file.\n`,
      );
      resolve(1);
      return;
    }
    let exitCode: number | undefined;
    worker.on('message', (report: GenerateReport) => {
      if ('exitCode' in report) exitCode = report.exitCode;
      else io[report.stream](report.text);
    });
    worker.on('error', (error) => {
      io.stderr(`error: ${error.message}\n`);
      exitCode ??= 1;
    });
    worker.on('exit', (code) => resolve(exitCode ?? (code === 0 ? 1 : code)));
  });
}

/**
 * Built into dist-cli (`.mjs`), this module can start itself as a worker: the command then runs in
 * a thread whose stack fits any command line (see generationStackMb). From sources (the tests), it
 * runs in this thread.
 */
const RUNS_AS_WORKER = import.meta.url.endsWith('.mjs');

/**
 * The whole command: exit code 0 on success, 2 for a bad command line, 1 for any other failure.
 * In the built CLI the work runs in a worker thread (see generationStackMb); the entry point runs
 * this module again there, and this call then serves the job it was started with.
 */
export async function runGenerateCli(argv: readonly string[], io: CliIo): Promise<number> {
  if (!isMainThread && isGenerateJob(workerData)) {
    const port = parentPort;
    const send = (report: GenerateReport) => port?.postMessage(report);
    const exitCode = await runHere(workerData.argv, {
      stdout: (text) => send({ stream: 'stdout', text }),
      stderr: (text) => send({ stream: 'stderr', text }),
    });
    send({ exitCode });
    return exitCode;
  }
  return RUNS_AS_WORKER ? runInThread(argv, io) : runHere(argv, io);
}
