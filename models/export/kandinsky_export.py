"""Kandinsky 2.2 -> ONNX model sets for Kandinsky Web (contract version 1, see models/CONTRACT.md).

Modes:
  --tiny-random                 the committed test fixture: real architectures at the tiny sizes of
                                diffusers' tests, seeded random weights, fp32, plus reference outputs
                                recorded from the diffusers pipelines (models/fixtures/tiny/)
  --random-weights full-size    real sizes, random weights, for download/storage/memory tests
                                (models/.random-full/, never committed)
  --prior DIR --decoder DIR     real checkpoints (diffusers folders of kandinsky-community/
                                kandinsky-2-2-prior and -decoder; optional --decoder-inpaint,
                                --controlnet-depth, --depth-estimator: a transformers folder of
                                LiheYoung/depth-anything-small-hf); the manifest carries the prior's
                                and the decoder's own scheduler/scheduler_config.json
  --hub [PRIOR [DECODER [INPAINT [CONTROLNET]]]]
                                the same checkpoints downloaded from the Hugging Face Hub (repo ids,
                                owner/name[@revision], default kandinsky-community's; hub.py), exported
                                at every precision into one folder ready to host (hosting.py)
Options: --precision fp32|fp16|int8|int4|int4c6, --shard-mb, --check, --components, --size-range MIN-MAX,
--precisions (checkpoints: a ready-to-host folder of these), --variant fp16 (read the fp16 weight files).
"""

from __future__ import annotations

import argparse
import gc
import json
import math
import shutil
import sys
import tempfile
import warnings
import time
from pathlib import Path
from typing import Dict, List, Optional

HERE = Path(__file__).resolve().parent
MODELS_DIR = HERE.parent
sys.path.insert(0, str(HERE))

import numpy as np  # noqa: E402
import torch  # noqa: E402

import architectures as arch  # noqa: E402
import chunk_hashes  # noqa: E402
import hub  # noqa: E402
import hub_export  # noqa: E402
from checks import compare_graph, format_report, manifest_check, torch_references  # noqa: E402
from onnx_export import export_graph, load_exported, save_graph, sha256_file  # noqa: E402
import precision as precision_tools  # noqa: E402
import quality as quality_tools  # noqa: E402
import realistic_weights  # noqa: E402
import tiny_tokenizer  # noqa: E402

CONTRACT_VERSION = "1"
MANIFEST_VERSION = 1

# What each component is for: optional components name the features they enable.
COMPONENT_ROLES = {
    "tokenizer": (False, ["text-to-image", "image-to-image", "inpainting", "depth-control"]),
    "text_encoder": (False, ["text-to-image", "image-to-image", "inpainting", "depth-control"]),
    "prior": (False, ["text-to-image", "image-to-image", "inpainting", "depth-control"]),
    "prior_clip_mean": (False, ["text-to-image", "image-to-image", "inpainting", "depth-control"]),
    "prior_clip_std": (False, ["text-to-image", "image-to-image", "inpainting", "depth-control"]),
    "negative_image_embeds": (False, ["text-to-image", "image-to-image", "inpainting", "depth-control"]),
    "unet": (False, ["text-to-image", "image-to-image"]),
    "movq_decoder": (False, ["text-to-image", "image-to-image", "inpainting", "depth-control"]),
    "movq_encoder": (True, ["image-to-image", "inpainting", "depth-from-photo"]),
    "unet_inpaint": (True, ["inpainting"]),
    "unet_depth": (True, ["depth-control", "depth-from-photo"]),
    "image_encoder": (True, ["image-prompt"]),
    "depth_estimator": (True, ["depth-from-photo"]),
}

SET_INFO = {
    "tiny": {
        "modelId": "kandinsky-2.2-tiny-random",
        "name": "Kandinsky 2.2, tiny random weights (test fixture)",
        "source": "tiny-random",
    },
    "tiny-precision": {
        "modelId": "kandinsky-2.2-tiny-random-precision",
        "name": "Kandinsky 2.2, tiny random weights (precision tests)",
        "source": "random-weights",
    },
    "full": {
        "modelId": "kandinsky-2.2-random-full",
        "name": "Kandinsky 2.2, full size, random weights (scale tests only)",
        "source": "random-weights",
    },
    "pretrained": {
        "modelId": "kandinsky-2.2",
        "name": "Kandinsky 2.2",
        "source": "pretrained",
    },
}


