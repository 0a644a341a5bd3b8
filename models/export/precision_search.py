"""Per-weight precision search: the smallest `searched` set (precision.py plans) whose end-to-end
PSNR (quality.py) reaches a target.

    . "$REFENV/env.sh" && /usr/bin/python3 models/export/precision_search.py \
        models/.random-tiny-realistic/fp32 --tiny --realistic --target-psnr 30 --out OUT

From an exported fp32 set (the text-to-image graphs: text_encoder, prior, unet, movq_decoder):

1. Sensitivity, per weight and bits. Each quantisable weight (precision.weight_kinds) is stored
   alone at each of its kind's lower bits (Linear 4, 8; Conv 4, 6, 8; Gather 8) with
   precision.quantize_plan, the rest float32, exactly as the set would store it, and the graph is
   run on seeded inputs (sensitivity.py's for the UNet and the MoVQ decoder; seeded random values
   of the graph's input shapes for the others). Its error is the output's squared error over the
   output's energy, summed over outputs and averaged over inputs. 16 bits (float16 at rest) is
   taken as 2^-16 of the 8-bit error (its rounding is 2^8 times finer), 32 as none.
2. A ladder of plans. From every weight at its lowest bits, the step that removes the most
   (summed) error per byte added raises one weight one rung (Linear 4 -> 8 -> 16, Conv 4 -> 6 ->
   8 -> 16, Gather 8 -> 16); the plans after 0, 1, 2, ... steps grow in size. Errors of different
   weights and graphs are added as if independent (a model, checked only by step 3).
3. Bisection on the ladder: each probe builds the set (precision.py, the real files) and runs the
   whole pipeline through the shipped CLI against fp32 torch (quality.measure); the answer is the
   shortest prefix whose PSNR reaches the target, assuming PSNR grows along the ladder (the probes
   are all reported, so a non-monotone step shows).

The set written to --out holds the required text-to-image components only (the optional ones,
inpainting, depth, the MoVQ encoder and the image encoder, are not searched), at precision
`searched` with each graph's `plan` (parameters per bits) and the figure as `quality`; beside it
`search.json` records the target, the probes, the per-step sizes and the run time.
"""

from __future__ import annotations

import argparse
import copy
import heapq
import json
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import numpy as np  # noqa: E402
import onnx  # noqa: E402

import chunk_hashes  # noqa: E402
import precision as P  # noqa: E402
import quality as Q  # noqa: E402
from onnx_export import save_graph, sha256_file  # noqa: E402
from onnx_runner import run_many  # noqa: E402
from sensitivity import sample_feeds  # noqa: E402

COMPONENTS = ("text_encoder", "prior", "unet", "movq_decoder")
LADDER = {"linear": (4, 8, 16), "conv": (4, 6, 8, 16), "gather": (8, 16)}
# Bytes per parameter as stored: blocks of 32 with a 2-byte scale (4 and 6 bits), int8 (the
# per-channel scales are left out: under 1%), float16, float32.
BYTES_PER_PARAMETER = {4: 18 / 32, 6: 26 / 32, 8: 1.0, 16: 2.0, 32: 4.0}
FP16_FACTOR = 2.0**-16
DEFAULT_TARGET_PSNR = 30.0

Plans = Dict[str, Dict[str, int]]  # component -> {weight: bits}


def generic_feeds(model: onnx.ModelProto, batch: int = 2) -> List[dict]:
    """Seeded random inputs of a graph's declared inputs (batch for named dims, 8 for others)."""
    rng = np.random.default_rng(0)
    feeds = {}
    for value in model.graph.input:
        tensor = value.type.tensor_type
        shape = [d.dim_value if d.HasField("dim_value") else (batch if d.dim_param == "batch" else 8) for d in tensor.shape.dim]
        if tensor.elem_type == onnx.TensorProto.FLOAT:
            data = rng.standard_normal(shape).astype(np.float32)
            if value.name == "timestep":
                data = np.array([999.0, 420.0][:batch], np.float32)
            feeds[value.name] = data
        elif tensor.elem_type == onnx.TensorProto.INT64:
            feeds[value.name] = rng.integers(0, 32, shape).astype(np.int64)
        elif tensor.elem_type == onnx.TensorProto.BOOL:
            feeds[value.name] = np.ones(shape, bool)
        else:
            raise ValueError(f"{value.name}: no sample inputs of element type {tensor.elem_type}")
    return [feeds]


