"""Per-weight precision search: the smallest `searched` set (precision.py plans) whose end-to-end
PSNR (quality.py) reaches a target, every kept step verified by a real build and a real run.

    . "$REFENV/env.sh" && /usr/bin/python3 models/export/precision_search.py \
        models/.random-tiny-realistic/fp32 --tiny --realistic --target-psnr 30 --out OUT

From an exported fp32 set (the text-to-image graphs: text_encoder, prior, unet, movq_decoder).
A probe builds a set from a plan (precision.py, the real files) and runs the whole pipeline through
the shipped CLI against fp32 torch (quality.measure) on the search calibration: by default the
calibration itself (quality.py's flags, 3 prompts x 2 seeds on the tiny sets), so every kept step
is measured on it; --search-prompts / --search-seeds pick a cheaper one, and then the answer is
measured again on the full calibration (step 5). On the tiny realistic set, the first two prompts
with seed 0 read 3-5 dB above the full calibration near a 30 dB target: too lenient to steer by.

1. Sensitivity, per weight (an estimate that orders the moves; nothing is kept on it alone). Each
   quantisable weight (precision.weight_kinds) is stored alone at 8 bits, the rest float32, and
   the graph is run on seeded inputs (sensitivity.py's for the UNet and the MoVQ decoder; seeded
   random values of the graph's input shapes for the others): its error is the output's squared
   error over the output's energy, summed over outputs. 6 and 4 bits are taken as 16x and 256x
   that (a bit less halves the step, a quarter of the squared error), 16 bits as 2^-16 of it.
   At full size that is a graph build and run per weight (hours); `--sensitivity weights` takes
   instead each weight's own relative squared error at 8 bits (||int8(w) - w||^2 / ||w||^2, no
   graph run, seconds), which says nothing of how the network amplifies it: step 2's per-graph
   scale is then all that tells graphs apart, and the probes correct the rest.
2. Per-graph amplification: each graph with weights at 8 bits, the others at 16 bits, measured end
   to end. The end-to-end squared error per unit of the graph's summed sensitivity scales the
   estimates of step 1 so that moves in different graphs compare.
3. The start: the smallest of the plan presets int4, int4c6, int8 (one bits per kind, as the presets
   store them) and all weights at 16 bits, that reaches the target on the search calibration
   (`--start all16` takes all weights at 16 bits without measuring the presets, where they are known
   to miss: at full size int8 gives 17 dB). In every plan the search builds, the weights too small
   to quantise (precision.small_weights: under 4096 elements) are float16 at rest, as in the fp16
   preset.
4. Greedy descent. A move lowers a unit of weights one rung each (Linear 16 -> 8 -> 4, Conv
   16 -> 8 -> 6 -> 4, Gather 16 -> 8). Units are coarse to fine: a whole graph, then its groups
   (block x kind: `down_blocks.1` convolutions, `mid_block.attentions.0` linears, a transformer
   layer's linears, ...), then single weights. The next move is the one that saves most among those
   whose estimated squared error fits in what is left to the target (the last kept probe's MSE
   against the target's), or, where none fits, the one that saves most per estimated error; it is
   kept only if its probe still reaches the target, and then its unit is queued for its next rung. A
   refused unit is split into its groups (or its weights); a refused single weight stays where it
   is. The search stops when no move is left or after --max-probes probes (default 60). Near the
   target one weight can move PSNR by several dB either way, so the answer depends on the path
   (models/README.md).
5. The last kept plan is measured on the full calibration (no new run where the search
   calibration is the full one). Where it misses the target, a bisection over the kept plans
   (the start must hold) finds a later one that holds, and the log says how far it fell back.

The set written to --out holds the required text-to-image components only (the optional ones,
inpainting, depth, the MoVQ encoder and the image encoder, are not searched), at precision
`searched` with each graph's `plan` (parameters per bits) and the full-calibration figure as
`quality`; beside it `search.json` records the target, the per-graph amplification and the plan
presets measured on the search calibration, the presets on the full one, every probe, the kept
steps and the run time.
The presets (fp16, int8, int4c6, int4, as the export tool writes them; fp16 is no plan, its
activations are float16 too) are measured on the calibration and reported beside the answer
(--no-presets skips them), and the log warns where the answer is larger than the smallest preset
that holds.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import copy
import json
import multiprocessing
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple, TypeVar

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import numpy as np  # noqa: E402
import onnx  # noqa: E402
from onnx import numpy_helper  # noqa: E402

import chunk_hashes  # noqa: E402
import precision as P  # noqa: E402
import quality as Q  # noqa: E402
from onnx_export import save_graph, sha256_file  # noqa: E402
from onnx_runner import run_many  # noqa: E402
from sensitivity import sample_feeds  # noqa: E402

COMPONENTS = ("text_encoder", "prior", "unet", "movq_decoder")
# The rungs a move walks down, per kind (32 bits is never searched: 16 bits starts the descent).
RUNGS = {"linear": (16, 8, 4), "conv": (16, 8, 6, 4), "gather": (16, 8)}
# Bytes per parameter as stored: blocks of 32 with a 2-byte scale (4 and 6 bits), int8 (the
# per-channel scales are left out: under 1%), float16, float32.
BYTES_PER_PARAMETER = {4: 18 / 32, 6: 26 / 32, 8: 1.0, 16: 2.0, 32: 4.0}
# Squared-error factors relative to 8 bits (the step doubles per bit removed; 16 bits is float16).
ERROR_FACTOR = {4: 256.0, 6: 16.0, 8: 1.0, 16: 2.0**-16, 32: 0.0}
# The plan presets: bits per kind, as precision.QUANT_PRESETS stores them.
PLAN_PRESETS = {
    "int4": {"linear": 4, "conv": 4, "gather": 8},
    "int4c6": {"linear": 4, "conv": 6, "gather": 8},
    "int8": {"linear": 8, "conv": 8, "gather": 8},
    "all16": {"linear": 16, "conv": 16, "gather": 16},
}
DEFAULT_TARGET_PSNR = 30.0  # the app's too (workers/precision.ts); models/README.md says why
DEFAULT_MAX_PROBES = 60

Plans = Dict[str, Dict[str, int]]  # component -> {weight: bits}
T = TypeVar("T")
Weight = Tuple[str, str]  # (component, initializer name)


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


SENSITIVITY_MODES = ("outputs", "weights")
START_MODES = ("auto", "all16")


def sensitivity(set_dir: Path, dims: dict, log: Callable[[str], None] = print, mode: str = "outputs"):
    """{component: {weight: 8-bit error}}, {component: {weight: parameters}}, {component: {weight: kind}},
    {component: graph without its weights' data} (the structure the search reads; at full size the
    float32 graphs are 12 GB, loaded one at a time). mode 'outputs': the graph's output error with
    the weight alone at 8 bits; 'weights': the weight's own relative error at 8 bits (no run)."""
    errors: Dict[str, Dict[str, float]] = {}
    sizes: Dict[str, Dict[str, int]] = {}
    kinds_of: Dict[str, Dict[str, str]] = {}
    models: Dict[str, onnx.ModelProto] = {}
    for component in COMPONENTS:
        path = set_dir / f"{component}.onnx"
        models[component] = onnx.load(str(path), load_external_data=False)
        # The weights' data only where this process runs the graphs ('outputs', the tiny sets).
        model = onnx.load(str(path)) if mode == "outputs" else models[component]
        kinds = P.weight_kinds(model)
        kinds_of[component] = kinds
        sizes[component] = {i.name: int(np.prod(i.dims)) for i in model.graph.initializer if i.name in kinds}
        errors[component] = {}
        if not kinds:
            continue
        if mode == "weights":
            errors[component] = in_child(weight_errors, path)
            log(f"  sensitivity {component}: {len(kinds)} weights' own error at 8 bits")
            continue
        feeds = component_feeds(component, model, dims)
        outputs = [o.name for o in model.graph.output]
        with tempfile.TemporaryDirectory(prefix=f"kandinsky-search-{component}-") as work:
            runs, names = [(str(path), f, outputs) for f in feeds], sorted(kinds)
            for k, name in enumerate(names):
                quantised, _ = P.quantize_plan(copy.deepcopy(model), {name: 8})
                file = str(Path(work) / f"{k}.onnx")
                onnx.save(quantised, file)
                runs += [(file, f, outputs) for f in feeds]
            results = run_many(runs)
        n = len(feeds)
        for k, name in enumerate(names):
            errors[component][name] = float(np.mean([relative_error(results[n + k * n + j], results[j]) for j in range(n)]))
        log(f"  sensitivity {component}: {len(kinds)} weights at 8 bits")
    return errors, sizes, kinds_of, models