def file_entry(root: Path, path: Path, role: str) -> dict:
    return {"path": path.relative_to(root).as_posix(), "bytes": path.stat().st_size, "sha256": sha256_file(path), "role": role}


def write_tensor(out_dir: Path, name: str, value: np.ndarray) -> Path:
    """Constants ship as raw little-endian float32, C order; dtype and shape live in the manifest."""
    path = out_dir / f"{name}.bin"
    path.write_bytes(np.ascontiguousarray(value.astype("<f4")).tobytes())
    return path


class ModelSource:
    """Where torch modules come from: seeded random weights (tiny/full) or checkpoints."""

    def __init__(
        self, size: str, prior_dir=None, decoder_dir=None, inpaint_dir=None, depth_dir=None, depth_estimator_dir=None,
        variant: Optional[str] = None, realistic: bool = False,
    ):
        self.size = size
        self.realistic = realistic  # realistic_weights.py on the random modules
        self.variant = variant  # the weights variant to prefer (hub.local_weights_variant)
        self.dirs = {
            "prior": prior_dir,
            "decoder": decoder_dir,
            "inpaint": inpaint_dir,
            "depth": depth_dir,
            "depth_estimator": depth_estimator_dir,
        }
        self._cache: Dict[str, torch.nn.Module] = {}

    def available(self, component: str) -> bool:
        if self.size != "pretrained":
            return True
        need = {"unet_inpaint": "inpaint", "unet_depth": "depth", "depth_estimator": "depth_estimator"}.get(component)
        return need is None or self.dirs[need] is not None

    def release(self) -> None:
        self._cache.clear()

    def module(self, source: str) -> torch.nn.Module:
        if source not in self._cache:
            self._cache.clear()  # one large module in memory at a time
            self._cache[source] = self._load(source)
        return self._cache[source]

    def _load(self, source: str) -> torch.nn.Module:
        if self.size in ("tiny", "full", "tiny-precision"):
            module = arch.build_component(source, "full" if self.size == "full" else "tiny")
            return realistic_weights.realistic(module, f"{source}.") if self.realistic else module
        from diffusers import PriorTransformer, UNet2DConditionModel, VQModel
        from transformers import CLIPTextModelWithProjection, CLIPVisionModelWithProjection

        prior, decoder = self.dirs["prior"], self.dirs["decoder"]

        def part(folder, subfolder: str) -> dict:  # the weights variant the folder has (hub.py)
            return {"subfolder": subfolder, "variant": hub.local_weights_variant(folder, subfolder, self.variant)}

        def diffusers_part(cls, folder, subfolder: str):  # also sharded weights without accelerate
            return hub.load_diffusers_model(cls, folder, subfolder, self.variant)

        loaders = {
            "text_encoder": lambda: CLIPTextModelWithProjection.from_pretrained(prior, **part(prior, "text_encoder"), **arch.EAGER),
            "image_encoder": lambda: CLIPVisionModelWithProjection.from_pretrained(
                prior, **part(prior, "image_encoder"), **arch.EAGER
            ),
            "prior": lambda: diffusers_part(PriorTransformer, prior, "prior"),
            "unet": lambda: diffusers_part(UNet2DConditionModel, decoder, "unet"),
            "unet_inpaint": lambda: diffusers_part(UNet2DConditionModel, self.dirs["inpaint"], "unet"),
            "unet_depth": lambda: diffusers_part(UNet2DConditionModel, self.dirs["depth"], "unet"),
            "movq": lambda: diffusers_part(VQModel, decoder, "movq"),
            "depth_estimator": lambda: _pretrained_depth_estimator(self.dirs["depth_estimator"]),
        }
        return loaders[source]().float().eval()

    def write_tokenizer(self, out_dir: Path) -> None:
        target = out_dir / "tokenizer"
        if self.size in ("tiny", "tiny-precision"):
            tiny_tokenizer.write_tokenizer(target, arch.TINY["text_encoder"]["vocab_size"])
            return
        if self.size == "full":
            # A random-weight set needs a tokenizer of the real vocabulary size only for scale; the
            # tiny vocabulary keeps the file small and the ids valid (all ids < 49408).
            tiny_tokenizer.write_tokenizer(target, 1000)
            return
        tiny_tokenizer.copy_pretrained_tokenizer(Path(self.dirs["prior"]) / "tokenizer", target)