def component_feeds(component: str, model: onnx.ModelProto, dims: dict) -> List[dict]:
    if component in ("unet", "movq_decoder"):
        return sample_feeds(component, dims["latentChannels"], dims["imageEmbedDim"])[0]
    return generic_feeds(model)


def relative_error(got: Dict[str, np.ndarray], want: Dict[str, np.ndarray]) -> float:
    total = 0.0
    for name, ref in want.items():
        ref64 = ref.astype(np.float64)
        total += float(np.sum((got[name].astype(np.float64) - ref64) ** 2) / (np.sum(ref64**2) + 1e-30))
    return total


def sensitivity(set_dir: Path, dims: dict, log: Callable[[str], None] = print):
    """{component: {weight: {bits: error}}}, {component: {weight: parameters}}, {component: {weight: kind}}."""
    errors: Dict[str, Dict[str, Dict[int, float]]] = {}
    sizes: Dict[str, Dict[str, int]] = {}
    kinds_of: Dict[str, Dict[str, str]] = {}
    for component in COMPONENTS:
        path = set_dir / f"{component}.onnx"
        model = onnx.load(str(path))
        kinds = P.weight_kinds(model)
        kinds_of[component] = kinds
        sizes[component] = {i.name: int(np.prod(i.dims)) for i in model.graph.initializer if i.name in kinds}
        errors[component] = {}
        if not kinds:
            continue
        feeds = component_feeds(component, model, dims)
        outputs = [o.name for o in model.graph.output]
        with tempfile.TemporaryDirectory(prefix=f"kandinsky-search-{component}-") as work:
            runs, keys = [(str(path), f, outputs) for f in feeds], []
            for name, kind in sorted(kinds.items()):
                for bits in LADDER[kind][:-1]:  # 16 is estimated from 8
                    quantised, applied = P.quantize_plan(copy.deepcopy(model), {name: bits})
                    file = str(Path(work) / f"{len(keys)}.onnx")
                    onnx.save(quantised, file)
                    keys.append((name, bits, applied[name]))
                    runs += [(file, f, outputs) for f in feeds]
            results = run_many(runs)
        n = len(feeds)
        for k, (name, bits, got) in enumerate(keys):
            error = float(np.mean([relative_error(results[n + k * n + j], results[j]) for j in range(n)]))
            errors[component].setdefault(name, {})[bits] = error
        for name, by_bits in errors[component].items():
            by_bits[16] = by_bits[8] * FP16_FACTOR
            by_bits[32] = 0.0
        log(f"  sensitivity {component}: {len(kinds)} weights, {len(keys)} quantised graphs")
    return errors, sizes, kinds_of


def ladder(errors, sizes, kinds_of) -> Tuple[Plans, List[Tuple[str, str, int]]]:
    """The lowest plan and the greedy steps (component, weight, new bits), best error per byte first."""
    start: Plans = {c: {} for c in COMPONENTS}
    heap = []

    def push(component: str, name: str, bits: int) -> None:
        rungs = LADDER[kinds_of[component][name]]
        at = rungs.index(bits)
        if at + 1 >= len(rungs):
            return
        nxt = rungs[at + 1]
        gain = errors[component][name][bits] - errors[component][name][nxt]
        cost = sizes[component][name] * (BYTES_PER_PARAMETER[nxt] - BYTES_PER_PARAMETER[bits])
        heapq.heappush(heap, (-gain / cost, component, name, nxt))

    for component in COMPONENTS:
        for name, kind in kinds_of[component].items():
            start[component][name] = LADDER[kind][0]
            push(component, name, LADDER[kind][0])
    steps = []
    while heap:
        _, component, name, bits = heapq.heappop(heap)
        steps.append((component, name, bits))
        push(component, name, bits)
    return start, steps


