import { describe, expect, it } from 'vitest';
import { compareFloat32, readFixtureFloat32, readFixtureJson } from '../../../test-support/fixtures.node';
import { TorchGenerator } from '../rng';
import {
  createDecoderScheduler,
  createPriorScheduler,
  DDIMScheduler,
  DDPMScheduler,
  type DecoderSchedulerClass,
  DPMSolverMultistepScheduler,
  type SchedulerConfigJson,
  SchedulerError,
  UnCLIPScheduler,
} from './index';

interface CaseFixture {
  scheduler: 'UnCLIPScheduler' | DecoderSchedulerClass;
  config: SchedulerConfigJson;
  num_inference_steps: number;
  shape: number[];
  noise_seed: string;
  timesteps: number[];
  all_timesteps?: number[];
  strength?: number;
  step_kwargs?: { eta?: number; use_clipped_model_output?: boolean };
  init_noise_sigma: number;
  tensors: Record<string, string>;
}

const { cases } = readFixtureJson<{ cases: string[] }>('cases.json');
const loadCase = (name: string) => readFixtureJson<CaseFixture>(`${name}.json`);
const tensor = (c: CaseFixture, key: string) => {
  const file = c.tensors[key];
  if (!file) throw new Error(`fixture lacks ${key}`);
  return readFixtureFloat32(file).data;
};
/** Row `i` of a tensor stacked over steps. */
const row = (stacked: Float32Array, i: number, size: number) => stacked.subarray(i * size, (i + 1) * size);

/*
 * Two ways of running each recorded case, each with its own tolerance (relative to max(|x|, 1)):
 *
 * - Step by step: every step starts from diffusers' own previous sample, so each step's error is the
 *   scheduler's alone. Coefficients and tensor ops are rounded to float32 as torch rounds them (torch's
 *   SLEEF exp included), so deterministic steps agree to the bit; noisy steps (DDPM, UnCLIP, DDIM η > 0)
 *   add torch-vs-us Box–Muller differences (≤ 3 ulp ≈ 2.4e-7 at |x| ≈ 1) times σ ≤ 1. Tolerance 1e-6
 *   (~8 ulp at 1); a real mistake (a wrong coefficient, a skipped draw) moves values by > 1e-3.
 * - Free running, as the engine runs: our own noise and our own previous samples, from our own initial
 *   latents. The few-ulp noise differences then compound: measured up to ~3e-6 over 25 DDPM steps and
 *   ~2e-6 in DPM-Solver, whose first x0 = (x − σε)/α magnifies them by 1/α ≈ 15. Tolerance 1e-5.
 */
const STEP_TOLERANCE = 1e-6;
const CHAIN_TOLERANCE = 1e-5;
/** Our randn against torch's, as in rng.test.ts: 8 float32 ulp relative, |x| floored at 0.5. */
const NOISE_TOLERANCE = 8 * 2 ** -23;

type Mode = 'step by step' | 'free running';
const stats: Record<Mode, { values: number; exact: number; maxAbs: number; maxRel: number }> = {
  'step by step': { values: 0, exact: 0, maxAbs: 0, maxRel: 0 },
  'free running': { values: 0, exact: 0, maxAbs: 0, maxRel: 0 },
};

function expectNoiseClose(actual: Float32Array, expected: Float32Array, what: string) {
  const { maxRel } = compareFloat32(actual, expected, 0.5);
  expect(maxRel, what).toBeLessThanOrEqual(NOISE_TOLERANCE);
}

function expectClose(mode: Mode, actual: Float32Array, expected: Float32Array, what: string) {
  const { maxAbs, maxRel, worstIndex } = compareFloat32(actual, expected, 1);
  const s = stats[mode];
  s.values += expected.length;
  s.exact += actual.filter((v, i) => v === expected[i]).length;
  s.maxAbs = Math.max(s.maxAbs, maxAbs);
  s.maxRel = Math.max(s.maxRel, maxRel);
  expect(
    maxRel,
    `${what}: worst at ${worstIndex}: ${actual[worstIndex]} vs ${expected[worstIndex]}`,
  ).toBeLessThanOrEqual(mode === 'step by step' ? STEP_TOLERANCE : CHAIN_TOLERANCE);
}