def export_set(args) -> None:
    size = args.size
    out_dir: Path = args.out
    manifest_path = out_dir / "manifest.json"
    partial = bool(args.components) and manifest_path.exists()
    if out_dir.exists() and args.clean and not partial:
        for child in out_dir.iterdir():
            if child.name == "reference" and args.skip_reference:
                continue
            shutil.rmtree(child) if child.is_dir() else child.unlink()
    out_dir.mkdir(parents=True, exist_ok=True)
    source = ModelSource(
        size, args.prior, args.decoder, args.decoder_inpaint, args.controlnet_depth, args.depth_estimator,
        getattr(args, "variant", None), getattr(args, "realistic", False),
    )
    precision = args.precision
    shard_bytes = int(args.shard_mb * 1024 * 1024)
    wanted = args.components or [spec.component for spec in arch.GRAPHS]

    # --components re-exports some graphs into an existing set and keeps the rest of its manifest.
    previous = json.loads(manifest_path.read_text(encoding="utf-8")) if partial else {}
    components: Dict[str, dict] = dict(previous.get("components", {}))
    checks: Dict[str, dict] = {}

    source.write_tokenizer(out_dir)
    tok_files = ["tokenizer.json", "tokenizer_config.json", "vocab.json", "merges.txt", "special_tokens_map.json"]
    components["tokenizer"] = {
        "kind": "tokenizer",
        "files": [file_entry(out_dir, out_dir / "tokenizer" / f, "tokenizer") for f in tok_files if (out_dir / "tokenizer" / f).exists()],
    }

    dims = dict(previous.get("dims", {}))
    for spec in arch.GRAPHS:
        if spec.component not in wanted or not source.available(spec.component):
            continue
        started = time.time()
        model = source.module(spec.source)
        references = torch_references(spec, model) if args.check else None
        record_constants(spec, model, out_dir, components, dims)
        with tempfile.TemporaryDirectory(prefix=f"kandinsky-{spec.component}-") as work_dir:
            exported = export_graph(spec, model, work_dir)
            if spec.component != "movq_decoder":  # the encoder reuses the decoder's module
                source.release()  # large sets: free the torch weights before the ONNX copy is loaded
            del model
            gc.collect()
            graph = load_exported(spec, exported)
        graph, info = precision_tools.convert(graph, precision, spec.component)
        graph_path, shards = save_graph(graph, out_dir, spec.component, shard_bytes)
        del graph
        gc.collect()
        entry = {
            "kind": "onnx",
            "precision": info["precision"],
            "requiredFeatures": info["required_features"],
            "files": [file_entry(out_dir, graph_path, "graph")] + [file_entry(out_dir, s, "external-data") for s in shards],
        }
        components[spec.component] = entry
        total = sum(f["bytes"] for f in entry["files"])
        print(
            f"exported {spec.component:>14}: {total / 1e6:9.2f} MB in {len(entry['files'])} file(s), "
            f"{time.time() - started:.1f} s",
            flush=True,
        )
        if references is not None:
            report = compare_graph(spec, graph_path, references)
            checks[spec.component] = {"precision": info["precision"], "outputs": report}
            entry["check"] = manifest_check(report)  # what the app's automatic precision reads
            print(format_report(spec.component, report), flush=True)

    if "negative_image_embeds" not in components and (out_dir / "negative_image_embeds.bin").exists():
        raise SystemExit("negative_image_embeds needs the image_encoder component in the same run")

    if size == "tiny" and not args.skip_reference:
        import record_reference

        print("recording reference outputs (diffusers pipelines)", flush=True)
        record_reference.record_all(out_dir)
        if "depth_estimator" in components:
            import record_depth_reference

            print("recording depth reference outputs (transformers depth-estimation + diffusers)", flush=True)
            record_depth_reference.record_all(out_dir)

    manifest = build_manifest(size, components, dims, args.size_range, checkpoint_schedulers(args))
    if getattr(args, "realistic", False):  # another set than the plain random one: its own store id
        manifest["modelId"] += "-realistic"
        manifest["name"] += ", realistic weight statistics"
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n", encoding="utf-8")
    chunk_hashes.add_chunk_hashes(out_dir / "manifest.json")
    if checks:
        (out_dir / "check_report.json").write_text(json.dumps(checks, indent=2) + "\n", encoding="utf-8")
    total = sum(f["bytes"] for c in components.values() for f in c["files"])
    print(f"manifest: {len(components)} components, {total / 1e6:.2f} MB -> {out_dir / 'manifest.json'}")
    if getattr(args, "quality", False):
        record_quality(args, out_dir)