def plans_after(start: Plans, steps, k: int) -> Plans:
    plans = {c: dict(p) for c, p in start.items()}
    for component, name, bits in steps[:k]:
        plans[component][name] = bits
    return plans


def build_set(fp32_dir: Path, out_dir: Path, plans: Plans) -> dict:
    """The searched set in out_dir: the fp32 set's required components, graphs quantised by plan."""
    manifest = json.loads((fp32_dir / "manifest.json").read_text(encoding="utf-8"))
    if out_dir.exists():
        shutil.rmtree(out_dir)
    out_dir.mkdir(parents=True)
    components = {}
    for cid, component in manifest["components"].items():
        if component["optional"]:
            continue
        if component["kind"] != "onnx":
            for entry in component["files"]:
                (out_dir / entry["path"]).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(fp32_dir / entry["path"], out_dir / entry["path"])
            components[cid] = component
            continue
        graph = onnx.load(str(fp32_dir / f"{cid}.onnx"))
        graph, info = P.convert(graph, "searched", cid, plans.get(cid, {}))
        shard = max(1 << 20, max((f["bytes"] for f in component["files"][1:]), default=1 << 20))
        graph_path, shards = save_graph(graph, out_dir, cid, shard)
        entry = {k: v for k, v in component.items() if k not in ("files", "check", "precision", "requiredFeatures")}
        files = [(graph_path, "graph")] + [(s, "external-data") for s in shards]
        components[cid] = {
            "kind": "onnx",
            "precision": "searched",
            "requiredFeatures": [],
            "files": [
                {"path": p.relative_to(out_dir).as_posix(), "bytes": p.stat().st_size, "sha256": sha256_file(p), "role": r}
                for p, r in files
            ],
            "plan": info["plan"],
            **{k: v for k, v in entry.items() if k not in ("kind",)},
        }
    manifest["components"] = components
    manifest.pop("quality", None)
    manifest.pop("variants", None)
    manifest["dims"].pop("depthImageSize", None)  # the depth estimator is optional, left out
    manifest["modelId"] = f"{manifest['modelId']}-searched"[:100]
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    chunk_hashes.add_chunk_hashes(out_dir / "manifest.json")
    return json.loads((out_dir / "manifest.json").read_text(encoding="utf-8"))


def text_to_image_bytes(manifest: dict) -> int:
    return sum(f["bytes"] for c in manifest["components"].values() if not c["optional"] for f in c["files"])


