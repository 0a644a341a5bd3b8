import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { refEnv } from '../test-support/refenv.node';

const MODELS = fileURLToPath(new URL('.', import.meta.url));

const ref = refEnv(import.meta.url, ['onnx', 'numpy']);
const skip = ref.skip;
const python = (code: string) => ref.python([code], { code: true });

const TINY = join(MODELS, 'fixtures', 'tiny');

describe.skipIf(skip !== null)('export/precision.py plans', () => {
  it('the presets are plans: int8, int4 and int4c6 give the same graph bytes as a plan or a preset', async () => {
    const out = await python(`
import json, onnx
import precision as P
same = {}
for component in ("unet", "movq_decoder", "image_encoder"):
    path = "${TINY}/" + component + ".onnx"
    for preset, (linear, conv) in P.QUANT_PRESETS.items():
        kinds = P.weight_kinds(onnx.load(path))
        plan = {n: {"linear": linear, "conv": conv, "gather": 8}[k] for n, k in kinds.items()}
        a, _ = P.quantize_plan(onnx.load(path), plan)
        b, _ = P.convert(onnx.load(path), preset, component)
        same[component + ":" + preset] = [a.graph.SerializeToString() == b.graph.SerializeToString(), len(kinds)]
print(json.dumps(same))
`);
    const same = JSON.parse(out) as Record<string, [boolean, number]>;
    expect(Object.keys(same)).toHaveLength(9);
    for (const [key, [equal, weights]] of Object.entries(same)) {
      expect(weights, key).toBeGreaterThan(0);
      expect(equal, key).toBe(true);
    }
  }, 600_000); // a hang guard, not a speed check

  it('a plan mixing 4, 6, 8, 16 and 32 bits runs, stores each weight as asked and folds its float16 Casts', async () => {
    const work = mkdtempSync(join(tmpdir(), 'kandinsky-plan-'));
    try {
      const out = await python(`
import json, os
import numpy as np, onnx
import precision as P
from onnx_runner import run_many
from sensitivity import sample_feeds
path = "${TINY}/unet.onnx"
work = "${work}"
kinds = P.weight_kinds(onnx.load(path))
plan = {}
for i, (name, kind) in enumerate(sorted(kinds.items())):
    choices = P.PLAN_BITS_BY_KIND[kind]
    plan[name] = choices[i % len(choices)]
mixed, info = P.convert(onnx.load(path), "searched", "unet", plan)
whole, _ = P.quantize_plan(onnx.load(path), {n: 32 for n in kinds})
_, applied = P.quantize_plan(onnx.load(path), plan)
onnx.save(mixed, os.path.join(work, "mixed.onnx"))
onnx.save(whole, os.path.join(work, "whole.onnx"))
feeds, output = sample_feeds("unet", 4, 32)
models = [path, os.path.join(work, "mixed.onnx"), os.path.join(work, "whole.onnx")]
results = run_many([(m, f, [output]) for m in models for f in feeds])
n = len(feeds)
cos, exact = [], True
for j in range(n):
    r, m, w = (results[k * n + j][output].ravel().astype(np.float64) for k in range(3))
    cos.append(float(r @ m / np.linalg.norm(r) / np.linalg.norm(m)))
    exact = exact and bool(np.array_equal(r, w))
inits = {i.name: i.data_type for i in mixed.graph.initializer}
def form(name):
    if name + "__f16" in inits: return "fp16"
    if name + "__q4" in inits: return "nbits" if kinds[name] == "linear" else "q4"
    if name + "__q6a" in inits: return "q6"
    if name + "__int8" in inits: return "int8"
    return "fp32" if inits.get(name) == 1 else "?"
print(json.dumps({"cos": cos, "exact": exact, "bits": sorted(set(plan.values())), "summary": info["plan"],
                  "stored": {n: [kinds[n], b, applied[n], form(n)] for n, b in plan.items()},
                  "types": [v.type.tensor_type.elem_type for v in list(mixed.graph.input) + list(mixed.graph.output)]}))
`);
      const r = JSON.parse(out) as {
        cos: number[];
        exact: boolean;
        bits: number[];
        summary: Record<string, number>;
        stored: Record<string, [string, number, number, string]>;
        types: number[];
      };
      expect(r.bits).toEqual([4, 6, 8, 16, 32]);
      expect(r.exact).toBe(true); // a float32 plan is the fp32 graph
      // Down to 4 bits in places: the tiny UNet measures ~0.996 at int4c6 and ~0.98 at int4; a
      // broken unpacking or a weight in the wrong layout gives a cosine near 0.
      for (const c of r.cos) expect(c).toBeGreaterThan(0.97);
      const FORMS: Record<string, Record<number, string[]>> = {
        linear: { 4: ['nbits', 'int8'], 8: ['int8'], 16: ['fp16'], 32: ['fp32'] },
        conv: { 4: ['q4', 'int8'], 6: ['q6', 'int8'], 8: ['int8'], 16: ['fp16'], 32: ['fp32'] },
        gather: { 8: ['int8'], 16: ['fp16'], 32: ['fp32'] },
      };
      const forms = new Set<string>();
      for (const [name, [kind, asked, got, form]] of Object.entries(r.stored)) {
        expect(FORMS[kind]?.[asked], `${name} (${kind} at ${asked})`).toContain(form);
        expect(got === asked || (form === 'int8' && got === 8), name).toBe(true);
        forms.add(form);
      }
      expect([...forms].sort()).toEqual(['fp16', 'fp32', 'int8', 'nbits', 'q4', 'q6']);
      expect(Object.keys(r.summary)).toEqual(['4', '6', '8', '16', '32']);
      for (const bits of ['4', '6', '8', '16', '32']) expect(r.summary[bits]).toBeGreaterThan(0);
      for (const type of r.types) expect(type).toBe(1); // graph inputs and outputs float32 (CONTRACT.md)

      // onnxruntime folds every float16 weight's Cast at session creation (compute stays float32).
      const optimized = join(work, 'optimized.onnx');
      await ort.InferenceSession.create(join(work, 'mixed.onnx'), {
        optimizedModelFilePath: optimized,
        graphOptimizationLevel: 'basic', // constant folding; onnxruntime-web's default ('all') includes it
      });
      const casts = await python(`
import onnx
graph = onnx.load("${optimized}").graph
print(sum(1 for n in graph.node if n.op_type == "Cast" and any(i.endswith("__f16") for i in n.input)))
print(sum(1 for i in onnx.load("${work}/mixed.onnx").graph.initializer if i.name.endswith("__f16")))
`);
      const [left, stored] = casts.trim().split('\n').map(Number);
      expect(stored).toBeGreaterThan(0);
      expect(left).toBe(0);
    } finally {
      rmSync(work, { recursive: true, force: true });
    }
  }, 600_000); // a hang guard, not a speed check

  it('refuses a plan naming a non-weight, bits a kind cannot have, or a plan for a preset', async () => {
    const out = await python(`
import json, onnx
import precision as P
path = "${TINY}/unet.onnx"
kinds = P.weight_kinds(onnx.load(path))
linear = next(n for n, k in kinds.items() if k == "linear")
errors = []
for call in (lambda: P.quantize_plan(onnx.load(path), {"no_such_weight": 8}),
             lambda: P.quantize_plan(onnx.load(path), {linear: 6}),
             lambda: P.quantize_plan(onnx.load(path), {linear: 12}),
             lambda: P.convert(onnx.load(path), "int8", "unet", {linear: 8}),
             lambda: P.convert(onnx.load(path), "searched", "unet"),
             lambda: P.quantize_plan(onnx.load(path), {sorted(P.small_weights(onnx.load(path)))[0]: 8})):
    try:
        call()
        errors.append(None)
    except ValueError as e:
        errors.append(str(e))
print(json.dumps(errors))
`);
    const errors = JSON.parse(out) as (string | null)[];
    expect(errors[0]).toMatch(/'no_such_weight' is not a weight/);
    expect(errors[1]).toMatch(/linear weight; its bits are \(4, 8, 16, 32\), got 6/);
    expect(errors[2]).toMatch(/got 12/);
    expect(errors[3]).toMatch(/plan is for the searched precision, not int8/);
    expect(errors[4]).toMatch(/searched precision needs a plan/);
    expect(errors[5]).toMatch(/under 4096 elements; its bits are \(16, 32\), got 8/);
  }, 600_000); // a hang guard, not a speed check

  it('weights too small to quantise go to float16 when a plan names them, and nowhere else', async () => {
    const out = await python(`
import json, onnx
import precision as P
path = "${TINY}/text_encoder.onnx"
small = sorted(P.small_weights(onnx.load(path)))
kinds = P.weight_kinds(onnx.load(path))
halved, applied = P.quantize_plan(onnx.load(path), {n: 16 for n in small})
plain, _ = P.quantize_plan(onnx.load(path), {n: 16 for n in kinds})
inits = {i.name for i in halved.graph.initializer}
print(json.dumps({"small": len(small), "overlap": len(set(small) & set(kinds)),
                  "stored16": sum(1 for n in small if n + "__f16" in inits and n not in inits),
                  "applied": sorted(set(applied[n] for n in small)),
                  "plainKeepsSmall": all(n in {i.name for i in plain.graph.initializer} for n in small),
                  "bytes": [len(onnx.load(path).SerializeToString()), len(halved.SerializeToString())]}))
`);
    const r = JSON.parse(out) as {
      small: number;
      overlap: number;
      stored16: number;
      applied: number[];
      plainKeepsSmall: boolean;
      bytes: [number, number];
    };
    expect(r.small).toBeGreaterThan(0);
    expect(r.overlap).toBe(0); // a weight is small or quantisable, never both
    expect(r.stored16).toBe(r.small);
    expect(r.applied).toEqual([16]);
    expect(r.plainKeepsSmall).toBe(true); // a plan that does not name them leaves them float32
    expect(r.bytes[1]).toBeLessThan(r.bytes[0]);
  }, 600_000); // a hang guard, not a speed check
});
