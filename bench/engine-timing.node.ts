/**
 * Engine overhead and the CFG batching question, on onnxruntime-node's CPU provider.
 *
 * Engine step: the wall time between two consecutive `denoise` progress events of a real
 * `runPipeline` call (one loop iteration: input scaling and batching, tensor creation, the UNet run,
 * readback, guidance, the scheduler step, disposal). Bare step: `session.run` alone, on the very
 * session the engine used (ModelSet caches it), with inputs of the same shapes made beforehand.
 * Rounds interleave the two so that machine noise hits both; the ratio is the median of per-round
 * ratios (each round's engine and bare runs lie seconds apart), with their range.
 */
import type { ModelSet, Residency } from '../workers/engine/model-set';
import type { InferenceSession, Tensor } from '../workers/engine/ort';
import { runPipeline } from '../workers/engine/pipeline';
import { DEFAULT_SETTINGS, type GenerationSettings } from '../workers/engine/settings';
import { median } from './memory.node';
import { type BenchSet, openSet, ortCpu } from './sets.node';

export interface OverheadResult {
  readonly set: string;
  readonly residency: Residency;
  readonly latent: readonly number[];
  readonly engineStepMs: number;
  readonly bareRunMs: number;
  /** Median over rounds of (that round's median engine step ÷ its median bare run). */
  readonly ratio: number;
  /** The smallest and largest per-round ratio: how noisy the machine was. */
  readonly ratioRange: readonly [number, number];
  readonly rounds: number;
  readonly engineSteps: number;
  readonly bareRuns: number;
}

export interface CfgResult {
  readonly set: string;
  readonly latent: readonly number[];
  readonly batch2Ms: number;
  /** Two batch-1 calls, back to back. */
  readonly twoBatch1Ms: number;
  /** batch-2 time ÷ two batch-1 calls: below 1 means one batch-2 call is faster. */
  readonly ratio: number;
  readonly faster: 'batch-2' | 'two batch-1';
  readonly runs: number;
}

function settingsFor(sidePx: number, steps: number): GenerationSettings {
  return {
    ...DEFAULT_SETTINGS,
    mode: 'txt2img',
    prompt: 'a red lighthouse on a cliff',
    negativePrompt: '',
    seed: 11,
    width: sidePx,
    height: sidePx,
    priorSteps: 2,
    priorGuidance: 4,
    steps,
    guidance: 4,
    scheduler: 'ddpm',
    numImages: 1,
  };
}

function randomData(length: number, seed: number): Float32Array {
  let state = seed >>> 0 || 1;
  return Float32Array.from({ length }, () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 31 - 1;
  });
}

function unetFeeds(models: ModelSet, batch: number, latent: number): Record<string, Tensor> {
  const { latentChannels: c, imageEmbedDim: d } = models.manifest.dims;
  return {
    sample: new ortCpu.Tensor('float32', randomData(batch * c * latent * latent, 1), [
      batch,
      c,
      latent,
      latent,
    ]),
    timestep: new ortCpu.Tensor('float32', new Float32Array(batch).fill(500), [batch]),
    image_embeds: new ortCpu.Tensor('float32', randomData(batch * d, 2), [batch, d]),
  };
}

async function timedRun(session: InferenceSession, feeds: Record<string, Tensor>): Promise<number> {
  const started = performance.now();
  const outputs = await session.run(feeds);
  const ms = performance.now() - started;
  for (const tensor of Object.values(outputs)) tensor.dispose();
  return ms;
}

function disposeFeeds(feeds: Record<string, Tensor>): void {
  for (const tensor of Object.values(feeds)) tensor.dispose();
}

/** Per-step engine time vs bare session.run, `rounds` interleaved rounds of `steps` each. */
export async function measureOverhead(
  set: BenchSet,
  residency: Residency,
  options: { sidePx: number; steps: number; rounds: number },
): Promise<OverheadResult> {
  const models = openSet(set, { residency });
  const latent = (options.sidePx / 64) * 8;
  const engine: number[] = [];
  const bare: number[] = [];
  const roundRatios: number[] = [];
  try {
    const settings = settingsFor(options.sidePx, options.steps);
    // Warm-up: sessions created, first-run allocations done.
    await runPipeline(models, { settings: { ...settings, steps: 2 } });
    const unet = await models.session('unet');
    const feeds = unetFeeds(models, 2, latent);
    try {
      for (let round = 0; round < options.rounds; round++) {
        const stamps: number[] = [];
        await runPipeline(
          models,
          { settings },
          { onProgress: (p) => (p.stage === 'denoise' ? stamps.push(performance.now()) : undefined) },
        );
        // Step i+1's iteration lies between the events of steps i and i+1 (the first includes setup).
        const roundEngine: number[] = [];
        for (let i = 1; i < stamps.length; i++)
          roundEngine.push((stamps[i] as number) - (stamps[i - 1] as number));
        const roundBare: number[] = [];
        for (let i = 0; i < options.steps; i++) roundBare.push(await timedRun(unet, feeds));
        engine.push(...roundEngine);
        bare.push(...roundBare);
        roundRatios.push(median(roundEngine) / median(roundBare));
      }
    } finally {
      disposeFeeds(feeds);
    }
  } finally {
    await models.releaseAll();
  }
  const engineStepMs = median(engine);
  const bareRunMs = median(bare);
  return {
    set: set.label,
    residency,
    latent: [latent, latent],
    engineStepMs,
    bareRunMs,
    ratio: median(roundRatios),
    ratioRange: [Math.min(...roundRatios), Math.max(...roundRatios)],
    rounds: roundRatios.length,
    engineSteps: engine.length,
    bareRuns: bare.length,
  };
}

/** One batch-2 UNet call vs two batch-1 calls of the same session, alternating. */
export async function measureCfg(
  set: BenchSet,
  options: { sidePx: number; runs: number },
): Promise<CfgResult> {
  const models = openSet(set);
  const latent = (options.sidePx / 64) * 8;
  const batch2: number[] = [];
  const twoBatch1: number[] = [];
  try {
    const unet = await models.session('unet');
    const pair = unetFeeds(models, 2, latent);
    const single = unetFeeds(models, 1, latent);
    try {
      await timedRun(unet, pair);
      await timedRun(unet, single);
      for (let i = 0; i < options.runs; i++) {
        batch2.push(await timedRun(unet, pair));
        twoBatch1.push((await timedRun(unet, single)) + (await timedRun(unet, single)));
      }
    } finally {
      disposeFeeds(pair);
      disposeFeeds(single);
    }
  } finally {
    await models.releaseAll();
  }
  const batch2Ms = median(batch2);
  const twoBatch1Ms = median(twoBatch1);
  return {
    set: set.label,
    latent: [latent, latent],
    batch2Ms,
    twoBatch1Ms,
    ratio: batch2Ms / twoBatch1Ms,
    faster: batch2Ms <= twoBatch1Ms ? 'batch-2' : 'two batch-1',
    runs: options.runs,
  };
}