def search(
    fp32_dir: Path,
    out_dir: Path,
    target: float,
    pipes: "Q.TorchPipelines",
    settings: dict,
    log: Callable[[str], None] = print,
) -> dict:
    started = time.time()
    manifest = json.loads((fp32_dir / "manifest.json").read_text(encoding="utf-8"))
    precisions = {c["precision"] for c in manifest["components"].values() if c["kind"] == "onnx"}
    if precisions != {"fp32"}:
        raise SystemExit(f"{fp32_dir}: the search starts from an fp32 set, this one is {sorted(precisions)}")
    errors, sizes, kinds_of = sensitivity(fp32_dir, manifest["dims"], log)
    sensitivity_s = time.time() - started
    start, steps = ladder(errors, sizes, kinds_of)
    probes: Dict[int, dict] = {}
    firsts: Dict[int, dict] = {}  # each probe's first calibration run: the chosen one's sample pictures

    def probe(k: int) -> dict:
        if k not in probes:
            t = time.time()
            built = build_set(fp32_dir, out_dir, plans_after(start, steps, k))
            measured = Q.measure(out_dir, pipes, log=lambda _: None, **settings)
            figure, firsts[k] = measured["quality"], measured["first"]
            probes[k] = {"steps": k, "bytes": text_to_image_bytes(built), "quality": figure, "seconds": round(time.time() - t, 1)}
            log(f"  probe {k:4d}/{len(steps)} steps: {probes[k]['bytes'] / 1e6:7.3f} MB, PSNR {figure['psnr']:6.2f} dB")
        return probes[k]

    if probe(len(steps))["quality"]["psnr"] < target:
        raise SystemExit(
            f"target {target} dB is out of reach: every weight at its highest searched bits gives "
            f"{probes[len(steps)]['quality']['psnr']:.2f} dB"
        )
    lo, hi = -1, len(steps)  # probe(lo) fails (or lo = -1), probe(hi) holds
    if probe(0)["quality"]["psnr"] >= target:
        hi = 0
    else:
        lo = 0
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if probe(mid)["quality"]["psnr"] >= target:
            hi = mid
        else:
            lo = mid
    chosen = probe(hi)
    plans = plans_after(start, steps, hi)
    build_set(fp32_dir, out_dir, plans)  # the last probe built may have been another
    Q.record(out_dir, {"quality": chosen["quality"], "first": firsts[hi]}, log)
    seconds = round(time.time() - started, 1)
    report = {
        "targetPsnr": target,
        "chosen": chosen,
        "probes": [probes[k] for k in sorted(probes)],
        "steps": len(steps),
        "weights": {c: len(k) for c, k in kinds_of.items()},
        "sensitivitySeconds": round(sensitivity_s, 1),
        "seconds": seconds,
        "calibration": {k: (list(v) if isinstance(v, (list, tuple)) else v) for k, v in settings.items()},
        "plans": plans,
        "ladder": [list(step) for step in steps],
    }
    (out_dir / "search.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    log(
        f"searched: {chosen['bytes'] / 1e6:.3f} MB, PSNR {chosen['quality']['psnr']:.2f} dB >= {target} dB "
        f"({len(probes)} probes, {seconds} s, sensitivity {sensitivity_s:.1f} s)"
    )
    return report


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description="Per-weight precision search to an end-to-end PSNR target")
    parser.add_argument("set", type=Path, help="an exported fp32 set (manifest.json beside its graphs)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--tiny", action="store_true", help="the tiny random weights")
    source.add_argument("--full-size", action="store_true", help="the full-size random weights")
    source.add_argument("--prior", type=Path, help="diffusers folder of kandinsky-2-2-prior (with --decoder)")
    parser.add_argument("--decoder", type=Path)
    parser.add_argument("--realistic", action="store_true", help="the -realistic random weights (realistic_weights.py)")
    parser.add_argument("--target-psnr", type=float, default=DEFAULT_TARGET_PSNR, help=f"dB (default {DEFAULT_TARGET_PSNR})")
    parser.add_argument("--out", type=Path, required=True, help="where the searched set goes (replaced)")
    Q.add_arguments(parser)
    args = parser.parse_args(argv)
    if not 0 < args.target_psnr <= Q.PSNR_CAP:
        parser.error(f"--target-psnr must be above 0 and at most {Q.PSNR_CAP} dB, got {args.target_psnr}")
    if args.out.resolve() == args.set.resolve():
        parser.error("--out must not be the fp32 set")
    import torch

    torch.set_num_threads(1)
    if args.prior is not None:
        pipes = Q.TorchPipelines.pretrained(args.prior, args.decoder)
    else:
        pipes = Q.TorchPipelines.tiny(args.set / "tokenizer", "full" if args.full_size else "tiny", args.realistic)
    settings = Q.settings_from(args, full=args.full_size or args.prior is not None)
    search(args.set, args.out, args.target_psnr, pipes, settings)


if __name__ == "__main__":
    main()
