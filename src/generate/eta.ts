/**
 * Time-remaining estimate for the step loops (prior and denoise). The first step of a session
 * includes shader compilation and is several times slower than the rest, so the estimate uses the
 * intervals between step events, never the time since the stage began.
 */

/** How many recent step intervals the average uses: recent enough to follow thermal throttling. */
const WINDOW = 8;

export class StepTimer {
  private stage: string | null = null;
  private lastStep = -1;
  private lastAtMs = 0;
  private intervalsMs: number[] = [];

  /**
   * Records that `step` of `steps` (1-based) in `stage` finished at `nowMs` (milliseconds,
   * any monotonic clock). A new stage, or a step counter that went back (the next image of a
   * batch), starts a new measurement.
   */
  record(stage: string, step: number, nowMs: number): void {
    if (stage !== this.stage || step <= this.lastStep) {
      // Keep the intervals when only the step counter restarted within the same stage: the next
      // image of a batch runs at the same speed.
      if (stage !== this.stage) this.intervalsMs = [];
      this.stage = stage;
    } else {
      const perStep = (nowMs - this.lastAtMs) / (step - this.lastStep);
      this.intervalsMs.push(perStep);
      if (this.intervalsMs.length > WINDOW) this.intervalsMs.shift();
    }
    this.lastStep = step;
    this.lastAtMs = nowMs;
  }

  /** Milliseconds per step, averaged over the recent window; null before two steps were seen. */
  msPerStep(): number | null {
    if (this.intervalsMs.length === 0) return null;
    return this.intervalsMs.reduce((sum, ms) => sum + ms, 0) / this.intervalsMs.length;
  }

  /** Milliseconds until the stage's last step, or null when there is no measurement yet. */
  remainingMs(step: number, steps: number): number | null {
    const perStep = this.msPerStep();
    return perStep === null ? null : Math.max(0, steps - step) * perStep;
  }
}

/** "about 1 min 20 s", "about 8 s", "less than a second". */
export function formatDuration(ms: number): string {
  if (ms < 1000) return 'less than a second';
  const seconds = Math.round(ms / 1000);
  if (seconds < 60) return `about ${seconds} s`;
  const minutes = Math.floor(seconds / 60);
  const rest = seconds % 60;
  return rest === 0 ? `about ${minutes} min` : `about ${minutes} min ${rest} s`;
}
