// The int4 and int4c6 (int4 with 6-bit convolutions) precisions' graphs on onnxruntime-node against
// the fp32 graphs of the same random weights: they load from the manifest's files, onnxruntime folds
// the in-graph 4-bit / 6-bit Conv unpacking and the float16 block scales' Cast to float32
// (export/precision.py) into plain initializers at session creation, and every output stays close
// to fp32 by checks.py's rule (cosine similarity of the flattened tensors).
//
// The sets: the tiny fixture (fp32) and its int4 / int4c6 exports, models/fixtures/tiny-int4 and
// tiny-int4c6, made by
//   . /work/refenv/env.sh && /usr/bin/python3 models/export/kandinsky_export.py --random-weights tiny --precision int4
// (and --precision int4c6; written to models/.random-tiny/<precision>; see models/README.md).
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

interface QuantisedSet {
  readonly precision: 'int4' | 'int4c6';
  readonly dir: string;
  /** Bits of the blocked Conv weights. */
  readonly convBits: 4 | 6;
  /** Least cosine similarity to fp32, per component. */
  readonly minCosine: Record<GraphComponentId, number>;
}

const SETS: readonly QuantisedSet[] = [
  {
    precision: 'int4',
    dir: join(FIXTURES, 'tiny-int4'),
    convBits: 4,
    /**
     * Graphs with 4-bit convolutions (the UNets, MoVQ, the depth head) lose most: on these random
     * weights `--check` measured 0.977–0.983 for the UNets and 0.991 / 0.994 for the MoVQ decoder /
     * encoder, and the inputs below give 0.967–0.981 for the UNets (unet_depth lowest). The others
     * quantise only Linear layers.
     */
    minCosine: {
      text_encoder: 0.9999,
      prior: 0.9999,
      image_encoder: 0.9999,
      unet: 0.96,
      unet_inpaint: 0.96,
      unet_depth: 0.96,
      movq_decoder: 0.985,
      movq_encoder: 0.985,
      depth_estimator: 0.995,
    },
  },
  {
    precision: 'int4c6',
    dir: join(FIXTURES, 'tiny-int4c6'),
    convBits: 6,
    /**
     * 6-bit convolutions: `--check` measured 0.9941–0.9967 for the UNets (now limited by their
     * 4-bit Linear layers: with those at int8 they give 0.9988–0.9990), 0.99922 / 0.99962 for the
     * MoVQ decoder / encoder and 0.99942 for the depth estimator; the inputs below give
     * 0.9936–0.9968 for the UNets (unet_depth lowest), 0.99971 / 0.99966 for the MoVQ and 0.99862
     * for the depth estimator. The Linear-only graphs are the same bytes as int4's.
     */
    minCosine: {
      text_encoder: 0.9999,
      prior: 0.9999,
      image_encoder: 0.9999,
      unet: 0.99,
      unet_inpaint: 0.99,
      unet_depth: 0.99,
      movq_decoder: 0.999,
      movq_encoder: 0.999,
      depth_estimator: 0.997,
    },
  },
];

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

describe.each(SETS)('$precision precision set on onnxruntime-node', (set) => {
  const fp32 = load(FP32_DIR);
  const quantised = load(set.dir);
  const ids = (Object.keys(GRAPH_CONTRACTS) as GraphComponentId[]).filter(
    (id) => fp32.components[id] && quantised.components[id],
  );
  const graphBytes = (id: GraphComponentId): Buffer => {
    const component = quantised.components[id];
    const graph = component?.kind === 'onnx' ? component.files[0] : undefined;
    if (!graph) throw new Error(`${set.precision}/${id}: no graph file in ${set.dir}`);
    return readFileSync(join(set.dir, graph.path));
  };

  it(`has the ${set.convBits}-bit convolutions and float16 block scales in its graphs`, () => {
    for (const id of ['unet', 'movq_decoder'] as const) {
      const bytes = graphBytes(id);
      expect(bytes.includes('BitShift'), `${id}: BitShift`).toBe(true);
      // The 6-bit codes' third byte plane (export/precision.py); the 4-bit codes are one nibble plane.
      expect(bytes.includes('__q6c'), `${id}: 6-bit byte planes`).toBe(set.convBits === 6);
      expect(bytes.includes(FP16_SCALES), `${id}: float16 scales`).toBe(true);
    }
  });

  it.each(ids)(`%s: matches fp32 and its ${set.convBits}-bit unpacking is constant-folded`, async (id) => {
    const optimized = join(work, `${set.precision}-${id}.optimized.onnx`);
    const reference = await session(FP32_DIR, fp32, id);
    const run = await session(set.dir, quantised, id, optimized);
    // onnxruntime wrote the graph it runs: no BitShift / Mod / Add / Concat of the unpacking is left
    // in it, nor the float16 block scales (their Cast to float32 folded into float32 initializers),
    // and MatMulNBits took the folded scales.
    const ran = readFileSync(optimized);
    const stored = graphBytes(id);
    expect(ran.includes('BitShift'), `${id}: BitShift left after constant folding`).toBe(false);
    expect(ran.includes('__c3'), `${id}: 6-bit code assembly left after constant folding`).toBe(false);
    expect(ran.includes('__q6a'), `${id}: 6-bit planes left after constant folding`).toBe(false);
    expect(ran.includes(FP16_SCALES), `${id}: float16 scales left after constant folding`).toBe(false);
    expect(ran.includes('MatMulNBits'), `${id}: MatMulNBits kept`).toBe(stored.includes('MatMulNBits'));
    const inputs = feeds(id, quantised.dims);
    const want = await reference.run(inputs);
    const got = await run.run(inputs);
    for (const { name } of GRAPH_CONTRACTS[id].outputs) {
      const w = want[name];
      const g = got[name];
      expect(g?.dims, `${id}.${name} shape`).toEqual(w?.dims);
      const c = cosine(g?.data as Float32Array, w?.data as Float32Array);
      console.log(`${set.precision} ${id}.${name}: cosine ${c.toFixed(7)} (min ${set.minCosine[id]})`);
      expect(c, `${id}.${name} cosine`).toBeGreaterThanOrEqual(set.minCosine[id]);
    }
  });
});
