/**
 * The step graphs against the CPU reference path: guidance as rows.ts's `guide`, the scheduler's
 * own `step()`, the inpainting blend as `blendKept`, over several chained steps on random data, for
 * every scheduler, with and without guidance and inpainting. On onnxruntime's CPU provider the graph
 * repeats the same float32 operations, so the results must be identical, not merely close.
 */
import * as ortNode from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { tinyManifest } from '../../../test-support/tiny-fixture.node';
import { randnTensor, TorchGenerator } from '../rng';
import {
  createDecoderScheduler,
  type DecoderScheduler,
  type DecoderSchedulerClass,
  type SchedulerConfigJson,
} from '../schedulers';
import {
  buildCopyGraph,
  buildStepGraph,
  COPY_GRAPH,
  STEP_GRAPH,
  stepCoefficientVector,
  stepGraphSpecFor,
} from './step-graphs';

const f32 = Math.fround;
const decoderConfig = tinyManifest.schedulers.decoder as SchedulerConfigJson;
const SCHEDULERS: DecoderSchedulerClass[] = ['DDPMScheduler', 'DDIMScheduler', 'DPMSolverMultistepScheduler'];

function random(seed: number, length: number, scale = 1): Float32Array {
  return new TorchGenerator()
    .manualSeed(seed)
    .randn([length])
    .map((v) => f32(v * scale));
}

/** The host loop's step (host-loop.ts): CFG, the scheduler's step, then the inpainting blend. */
function cpuStep(
  scheduler: DecoderScheduler,
  noisePred: Float32Array,
  latents: Float32Array,
  t: number,
  next: number | undefined,
  shape: number[],
  guidance: number,
  generator: TorchGenerator,
  inpaint: { keep: Float32Array; image: Float32Array; noise0: Float32Array } | null,
): Float32Array {
  const [n = 1, c = 4, h = 1, w = 1] = shape;
  const plane = h * w;
  const outChannels = 8;
  const eps = new Float32Array(n * c * plane);
  const guided = guidance > 1;
  for (let k = 0; k < eps.length; k++) {
    const at = Math.floor(k / (c * plane)) * outChannels * plane + (k % (c * plane));
    const u = noisePred[at] as number;
    eps[k] = guided
      ? f32(u + f32(guidance * f32((noisePred[n * outChannels * plane + at] as number) - u)))
      : u;
  }
  let out = scheduler.step(eps, t, latents, { shape, generator }).prevSample;
  if (inpaint) {
    const original =
      next === undefined ? inpaint.image : scheduler.addNoise(inpaint.image, inpaint.noise0, [next]);
    out = out.map((x, k) => {
      const keep = inpaint.keep[k % plane] as number;
      return f32(f32(keep * (original[k % (c * plane)] as number)) + f32((1 - keep) * x));
    });
  }
  return out;
}

async function session(bytes: Uint8Array) {
  return ortNode.InferenceSession.create(bytes, { executionProviders: ['cpu'], intraOpNumThreads: 1 });
}

const cases = SCHEDULERS.flatMap((name) =>
  [4, 1].flatMap((guidance) => [false, true].map((inpaint) => [name, guidance, inpaint] as const)),
);