def in_child(function: Callable[..., T], *args) -> T:
    """function(*args) in a forked process: what it allocates (a full-size graph is up to 4.8 GB, and
    Python keeps freed protobuf memory) is returned to the system before the CLI's run needs it."""
    with concurrent.futures.ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("fork")) as pool:
        return pool.submit(function, *args).result()


def weight_errors(path: Path) -> Dict[str, float]:
    """{weight: its own relative squared error at 8 bits} of the graph at path."""
    model = onnx.load(str(path))
    arrays = {i.name: i for i in model.graph.initializer}
    return {name: P.int8_relative_error(numpy_helper.to_array(arrays[name]), axis) for name, axis in P.weight_axes(model).items()}


def weight_groups(component: str, model: onnx.ModelProto, kinds: Dict[str, str]) -> Dict[str, List[str]]:
    """{group: weights}: a graph's weights by block and kind, e.g. `mid_block.attentions.0 linear`.
    The block comes from the weight's name, or (for exported names like `onnx::MatMul_12`) from the
    name of the node that reads it."""
    readers: Dict[str, str] = {}
    for node in model.graph.node:
        for name in node.input:
            readers.setdefault(name, node.name)
    groups: Dict[str, List[str]] = {}
    for name in sorted(kinds):
        path = name if not name.startswith("onnx::") else readers.get(name, name)
        parts = [p for p in path.replace("/", ".").split(".") if p]
        for prefix in ("unet", "movq", "decoder", "text_encoder", "text_model", "prior", "encoder"):
            if parts and parts[0] == prefix:
                parts = parts[1:]
        # The block is the path up to its first index (`down_blocks.1`, `mid_block.attentions.0`,
        # `layers.7`, `transformer_blocks.3`): one group per layer of a transformer stack too.
        index = next((k for k, part in enumerate(parts) if part.isdigit()), None)
        block = ".".join(parts[: index + 1]) if index is not None else (parts[0] if parts else name)
        groups.setdefault(f"{block} {kinds[name]}", []).append(name)
    return groups


