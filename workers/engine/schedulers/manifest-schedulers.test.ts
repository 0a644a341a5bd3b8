/**
 * The manifest's scheduler configs against the schedulers that run them (issue 18): a config the
 * manifest accepts builds every decoder class (the set's own, and any a person picks, as diffusers'
 * `from_config` builds it) and the prior's, and steps without error; a field value the engine does not
 * run is refused when the manifest is read, naming the field, its value and what is supported.
 */
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type Manifest, ManifestError, parseManifest } from '../../../models/manifest';
import { checkpointSet, tinyManifest } from '../../../test-support/tiny-fixture.node';
import { TorchGenerator } from '../rng';
import { DECODER_SCHEDULERS } from '../settings';
import {
  createDecoderScheduler,
  createPriorScheduler,
  DDIMScheduler,
  DDPMScheduler,
  DECODER_SCHEDULER_CLASSES,
  ownDecoderScheduler,
  type SchedulerConfigJson,
} from '.';

// biome-ignore lint/suspicious/noExplicitAny: tests edit raw JSON on purpose
type Json = any;

/** The checkpoint set's manifest as JSON, its decoder config as diffusers saved it (DDIM). */
const checkpointJson = (): Json => structuredClone(checkpointSet.manifest) as Json;

function refusal(edit: (m: Json) => void): ManifestError {
  const manifest = checkpointJson();
  edit(manifest);
  try {
    parseManifest(manifest);
  } catch (error) {
    if (error instanceof ManifestError) return error;
    throw error;
  }
  throw new Error('the manifest was accepted');
}

/** Builds the set's own decoder scheduler and every other, and the prior's; steps each once. */
function runEveryClass(manifest: Manifest): void {
  const decoder = manifest.schedulers.decoder as SchedulerConfigJson;
  const shape = [1, 4, 2, 2];
  const zeros = new Float32Array(16);
  for (const name of [undefined, ...DECODER_SCHEDULERS.map((s) => DECODER_SCHEDULER_CLASSES[s])]) {
    const scheduler = createDecoderScheduler(decoder, name);
    scheduler.setTimesteps(3);
    for (const t of scheduler.timesteps) {
      scheduler.step(zeros, t, zeros, { shape, generator: new TorchGenerator(0) });
      scheduler.stepCoefficients(t);
    }
  }
  const prior = createPriorScheduler(manifest.schedulers.prior as SchedulerConfigJson);
  prior.setTimesteps(2);
  const [first = 0, last] = prior.timesteps;
  prior.step(zeros, first, zeros, { shape: [1, 16], prevTimestep: last, generator: new TorchGenerator(0) });
}

