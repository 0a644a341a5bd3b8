/**
 * Graph capture on WebGPU (Chromium + SwiftShader): the tiny UNet called as a plain session and as a
 * captured replay, the way the denoising loop calls it (workers/engine/denoise/captured-loop.ts). Needs the
 * harness build (`npx vite build --config e2e/harness/vite.config.ts`).
 *
 * issue: how long one `session.run` takes to return, i.e. the CPU work of encoding and submitting
 * the UNet's kernels, which a captured replay replaces with re-submitting recorded commands; per run:
 * back-to-back calls with one readback at the end. SwiftShader runs the GPU work on the same two
 * cores, so per-run time mostly shows its compute; issue time is what capture saves on a real GPU.
 */
import type { CfgResult } from './engine-timing.node';
import { type HarnessScope, openHarnessPage } from './harness-page.node';
import { median } from './memory.node';

const PORT = Number(process.env.BENCH_CAPTURE_PORT ?? 4293);

export interface CaptureRow {
  readonly latent: readonly number[];
  readonly runs: number;
  readonly plain: { readonly issueMs: number; readonly perRunMs: number };
  readonly captured: { readonly issueMs: number; readonly perRunMs: number };
  /** captured ÷ plain. */
  readonly issueRatio: number;
  readonly perRunRatio: number;
}

export async function measureCapture(
  latents: readonly number[],
  runs: number,
): Promise<{ rows: CaptureRow[] }> {
  const harness = await openHarnessPage(PORT);
  try {
    const rows: CaptureRow[] = [];
    for (const latent of latents) {
      const timed = await harness.page.evaluate(
        ([n, size]) => (globalThis as unknown as HarnessScope).parity.timeUnetCalls(n, size),
        [runs, latent] as const,
      );
      rows.push({
        latent: [latent, latent],
        runs,
        ...timed,
        issueRatio: timed.captured.issueMs / timed.plain.issueMs,
        perRunRatio: timed.captured.perRunMs / timed.plain.perRunMs,
      });
    }
    return { rows };
  } finally {
    await harness.close();
  }
}

export interface WebGpuLoopRow {
  readonly latent: readonly number[];
  readonly steps: number;
  readonly rounds: number;
  /** Per denoising step: the whole denoise stage ÷ steps, and bare replays (+ one readback) ÷ steps. */
  readonly engineStepMs: number;
  readonly bareRunMs: number;
  /** Median over rounds of the round's denoise stage ÷ its bare replays. */
  readonly ratio: number;
  readonly ratioRange: readonly [number, number];
}

/**
 * Engine overhead the app's way: on onnxruntime-web WebGPU with a graph-captured UNet, the denoise
 * stage of a guided DDPM generation (fills, replays, step graphs, the final readback) against the
 * same number of bare replays of that captured session (parity.worker.ts, timeDenoiseLoop).
 */
export async function measureWebGpuLoop(
  sizesPx: readonly number[],
  steps: number,
  rounds: number,
): Promise<{ rows: WebGpuLoopRow[] }> {
  const harness = await openHarnessPage(PORT);
  try {
    const rows: WebGpuLoopRow[] = [];
    for (const size of sizesPx) {
      const engine: number[] = [];
      const bare: number[] = [];
      const ratios: number[] = [];
      for (let round = 0; round < rounds; round++) {
        const timed = await harness.page.evaluate(
          ([n, px]) => (globalThis as unknown as HarnessScope).parity.timeDenoiseLoop(n, px),
          [steps, size] as const,
        );
        engine.push(timed.denoiseMs / steps);
        bare.push(timed.bareMs / steps);
        ratios.push(timed.denoiseMs / timed.bareMs);
      }
      rows.push({
        latent: [size / 8, size / 8],
        steps,
        rounds,
        engineStepMs: median(engine),
        bareRunMs: median(bare),
        ratio: median(ratios),
        ratioRange: [Math.min(...ratios), Math.max(...ratios)],
      });
    }
    return { rows };
  } finally {
    await harness.close();
  }
}

/** The CFG question on WebGPU (parity.worker.ts, timeCfgCalls): rows shaped like engine-timing's. */
export async function measureWebGpuCfg(latents: readonly number[], runs: number): Promise<CfgResult[]> {
  const harness = await openHarnessPage(PORT);
  try {
    const rows: CfgResult[] = [];
    for (const latent of latents) {
      const timed = await harness.page.evaluate(
        ([n, size]) => (globalThis as unknown as HarnessScope).parity.timeCfgCalls(n, size),
        [runs, latent] as const,
      );
      const ratio = timed.batch2Ms / timed.twoBatch1Ms;
      rows.push({
        set: 'tiny fixture, WebGPU (SwiftShader)',
        latent: [latent, latent],
        ...timed,
        ratio,
        faster: ratio <= 1 ? 'batch-2' : 'two batch-1',
        runs,
      });
    }
    return rows;
  } finally {
    await harness.close();
  }
}