def lower(bits: int, kind: str) -> Optional[int]:
    rungs = RUNGS[kind]
    return rungs[rungs.index(bits) + 1] if bits in rungs and rungs.index(bits) + 1 < len(rungs) else None


def preset_plans(kinds_of: Dict[str, Dict[str, str]], bits_by_kind: Dict[str, int], small_of: Dict[str, set]) -> Plans:
    """A preset's bits per kind as a plan, the weights too small to quantise at 16 bits (float16 at
    rest, as the fp16 preset stores them; the presets leave them float32)."""
    return {
        c: {**{name: 16 for name in small_of[c]}, **{name: bits_by_kind[kind] for name, kind in kinds.items()}}
        for c, kinds in kinds_of.items()
    }


def build_set(fp32_dir: Path, out_dir: Path, plans: Optional[Plans], precision: str = "searched") -> dict:
    """The set in out_dir: the fp32 set's required components, graphs quantised by plan (or, with
    plans None, at a preset precision). Built in a child process (in_child)."""
    return in_child(_build_set, fp32_dir, out_dir, plans, precision)


def _build_set(fp32_dir: Path, out_dir: Path, plans: Optional[Plans], precision: str) -> dict:
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
        graph, info = P.convert(graph, precision, cid, None if plans is None else plans.get(cid, {}))
        shard = max(1 << 20, max((f["bytes"] for f in component["files"][1:]), default=1 << 20))
        graph_path, shards = save_graph(graph, out_dir, cid, shard)
        entry = {k: v for k, v in component.items() if k not in ("files", "check", "precision", "requiredFeatures")}
        files = [(graph_path, "graph")] + [(s, "external-data") for s in shards]
        components[cid] = {
            "kind": "onnx",
            "precision": info["precision"],
            "requiredFeatures": info["required_features"],
            "files": [
                {"path": p.relative_to(out_dir).as_posix(), "bytes": p.stat().st_size, "sha256": sha256_file(p), "role": r}
                for p, r in files
            ],
            **({"plan": info["plan"]} if "plan" in info else {}),
            **{k: v for k, v in entry.items() if k not in ("kind",)},
        }
    manifest["components"] = components
    manifest.pop("quality", None)
    manifest.pop("variants", None)
    manifest["dims"].pop("depthImageSize", None)  # the depth estimator is optional, left out
    manifest["modelId"] = f"{manifest['modelId']}-{precision}"[:100]
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    chunk_hashes.add_chunk_hashes(out_dir / "manifest.json")
    return json.loads((out_dir / "manifest.json").read_text(encoding="utf-8"))