describe('scheduler configs from the checkpoints', () => {
  it('the checkpoint set carries its own DDIM (set_alpha_to_one false) and UnCLIP configs, `_` keys dropped', () => {
    const { prior, decoder } = checkpointSet.manifest.schedulers;
    expect(decoder).toMatchObject({ class_name: 'DDIMScheduler', set_alpha_to_one: false, steps_offset: 1 });
    expect(prior).toMatchObject({ class_name: 'UnCLIPScheduler', clip_sample_range: 5 });
    expect('_diffusers_version' in decoder).toBe(false);
    expect(ownDecoderScheduler(decoder as SchedulerConfigJson)).toBe('ddim');
    expect(ownDecoderScheduler(tinyManifest.schedulers.decoder as SchedulerConfigJson)).toBe('ddpm');
    // The set's own when none is picked: DDIM with ᾱ past the last step = ᾱ_0, not 1.
    const own = createDecoderScheduler(decoder as SchedulerConfigJson);
    expect(own).toBeInstanceOf(DDIMScheduler);
    expect((own as DDIMScheduler).config.set_alpha_to_one).toBe(false);
    // DDPM picked over it: from_config keeps the shared fields, DDPM ignores set_alpha_to_one.
    const ddpm = createDecoderScheduler(decoder as SchedulerConfigJson, 'DDPMScheduler');
    expect(ddpm).toBeInstanceOf(DDPMScheduler);
    expect((ddpm as DDPMScheduler).config).toMatchObject({ steps_offset: 1, variance_type: 'fixed_small' });
    runEveryClass(checkpointSet.manifest);
  });

  it('accepts a DPM-Solver++ config as diffusers saves it, and trained betas', () => {
    const manifest = checkpointJson();
    manifest.schedulers.decoder = {
      class_name: 'DPMSolverMultistepScheduler',
      _diffusers_version: '0.31.0',
      algorithm_type: 'dpmsolver++',
      beta_end: 0.012,
      beta_schedule: 'scaled_linear',
      beta_start: 0.00085,
      dynamic_thresholding_ratio: 0.995,
      euler_at_final: false,
      final_sigmas_type: 'zero',
      lambda_min_clipped: null, // -inf, written as null by the export tool
      lower_order_final: true,
      num_train_timesteps: 1000,
      prediction_type: 'epsilon',
      rescale_betas_zero_snr: false,
      sample_max_value: 1,
      solver_order: 2,
      solver_type: 'midpoint',
      steps_offset: 0,
      thresholding: false,
      timestep_spacing: 'linspace',
      trained_betas: null,
      use_beta_sigmas: false,
      use_exponential_sigmas: false,
      use_karras_sigmas: false,
      use_lu_lambdas: false,
      variance_type: null,
    };
    const parsed = parseManifest(manifest);
    expect(ownDecoderScheduler(parsed.schedulers.decoder as SchedulerConfigJson)).toBe('dpmpp-2m');
    runEveryClass(parsed);
    manifest.schedulers.decoder = {
      class_name: 'DDPMScheduler',
      trained_betas: Array.from({ length: 1000 }, (_, i) => 0.0001 + i * 1e-5),
    };
    runEveryClass(parseManifest(manifest));
  });

  const refusals: [string, (m: Json) => void, string, RegExp][] = [
    [
      'a config without its class (diffusers’ `_class_name` is not the manifest’s `class_name`)',
      (m: Json) => {
        m.schedulers.decoder._class_name = m.schedulers.decoder.class_name;
        delete m.schedulers.decoder.class_name;
      },
      'schedulers.decoder.class_name',
      /missing; expected "DDPMScheduler", "DDIMScheduler", "DPMSolverMultistepScheduler"/,
    ],
    [
      'an unknown class',
      (m: Json) => (m.schedulers.decoder.class_name = 'EulerDiscreteScheduler'),
      'schedulers.decoder.class_name',
      /"EulerDiscreteScheduler" is not a value diffusers knows here.*DDIMScheduler/,
    ],
    [
      'UnCLIP for the decoder',
      (m: Json) => (m.schedulers.decoder.class_name = 'UnCLIPScheduler'),
      'schedulers.decoder.class_name',
      /"UnCLIPScheduler" is a diffusers setting this engine does not run \(it runs "DDPMScheduler", "DDIMScheduler", "DPMSolverMultistepScheduler"\)/,
    ],
    [
      'a prior that is not UnCLIP',
      (m: Json) => (m.schedulers.prior.class_name = 'DDPMScheduler'),
      'schedulers.prior.class_name',
      /"DDPMScheduler".*"UnCLIPScheduler"/,
    ],
    [
      'v-prediction',
      (m: Json) => (m.schedulers.decoder.prediction_type = 'v_prediction'),
      'schedulers.decoder.prediction_type',
      /"v_prediction" is a diffusers setting this engine does not run \(it runs "epsilon"\)/,
    ],
    [
      'thresholding',
      (m: Json) => (m.schedulers.decoder.thresholding = true),
      'schedulers.decoder.thresholding',
      /true is a diffusers setting/,
    ],
    [
      'zero-SNR betas',
      (m: Json) => (m.schedulers.decoder.rescale_betas_zero_snr = true),
      'schedulers.decoder.rescale_betas_zero_snr',
      /true is a diffusers setting/,
    ],
    [
      'a sigmoid beta schedule',
      (m: Json) => (m.schedulers.decoder.beta_schedule = 'sigmoid'),
      'schedulers.decoder.beta_schedule',
      /"sigmoid" is a diffusers setting/,
    ],
    [
      'learned variance',
      (m: Json) => (m.schedulers.decoder.variance_type = 'learned_range'),
      'schedulers.decoder.variance_type',
      /"learned_range" is a diffusers setting.*"fixed_small"/,
    ],
    [
      'third-order DPM-Solver',
      (m: Json) => (m.schedulers.decoder.solver_order = 3),
      'schedulers.decoder.solver_order',
      /3 is a diffusers setting this engine does not run \(it runs 1, 2\)/,
    ],
    [
      'SDE DPM-Solver',
      (m: Json) => (m.schedulers.decoder.algorithm_type = 'sde-dpmsolver++'),
      'schedulers.decoder.algorithm_type',
      /"sde-dpmsolver\+\+" is a diffusers setting/,
    ],
    [
      'Karras sigmas',
      (m: Json) => (m.schedulers.decoder.use_karras_sigmas = true),
      'schedulers.decoder.use_karras_sigmas',
      /true is a diffusers setting/,
    ],
    [
      'no final sigma type',
      (m: Json) => (m.schedulers.decoder.final_sigmas_type = null),
      'schedulers.decoder.final_sigmas_type',
      /null is not a value diffusers knows here/,
    ],
    [
      'an unknown spacing',
      (m: Json) => (m.schedulers.decoder.timestep_spacing = 'sideways'),
      'schedulers.decoder.timestep_spacing',
      /"sideways" is not a value diffusers knows here/,
    ],
    [
      'a field no class reads',
      (m: Json) => (m.schedulers.decoder.karras = 1),
      'schedulers.decoder.karras',
      /"karras" is not a field diffusers 0.31's DDPMScheduler, DDIMScheduler and DPMSolverMultistepScheduler read/,
    ],
    [
      'a set_alpha_to_one that is not a boolean',
      (m: Json) => (m.schedulers.decoder.set_alpha_to_one = 'no'),
      'schedulers.decoder.set_alpha_to_one',
      /boolean/,
    ],
    [
      'trained betas of the wrong count',
      (m: Json) => (m.schedulers.decoder.trained_betas = [0.1, 0.2]),
      'schedulers.decoder.trained_betas',
      /2 values for 1000 training timesteps/,
    ],
    [
      'a prior clipping to no range',
      (m: Json) => (m.schedulers.prior.clip_sample_range = null),
      'schedulers.prior.clip_sample_range',
      /null while clip_sample is on/,
    ],
    [
      'a learned prior variance',
      (m: Json) => (m.schedulers.prior.variance_type = 'learned_range'),
      'schedulers.prior.variance_type',
      /"learned_range" is a diffusers setting/,
    ],
  ];
  it.each(refusals)(
    'refuses %s, naming the field, the value and what runs',
    (_what, edit, field, message) => {
      const error = refusal(edit);
      expect(error.field).toBe(field);
      expect(error.message).toMatch(message);
    },
  );

  it('every config the manifest accepts runs as every decoder class and the prior (fuzzed)', () => {
    const values = fc.constantFrom<unknown>(
      ...['linear', 'scaled_linear', 'squaredcos_cap_v2', 'fixed_small', 'fixed_small_log', 'fixed_large'],
      ...['epsilon', 'sample', 'leading', 'trailing', 'linspace', 'midpoint', 'heun', 'zero', 'sigma_min'],
      ...['dpmsolver++', 'DDPMScheduler', 'DDIMScheduler', 'DPMSolverMultistepScheduler', 'UnCLIPScheduler'],
      ...[true, false, null, 0, 1, 2, 0.0001, 0.00085, 0.012, 0.02, 0.5, 5, 10, 400, 1000, -3],
    );
    const fields = fc.constantFrom(
      ...['class_name', 'num_train_timesteps', 'beta_start', 'beta_end', 'beta_schedule', 'variance_type'],
      ...['clip_sample', 'clip_sample_range', 'prediction_type', 'timestep_spacing', 'steps_offset'],
      ...['set_alpha_to_one', 'solver_order', 'solver_type', 'lower_order_final', 'euler_at_final'],
      ...['final_sigmas_type', 'lambda_min_clipped', 'use_karras_sigmas', 'thresholding'],
    );
    fc.assert(
      fc.property(
        fc.constantFrom('prior', 'decoder'),
        fc.array(fc.tuple(fields, values), { minLength: 1, maxLength: 4 }),
        (which, edits) => {
          const manifest = checkpointJson();
          for (const [key, value] of edits) manifest.schedulers[which][key] = value;
          let parsed: Manifest;
          try {
            parsed = parseManifest(manifest);
          } catch (error) {
            expect(error).toBeInstanceOf(ManifestError);
            return;
          }
          runEveryClass(parsed);
        },
      ),
      { numRuns: 300 },
    );
  });
});
