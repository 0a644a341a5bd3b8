/** bench/results.md from bench/results.json: one short table per section. */

type Json = Record<string, unknown>;

const gb = (bytes: unknown) => (typeof bytes === 'number' ? `${(bytes / 1e9).toFixed(2)} GB` : '–');
const ms = (value: unknown) => (typeof value === 'number' ? `${value.toFixed(value < 10 ? 2 : 0)} ms` : '–');
const x = (value: unknown) => (typeof value === 'number' ? value.toFixed(3) : '–');
const s = (value: unknown) => (typeof value === 'number' ? `${value.toFixed(1)} s` : '–');

function rows(section: unknown): Json[] {
  const list = (section as { rows?: unknown } | undefined)?.rows;
  return Array.isArray(list) ? (list as Json[]) : [];
}

/** When a section's figures were taken (sections are re-run separately, on whichever machine ran them). */
function measured(section: unknown): string[] {
  const at = (section as { measuredAt?: unknown } | undefined)?.measuredAt;
  return typeof at === 'string' ? [`Measured ${at.slice(0, 16).replace('T', ' ')} UTC.`, ''] : [];
}

function why(section: unknown): string | null {
  const value = section as { skipped?: string; error?: string } | undefined;
  if (!value) return 'not measured yet';
  return value.skipped ?? value.error ?? null;
}