def text_to_image_bytes(manifest: dict) -> int:
    return sum(f["bytes"] for c in manifest["components"].values() if not c["optional"] for f in c["files"])


class Prober:
    """Builds and measures plans, each plan once (a cache by plan), counting the search's probes."""

    def __init__(self, fp32_dir: Path, work: Path, pipes: "Q.TorchPipelines", settings: dict, log: Callable[[str], None]):
        self.fp32_dir, self.work, self.pipes, self.settings, self.log = fp32_dir, work, pipes, settings, log
        self.cache: Dict[tuple, dict] = {}
        self.records: List[dict] = []
        # Each measurement's first calibration run (pictures, not JSON): the answer's sample pictures.
        self.firsts: Dict[int, dict] = {}

    @staticmethod
    def key(plans: Plans) -> tuple:
        return tuple(sorted((c, n, b) for c, p in plans.items() for n, b in p.items()))

    def measure(self, plans: Optional[Plans], what: str, precision: str = "searched", settings: Optional[dict] = None) -> dict:
        if settings == self.settings:
            settings = None  # the search calibration is the full one: a probe's figure is the answer's
        key = (precision, settings is not None, self.key(plans or {}))
        if key in self.cache:
            return self.cache[key]
        t = time.time()
        built = build_set(self.fp32_dir, self.work, plans, precision)
        measured = Q.measure(self.work, self.pipes, log=lambda _: None, **(settings or self.settings))
        figure = measured["quality"]
        record = {"what": what, "bytes": text_to_image_bytes(built), "quality": figure, "seconds": round(time.time() - t, 1)}
        self.firsts[id(record)] = measured["first"]
        if settings is None:
            self.records.append(record)
        self.cache[key] = record
        self.log(f"  {'probe' if settings is None else 'full '} {len(self.records):3d} {what[:60]:<60} {record['bytes'] / 1e6:7.3f} MB, PSNR {figure['psnr']:6.2f} dB")
        return record


