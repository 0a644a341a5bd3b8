/**
 * Issue #9, item 4: the UNet's time per denoising step on a GPU, on onnxruntime-node's WebGPU
 * provider (Dawn on the GPU's Vulkan driver, as the browser runs it) and, as a ratio, on the GPU's
 * native provider where onnxruntime-node has one (CUDA). Per set and size: the UNet alone, batch 2
 * (classifier-free guidance), CPU feeds and outputs, 2 warm-up calls, then the median of
 * BENCH_UNET_RUNS calls. Writes bench/unet-gpu.json; figures, not pass/fail.
 *
 *   VK_ICD_FILENAMES=/usr/share/vulkan/icd.d/nvidia_icd.json \
 *   BENCH_UNET_SETS=models/.random-full/fp32/,models/.random-full/fp16/ \
 *   npx vitest run --config bench/bench.config.node.ts bench/unet-gpu.bench.node.ts
 *
 * BENCH_UNET_SETS: folders holding a manifest.json with a unet (full-size random exports, see
 * models/README.md); without it, the mid-size UNet of bench/export_mid_unet.py. BENCH_UNET_SIZES:
 * width×height list (default 512x512,1024x1024,1536x640). BENCH_UNET_PROVIDERS: default webgpu,cuda.
 * Without VK_ICD_FILENAMES the WebGPU provider runs on SwiftShader (a smoke run, not a figure).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';
import { expect, it } from 'vitest';
import { parseManifest } from '../models/manifest';
import { swiftShaderUnlessIcdSet } from '../test-support/webgpu-fixture.node';
import { ModelSet } from '../workers/engine/model-set';
import type { Tensor } from '../workers/engine/ort';
import { median } from './memory.node';
import { type BenchSet, midSet, midUnetExported, ortCpu, REPO } from './sets.node';

const RUNS = Number(process.env.BENCH_UNET_RUNS ?? 5);
const SIZES = (process.env.BENCH_UNET_SIZES ?? '512x512,1024x1024,1536x640')
  .split(',')
  .map((size) => size.split('x').map(Number) as [number, number]);
const PROVIDERS = (process.env.BENCH_UNET_PROVIDERS ?? 'webgpu,cuda').split(',');

function setsToMeasure(): BenchSet[] {
  const dirs = process.env.BENCH_UNET_SETS?.split(',').filter(Boolean) ?? [];
  if (dirs.length === 0) return midUnetExported() ? [midSet()] : [];
  return dirs.map((dir) => {
    const folder = dir.endsWith('/') ? dir : `${dir}/`;
    const manifest = parseManifest(JSON.parse(readFileSync(`${folder}manifest.json`, 'utf8')));
    return {
      label: `${manifest.modelId} (${folder})`,
      manifest,
      files: {
        read: async (path) => new Uint8Array(readFileSync(folder + path)),
        localPath: async (path) => folder + path,
      },
      componentBytes: () => 0,
    };
  });
}

function gpuName(): string {
  try {
    return execFileSync('nvidia-smi', ['--query-gpu=name,driver_version', '--format=csv,noheader'], {
      encoding: 'utf8',
    }).trim();
  } catch {
    return 'no nvidia-smi';
  }
}

async function msPerCall(set: BenchSet, provider: string, width: number, height: number): Promise<number> {
  const models = new ModelSet(ortCpu, set.manifest, set.files, {
    sessionOptions: { executionProviders: [provider], graphOptimizationLevel: 'all' },
    residency: 'cpu',
  });
  const { latentChannels: c, imageEmbedDim: d, movqScaleFactor: scale } = set.manifest.dims;
  const [h, w] = [height / scale, width / scale];
  const feeds: Record<string, Tensor> = {
    sample: new ortCpu.Tensor('float32', new Float32Array(2 * c * h * w).fill(0.5), [2, c, h, w]),
    timestep: new ortCpu.Tensor('float32', Float32Array.of(500, 500), [2]),
    image_embeds: new ortCpu.Tensor('float32', new Float32Array(2 * d).fill(0.1), [2, d]),
  };
  try {
    const unet = await models.session('unet');
    const call = async () => {
      const started = performance.now();
      const outputs = await unet.run(feeds);
      const ms = performance.now() - started;
      for (const tensor of Object.values(outputs)) tensor.dispose();
      return ms;
    };
    for (let i = 0; i < 2; i++) await call();
    const times: number[] = [];
    for (let i = 0; i < RUNS; i++) times.push(await call());
    return median(times);
  } finally {
    for (const tensor of Object.values(feeds)) tensor.dispose();
    await models.releaseAll();
  }
}

it('UNet ms per step on the GPU: WebGPU and the native provider', async () => {
  const swiftShader =
    swiftShaderUnlessIcdSet() === null && process.env.VK_ICD_FILENAMES?.includes('swiftshader');
  const rows: object[] = [];
  for (const set of setsToMeasure()) {
    for (const [width, height] of SIZES) {
      const row: Record<string, unknown> = { set: set.label, width, height, batch: 2 };
      for (const provider of PROVIDERS) {
        try {
          row[`${provider}Ms`] = await msPerCall(set, provider, width, height);
        } catch (error) {
          row[`${provider}Error`] = String(error).slice(0, 300);
        }
      }
      if (typeof row.webgpuMs === 'number' && typeof row.cudaMs === 'number') {
        row.webgpuOverNative = row.webgpuMs / row.cudaMs;
      }
      console.log(JSON.stringify(row));
      rows.push(row);
    }
  }
  writeFileSync(
    `${REPO}bench/unet-gpu.json`,
    `${JSON.stringify(
      {
        device: swiftShader ? 'SwiftShader (CPU Vulkan): a smoke run, not a GPU figure' : gpuName(),
        vulkanIcd: process.env.VK_ICD_FILENAMES,
        runs: RUNS,
        measuredAt: new Date().toISOString(),
        rows,
      },
      null,
      2,
    )}\n`,
  );
  expect(rows.length).toBeGreaterThan(0);
});