def record_quality(args, out_dir: Path) -> None:
    """`--quality`: the set's end-to-end figure against the fp32 torch pipeline, into its manifest."""
    pipes = quality_tools.export_pipelines(args, out_dir)
    print("measuring end-to-end quality (the set's graphs on the CLI against fp32 diffusers)", flush=True)
    started = time.time()
    result = quality_tools.measure(out_dir, pipes, **quality_tools.settings_from(args, full=args.size in ("full", "pretrained")))
    figure = quality_tools.record(out_dir, result)
    print(
        f"quality: PSNR {figure['psnr']:.2f} dB, SSIM {figure['ssim']:.4f}, embedding cosine "
        f"{figure['embeddingCosine']:.6f}, {time.time() - started:.1f} s",
        flush=True,
    )


def record_constants(spec, model, out_dir: Path, components: Dict[str, dict], dims: dict) -> None:
    """Constants and dimensions that come with a component's torch module."""
    if spec.component == "prior":
        components["prior_clip_mean"] = tensor_component(out_dir, "prior_clip_mean", model.clip_mean.detach().numpy())
        components["prior_clip_std"] = tensor_component(out_dir, "prior_clip_std", model.clip_std.detach().numpy())
        dims["imageEmbedDim"] = int(model.config.embedding_dim)
    if spec.component == "text_encoder":
        dims["textHiddenSize"] = int(model.config.hidden_size)
        dims["textMaxLength"] = int(model.config.max_position_embeddings)
    if spec.component == "image_encoder":
        with torch.no_grad():
            size_px = model.config.image_size
            zero = torch.zeros(1, 3, size_px, size_px)
            negative = model(pixel_values=zero).image_embeds.numpy()
        components["negative_image_embeds"] = tensor_component(out_dir, "negative_image_embeds", negative)
        dims["imageEncoderSize"] = int(size_px)
    if spec.component == "depth_estimator":
        # The DPTImageProcessor's target side; the rest of its settings are fixed by the contract.
        dims["depthImageSize"] = depth_image_size(model)
    if spec.component == "movq_decoder":
        dims["latentChannels"] = int(model.config.latent_channels)
        dims["movqScaleFactor"] = 2 ** (len(model.config.block_out_channels) - 1)


def _pretrained_depth_estimator(folder) -> torch.nn.Module:
    from transformers import DepthAnythingForDepthEstimation

    model = DepthAnythingForDepthEstimation.from_pretrained(folder)
    model.kandinsky_image_size = _pretrained_depth_size(Path(folder))
    return model


def _pretrained_depth_size(folder: Path) -> int:
    """The checkpoint's preprocessor_config.json must be the processor the contract describes."""
    config = json.loads((folder / "preprocessor_config.json").read_text(encoding="utf-8"))
    size = config.get("size", {})
    expected = {k: v for k, v in arch.DEPTH_IMAGE_PROCESSOR.items() if k in config}
    actual = {k: config[k] for k in expected}
    if actual != expected or size.get("height") != size.get("width"):
        raise SystemExit(f"depth estimator preprocessing {actual}, size {size}: contract 1 needs {expected}, square size")
    return int(size["height"])


def depth_image_size(model) -> int:
    # Set by architectures.build_component (random weights) or _pretrained_depth_estimator.
    return int(model.kandinsky_image_size)


def tensor_component(out_dir: Path, name: str, value: np.ndarray) -> dict:
    path = write_tensor(out_dir, name, value)
    return {"kind": "tensor", "dtype": "float32", "shape": list(value.shape), "files": [file_entry(out_dir, path, "tensor")]}


# The output sizes a set is exported for, pixels per side (--size-range): the real UNet works from
# 256 to 2048; the tiny fixture exists to be fast (its UNet has 2 down-sampling levels).
DEFAULT_SIZE_RANGE = {"tiny": (64, 512), "tiny-precision": (64, 512), "full": (256, 2048), "pretrained": (256, 2048)}


def parse_size_range(text: str) -> tuple:
    """`MIN-MAX` pixels per side, each a multiple of 64 from 64 to 16384, MIN <= MAX."""
    parts = text.split("-")
    if len(parts) != 2 or not all(p.isdigit() for p in parts):
        raise argparse.ArgumentTypeError(f"--size-range must look like 256-2048 (pixels per side); got {text!r}")
    low, high = int(parts[0]), int(parts[1])
    if not (64 <= low <= high <= 16384) or low % 64 or high % 64:
        raise argparse.ArgumentTypeError(f"--size-range {text}: sides are multiples of 64 from 64 to 16384, MIN <= MAX")
    return (low, high)


