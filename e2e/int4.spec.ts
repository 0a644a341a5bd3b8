import { existsSync, readFileSync } from 'node:fs';
import { extname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { expect, test } from '@playwright/test';

/**
 * The int4 precision's 4-bit convolutions and int4c6's 6-bit ones (models/export/precision.py: uint8
 * planes unpacked with BitShift / Concat (/ Mod / Add), float16 block scales cast to float32, then
 * DequantizeLinear -> Reshape -> Conv) on onnxruntime-web's WebGPU provider: the tiny random-weight
 * UNet and MoVQ decoder of each run on WebGPU, agree with the same graph on the wasm CPU provider,
 * and stay as close to the fp32 graph as on onnxruntime-node (models/int4.test.ts).
 * The sets: the tiny fixture (fp32) and its int4 / int4c6 exports, models/fixtures/tiny-int4 and
 * tiny-int4c6 (models/README.md).
 * The page and its files are served by request interception on a localhost origin (a secure
 * context, so WebGPU is exposed); no server or app build is involved.
 */
const REPO = fileURLToPath(new URL('..', import.meta.url));
const FIXTURES = join(REPO, 'models', 'fixtures');
/** The folder of each precision's set, by the name used in request paths. */
const SETS: Record<string, string> = {
  fp32: join(FIXTURES, 'tiny'),
  int4: join(FIXTURES, 'tiny-int4'),
  int4c6: join(FIXTURES, 'tiny-int4c6'),
};
/**
 * The quantised sets under test. On WebGPU both run the same kernels (DequantizeLinear, Reshape,
 * Conv, MatMulNBits; the unpacking is folded at load on the CPU), so CI runs int4c6 alone and
 * E2E_ALL_CASES=1 adds int4; Node checks both (models/int4.test.ts).
 */
const QUANTISED = process.env.E2E_ALL_CASES ? (['int4', 'int4c6'] as const) : (['int4c6'] as const);
const ORT_DIST = join(REPO, 'node_modules', 'onnxruntime-web', 'dist');
const ORIGIN = 'http://localhost:4199';

const TYPES: Record<string, string> = {
  '.mjs': 'text/javascript',
  '.js': 'text/javascript',
  '.wasm': 'application/wasm',
};

/** Least cosine similarity to fp32 (as in models/int4.test.ts) and to the same graph on wasm. */
const MIN_COSINE_FP32: Record<(typeof QUANTISED)[number], Record<string, number>> = {
  int4: { unet: 0.96, movq_decoder: 0.985 },
  int4c6: { unet: 0.99, movq_decoder: 0.999 },
};
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

test(`${QUANTISED.join(' and ')} quantised graphs run on onnxruntime-web WebGPU`, async ({ page }) => {
  test.setTimeout(15 * 60_000);
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
    const graphs = {
      fp32: files('fp32', id),
      quantised: Object.fromEntries(QUANTISED.map((precision) => [precision, files(precision, id)])),
    };
    const results = await page.evaluate(
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
        const open = (files: { graph: string; shards: string[] }, ep: string) => {
          const base = files.graph.slice(0, files.graph.lastIndexOf('/') + 1);
          return ort.InferenceSession.create(files.graph, {
            executionProviders: [ep],
            externalData: files.shards.map((path) => ({ path, data: base + path })),
            // Verbose: onnxruntime lists the nodes it places on the CPU instead of WebGPU.
            ...(ep === 'webgpu' ? { logSeverityLevel: 0, logVerbosityLevel: 0 } : {}),
          });
        };
        const run = async (files: { graph: string; shards: string[] }, ep: string) => {
          const session = await open(files, ep);
          const out = (await session.run(feeds))[output];
          await session.release();
          if (!out) throw new Error(`${id}: no ${output}`);
          return { data: Float32Array.from(out.data), dims: [...out.dims] };
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
        console.log(`--- ${id} fp32 webgpu session`);
        // Created, not run: its placement log (written at creation) is the baseline of the CPU-node
        // count below; a SwiftShader run of it would add nothing the wasm run doesn't give.
        await (await open(graphs.fp32, 'webgpu')).release();
        const out = [];
        for (const [precision, files] of Object.entries(graphs.quantised)) {
          const wasm = await run(files, 'wasm');
          console.log(`--- ${id} ${precision} webgpu session`);
          const gpu = await run(files, 'webgpu');
          out.push({
            precision,
            dims: { fp32: fp32.dims, gpu: gpu.dims },
            finite: gpu.data.every(Number.isFinite),
            vsFp32: cosine(gpu.data, fp32.data),
            vsWasm: cosine(gpu.data, wasm.data),
            wasmVsFp32: cosine(wasm.data, fp32.data),
          });
        }
        return out;
      },
      { id, graphs, origin: ORIGIN },
    );
    for (const result of results) {
      const { precision } = result;
      console.log(
        `${id}: ${precision} WebGPU vs fp32 cosine ${result.vsFp32.toFixed(7)}, vs ${precision} wasm ` +
          `${result.vsWasm.toFixed(7)} (${precision} wasm vs fp32 ${result.wasmVsFp32.toFixed(7)})`,
      );
      expect(result.dims.gpu, `${id} ${precision} shape`).toEqual(result.dims.fp32);
      expect(result.finite, `${id} ${precision} finite`).toBe(true);
      expect(result.vsWasm, `${id}: WebGPU vs wasm, same ${precision} graph`).toBeGreaterThanOrEqual(
        MIN_COSINE_SAME_GRAPH,
      );
      const bound = MIN_COSINE_FP32[precision as (typeof QUANTISED)[number]]?.[id];
      if (bound === undefined) throw new Error(`no fp32 cosine bound for ${precision} ${id}`);
      expect(result.vsFp32, `${id}: ${precision} WebGPU vs fp32`).toBeGreaterThanOrEqual(bound);
    }
    expect(
      results.map((r) => r.precision),
      `${id}: every quantised set ran`,
    ).toEqual([...QUANTISED]);
  }
  // The unpacking adds no CPU work: as many nodes on the CPU provider (shape arithmetic) as fp32,
  // so BitShift / Mod / Add / Concat / ConstantOfShape and the scales' Cast were folded and
  // DequantizeLinear / Reshape run on WebGPU.
  const cpuNodes: Record<string, number> = {};
  let section = '';
  for (const line of logs) {
    if (line.startsWith('--- ')) section = line.slice(4);
    const placed = /placed on \[CPUExecutionProvider\]\. Number of nodes: (\d+)/.exec(line);
    if (placed && section) cpuNodes[section] = Number(placed[1]);
  }
  console.log(`nodes on the CPU provider: ${JSON.stringify(cpuNodes)}`);
  for (const id of ['unet', 'movq_decoder']) {
    expect(cpuNodes[`${id} fp32 webgpu session`], `${id}: fp32 CPU nodes`).toBeDefined();
    for (const precision of QUANTISED) {
      expect(cpuNodes[`${id} ${precision} webgpu session`], `${id}: ${precision} CPU nodes`).toBeDefined();
      expect(cpuNodes[`${id} ${precision} webgpu session`], `${id}: CPU nodes, ${precision} vs fp32`).toBe(
        cpuNodes[`${id} fp32 webgpu session`],
      );
    }
  }
});
