// The int4 precision's graphs on onnxruntime-node against the fp32 graphs of the same random
// weights: they load from the manifest's files, onnxruntime folds the in-graph 4-bit Conv unpacking
// and the float16 block scales' Cast to float32 (export/precision.py) into plain initializers at
// session creation, and every output stays close to fp32 by checks.py's rule (cosine similarity of
// the flattened tensors).
//
// The sets: the tiny fixture (fp32) and its int4 export, models/fixtures/tiny-int4, made by
//   . /work/refenv/env.sh && /usr/bin/python3 models/export/kandinsky_export.py --random-weights tiny --precision int4
// (written to models/.random-tiny/int4; see models/README.md).
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ort from 'onnxruntime-node';
import { afterAll, describe, expect, it } from 'vitest';
import { type Dim, GRAPH_CONTRACTS, type GraphComponentId, type ModelDims, resolveDim } from './contract';
import { type Manifest, parseManifest } from './manifest';

const FIXTURES = join(dirname(fileURLToPath(import.meta.url)), 'fixtures');
const FP32_DIR = join(FIXTURES, 'tiny');
const INT4_DIR = join(FIXTURES, 'tiny-int4');

/**
 * Least cosine similarity to fp32. Graphs with 4-bit convolutions (the UNets, MoVQ, the depth
 * head) lose most: on these random weights `--check` measured 0.977–0.983 for the UNets and
 * 0.991 / 0.994 for the MoVQ decoder / encoder, and the inputs below give 0.967–0.981 for the
 * UNets (unet_depth lowest). The others quantise only Linear layers.
 */
const MIN_COSINE: Record<GraphComponentId, number> = {
  text_encoder: 0.9999,
  prior: 0.9999,
  image_encoder: 0.9999,
  unet: 0.96,
  unet_inpaint: 0.96,
  unet_depth: 0.96,
  movq_decoder: 0.985,
  movq_encoder: 0.985,
  depth_estimator: 0.995,
};

/** The name suffix of the float16-stored block scales (export/precision.py), cast to float32 in the graph. */
const FP16_SCALES = '__scales_f16';