function runCase(name: string, mode: Mode) {
  const c = loadCase(name);
  const size = c.shape.reduce((a, b) => a * b, 1);
  const generator = new TorchGenerator(BigInt(c.noise_seed));
  const modelOutputs = tensor(c, 'model_outputs');
  const outputSize = modelOutputs.length / c.timesteps.length;
  const prevSamples = tensor(c, 'prev_samples');
  const next = (ours: Float32Array, i: number) =>
    mode === 'step by step' ? row(prevSamples, i, size) : ours;
  const start = (ours: Float32Array) => (mode === 'step by step' ? tensor(c, 'initial_latents') : ours);

  if (c.scheduler === 'UnCLIPScheduler') {
    // KandinskyV22PriorPipeline: latents = randn * init_noise_sigma, then step with prev_timestep given.
    const scheduler = createPriorScheduler(c.config);
    scheduler.setTimesteps(c.num_inference_steps);
    expect(scheduler.timesteps).toEqual(c.timesteps);
    expect(scheduler.initNoiseSigma).toBe(c.init_noise_sigma);
    const ourLatents = generator.randn(c.shape).map((v) => v * scheduler.initNoiseSigma);
    expectNoiseClose(ourLatents, tensor(c, 'initial_latents'), 'initial latents');
    let latents = start(ourLatents);
    const originals = tensor(c, 'pred_original_samples');
    scheduler.timesteps.forEach((t, i) => {
      const result = scheduler.step(row(modelOutputs, i, size), t, latents, {
        shape: c.shape,
        generator,
        prevTimestep: scheduler.timesteps[i + 1],
      });
      const x0 = result.predOriginalSample as Float32Array;
      expectClose(mode, x0, row(originals, i, size), `x0 at step ${i} (t=${t})`);
      expectClose(mode, result.prevSample, row(prevSamples, i, size), `step ${i} (t=${t})`);
      latents = next(result.prevSample, i);
    });
    return;
  }

  const scheduler = createDecoderScheduler(c.config, c.scheduler);
  expect(scheduler.constructor.name).toBe(c.scheduler);
  let timesteps: readonly number[];
  let ourLatents: Float32Array;
  if (c.strength === undefined) {
    scheduler.setTimesteps(c.num_inference_steps);
    timesteps = scheduler.timesteps;
    // KandinskyV22Pipeline.prepare_latents: the first draw of the decoder's generator.
    ourLatents = generator.randn(c.shape).map((v) => v * scheduler.initNoiseSigma);
  } else {
    // KandinskyV22Img2ImgPipeline: get_timesteps, then noise the image latents to the first kept step.
    ({ timesteps } = scheduler.getTimesteps(c.num_inference_steps, c.strength));
    const noise = generator.randn(c.shape);
    expectNoiseClose(noise, tensor(c, 'added_noise'), 'img2img noise');
    const batchTimesteps: number[] = Array(c.shape[0]).fill(timesteps[0]);
    ourLatents = scheduler.addNoise(tensor(c, 'image_latents'), noise, batchTimesteps);
    const fromTorchNoise = scheduler.addNoise(
      tensor(c, 'image_latents'),
      tensor(c, 'added_noise'),
      batchTimesteps,
    );
    expectClose('step by step', fromTorchNoise, tensor(c, 'initial_latents'), 'add_noise');
  }
  expect(scheduler.timesteps).toEqual(c.all_timesteps);
  expect(timesteps).toEqual(c.timesteps);
  expectNoiseClose(ourLatents, tensor(c, 'initial_latents'), 'initial latents');
  let latents = start(ourLatents);
  timesteps.forEach((t, i) => {
    const result = scheduler.step(row(modelOutputs, i, outputSize), t, latents, {
      shape: c.shape,
      generator,
      eta: c.step_kwargs?.eta,
      useClippedModelOutput: c.step_kwargs?.use_clipped_model_output,
    });
    expectClose(mode, result.prevSample, row(prevSamples, i, size), `step ${i} (t=${t})`);
    latents = next(result.prevSample, i);
  });
}

describe.each(['step by step', 'free running'] as const)('schedulers against diffusers 0.31, %s', (mode) => {
  it.each(cases)('%s', (name) => runCase(name, mode));

  it('reports the measured error', () => {
    const s = stats[mode];
    expect(s.values).toBeGreaterThan(5000);
    console.info(
      `schedulers (${mode}): ${s.values} values, ${((100 * s.exact) / s.values).toFixed(1)}% bit-identical, ` +
        `worst abs ${s.maxAbs.toExponential(2)}, worst rel ${s.maxRel.toExponential(2)}`,
    );
  });
});

describe('noise schedule tables', () => {
  const tables =
    readFixtureJson<Record<string, { config: SchedulerConfigJson; betas: string; alphas_cumprod: string }>>(
      'schedule_tables.json',
    );
  it.each(Object.entries(tables))('%s betas and alphas_cumprod are bit-identical', (key, table) => {
    const schedule =
      key === 'prior'
        ? createPriorScheduler(table.config).schedule
        : createDecoderScheduler(table.config).schedule;
    expect(Array.from(schedule.betas)).toEqual(Array.from(readFixtureFloat32(table.betas).data));
    expect(Array.from(schedule.alphasCumprod)).toEqual(
      Array.from(readFixtureFloat32(table.alphas_cumprod).data),
    );
  });
});

