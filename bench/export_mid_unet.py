"""A mid-size random-weight decoder UNet for the engine-overhead benchmark (bench/kandinsky.bench.node.ts).

The real Kandinsky 2.2 UNet configuration (architectures.FULL["unet"]: 4 levels, 3 layers per block,
SimpleCrossAttn blocks, image_proj conditioning, scale-shift time embedding) with every channel
count halved — block_out_channels (192, 384, 576, 768) instead of (384, 768, 1152, 1536) — and the
tiny fixture set's 32-dimensional image embedding, so that it drops into the tiny set in place of its
UNet. About a quarter of the real UNet's parameters (~1.3 GB fp32 instead of 5.0 GB): big enough
that a step costs what a real step costs per weight, small enough to run a few dozen times here.

    . /work/refenv/env.sh && /usr/bin/python3 bench/export_mid_unet.py [OUT_DIR]

Writes OUT_DIR/unet.onnx (+ external-data shards) and OUT_DIR/unet-component.json, the manifest
entry for the `unet` component (paths relative to OUT_DIR). Default OUT_DIR: bench/.cache/mid-unet.
"""

from __future__ import annotations

import gc
import json
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
EXPORT = HERE.parent / "models" / "export"
sys.path.insert(0, str(EXPORT))

import torch  # noqa: E402

import architectures as arch  # noqa: E402
from onnx_export import export_graph, load_exported, save_graph, sha256_file  # noqa: E402

MID_CHANNELS = (192, 384, 576, 768)
SHARD_BYTES = 256 * 1024 * 1024


def build_mid_unet() -> torch.nn.Module:
    from diffusers import UNet2DConditionModel

    config = dict(arch.FULL["unet"])
    config.update(block_out_channels=MID_CHANNELS, encoder_hid_dim=arch.TINY["unet"]["encoder_hid_dim"])
    torch.manual_seed(0)
    return UNet2DConditionModel(**config).eval()


def main() -> None:
    out_dir = Path(sys.argv[1]) if len(sys.argv) > 1 else HERE / ".cache" / "mid-unet"
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(2)
    started = time.time()
    model = build_mid_unet()
    params = sum(p.numel() for p in model.parameters())
    spec = arch.GRAPHS_BY_NAME["unet"]
    with tempfile.TemporaryDirectory(prefix="kandinsky-mid-unet-") as work_dir:
        exported = export_graph(spec, model, work_dir)
        del model
        gc.collect()
        graph = load_exported(spec, exported)
    graph_path, shards = save_graph(graph, out_dir, "unet", SHARD_BYTES)

    def entry(path: Path, role: str) -> dict:
        return {"path": path.name, "bytes": path.stat().st_size, "sha256": sha256_file(path), "role": role}

    component = {
        "kind": "onnx",
        "precision": "fp32",
        "requiredFeatures": [],
        "optional": False,
        "enables": [],
        "files": [entry(graph_path, "graph")] + [entry(s, "external-data") for s in shards],
        "benchParameters": params,
        "benchBlockOutChannels": list(MID_CHANNELS),
    }
    (out_dir / "unet-component.json").write_text(json.dumps(component, indent=2) + "\n", encoding="utf-8")
    total = sum(f["bytes"] for f in component["files"])
    print(f"mid UNet: {params / 1e6:.1f} M parameters, {total / 1e6:.1f} MB, {time.time() - started:.0f} s")


if __name__ == "__main__":
    main()
