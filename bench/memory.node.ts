/**
 * Process memory for the benchmarks. Peaks come from the kernel's own high-water mark (VmHWM in
 * /proc/self/status, reset through /proc/self/clear_refs), not from sampling: onnxruntime-node
 * creates a session synchronously on the JS thread, so a timer can't see what happens inside it.
 */
import { readFileSync, writeFileSync } from 'node:fs';

const gc = (globalThis as { gc?: () => void }).gc ?? (() => undefined);

/** Collects until freed ArrayBuffer backing stores are really gone, so baselines don't include them. */
export async function settle(): Promise<void> {
  for (let i = 0; i < 3; i++) {
    gc();
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
}

function statusField(name: string): number {
  const match = new RegExp(`^${name}:\\s+(\\d+) kB`, 'm').exec(readFileSync('/proc/self/status', 'utf8'));
  if (!match?.[1]) throw new Error(`/proc/self/status has no ${name} (Linux only)`);
  return Number(match[1]) * 1024;
}

function meminfoBytes(field: 'MemAvailable' | 'MemTotal'): number {
  const match = new RegExp(`^${field}:\\s+(\\d+) kB`, 'm').exec(readFileSync('/proc/meminfo', 'utf8'));
  return match?.[1] ? Number(match[1]) * 1024 : 0;
}

/** Linux's MemAvailable, bytes: what can be allocated without swapping or reclaiming much. */
export function availableBytes(): number {
  return meminfoBytes('MemAvailable');
}

/** Linux's MemTotal, bytes. */
export function totalBytes(): number {
  return meminfoBytes('MemTotal');
}

export interface PeakMeter {
  /** Samples `process.memoryUsage().arrayBuffers` now (call it between steps). */
  sample(): void;
  /** Growth over the starting level, bytes: peak RSS (kernel high-water mark) and peak ArrayBuffers. */
  stop(): { rss: number; arrayBuffers: number; baseRss: number };
}

/** Settles the heap, resets the kernel's peak-RSS mark and starts measuring growth from here. */
export async function startPeakMeter(): Promise<PeakMeter> {
  await settle();
  const base = process.memoryUsage();
  writeFileSync('/proc/self/clear_refs', '5');
  let arrayBuffers = 0;
  const sample = () => {
    arrayBuffers = Math.max(arrayBuffers, process.memoryUsage().arrayBuffers - base.arrayBuffers);
  };
  const timer = setInterval(sample, 5);
  return {
    sample,
    stop() {
      clearInterval(timer);
      sample();
      return { rss: statusField('VmHWM') - base.rss, arrayBuffers, baseRss: base.rss };
    },
  };
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  if (sorted.length === 0) return Number.NaN;
  return sorted.length % 2
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2;
}