def scheduler_config(folder: Path) -> dict:
    """A checkpoint's own `scheduler/scheduler_config.json`, every field as diffusers saved it, with
    `_class_name` as the manifest's `class_name` (other `_` fields, such as `_diffusers_version`,
    are kept; readers ignore them)."""
    path = Path(folder) / "scheduler" / "scheduler_config.json"
    if not path.is_file():
        raise SystemExit(f"{path} is missing: --prior and --decoder are diffusers pipeline folders with a scheduler/")
    config = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(config, dict) or not isinstance(config.get("_class_name"), str):
        raise SystemExit(f"{path}: expected a JSON object with a _class_name")
    # Python's json writes diffusers' default lambda_min_clipped, -inf, as -Infinity, which is not
    # JSON: the manifest writes null, its reading of "no clipping".
    fields = {k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in config.items()}
    return {"class_name": fields.pop("_class_name"), **fields}


def checkpoint_schedulers(args) -> Optional[dict]:
    """Real checkpoints: the prior's and the decoder's own scheduler configs. The random-weight sets
    keep the fixed configs of architectures.py (None)."""
    if args.size != "pretrained":
        return None
    return {"prior": scheduler_config(args.prior), "decoder": scheduler_config(args.decoder)}


def build_manifest(
    size: str,
    components: Dict[str, dict],
    dims: dict,
    size_range: Optional[tuple] = None,
    schedulers: Optional[dict] = None,
) -> dict:
    ordered = {}
    for name, (optional, enables) in COMPONENT_ROLES.items():
        if name in components:
            ordered[name] = {**components[name], "optional": optional, "enables": enables}
    info = SET_INFO[size]
    return {
        "manifestVersion": MANIFEST_VERSION,
        "contractVersion": CONTRACT_VERSION,
        "modelId": info["modelId"],
        "name": info["name"],
        "source": info["source"],
        "license": "Apache-2.0",
        "dims": dims,
        "sizeRange": dict(zip(("minSide", "maxSide"), size_range or DEFAULT_SIZE_RANGE[size])),
        "schedulers": schedulers or {"prior": arch.PRIOR_SCHEDULER, "decoder": arch.DECODER_SCHEDULER},
        "components": ordered,
    }


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description="Export Kandinsky 2.2 to ONNX model sets (contract version 1)")
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--tiny-random", action="store_true", help="the committed tiny fixture set")
    mode.add_argument(
        "--random-weights",
        choices=["full-size", "tiny", "full-size-realistic", "tiny-realistic"],
        help="random weights at real dimensions (full-size) or the tiny ones (tiny: any precision, no reference); "
        "-realistic: with heavy tails and outlier input channels (export/realistic_weights.py)",
    )
    mode.add_argument("--prior", type=Path, help="diffusers folder of kandinsky-2-2-prior")
    hub_export.add_arguments(parser, mode)
    parser.add_argument("--decoder", type=Path, help="diffusers folder of kandinsky-2-2-decoder")
    parser.add_argument("--decoder-inpaint", type=Path, help="diffusers folder of kandinsky-2-2-decoder-inpaint")
    parser.add_argument("--controlnet-depth", type=Path, help="diffusers folder of kandinsky-2-2-controlnet-depth")
    parser.add_argument(
        "--depth-estimator", type=Path, help="transformers folder of LiheYoung/depth-anything-small-hf (Apache-2.0)"
    )
    parser.add_argument("--out", type=Path, help="output folder")
    parser.add_argument(
        "--precision",
        choices=["fp32", "fp16", "int8", "int4", "int4c6", "searched"],
        help="default fp32; searched: bits per weight by export/precision_search.py to --target-psnr",
    )
    parser.add_argument(
        "--target-psnr", type=float, help="with --precision searched: the end-to-end PSNR to reach, dB (default 30)"
    )
    parser.add_argument("--max-probes", type=int, help="with --precision searched: probes at most (default 60)")
    parser.add_argument("--shard-mb", type=float, help="external-data shard size (default 256; tiny set 1)")
    parser.add_argument("--components", nargs="+", help="export only these graph components")
    parser.add_argument("--check", action="store_true", help="compare every graph with its torch module")
    parser.add_argument(
        "--quality",
        action="store_true",
        help="measure the whole text-to-image pipeline on the exported graphs against fp32 torch "
        "(PSNR, SSIM, embedding cosine; export/quality.py) and record it in the manifest",
    )
    quality_tools.add_arguments(parser)
    parser.add_argument("--skip-reference", action="store_true", help="tiny set: keep the existing reference/")
    parser.add_argument("--no-clean", dest="clean", action="store_false", help="keep other files in --out")
    parser.add_argument(
        "--size-range",
        type=parse_size_range,
        help="output sizes the set supports, MIN-MAX pixels per side (default 256-2048; 64-512 for the tiny sets)",
    )
    args = parser.parse_args(argv)

    ready = hub_export.check_arguments(parser, args)

    warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module="torch.onnx")
    if args.tiny_random:
        torch.set_num_threads(1)  # bit-identical reference recordings run to run
    if args.tiny_random:
        args.size = "tiny"
        args.out = args.out or MODELS_DIR / "fixtures" / "tiny"
        args.shard_mb = args.shard_mb or 1
        if args.precision != "fp32":
            parser.error("the tiny fixture set is fp32 (the test adapter has no shader-f16)")
    elif args.random_weights:
        args.realistic = args.random_weights.endswith("-realistic")
        args.size = "full" if args.random_weights.startswith("full-size") else "tiny-precision"
        folder = (".random-full" if args.size == "full" else ".random-tiny") + ("-realistic" if args.realistic else "")
        args.out = args.out or MODELS_DIR / folder / args.precision
        args.shard_mb = args.shard_mb or (256 if args.size == "full" else 1)
        args.skip_reference = True
    else:
        if args.hub is None and args.decoder is None:
            parser.error("--prior needs --decoder")
        args.size = "pretrained"
        args.skip_reference = True
        args.shard_mb = args.shard_mb or 256
        if args.out is None:
            parser.error("--out is required with real checkpoints")
    if args.components:
        unknown = set(args.components) - set(arch.GRAPHS_BY_NAME)
        if unknown:
            parser.error(f"unknown components: {sorted(unknown)}")
    if args.precision != "searched" and (args.target_psnr is not None or args.max_probes is not None):
        parser.error("--target-psnr and --max-probes belong to --precision searched")
    if ready:
        hub_export.run(args, export_set)  # downloads (--hub), then every precision, HOSTING.md
    elif args.precision == "searched":
        export_searched(parser, args)
    else:
        export_set(args)


