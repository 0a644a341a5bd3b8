import { existsSync, readFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, test } from '@playwright/test';

/**
 * The int4 precision's 4-bit convolutions (models/export/precision.py: uint8 nibbles unpacked with
 * BitShift / Concat, then DequantizeLinear -> Reshape -> Conv) on onnxruntime-web's WebGPU provider:
 * the tiny random-weight int4 UNet and MoVQ decoder run on WebGPU, agree with the same graph on the
 * wasm CPU provider, and stay as close to the fp32 graph as on onnxruntime-node (models/int4.test.ts).
 * The sets: the tiny fixture (fp32) and its int4 export, models/fixtures/tiny-int4 (models/README.md).
 * The page and its files are served by request interception on a localhost origin (a secure
 * context, so WebGPU is exposed); no server or app build is involved.
 */
const REPO = fileURLToPath(new URL('..', import.meta.url));
const FIXTURES = join(REPO, 'models', 'fixtures');
/** The folder of each precision's set, by the name used in request paths. */
const SETS: Record<string, string> = { fp32: join(FIXTURES, 'tiny'), int4: join(FIXTURES, 'tiny-int4') };
const ORT_DIST = join(REPO, 'node_modules', 'onnxruntime-web', 'dist');
const ORIGIN = 'http://localhost:4199';

const TYPES: Record<string, string> = {
  '.mjs': 'text/javascript',
  '.js': 'text/javascript',
  '.wasm': 'application/wasm',
};

/** Least cosine similarity to fp32 (as in models/int4.test.ts) and to the same graph on wasm. */
const MIN_COSINE_FP32: Record<string, number> = { unet: 0.96, movq_decoder: 0.985 };
const MIN_COSINE_SAME_GRAPH = 0.9999;

type Files = { graph: string; shards: string[] };

function setDir(precision: string): string {
  const dir = SETS[precision];
  if (!dir) throw new Error(`no ${precision} set`);
  return dir;
}

function files(precision: string, id: string): Files {
  const manifest = JSON.parse(readFileSync(join(setDir(precision), 'manifest.json'), 'utf8')) as {
    components: Record<string, { files: { path: string }[] }>;
  };
  const [graph, ...shards] = manifest.components[id]?.files.map((f) => f.path) ?? [];
  if (!graph) throw new Error(`${precision}/${id}: no graph`);
  return { graph: `${ORIGIN}/sets/${precision}/${graph}`, shards };
}