def search(
    fp32_dir: Path,
    out_dir: Path,
    target: float,
    pipes: "Q.TorchPipelines",
    settings: dict,
    search_settings: dict,
    max_probes: int = DEFAULT_MAX_PROBES,
    compare_presets: bool = True,
    log: Callable[[str], None] = print,
    sensitivity_mode: str = "outputs",
    start_mode: str = "auto",
) -> dict:
    started = time.time()
    manifest = json.loads((fp32_dir / "manifest.json").read_text(encoding="utf-8"))
    precisions = {c["precision"] for c in manifest["components"].values() if c["kind"] == "onnx"}
    if precisions != {"fp32"}:
        raise SystemExit(f"{fp32_dir}: the search starts from an fp32 set, this one is {sorted(precisions)}")
    errors, sizes, kinds_of, models = sensitivity(fp32_dir, manifest["dims"], log, sensitivity_mode)
    sensitivity_s = time.time() - started
    with tempfile.TemporaryDirectory(prefix="kandinsky-search-") as tmp:
        prober = Prober(fp32_dir, Path(tmp) / "set", pipes, search_settings, log)
        report = _search(prober, target, settings, errors, sizes, kinds_of, models, max_probes, compare_presets, log, start_mode)
    plans, first = report.pop("_plans"), report.pop("_first")
    build_set(fp32_dir, out_dir, plans)
    # The figure, with the answer's first calibration run saved beside it as the sample pictures.
    Q.record(out_dir, {"quality": report["chosen"]["quality"], "first": first}, log)
    report["sensitivity"] = sensitivity_mode
    report["sensitivitySeconds"] = round(sensitivity_s, 1)
    report["seconds"] = round(time.time() - started, 1)
    report["plans"] = plans
    (out_dir / "search.json").write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    chosen = report["chosen"]
    log(
        f"searched: {chosen['bytes'] / 1e6:.3f} MB, PSNR {chosen['quality']['psnr']:.2f} dB (target {target} dB, full "
        f"calibration; {len(report['probes'])} probes, {report['seconds']} s, sensitivity {sensitivity_s:.1f} s)"
    )
    return report