describe('denoise step graphs on the CPU provider', () => {
  it.each(cases)(
    '%s, guidance %d, inpaint %s: identical to the CPU path over 4 steps',
    async (name, guidance, inpaint) => {
      const shape = [2, 4, 3, 5];
      const [n, c, h, w] = shape as [number, number, number, number];
      const size = n * c * h * w;
      const rows = guidance > 1 ? 2 * n : n;
      const cpuScheduler = createDecoderScheduler(decoderConfig, name);
      const graphScheduler = createDecoderScheduler(decoderConfig, name);
      cpuScheduler.setTimesteps(4);
      graphScheduler.setTimesteps(4);
      const timesteps = cpuScheduler.timesteps;
      const cpuGenerator = new TorchGenerator().manualSeed(99);
      const graphGenerator = new TorchGenerator().manualSeed(99);
      const keep = Float32Array.from({ length: h * w }, (_, k) => (k % 3 === 0 ? 1 : 0));
      const image = random(5, c * h * w);
      const noise0 = random(6, c * h * w);
      const inpaintData = inpaint ? { keep, image, noise0 } : null;

      const spec = stepGraphSpecFor(graphScheduler, guidance > 1, inpaint, c);
      const step = await session(buildStepGraph(spec));
      let cpuLatents = random(1, size);
      let graphLatents: ortNode.Tensor = new ortNode.Tensor('float32', cpuLatents.slice(), shape);
      let previousX0: ortNode.Tensor = new ortNode.Tensor('float32', new Float32Array(size), shape);
      for (const [i, t] of timesteps.entries()) {
        const noisePred = random(100 + i, rows * 8 * h * w, 0.8);
        const next = timesteps[i + 1];
        cpuLatents = cpuStep(
          cpuScheduler,
          noisePred,
          cpuLatents,
          t,
          next,
          shape,
          guidance,
          cpuGenerator,
          inpaintData,
        );

        const coefficients = graphScheduler.stepCoefficients(t);
        const kept = inpaint
          ? next === undefined
            ? { signal: 1, noise: 0 }
            : graphScheduler.noiseCoefficients(next)
          : undefined;
        const scalars = stepCoefficientVector(spec, guidance, coefficients, kept);
        const feeds: Record<string, ortNode.Tensor> = {
          [STEP_GRAPH.noisePred]: new ortNode.Tensor('float32', noisePred, [rows, 8, h, w]),
          [STEP_GRAPH.latents]: graphLatents,
          [STEP_GRAPH.coefficients]: new ortNode.Tensor('float32', scalars, [scalars.length]),
        };
        if (coefficients.kind === 'ddpm') {
          const noise =
            coefficients.noiseStd === null ? new Float32Array(size) : randnTensor(shape, graphGenerator);
          feeds[STEP_GRAPH.noise] = new ortNode.Tensor('float32', noise, shape);
        }
        if (coefficients.kind === 'dpmpp-2m') feeds[STEP_GRAPH.previousX0] = previousX0;
        if (inpaint) {
          feeds[STEP_GRAPH.keep] = new ortNode.Tensor('float32', keep, [1, 1, h, w]);
          feeds[STEP_GRAPH.imageLatents] = new ortNode.Tensor('float32', image, [1, c, h, w]);
          feeds[STEP_GRAPH.initialNoise] = new ortNode.Tensor('float32', noise0, [1, c, h, w]);
        }
        const out = await step.run(feeds);
        const latentsNext = out[STEP_GRAPH.latentsNext] as ortNode.Tensor;
        expect(Array.from(latentsNext.data as Float32Array), `step ${i} latents`).toEqual(
          Array.from(cpuLatents),
        );
        if (guidance > 1) {
          const doubled = out[STEP_GRAPH.modelInputNext] as ortNode.Tensor;
          expect(doubled.dims).toEqual([rows, c, h, w]);
          expect(Array.from(doubled.data as Float32Array)).toEqual([...cpuLatents, ...cpuLatents]);
        }
        graphLatents = latentsNext;
        if (coefficients.kind === 'dpmpp-2m') previousX0 = out[STEP_GRAPH.x0Next] as ortNode.Tensor;
      }
      // Both paths drew the same number of noise tensors, so the generators are still in step.
      expect(graphGenerator.randn([4])).toEqual(cpuGenerator.randn([4]));
      await step.release();
    },
  );

  it('clips x0 when the config asks (DDIM and DDPM defaults clip to ±1)', async () => {
    for (const name of ['DDPMScheduler', 'DDIMScheduler'] as const) {
      const scheduler = createDecoderScheduler(
        { ...decoderConfig, clip_sample: true, clip_sample_range: 0.5 },
        name,
      );
      const reference = createDecoderScheduler(
        { ...decoderConfig, clip_sample: true, clip_sample_range: 0.5 },
        name,
      );
      scheduler.setTimesteps(3);
      reference.setTimesteps(3);
      const spec = stepGraphSpecFor(scheduler, false, false, 4);
      expect(spec.clipRange).toBe(0.5);
      const step = await session(buildStepGraph(spec));
      const shape = [1, 4, 2, 2];
      const latents = random(3, 16, 3);
      const noisePred = random(4, 32, 3);
      const t = scheduler.timesteps[0] as number;
      const generator = new TorchGenerator().manualSeed(1);
      const expected = cpuStep(reference, noisePred, latents, t, undefined, shape, 1, generator, null);
      const coefficients = scheduler.stepCoefficients(t);
      const scalars = stepCoefficientVector(spec, 1, coefficients);
      const feeds: Record<string, ortNode.Tensor> = {
        noise_pred: new ortNode.Tensor('float32', noisePred, [1, 8, 2, 2]),
        latents: new ortNode.Tensor('float32', latents, shape),
        coefficients: new ortNode.Tensor('float32', scalars, [scalars.length]),
      };
      if (coefficients.kind === 'ddpm') {
        feeds.noise = new ortNode.Tensor(
          'float32',
          randnTensor(shape, new TorchGenerator().manualSeed(1)),
          shape,
        );
      }
      const out = await step.run(feeds);
      expect(Array.from(out.latents_next?.data as Float32Array), name).toEqual(Array.from(expected));
      await step.release();
    }
  });

  it('noiseCoefficients reproduce each scheduler’s addNoise exactly', () => {
    for (const name of SCHEDULERS) {
      const scheduler = createDecoderScheduler(decoderConfig, name);
      scheduler.setTimesteps(5);
      const x = random(7, 64);
      const noise = random(8, 64);
      for (const t of scheduler.timesteps) {
        const { signal, noise: sigma } = scheduler.noiseCoefficients(t);
        const expected = scheduler.addNoise(x, noise, [t]);
        const ours = x.map((v, k) => f32(signal * v) + f32(sigma * (noise[k] as number)));
        expect(Array.from(ours), `${name} t=${t}`).toEqual(Array.from(expected));
      }
    }
  });

  it('the copy graph returns its input unchanged at any rank', async () => {
    for (const rank of [1, 2, 4]) {
      const copy = await session(buildCopyGraph(rank));
      const dims = Array.from({ length: rank }, (_, i) => i + 2);
      const values = random(
        rank,
        dims.reduce((a, b) => a * b, 1),
      );
      const out = await copy.run({ [COPY_GRAPH.input]: new ortNode.Tensor('float32', values, dims) });
      expect(out[COPY_GRAPH.output]?.dims).toEqual(dims);
      expect(Array.from(out[COPY_GRAPH.output]?.data as Float32Array)).toEqual(Array.from(values));
      await copy.release();
    }
  });

  it('refuses scheduler configs a step graph cannot express', () => {
    const learned = createDecoderScheduler(
      { ...decoderConfig, variance_type: 'learned_range' },
      'DDPMScheduler',
    );
    learned.setTimesteps(2);
    expect(() => learned.stepCoefficients(learned.timesteps[0] as number)).toThrow(/learned_range/);
    const sample = createDecoderScheduler({ ...decoderConfig, prediction_type: 'sample' }, 'DDPMScheduler');
    sample.setTimesteps(2);
    expect(() => sample.stepCoefficients(sample.timesteps[0] as number)).toThrow(/prediction_type/);
  });
});
