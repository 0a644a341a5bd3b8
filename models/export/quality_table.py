"""Size against quality for the precision presets of one fp32 set: the table of models/README.md.

    python models/export/quality_table.py FP32_SET --full-size --realistic --json OUT.json \
        [--precisions fp32 fp16 int8 int4c6 int4] [--pictures DIR --picture-prefix NAME] [quality.py's flags]

Each preset is built from the fp32 set's graphs (precision_search.build_set: the text-to-image
components, as the searched sets are), measured end to end by quality.measure (the set's graphs on
the shipped CLI against the fp32 torch pipeline, the same calibration for every row) and deleted
before the next is built, so the disk holds the fp32 set and one preset at a time. The torch
references are computed once, first, by `quality.py --references-only` in a process of its own,
and every row reads them from the cache (`--quality-reference-cache`, kept, so a table interrupted
at full size resumes without recomputing them; else one in the work folder): at full size the fp32
torch modules (about 20 GB) and the CLI's fp32 sessions (12 GB) don't fit a 24 GB machine
together, and a Python process doesn't give freed torch memory back to the system.

The JSON names the weights (`weights`: tiny-random, tiny-realistic, full-size-random,
full-size-realistic or pretrained; bench/quantization.node.ts reads it with BENCH_QUALITY_TABLE)
and has per row the precision, the text-to-image bytes of the built set, the figure
(psnr, ssim, embeddingCosine and the calibration) and the seconds the build and the runs took.
With `--pictures`, each row's first calibration run is saved as one side-by-side PNG (fp32
diffusers left, the set right), as in the README's tables.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import precision_search as S  # noqa: E402
import quality as Q  # noqa: E402

PRESETS = ["fp32", "fp16", "int8", "int4c6", "int4"]


def side_by_side(first: dict, path: Path) -> None:
    """fp32 diffusers' picture on the left, the set's on the right, 4 white pixels between."""
    from PIL import Image

    reference, picture = first["reference"], first["picture"]
    gap = np.full((reference.shape[0], 4, 3), 255, dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.concatenate([reference, gap, picture], axis=1), "RGB").save(path, format="PNG", optimize=True)


def measure_row(fp32_dir: Path, precision: str, work: Path, pipes: Q.TorchPipelines, settings: dict) -> dict:
    started = time.time()
    if precision == "fp32":
        target, manifest = fp32_dir, json.loads((fp32_dir / "manifest.json").read_text(encoding="utf-8"))
    else:
        target = work / precision
        manifest = S.build_set(fp32_dir, target, None, precision)
    built = time.time() - started
    try:
        measured = Q.measure(target, pipes, **settings)
    finally:
        pipes.release()
        if target != fp32_dir:
            shutil.rmtree(target, ignore_errors=True)
    return {
        "precision": precision,
        "bytes": S.text_to_image_bytes(manifest),
        "quality": measured["quality"],
        "buildSeconds": round(built, 1),
        "engineSeconds": round(measured["engineSeconds"], 1),
        "torchSeconds": round(measured["torchSeconds"], 1),
        "_first": measured["first"],
    }


def weights_label(args: argparse.Namespace) -> str:
    """Which weights the figures are of, as bench/results.json's quantization section names them."""
    if args.prior is not None:
        return "pretrained"
    return ("full-size" if args.full_size else "tiny") + ("-realistic" if args.realistic else "-random")


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description="Size against end-to-end quality for the precision presets of an fp32 set")
    parser.add_argument("set", type=Path, help="an exported fp32 set (manifest.json beside its graphs)")
    Q.add_weights_arguments(parser)
    parser.add_argument("--precisions", nargs="+", choices=PRESETS, default=PRESETS, help="rows, in order (default all)")
    parser.add_argument("--json", type=Path, required=True, help="the table (rewritten after every row)")
    parser.add_argument("--work", type=Path, help="where each preset is built, then deleted (default beside --json)")
    parser.add_argument("--pictures", type=Path, help="save each row's first run side by side in this folder")
    parser.add_argument("--picture-prefix", default="set", help="the pictures' file names: PREFIX-PRECISION.png")
    Q.add_arguments(parser)
    args = parser.parse_args(argv)
    work = args.work or args.json.parent / f".{args.json.stem}-work"
    # The torch references first, in a process of their own: the memory of the fp32 torch modules
    # (about 20 GB at full size) goes back when it ends, before any set's sessions load. The rows
    # then read them from the cache (the given one, or one in the work folder).
    args.quality_reference_cache = args.quality_reference_cache or work / "references"
    cache = args.quality_reference_cache
    before = set(cache.glob("*.npz")) if cache.is_dir() else set()
    started = time.time()
    subprocess.run(Q.reference_command(args, cache), check=True)
    references_computed = len(set(cache.glob("*.npz")) - before)
    reference_seconds = round(time.time() - started, 1)
    pipes = Q.torch_pipelines_from(args, parser)
    settings = Q.settings_from(args, full=args.full_size or args.prior is not None)
    rows: List[Dict] = []
    for precision in args.precisions:
        row = measure_row(args.set, precision, work, pipes, settings)
        first = row.pop("_first")
        if args.pictures:
            side_by_side(first, args.pictures / f"{args.picture_prefix}-{precision}.png")
            row["picturePsnr"] = round(Q.psnr(first["picture"], first["reference"]), 2)
        rows.append(row)
        figure = row["quality"]
        print(
            f"{precision:>7}: {row['bytes'] / 1e9:6.3f} GB, PSNR {figure['psnr']:6.2f} dB, SSIM {figure['ssim']:.4f}, "
            f"embedding cosine {figure['embeddingCosine']:.6f} (build {row['buildSeconds']} s, engine "
            f"{row['engineSeconds']} s, torch {row['torchSeconds']} s)",
            flush=True,
        )
        table = {
            "set": str(args.set),
            "weights": weights_label(args),
            "seconds": round(time.time() - started, 1),
            "referencesComputed": references_computed,
            "referenceSeconds": reference_seconds,
            "rows": rows,
        }
        args.json.write_text(json.dumps(table, indent=2) + "\n", encoding="utf-8")
    shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
