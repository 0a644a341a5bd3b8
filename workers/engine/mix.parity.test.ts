/**
 * Parity of image mixing with diffusers' `KandinskyV22PriorPipeline.interpolate` followed by the
 * decoder on the same generator (models/export/record_mix_reference.py), on onnxruntime-node (CPU).
 */

import { readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { compareFloat32 } from './compare';
import type { MixItem } from './mix';
import { ModelSet } from './model-set';
import { nodeZlib } from './node-zlib.node';
import { parseNpy } from './npy';
import { liveOrtObjects } from './ort';
import { runPipeline } from './pipeline';
import { decodePng, type RgbaImage } from './png';
import { settingsFromParams } from './reference-cases';
import type { GenerationSettings } from './settings';
import { openTinyModelSet, ortCpu, TINY_DIR, tinyManifest } from './tiny-fixture.node';

const MIX_DIR = `${TINY_DIR}reference-mix/`;

interface MixCase {
  readonly name: string;
  readonly params: {
    readonly items: readonly (
      | { readonly prompt: string; readonly weight: number }
      | { readonly image: string; readonly weight: number }
    )[];
    readonly negative_prior_prompt: string | null;
    readonly negative_prompt: string;
    readonly seed: number;
    readonly height: number;
    readonly width: number;
    readonly prior_num_inference_steps: number;
    readonly num_inference_steps: number;
    readonly prior_guidance_scale: number;
    readonly guidance_scale: number;
    readonly num_images_per_prompt: number;
  };
  readonly prior_runs: number;
  readonly tensors: Readonly<Record<string, { readonly file: string; readonly shape: readonly number[] }>>;
}

const mixReference = JSON.parse(readFileSync(`${MIX_DIR}cases.json`, 'utf8')) as {
  cases: readonly MixCase[];
};

async function picture(path: string): Promise<RgbaImage> {
  return decodePng(new Uint8Array(readFileSync(MIX_DIR + path)), nodeZlib, 1e7);
}

function settingsOf(testCase: MixCase): GenerationSettings {
  const p = testCase.params;
  // The engine's one negative prompt is both of interpolate's (see mix.ts); the recorder used them so.
  expect(p.negative_prompt).toBe(p.negative_prior_prompt ?? '');
  return settingsFromParams('txt2img', { ...p, prompt: '' });
}

/** The same tolerances as pipeline.parity.test.ts, plus exact CLIP pixel values (same float ops). */
function toleranceFor(name: string, magnitude: number): number {
  if (name === 'image_encoder_pixel_values') return 0;
  if (name.endsWith('_noise')) return 1e-6;
  if (name === 'output_image') return 1 / 255;
  if (name === 'movq_output') return 1e-4 * Math.max(1, magnitude);
  return 1e-4;
}

describe('image mixing parity with diffusers interpolate (onnxruntime-node, CPU)', () => {
  const models = openTinyModelSet();

  it.each(mixReference.cases.map((c) => [c.name, c] as const))('%s', async (_name, testCase) => {
    const items: MixItem[] = [];
    for (const item of testCase.params.items) {
      items.push(
        'prompt' in item
          ? { kind: 'prompt', prompt: item.prompt, weight: item.weight }
          : { kind: 'image', image: await picture(item.image), weight: item.weight },
      );
    }
    const traced = new Map<string, { data: Float32Array | BigInt64Array; dims: readonly number[] }>();
    const result = await runPipeline(
      models,
      { settings: settingsOf(testCase), mix: items },
      { trace: (name, data, dims) => traced.set(name, { data: data.slice(), dims: [...dims] }) },
    );

    const lines: string[] = [];
    const failures: string[] = [];
    for (const [name, entry] of Object.entries(testCase.tensors)) {
      const ours = traced.get(name);
      if (!ours) continue;
      const expected = parseNpy(new Uint8Array(readFileSync(`${MIX_DIR}${testCase.name}/${entry.file}`)));
      const values = Array.from(expected.data as ArrayLike<number>, Number);
      if (JSON.stringify(ours.dims) !== JSON.stringify(expected.shape)) {
        failures.push(`${name}: shape ${JSON.stringify(ours.dims)} vs ${JSON.stringify(expected.shape)}`);
        continue;
      }
      const { maxAbs } = compareFloat32(Array.from(ours.data, Number), values);
      const magnitude = values.reduce((m, v) => Math.max(m, Math.abs(v)), 0);
      lines.push(`  ${name}: ${maxAbs.toExponential(2)} (max |x| ${magnitude.toPrecision(3)})`);
      if (!(maxAbs <= toleranceFor(name, magnitude))) failures.push(`${name}: max abs error ${maxAbs}`);
    }
    console.log(`${testCase.name}\n${lines.join('\n')}`);
    expect(failures).toEqual([]);

    // What must have been compared: each prior run's draws (the generator's order), the mixed
    // embeddings, every decoder step and the image.
    const mustCompare = Object.keys(testCase.tensors).filter((name) =>
      /^mix_prior_\d+_prior_noise$|^mix_prior_\d+_image_embeds$|^(negative_)?image_embeds$|^decoder_noise$|^decoder_latents_\d+$|^output_image$|^image_encoder_/.test(
        name,
      ),
    );
    // The last prior run without a negative prompt only draws (diffusers discards its output).
    const skipped =
      testCase.params.negative_prompt === '' ? [`mix_prior_${testCase.prior_runs - 1}_image_embeds`] : [];
    for (const name of mustCompare) {
      if (!skipped.includes(name)) expect(traced.has(name), `engine did not produce ${name}`).toBe(true);
    }
    expect(result.images).toHaveLength(testCase.params.num_images_per_prompt);
  });

  it('reads the image encoder only when a picture is mixed', async () => {
    const reads: string[] = [];
    const fresh = new ModelSet(
      ortCpu,
      tinyManifest,
      {
        read: async (path) => {
          reads.push(path);
          return new Uint8Array(await readFile(TINY_DIR + path));
        },
      },
      { sessionOptions: { executionProviders: ['cpu'], intraOpNumThreads: 1 } },
    );
    const settings = { ...settingsOf(mixReference.cases[0] as MixCase), steps: 1 };
    const prompts: MixItem[] = [
      { kind: 'prompt', prompt: 'a red cat', weight: 0.5 },
      { kind: 'prompt', prompt: 'a dog', weight: 0.5 },
    ];
    await runPipeline(fresh, { settings, mix: prompts }, { lowMemory: true });
    expect(reads).toContain('prior.onnx');
    expect(reads.some((path) => path.startsWith('image_encoder'))).toBe(false);
    const picked = await picture('inputs/mix_image.png');
    await runPipeline(
      fresh,
      { settings, mix: [...prompts, { kind: 'image', image: picked, weight: 1 }] },
      { lowMemory: true },
    );
    expect(reads).toContain('image_encoder.onnx');
    expect(liveOrtObjects().tensors).toBe(0);
  });
});
