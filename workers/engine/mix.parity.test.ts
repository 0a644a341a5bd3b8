/**
 * Parity of image mixing with diffusers' `KandinskyV22PriorPipeline.interpolate` followed by the
 * decoder (models/export/record_mix_reference.py), on onnxruntime-node (CPU), on the tiny set and on
 * the checkpoint set (its own recordings, both seed modes).
 */

import { readFile } from 'node:fs/promises';
import { describe, expect, it } from 'vitest';
import { checkMixCase, type MixCase, mixMustCompare, mixSettingsOf } from '../../test-support/mix-reference';
import { mixInput, mixReference } from '../../test-support/mix-reference.node';
import { exactCheck } from '../../test-support/reference-cases';
import { checkpointSet, ortCpu, TINY_DIR, tinyManifest, tinySet } from '../../test-support/tiny-fixture.node';
import { ModelSet } from './model-set';
import { liveOrtObjects } from './ort';
import { runPipeline } from './pipeline';
import type { MixItem } from './stages/mix';

/** The same tolerances as pipeline.parity.test.ts, plus exact CLIP pixel values (same float ops). */
function toleranceFor(name: string, magnitude: number): number {
  if (exactCheck(name)) return 0; // the untraced run's pixels, CLIP's pixel values
  if (name.endsWith('_noise')) return 1e-6;
  if (name === 'output_image') return 1 / 255;
  if (name === 'movq_output') return 1e-4 * Math.max(1, magnitude);
  return 1e-4;
}

describe.each([tinySet, checkpointSet].map((set) => [set.name, set] as const))(
  'image mixing parity with diffusers interpolate on the %s set (onnxruntime-node, CPU)',
  (_setName, set) => {
    const models = set.openModelSet();

    it.each(set.mixReference.cases.map((c) => [c.name, c] as const))('%s', async (_name, testCase) => {
      const { checks, result } = await checkMixCase(models, testCase, set.mixData);

      const lines: string[] = [];
      const failures: string[] = [];
      for (const { name, maxAbs, magnitude, shapeOk } of checks) {
        if (!shapeOk) {
          failures.push(`${name}: shape differs from ${JSON.stringify(testCase.tensors[name]?.shape)}`);
          continue;
        }
        lines.push(`  ${name}: ${maxAbs.toExponential(2)} (max |x| ${magnitude.toPrecision(3)})`);
        if (!(maxAbs <= toleranceFor(name, magnitude))) failures.push(`${name}: max abs error ${maxAbs}`);
      }
      console.log(`${testCase.name}\n${lines.join('\n')}`);
      expect(failures).toEqual([]);

      const compared = new Set(checks.map((c) => c.name));
      for (const name of mixMustCompare(testCase)) {
        expect(compared.has(name), `engine did not produce ${name}`).toBe(true);
      }
      expect(result.images).toHaveLength(testCase.params.num_images_per_prompt);
    });
  },
);

describe('image mixing reads', () => {
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
    const settings = { ...mixSettingsOf(mixReference.cases[0] as MixCase), steps: 1 };
    const prompts: MixItem[] = [
      { kind: 'prompt', prompt: 'a red cat', weight: 0.5 },
      { kind: 'prompt', prompt: 'a dog', weight: 0.5 },
    ];
    await runPipeline(fresh, { settings, mix: prompts }, { lowMemory: true });
    expect(reads).toContain('prior.onnx');
    expect(reads.some((path) => path.startsWith('image_encoder'))).toBe(false);
    const picked = await mixInput('inputs/mix_image.png');
    await runPipeline(
      fresh,
      { settings, mix: [...prompts, { kind: 'image', image: picked, weight: 1 }] },
      { lowMemory: true },
    );
    expect(reads).toContain('image_encoder.onnx');
    expect(liveOrtObjects().tensors).toBe(0);
  });
});
