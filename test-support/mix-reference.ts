/**
 * The image-mixing recordings (models/fixtures/tiny/reference-mix/cases.json, made by
 * models/export/record_mix_reference.py from diffusers' `KandinskyV22PriorPipeline.interpolate` and
 * the decoder on the same generator) and how each maps onto a pipeline request. Runtime-agnostic:
 * the Node parity test and the browser harness share it.
 */

import type { ModelSet } from '../workers/engine/model-set';
import type { PipelineResult } from '../workers/engine/pipeline';
import type { RgbaImage } from '../workers/engine/png';
import type { GenerationSettings } from '../workers/engine/settings';
import type { MixItem } from '../workers/engine/stages/mix';
import {
  type CompareOptions,
  type DiffusersParams,
  type RecordedTensor,
  runAndCompare,
  settingsFromParams,
  type TensorCheck,
} from './reference-cases';

export interface MixCase {
  readonly name: string;
  readonly params: Omit<DiffusersParams, 'prompt' | 'negative_prompt' | 'strength'> & {
    readonly items: readonly (
      | { readonly prompt: string; readonly weight: number }
      | { readonly image: string; readonly weight: number }
    )[];
    readonly negative_prior_prompt: string | null;
    readonly negative_prompt: string;
    readonly num_images_per_prompt: number;
  };
  /** How many prior runs diffusers made (one per prompt, plus the negative one). */
  readonly prior_runs: number;
  readonly tensors: Readonly<Record<string, { readonly file: string; readonly shape: readonly number[] }>>;
}

export interface MixReferenceIndex {
  readonly cases: readonly MixCase[];
}

/** Reads a mix recording's files: an input picture (`inputs/…png`) and a case's tensors. */
export interface MixReferenceData {
  image(path: string): Promise<RgbaImage>;
  tensor(testCase: MixCase, name: string): Promise<RecordedTensor | null>;
}

export function mixSettingsOf(testCase: MixCase): GenerationSettings {
  const p = testCase.params;
  // The engine's one negative prompt is both of interpolate's (see mix.ts); the recorder used them so.
  if (p.negative_prompt !== (p.negative_prior_prompt ?? '')) {
    throw new Error(`${testCase.name}: the prior's and the decoder's negative prompts differ`);
  }
  return settingsFromParams('txt2img', { ...p, prompt: '' });
}

export async function mixItemsOf(
  testCase: MixCase,
  data: Pick<MixReferenceData, 'image'>,
): Promise<MixItem[]> {
  const items: MixItem[] = [];
  for (const item of testCase.params.items) {
    items.push(
      'prompt' in item
        ? { kind: 'prompt', prompt: item.prompt, weight: item.weight }
        : { kind: 'image', image: await data.image(item.image), weight: item.weight },
    );
  }
  return items;
}

/**
 * What must have been compared: each prior run's draws (the generator's order), the mixed
 * embeddings, every decoder step, the image, and the image encoder's inputs and outputs.
 */
export function mixMustCompare(testCase: MixCase): string[] {
  // The last prior run without a negative prompt only draws (diffusers discards its output).
  const skipped =
    testCase.params.negative_prompt === '' ? [`mix_prior_${testCase.prior_runs - 1}_image_embeds`] : [];
  return Object.keys(testCase.tensors).filter(
    (name) =>
      /^mix_prior_\d+_prior_noise$|^mix_prior_\d+_image_embeds$|^(negative_)?image_embeds$|^decoder_noise$|^decoder_latents_\d+$|^output_image$|^image_encoder_/.test(
        name,
      ) && !skipped.includes(name),
  );
}

/** Runs a mix case through the engine and compares every traced intermediate that was recorded. */
export async function checkMixCase(
  models: ModelSet,
  testCase: MixCase,
  data: MixReferenceData,
  options: CompareOptions = {},
): Promise<{ checks: TensorCheck[]; traced: string[]; result: PipelineResult }> {
  return runAndCompare(
    models,
    { settings: mixSettingsOf(testCase), mix: await mixItemsOf(testCase, data) },
    (name) => data.tensor(testCase, name),
    {},
    options,
  );
}