export function renderMarkdown(results: Json): string {
  const out: string[] = ['# Benchmark results', ''];
  const m = results.machine as Json | undefined;
  if (m)
    out.push(
      `Machine: ${String(m.cpu)}, ${String(m.cores)} cores, ${gb(m.memoryBytes)} RAM, Node ${String(m.node)}; onnxruntime-node CPU provider.`,
      '',
    );

  out.push('## Engine overhead (engine loop step ÷ bare `session.run`, goal ≤ 1.05)', '');
  out.push(...measured(results.overhead));
  const overhead = results.overhead;
  out.push(
    why(overhead) ?? '',
    'ratio: the median over rounds of each round’s engine step ÷ bare run, with the range over rounds. `gpu` residency here is the GPU-resident loop (step graphs) on the CPU provider: its step graph is a second onnxruntime call per step, about 0.1 ms whatever the size, which shows against the tiny UNet’s 2 ms and vanishes against the mid-size one; the app’s own loop on WebGPU is the next table.',
    '',
    '| set | residency | latents | engine step | bare run | ratio | range (rounds) |',
    '| --- | --- | --- | ---: | ---: | ---: | --- |',
  );
  for (const r of rows(overhead)) {
    const range = r.ratioRange as [number, number] | undefined;
    out.push(
      `| ${String(r.set)} | ${String(r.residency)} | ${(r.latent as number[]).join('×')} | ${ms(r.engineStepMs)} | ${ms(r.bareRunMs)} | ${x(r.ratio)} | ${range ? `${x(range[0])}–${x(range[1])} (${String(r.rounds)})` : ''} |`,
    );
  }

  out.push(
    '',
    '## Engine overhead on WebGPU, the app’s way (goal ≤ 1.05), Chromium + SwiftShader WebGPU',
    '',
  );
  out.push(...measured(results['webgpu-overhead']));
  out.push(
    why(results['webgpu-overhead']) ?? '',
    'The tiny fixture, guided DDPM, graph-captured UNet: the whole denoise stage (filling the loop’s buffers, every replay and step graph, the readback of the final latents) ÷ the same number of bare replays of the same captured session with one readback. Per step; ratio: median over rounds, with the range.',
    '',
    '| latents | steps | engine step | bare replay | ratio | range (rounds) |',
    '| --- | ---: | ---: | ---: | ---: | --- |',
  );
  for (const r of rows(results['webgpu-overhead'])) {
    const range = r.ratioRange as [number, number] | undefined;
    out.push(
      `| ${(r.latent as number[]).join('×')} | ${String(r.steps)} | ${ms(r.engineStepMs)} | ${ms(r.bareRunMs)} | ${x(r.ratio)} | ${range ? `${x(range[0])}–${x(range[1])} (${String(r.rounds)})` : ''} |`,
    );
  }

  out.push('', '## CFG: one batch-2 UNet call vs two batch-1 calls', '');
  out.push(...measured(results.cfg));
  out.push(
    why(results.cfg) ?? '',
    'Per denoising step. onnxruntime-node CPU provider, and (WebGPU rows) onnxruntime-web in Chromium with GPU-buffer inputs and outputs, steps back to back with one readback at the end.',
    '',
    '| set | latents | batch-2 | 2 × batch-1 | ratio | faster |',
    '| --- | --- | ---: | ---: | ---: | --- |',
  );
  for (const r of rows(results.cfg))
    out.push(
      `| ${String(r.set)} | ${(r.latent as number[]).join('×')} | ${ms(r.batch2Ms)} | ${ms(r.twoBatch1Ms)} | ${x(r.ratio)} | ${String(r.faster)} |`,
    );
  const cfgWebGpuSkipped = (results.cfg as { webGpuSkipped?: string } | undefined)?.webGpuSkipped;
  if (cfgWebGpuSkipped) out.push('', `WebGPU: ${cfgWebGpuSkipped}`);

  out.push('', '## Load: peak memory creating a full-size random fp32 session ÷ file size (goal ≤ 1.3)', '');
  out.push(...measured(results.load));
  out.push(
    why(results.load) ?? '',
    'weights from: `bytes`, JS buffers handed to onnxruntime (as the app hands it IndexedDB chunks); `path`, the graph file, onnxruntime mapping its external data (ModelFiles.localPath, the CLI).',
    '',
    '| component | from | file | peak RSS | ratio | peak ArrayBuffers | ratio | resident after | time |',
    '| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
  );
  for (const r of rows(results.load)) {
    const note = (r.skipped ?? r.error) as string | undefined;
    if (note)
      out.push(
        `| ${String(r.component ?? '?')} | ${String(r.from ?? '')} | ${gb(r.fileBytes)} | ${note.slice(0, 120).replace(/\|/g, '/')} | | | | | |`,
      );
    else
      out.push(
        `| ${String(r.component)} | ${String(r.from ?? 'bytes')} | ${gb(r.fileBytes)} | ${gb(r.peakRss)} | ${x(r.peakRssRatio)} | ${gb(r.peakArrayBuffers)} | ${x(r.peakArrayBuffersRatio)} | ${gb(r.residentRss)} | ${s(r.seconds)} |`,
      );
  }

  const store = results.store as Json | undefined;
  out.push('', '## Cold load: model store (disk-backed records) vs plain in-memory buffer', '');
  out.push(...measured(results.store));
  const storeNote = why(store);
  if (storeNote) out.push(storeNote);
  else if (store) {
    const secs = store.seconds as Record<string, number[]>;
    const med = (v: number[] | undefined) =>
      v?.length ? [...v].sort((a, b) => a - b)[Math.floor(v.length / 2)] : undefined;
    const mem = med(secs.memory);
    out.push(
      `${String(store.component)}, ${gb(store.fileBytes)}; session ready after:`,
      '',
      '| from | time | ÷ in-memory |',
      '| --- | ---: | ---: |',
    );
    for (const [key, label] of [
      ['memory', 'in-memory buffer'],
      ['store', 'store'],
      ['storeVerified', 'store + sha256 (first read in a worker)'],
    ] as const) {
      const v = med(secs[key]);
      out.push(`| ${label} | ${s(v)} | ${v !== undefined && mem ? x(v / mem) : '–'} |`);
    }
  }

  const lowmem = results.lowmem as Json | undefined;
  out.push('', '## Low-memory mode: peak RSS of a text→image generation on the full-size set', '');
  out.push(...measured(results.lowmem));
  const lowNote = why(lowmem);
  if (lowNote) out.push(lowNote);
  else if (lowmem) {
    out.push(
      `Largest component ${gb(lowmem.largestComponentBytes)}, sum of the four ${gb(lowmem.sumComponentBytes)}.`,
      '',
      '| lowMemory | peak RSS | ÷ largest | ÷ sum | time |',
      '| --- | ---: | ---: | ---: | ---: |',
    );
    for (const key of ['on', 'off'] as const) {
      const r = lowmem[key] as Json | undefined;
      const note = r ? ((r.skipped ?? r.error) as string | undefined) : 'not run';
      if (note) out.push(`| ${key} | ${note.slice(0, 140).replace(/\|/g, '/')} | | | |`);
      else if (r)
        out.push(
          `| ${key} | ${gb(r.peakRss)} | ${x(r.peakOverLargest)} | ${x(r.peakOverSum)} | ${s(r.seconds)} |`,
        );
    }
  }

  const download = results.download as Json | undefined;
  out.push(
    '',
    '## Download: real text→image set (text encoder, prior, UNet, MoVQ decoder), goal ≤ 2.0 GB',
    '',
  );
  out.push(...measured(results.download));
  const downloadNote = why(download);
  if (downloadNote) out.push(downloadNote);
  else if (download) {
    const totals = download.textToImage as Record<string, number>;
    const comps = download.components as Record<string, Record<string, number>>;
    const presets = download.presets as string[];
    out.push(`| component | ${presets.join(' | ')} |`, `| --- | ${presets.map(() => '---:').join(' | ')} |`);
    for (const [id, c] of Object.entries(comps))
      out.push(`| ${id} | ${presets.map((p) => gb(c[p])).join(' | ')} |`);
    out.push(`| **total** | ${presets.map((p) => `**${gb(totals[p])}**`).join(' | ')} |`);
    out.push(
      '',
      "int4: MatMul/Gemm and Conv weights as 4-bit blocks of 32, float16 scales; int4c6: the same with Conv weights as 6-bit blocks (models/export/precision.py). The automatic choice (workers/precision.ts) opens the smallest download whose recorded figures hold: the end-to-end PSNR of the export tool's `--quality` (≥ 30 dB) where the manifest has one, else the `--check` cosine (≥ 0.999); the next section has the measured figures.",
    );
  }

  const quantization = results.quantization as Json | undefined;
  out.push(
    '',
    '## Quantization: real text→image download against the end-to-end picture (export `--quality`)',
    '',
  );
  out.push(...measured(results.quantization));
  const quantizationNote = why(quantization);
  if (quantizationNote) out.push(quantizationNote);
  else if (quantization) {
    const chosen = quantization.default as Json;
    const run = quantization.calibration as Json;
    out.push(
      `Figures from the **${String(quantization.weights)}** weights (bytes: the real set's): ${String(run.prompts)} prompts × ${String(run.seeds)} seeds, ${String(run.priorSteps)} prior + ${String(run.steps)} decoder steps, ${String(run.size)}×${String(run.size)}, the set's graphs on the CLI against fp32 diffusers. PSNR over the 8-bit pictures (100 = identical), SSIM per RGB channel (Gaussian 11×11, σ 1.5), embedding cosine: the prior's image embedding, worst run.`,
      '',
      '| variant | text→image | PSNR (dB) | SSIM | embedding cosine |',
      '| --- | ---: | ---: | ---: | ---: |',
    );
    for (const r of rows(quantization))
      out.push(
        `| ${String(r.variant)} | ${gb(r.bytes as number)} | ${(r.psnr as number).toFixed(2)} | ${(r.ssim as number).toFixed(4)} | ${(r.embeddingCosine as number).toFixed(6)} |`,
      );
    out.push(
      '',
      `Target PSNR ${String(quantization.targetPsnr)} dB; the app opens **${String(chosen.variant)}** (${gb(chosen.bytes as number)}): ${String(quantization.defaultReason)}.`,
    );
  }

  const capture = results.capture as Json | undefined;
  out.push(
    '',
    '## Graph capture: the tiny UNet, plain session vs captured replay, batch 2, Chromium + SwiftShader WebGPU',
    '',
    'issue: `session.run` until it returns (the CPU work of encoding and submitting the kernels, which a replay skips); per run: back-to-back calls, one readback at the end. SwiftShader computes on the same two cores, so per-run time is mostly its compute.',
    '',
  );
  out.push(...measured(results.capture));
  const captureNote = why(capture);
  if (captureNote) out.push(captureNote);
  else if (capture) {
    out.push(
      '| latents | runs | issue, plain | issue, captured | ratio | per run, plain | per run, captured | ratio |',
      '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    );
    for (const r of rows(capture)) {
      const plain = r.plain as Record<string, number>;
      const captured = r.captured as Record<string, number>;
      out.push(
        `| ${(r.latent as number[]).join('×')} | ${String(r.runs)} | ${ms(plain.issueMs)} | ${ms(captured.issueMs)} | ${(r.issueRatio as number).toFixed(3)} | ${ms(plain.perRunMs)} | ${ms(captured.perRunMs)} | ${(r.perRunRatio as number).toFixed(3)} |`,
      );
    }
  }

  const browser = results.browser as Json | undefined;
  out.push(
    '',
    '## Browser: time to first image, tiny set, 64×64, 2 prior + 2 decoder steps, Chromium + SwiftShader WebGPU',
    '',
  );
  out.push(...measured(results.browser));
  const browserNote = why(browser);
  if (browserNote) out.push(browserNote);
  else if (browser) {
    out.push(
      '| run | download | generate | first image | load | encode | prior | denoise | decode |',
      '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    );
    for (const r of (browser.runs as Json[] | undefined) ?? []) {
      const t = (r.timings ?? {}) as Record<string, number>;
      out.push(
        `| ${String(r.label)} | ${ms(r.downloadMs)} | ${ms(r.generateMs)} | ${ms(r.firstImageMs)} | ${ms(t.load)} | ${ms(t.encode)} | ${ms(t.prior)} | ${ms(t.denoise)} | ${ms(t.decode)} |`,
      );
    }
  }
  out.push('');
  return out.join('\n');
}