SEARCHED_COMPONENTS = ["text_encoder", "prior", "image_encoder", "unet", "movq_decoder"]


def export_searched(parser: argparse.ArgumentParser, args) -> None:
    """`--precision searched`: the text-to-image set exported fp32 into a temporary folder, then
    precision_search.py's search to --target-psnr writes the searched set (and search.json) to --out.
    The search runs the calibration through the shipped CLI, so `--quality` is implied."""
    import precision_search

    target = precision_search.DEFAULT_TARGET_PSNR if args.target_psnr is None else args.target_psnr
    if not 0 < target <= quality_tools.PSNR_CAP:
        parser.error(f"--target-psnr must be above 0 and at most {quality_tools.PSNR_CAP} dB, got {target}")
    max_probes = precision_search.DEFAULT_MAX_PROBES if args.max_probes is None else args.max_probes
    if max_probes < 1:
        parser.error(f"--max-probes must be at least 1, got {max_probes}")
    if args.components:
        parser.error("--precision searched exports the text-to-image set; --components does not apply")
    if args.check:
        parser.error("--precision searched measures end to end (quality.py); --check does not apply")
    if args.size == "full":
        print("note: a full-size search runs every probe at 512 x 512, 25 + 25 steps (hours each on a CPU)", flush=True)
    out_dir = args.out
    with tempfile.TemporaryDirectory(prefix="kandinsky-searched-fp32-") as work:
        fp32 = argparse.Namespace(**vars(args))
        fp32.precision, fp32.out, fp32.components, fp32.quality, fp32.check = "fp32", Path(work), SEARCHED_COMPONENTS, False, False
        export_set(fp32)
        pipes = quality_tools.export_pipelines(args, Path(work))
        settings = quality_tools.settings_from(args, full=args.size in ("full", "pretrained"))
        precision_search.search(Path(work), out_dir, target, pipes, settings, settings, max_probes)


if __name__ == "__main__":
    main()