describe('timestep grids', () => {
  const table = readFixtureJson<{
    schedulers: Record<string, { config: SchedulerConfigJson; timesteps: Record<string, number[]> }>;
    img2img: { num_inference_steps: number; strength: number; timesteps: number[]; steps: number }[];
  }>('timesteps.json');
  const make = (key: string, config: SchedulerConfigJson) => {
    if (key === 'unclip') return createPriorScheduler(config);
    const name = key.startsWith('ddim')
      ? 'DDIMScheduler'
      : key.startsWith('dpm')
        ? 'DPMSolverMultistepScheduler'
        : 'DDPMScheduler';
    return createDecoderScheduler(config, name);
  };
  it.each(Object.keys(table.schedulers))('%s', (key) => {
    const entry = table.schedulers[key];
    if (!entry) throw new Error(key);
    for (const [count, expected] of Object.entries(entry.timesteps)) {
      const scheduler = make(key, entry.config);
      scheduler.setTimesteps(Number(count));
      expect(scheduler.timesteps, `${key} with ${count} steps`).toEqual(expected);
    }
  });

  it.each(table.img2img)('img2img: $num_inference_steps steps at strength $strength', (entry) => {
    const scheduler = new DDPMScheduler(
      readFixtureJson<{ decoder_config: SchedulerConfigJson }>('cases.json').decoder_config,
    );
    const { timesteps, startIndex } = scheduler.getTimesteps(entry.num_inference_steps, entry.strength);
    expect(timesteps).toEqual(entry.timesteps);
    expect(entry.num_inference_steps - startIndex).toBe(entry.steps);
  });
});

describe('scheduler contracts', () => {
  const { prior_config: priorConfig, decoder_config: decoderConfig } = readFixtureJson<{
    prior_config: SchedulerConfigJson;
    decoder_config: SchedulerConfigJson;
  }>('cases.json');

  it('Kandinsky’s decoder config builds DDPM with fixed_small variance, so the UNet variance channels are dropped', () => {
    const scheduler = createDecoderScheduler(decoderConfig);
    expect(scheduler).toBeInstanceOf(DDPMScheduler);
    expect((scheduler as DDPMScheduler).config.variance_type).toBe('fixed_small');
    expect((scheduler as DDPMScheduler).usesPredictedVariance).toBe(false);
    expect(createPriorScheduler(priorConfig)).toBeInstanceOf(UnCLIPScheduler);
  });

  it('DDPM and UnCLIP refuse to invent noise: a noisy step without a generator is a typed error', () => {
    const ddpm = new DDPMScheduler(decoderConfig as object);
    ddpm.setTimesteps(2);
    const shape = [1, 4, 2, 2];
    const zeros = new Float32Array(16);
    expect(() => ddpm.step(zeros, ddpm.timesteps[0] as number, zeros, { shape })).toThrow(SchedulerError);
    const unclip = new UnCLIPScheduler(priorConfig as object);
    unclip.setTimesteps(2);
    expect(() => unclip.step(zeros, 999, zeros, { shape: [1, 16], prevTimestep: 0 })).toThrowError(
      /generator/,
    );
    // t = 0 adds no noise, so no generator is needed.
    expect(() => unclip.step(zeros, 0, zeros, { shape: [1, 16] })).not.toThrow();
  });

  it('rejects configs it cannot reproduce instead of silently differing', () => {
    expect(() => new DDPMScheduler({ thresholding: true })).toThrow(SchedulerError);
    expect(() => new DDIMScheduler({ prediction_type: 'v_prediction' } as object)).toThrow(SchedulerError);
    expect(() => new DPMSolverMultistepScheduler({ use_karras_sigmas: true })).toThrow(SchedulerError);
    expect(() => new DPMSolverMultistepScheduler({ algorithm_type: 'sde-dpmsolver++' } as object)).toThrow(
      SchedulerError,
    );
    expect(() => new UnCLIPScheduler({ variance_type: 'learned_range' } as object)).toThrow(SchedulerError);
    expect(() => createDecoderScheduler({ _class_name: 'EulerDiscreteScheduler' })).toThrow(SchedulerError);
  });

  it('rejects step counts diffusers cannot schedule and mismatched tensor sizes', () => {
    const ddpm = new DDPMScheduler(decoderConfig as object);
    expect(() => ddpm.setTimesteps(0)).toThrow(SchedulerError);
    expect(() => ddpm.setTimesteps(1001)).toThrow(SchedulerError);
    expect(() => new UnCLIPScheduler().setTimesteps(1)).toThrow(SchedulerError);
    ddpm.setTimesteps(2);
    expect(() =>
      ddpm.step(new Float32Array(8), 501, new Float32Array(16), {
        shape: [1, 4, 2, 2],
        generator: new TorchGenerator(0),
      }),
    ).toThrow(SchedulerError);
  });
});