test('int4 4-bit convolutions run on onnxruntime-web WebGPU', async ({ page }) => {
  test.setTimeout(10 * 60_000);
  await page.route(`${ORIGIN}/**`, async (route) => {
    const path = new URL(route.request().url()).pathname;
    let file: string | null = null;
    if (path === '/') file = null;
    else if (path.startsWith('/ort/')) file = join(ORT_DIST, path.slice('/ort/'.length));
    else if (path.startsWith('/sets/')) {
      const [precision = '', ...rest] = path.slice('/sets/'.length).split('/');
      file = precision in SETS ? join(setDir(precision), ...rest) : null;
    }
    if (path !== '/' && (!file || !existsSync(file)))
      return route.fulfill({ status: 404, body: 'not found' });
    await route.fulfill({
      status: 200,
      headers: { 'content-type': file ? (TYPES[extname(file)] ?? 'application/octet-stream') : 'text/html' },
      body: file ? readFileSync(file) : '<!doctype html><title>int4</title><p>int4 WebGPU check</p>',
    });
  });
  const logs: string[] = [];
  page.on('console', (message) => logs.push(message.text()));
  await page.goto(`${ORIGIN}/`);

  for (const id of ['unet', 'movq_decoder']) {
    const graphs = { fp32: files('fp32', id), int4: files('int4', id) };
    const result = await page.evaluate(
      async ({ id, graphs, origin }) => {
        type Tensor = { data: Float32Array; dims: readonly number[] };
        type Session = {
          run(feeds: Record<string, unknown>): Promise<Record<string, Tensor>>;
          release(): Promise<void>;
        };
        type Ort = {
          env: { wasm: { wasmPaths: string; numThreads: number }; logLevel: string };
          Tensor: new (type: string, data: Float32Array, dims: number[]) => unknown;
          InferenceSession: { create(url: string, options: object): Promise<Session> };
        };
        const ort = (await import(`${origin}/ort/ort.webgpu.min.mjs`)) as Ort;
        ort.env.wasm.wasmPaths = `${origin}/ort/`;
        ort.env.wasm.numThreads = 1;
        ort.env.logLevel = 'warning';
        let state = 0x1234;
        const next = () => {
          state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
          return state / 2 ** 32;
        };
        const random = (n: number) => Float32Array.from({ length: n }, () => 2 * next() - 1);
        const feeds =
          id === 'unet'
            ? {
                sample: new ort.Tensor('float32', random(2 * 4 * 8 * 8), [2, 4, 8, 8]),
                timestep: new ort.Tensor('float32', Float32Array.from([999, 420]), [2]),
                image_embeds: new ort.Tensor('float32', random(2 * 32), [2, 32]),
              }
            : { latents: new ort.Tensor('float32', random(2 * 4 * 8 * 8), [2, 4, 8, 8]) };
        const output = id === 'unet' ? 'noise_pred' : 'sample';
        const run = async (files: { graph: string; shards: string[] }, ep: string) => {
          const base = files.graph.slice(0, files.graph.lastIndexOf('/') + 1);
          const session = await ort.InferenceSession.create(files.graph, {
            executionProviders: [ep],
            externalData: files.shards.map((path) => ({ path, data: base + path })),
            // Verbose: onnxruntime lists the nodes it places on the CPU instead of WebGPU.
            ...(ep === 'webgpu' ? { logSeverityLevel: 0, logVerbosityLevel: 0 } : {}),
          });
          await session.run(feeds); // first run: shader compilation
          const start = performance.now();
          const out = (await session.run(feeds))[output];
          const ms = performance.now() - start;
          await session.release();
          if (!out) throw new Error(`${id}: no ${output}`);
          return { data: Float32Array.from(out.data), dims: [...out.dims], ms };
        };
        const cosine = (a: Float32Array, b: Float32Array) => {
          let ab = 0;
          let aa = 0;
          let bb = 0;
          for (let i = 0; i < a.length; i++) {
            ab += (a[i] ?? 0) * (b[i] ?? 0);
            aa += (a[i] ?? 0) ** 2;
            bb += (b[i] ?? 0) ** 2;
          }
          return ab / (Math.sqrt(aa) * Math.sqrt(bb) + 1e-30);
        };
        const fp32 = await run(graphs.fp32, 'wasm');
        const int4Wasm = await run(graphs.int4, 'wasm');
        console.log(`--- ${id} int4 webgpu session`);
        const int4Gpu = await run(graphs.int4, 'webgpu');
        console.log(`--- ${id} fp32 webgpu session`);
        const fp32Gpu = await run(graphs.fp32, 'webgpu');
        return {
          dims: { fp32: fp32.dims, int4Gpu: int4Gpu.dims },
          finite: int4Gpu.data.every(Number.isFinite),
          vsFp32: cosine(int4Gpu.data, fp32.data),
          vsWasm: cosine(int4Gpu.data, int4Wasm.data),
          wasmVsFp32: cosine(int4Wasm.data, fp32.data),
          gpuMs: int4Gpu.ms,
          fp32GpuMs: fp32Gpu.ms,
          fp32GpuVsWasm: cosine(fp32Gpu.data, fp32.data),
        };
      },
      { id, graphs, origin: ORIGIN },
    );
    console.log(
      `${id}: int4 WebGPU vs fp32 cosine ${result.vsFp32.toFixed(7)}, vs int4 wasm ${result.vsWasm.toFixed(7)} ` +
        `(int4 wasm vs fp32 ${result.wasmVsFp32.toFixed(7)}); second WebGPU run int4 ${result.gpuMs.toFixed(0)} ms, ` +
        `fp32 ${result.fp32GpuMs.toFixed(0)} ms`,
    );
    expect(result.dims.int4Gpu, `${id} shape`).toEqual(result.dims.fp32);
    expect(result.finite, `${id} finite`).toBe(true);
    expect(result.vsWasm, `${id}: WebGPU vs wasm, same int4 graph`).toBeGreaterThanOrEqual(
      MIN_COSINE_SAME_GRAPH,
    );
    expect(result.vsFp32, `${id}: int4 WebGPU vs fp32`).toBeGreaterThanOrEqual(MIN_COSINE_FP32[id] ?? 1);
  }
  // The unpacking adds no CPU work: as many nodes on the CPU provider (shape arithmetic) as fp32,
  // so BitShift / Concat / ConstantOfShape were folded and DequantizeLinear / Reshape run on WebGPU.
  const cpuNodes: Record<string, number> = {};
  let section = '';
  for (const line of logs) {
    if (line.startsWith('--- ')) section = line.slice(4);
    const placed = /placed on \[CPUExecutionProvider\]\. Number of nodes: (\d+)/.exec(line);
    if (placed && section) cpuNodes[section] = Number(placed[1]);
  }
  console.log(`nodes on the CPU provider: ${JSON.stringify(cpuNodes)}`);
  for (const id of ['unet', 'movq_decoder']) {
    expect(cpuNodes[`${id} int4 webgpu session`], `${id}: CPU nodes`).toBeDefined();
    expect(cpuNodes[`${id} int4 webgpu session`], `${id}: CPU nodes, int4 vs fp32`).toBe(
      cpuNodes[`${id} fp32 webgpu session`],
    );
  }
});