const load = (dir: string): Manifest =>
  parseManifest(JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')));

const work = mkdtempSync(join(tmpdir(), 'kandinsky-int4-'));
const sessions: ort.InferenceSession[] = [];
afterAll(async () => {
  for (const s of sessions) await s.release();
  rmSync(work, { recursive: true, force: true });
});

async function session(dir: string, manifest: Manifest, id: GraphComponentId, optimizedPath?: string) {
  const component = manifest.components[id];
  if (component?.kind !== 'onnx') throw new Error(`${id} is not an onnx component`);
  const [graph, ...shards] = component.files;
  if (!graph) throw new Error(`${id} has no graph file`);
  const created = await ort.InferenceSession.create(readFileSync(join(dir, graph.path)), {
    executionProviders: ['cpu'],
    intraOpNumThreads: 1,
    externalData: shards.map((s) => ({ path: s.path, data: readFileSync(join(dir, s.path)) })),
    ...(optimizedPath
      ? { optimizedModelFilePath: optimizedPath, graphOptimizationLevel: 'basic' as const }
      : {}),
  });
  sessions.push(created);
  return created;
}

/** A deterministic uniform generator (LCG), so runs compare like for like. */
function uniform(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

const SIZES: Record<string, number> = {
  batch: 2,
  height: 8,
  width: 8,
  height_px: 64,
  width_px: 64,
  depth_height: 28,
  depth_width: 42,
};

function feeds(id: GraphComponentId, dims: ModelDims): Record<string, ort.Tensor> {
  const next = uniform(0x1234 + id.length);
  const out: Record<string, ort.Tensor> = {};
  for (const spec of GRAPH_CONTRACTS[id].inputs) {
    const shape = spec.shape.map((d: Dim) => resolveDim(d, dims) ?? SIZES[d as string] ?? 1);
    const size = shape.reduce((a, b) => a * b, 1);
    if (spec.dtype === 'int64') {
      out[spec.name] = new ort.Tensor(
        'int64',
        BigInt64Array.from({ length: size }, () => BigInt(Math.floor(next() * 90) + 1)),
        shape,
      );
    } else if (spec.dtype === 'bool') {
      out[spec.name] = new ort.Tensor(
        'bool',
        Uint8Array.from({ length: size }, (_, i) => (i % (shape[1] ?? 1) < 9 ? 1 : 0)),
        shape,
      );
    } else if (spec.name === 'timestep') {
      out[spec.name] = new ort.Tensor(
        'float32',
        Float32Array.from({ length: size }, (_, i) => (i % 2 === 0 ? 999 : 420)),
        shape,
      );
    } else {
      // Images and masks in [0, 1], everything else roughly unit-scale.
      const unit = spec.name === 'mask' || spec.name === 'hint';
      out[spec.name] = new ort.Tensor(
        'float32',
        Float32Array.from({ length: size }, () => (unit ? next() : 2 * next() - 1)),
        shape,
      );
    }
  }
  return out;
}

function cosine(a: Float32Array, b: Float32Array): number {
  let ab = 0;
  let aa = 0;
  let bb = 0;
  for (let i = 0; i < a.length; i++) {
    const x = a[i] ?? 0;
    const y = b[i] ?? 0;
    ab += x * y;
    aa += x * x;
    bb += y * y;
  }
  return ab / (Math.sqrt(aa) * Math.sqrt(bb) + 1e-30);
}

describe('int4 precision set (models/fixtures/tiny-int4) on onnxruntime-node', () => {
  const fp32 = load(FP32_DIR);
  const int4 = load(INT4_DIR);
  const ids = (Object.keys(GRAPH_CONTRACTS) as GraphComponentId[]).filter(
    (id) => fp32.components[id] && int4.components[id],
  );

  it('has the 4-bit convolutions in its graphs', () => {
    for (const id of ['unet', 'movq_decoder'] as const) {
      const component = int4.components[id];
      const graph = component?.kind === 'onnx' ? component.files[0] : undefined;
      expect(graph, id).toBeDefined();
      expect(readFileSync(join(INT4_DIR, graph?.path ?? '')).includes('BitShift'), id).toBe(true);
    }
  });

  it('stores its block scales as float16', () => {
    for (const id of ['unet', 'movq_decoder'] as const) {
      const component = int4.components[id];
      const graph = component?.kind === 'onnx' ? component.files[0] : undefined;
      expect(readFileSync(join(INT4_DIR, graph?.path ?? '')).includes(FP16_SCALES), id).toBe(true);
    }
  });

  it.each(ids)('%s: matches fp32 and its 4-bit unpacking is constant-folded', async (id) => {
    if (!fp32 || !int4) return;
    const optimized = join(work, `${id}.optimized.onnx`);
    const reference = await session(FP32_DIR, fp32, id);
    const quantised = await session(INT4_DIR, int4, id, optimized);
    // onnxruntime wrote the graph it runs: no BitShift / Concat of the unpacking is left in it, nor
    // the float16 block scales (their Cast to float32 folded into float32 initializers), and
    // MatMulNBits took the folded scales.
    const ran = readFileSync(optimized);
    const graph = int4.components[id]?.files[0]?.path ?? '';
    const stored = readFileSync(join(INT4_DIR, graph));
    expect(ran.includes('BitShift'), `${id}: BitShift left after constant folding`).toBe(false);
    expect(ran.includes(FP16_SCALES), `${id}: float16 scales left after constant folding`).toBe(false);
    expect(ran.includes('MatMulNBits'), `${id}: MatMulNBits kept`).toBe(stored.includes('MatMulNBits'));
    const inputs = feeds(id, int4.dims);
    const want = await reference.run(inputs);
    const got = await quantised.run(inputs);
    for (const { name } of GRAPH_CONTRACTS[id].outputs) {
      const w = want[name];
      const g = got[name];
      expect(g?.dims, `${id}.${name} shape`).toEqual(w?.dims);
      const c = cosine(g?.data as Float32Array, w?.data as Float32Array);
      console.log(`${id}.${name}: cosine ${c.toFixed(7)} (min ${MIN_COSINE[id]})`);
      expect(c, `${id}.${name} cosine`).toBeGreaterThanOrEqual(MIN_COSINE[id]);
    }
  });
});
