/**
 * Graph capture on WebGPU (Chromium + SwiftShader): the tiny UNet called as a plain session and as a
 * captured replay, the way the denoising loop calls it (workers/engine/captured-loop.ts). Needs the
 * harness build (`npx vite build --config e2e/harness/vite.config.ts`).
 *
 * issue: how long one `session.run` takes to return, i.e. the CPU work of encoding and submitting
 * the UNet's kernels, which a captured replay replaces with re-submitting recorded commands; per run:
 * back-to-back calls with one readback at the end. SwiftShader runs the GPU work on the same two
 * cores, so per-run time mostly shows its compute; issue time is what capture saves on a real GPU.
 */
import { type HarnessScope, openHarnessPage } from './harness-page.node';

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