def _search(prober: Prober, target, settings, errors, sizes, kinds_of, models, max_probes, compare_presets, log, start_mode="auto") -> dict:
    holds = lambda record: record["quality"]["psnr"] >= target  # noqa: E731
    small_of = {c: P.small_weights(m) for c, m in models.items()}
    all16 = preset_plans(kinds_of, PLAN_PRESETS["all16"], small_of)
    top = prober.measure(all16, "all weights at 16 bits")
    if not holds(top):
        raise SystemExit(f"target {target} dB is out of reach: every weight at 16 bits gives {top['quality']['psnr']:.2f} dB")

    # Per-graph amplification: one graph at 8 bits, the others at 16.
    amplification: Dict[str, dict] = {}
    mse = lambda record: 255.0**2 * 10 ** (-record["quality"]["psnr"] / 10)  # noqa: E731
    for component in COMPONENTS:
        if not kinds_of[component]:
            continue
        plans = {c: dict(p) for c, p in all16.items()}
        plans[component].update({n: 8 for n in kinds_of[component]})
        record = prober.measure(plans, f"{component} at 8 bits, the rest at 16")
        added = max(mse(record) - mse(top), 1e-12)
        amplification[component] = {
            "psnr": record["quality"]["psnr"],
            "bytes": record["bytes"],
            "sensitivity": sum(errors[component].values()),
            "msePerSensitivity": added / max(sum(errors[component].values()), 1e-30),
        }

    # The start: the smallest plan preset that holds.
    presets = {"all16": top}
    start_name, start = "all16", all16
    for name in ("int4", "int4c6", "int8") if start_mode == "auto" else ():
        plans = preset_plans(kinds_of, PLAN_PRESETS[name], small_of)
        presets[name] = prober.measure(plans, f"{name} as a plan (small weights at 16)")
        if holds(presets[name]):
            start_name, start = name, plans
            break

    # Units: whole graphs, their groups, single weights.
    groups = {c: weight_groups(c, models[c], kinds_of[c]) for c in COMPONENTS}

    def estimate(unit: Tuple[str, Tuple[str, ...]], plans: Plans) -> Tuple[float, float]:
        """(bytes saved, end-to-end squared error added) of lowering the unit one rung."""
        component, names = unit
        saved = added = 0.0
        for name in names:
            bits = plans[component][name]
            nxt = lower(bits, kinds_of[component][name])
            if nxt is None or frozen.get((component, name)) == bits:
                continue
            saved += sizes[component][name] * (BYTES_PER_PARAMETER[bits] - BYTES_PER_PARAMETER[nxt])
            added += errors[component][name] * (ERROR_FACTOR[nxt] - ERROR_FACTOR[bits])
        return saved, added * amplification.get(component, {}).get("msePerSensitivity", 1.0)

    def lowered(unit, plans: Plans) -> Plans:
        component, names = unit
        out = {c: dict(p) for c, p in plans.items()}
        for name in names:
            bits = plans[component][name]
            nxt = lower(bits, kinds_of[component][name])
            if nxt is not None and frozen.get((component, name)) != bits:
                out[component][name] = nxt
        return out

    def children(unit) -> List[Tuple[str, Tuple[str, ...]]]:
        component, names = unit
        if len(names) == 1:
            return []
        inside = [tuple(g) for g in groups[component].values() if set(g) <= set(names)]
        if len(inside) <= 1:  # a group: its weights
            inside = [(n,) for n in names]
        return [(component, g) for g in inside]

    mse_target = 255.0**2 * 10 ** (-target / 10)
    frozen: Dict[Weight, int] = {}  # a single weight refused below these bits
    plans = start
    kept: List[dict] = [{"move": f"start: {start_name}", "bytes": presets[start_name]["bytes"], "quality": presets[start_name]["quality"], "plans": plans}]
    queue = [(c, tuple(sorted(kinds_of[c]))) for c in COMPONENTS if kinds_of[c]]
    stopped = "no move left"
    while queue:
        # Within the error left to the target, the move that saves most; where none fits, the one
        # that saves most per error (probes cost the same, whatever they save).
        headroom = mse_target - mse(kept[-1])
        scored = []
        for unit in queue:
            saved, added = estimate(unit, plans)
            if saved > 0:
                scored.append((added <= headroom, saved if added <= headroom else saved / max(added, 1e-30), unit))
        if not scored:
            break
        scored.sort(key=lambda s: (not s[0], -s[1]))
        unit = scored[0][2]
        queue.remove(unit)
        if len(prober.records) >= max_probes:
            stopped = f"--max-probes {max_probes} reached"
            break
        component, names = unit
        label = f"{component}: {names[0] if len(names) == 1 else next((g for g, ws in groups[component].items() if tuple(ws) == names), f'{len(names)} weights')}"
        candidate = lowered(unit, plans)
        record = prober.measure(candidate, f"lower {label}")
        if holds(record):
            plans = candidate
            kept.append({"move": f"lower {label}", "bytes": record["bytes"], "quality": record["quality"], "plans": plans})
            queue.append(unit)
        elif len(names) == 1:
            frozen[(component, names[0])] = plans[component][names[0]]
        else:
            queue.extend(children(unit))
    log(f"  descent: {len(kept) - 1} moves kept, {len(prober.records)} probes ({stopped})")

    # The answer on the full calibration: the newest kept plan if it holds; else bisection over the
    # kept plans for a later one that holds (every answer is measured; the start must hold).
    full = lambda k: prober.measure(kept[k]["plans"], f"full: {kept[k]['move']}", settings=settings)  # noqa: E731
    last = len(kept) - 1
    if holds(full(last)):
        at = last
    else:
        if not holds(full(0)):
            raise SystemExit(
                f"the start ({start_name}) reaches {target} dB on the search calibration, "
                f"{full(0)['quality']['psnr']:.2f} dB on the full one: widen --search-prompts / --search-seeds"
            )
        lo, hi = 0, last  # full(lo) holds, full(hi) does not
        while hi - lo > 1:
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if holds(full(mid)) else (lo, mid)
        at = lo
        log(
            f"  kept step {last} gives {full(last)['quality']['psnr']:.2f} dB < {target} dB on the full calibration: "
            f"fell back to kept step {at} of {last}"
        )
    fell_back = last - at
    chosen = {"move": kept[at]["move"], "bytes": full(at)["bytes"], "quality": full(at)["quality"], "plans": kept[at]["plans"]}
    first = prober.firsts[id(full(at))]
    # The presets as the export tool writes them (fp16 is no plan: its activations are float16 too).
    full_presets = {}
    for name in ("int4", "int4c6", "int8", "fp16") if compare_presets else ():
        full_presets[name] = prober.measure(None, f"full: preset {name}", precision=name, settings=settings)
    meeting = [(r["bytes"], n) for n, r in full_presets.items() if holds(r)]
    bound = min(meeting) if meeting else None
    if bound is not None and chosen["bytes"] > bound[0]:
        log(f"  warning: the searched set ({chosen['bytes']} B) is larger than the {bound[1]} preset ({bound[0]} B), which also holds")
    plans = chosen.pop("plans")
    return {
        "_plans": plans,
        "_first": first,
        "targetPsnr": target,
        "chosen": chosen,
        "fellBack": fell_back,
        "stopped": stopped,
        "start": start_name,
        "amplification": amplification,
        "presets": {n: {"bytes": r["bytes"], "quality": r["quality"]} for n, r in presets.items()},
        "presetsFull": {n: {"bytes": r["bytes"], "quality": r["quality"]} for n, r in full_presets.items()},
        "smallestPresetHolding": None if bound is None else {"name": bound[1], "bytes": bound[0]},
        "probes": prober.records,
        "kept": [{k: v for k, v in step.items() if k != "plans"} for step in kept],
        "weights": {c: len(k) for c, k in kinds_of.items()},
        "groups": {c: len(g) for c, g in groups.items()},
        "maxProbes": max_probes,
        "calibration": {k: (list(v) if isinstance(v, (list, tuple)) else v) for k, v in settings.items()},
        "searchCalibration": {k: (list(v) if isinstance(v, (list, tuple)) else v) for k, v in prober.settings.items()},
    }


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description="Per-weight precision search to an end-to-end PSNR target")
    parser.add_argument("set", type=Path, help="an exported fp32 set (manifest.json beside its graphs)")
    Q.add_weights_arguments(parser)
    parser.add_argument("--target-psnr", type=float, default=DEFAULT_TARGET_PSNR, help=f"dB (default {DEFAULT_TARGET_PSNR})")
    parser.add_argument("--out", type=Path, required=True, help="where the searched set goes (replaced)")
    parser.add_argument(
        "--max-probes", type=int, default=DEFAULT_MAX_PROBES,
        help=f"builds measured on the search calibration, at most (default {DEFAULT_MAX_PROBES}); the first ones, "
        "always run, are all weights at 16 bits, each graph at 8 and the plan presets up to the first that holds",
    )
    parser.add_argument(
        "--search-prompts", nargs="+", help="a cheaper calibration for the probes: these prompts (default: the calibration's)"
    )
    parser.add_argument("--search-seeds", nargs="+", type=int, help="... and these seeds (default: the calibration's)")
    parser.add_argument(
        "--sensitivity", choices=SENSITIVITY_MODES, default="outputs",
        help="step 1 per weight: the graph's output error with it alone at 8 bits (default; a build and run per "
        "weight), or its own error at 8 bits ('weights': no run, for full-size sets)",
    )
    parser.add_argument(
        "--start", choices=START_MODES, default="auto",
        help="the descent's start: the smallest plan preset that holds (default), or all weights at 16 bits "
        "without measuring the presets ('all16': where they are known to miss the target)",
    )
    parser.add_argument(
        "--no-presets", dest="compare_presets", action="store_false",
        help="skip measuring the presets fp16, int8, int4c6, int4 on the calibration for comparison",
    )
    Q.add_arguments(parser)
    args = parser.parse_args(argv)
    if not 0 < args.target_psnr <= Q.PSNR_CAP:
        parser.error(f"--target-psnr must be above 0 and at most {Q.PSNR_CAP} dB, got {args.target_psnr}")
    if args.max_probes < 1:
        parser.error(f"--max-probes must be at least 1, got {args.max_probes}")
    if args.out.resolve() == args.set.resolve():
        parser.error("--out must not be the fp32 set")
    pipes = Q.torch_pipelines_from(args, parser)
    settings = Q.settings_from(args, full=args.full_size or args.prior is not None)
    search_settings = dict(settings, prompts=args.search_prompts or settings["prompts"], seeds=args.search_seeds or settings["seeds"])
    search(
        args.set, args.out, args.target_psnr, pipes, settings, search_settings, args.max_probes, args.compare_presets,
        sensitivity_mode=args.sensitivity, start_mode=args.start,
    )


if __name__ == "__main__":
    main()
