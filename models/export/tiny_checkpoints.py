"""Tiny Kandinsky 2.2 checkpoints in the Hugging Face Hub's layout, for the mock Hub (mock_hub.py).

    . /tmp/refenv/env.sh && /usr/bin/python3 models/export/tiny_checkpoints.py OUT_DIR

writes OUT_DIR/<owner>/<name>/ for the repos the export tool's `--hub` reads: four pipelines, each a
diffusers folder as kandinsky-community publishes it (model_index.json, scheduler/, one subfolder per
model with config.json and safetensors weights), and a depth estimator. All are built from the tiny architectures of
architectures.py with the same seeds as the committed fixture (models/fixtures/tiny), so an fp32
export of these checkpoints must give the fixture's weights. The repos cover the layouts the Hub
serves:

  tiny-hub/kandinsky-2-2-prior            fp32 weights and the fp16 variant beside them (as published),
                                          plus a pytorch_model.bin that `--hub` must never download
  tiny-hub/kandinsky-2-2-decoder          fp32 weights and the fp16 variant
  tiny-hub/kandinsky-2-2-decoder-inpaint  the UNet sharded: an index and two shards, fp32 only
  tiny-hub/kandinsky-2-2-controlnet-depth the fp16 variant only
  tiny-hub/depth-anything-tiny            a transformers folder (config, preprocessor, weights), as
                                          LiheYoung/depth-anything-small-hf

About 28 MB; built in a few seconds, so it is generated, not committed.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import torch  # noqa: E402

import architectures as arch  # noqa: E402
import tiny_tokenizer  # noqa: E402

OWNER = "tiny-hub"
REPOS = {
    "prior": f"{OWNER}/kandinsky-2-2-prior",
    "decoder": f"{OWNER}/kandinsky-2-2-decoder",
    "inpaint": f"{OWNER}/kandinsky-2-2-decoder-inpaint",
    "controlnet_depth": f"{OWNER}/kandinsky-2-2-controlnet-depth",
    "depth_estimator": f"{OWNER}/depth-anything-tiny",
}
# The inpainting UNet's shards: the tiny UNet is ~5 MB in fp32, so this gives exactly two.
INPAINT_SHARD_SIZE = "3MB"

# Written as diffusers writes a scheduler folder: the class name and its arguments.
PRIOR_SCHEDULER_CONFIG = {
    "_class_name": "UnCLIPScheduler",
    "clip_sample": True,
    "clip_sample_range": 10.0,
    "num_train_timesteps": 1000,
    "prediction_type": "sample",
    "variance_type": "fixed_small_log",
}
DECODER_SCHEDULER_CONFIG = {
    "_class_name": "DDPMScheduler",
    "beta_end": 0.012,
    "beta_schedule": "linear",
    "beta_start": 0.00085,
    "clip_sample": False,
    "clip_sample_range": 1.0,
    "num_train_timesteps": 1000,
    "prediction_type": "epsilon",
    "steps_offset": 1,
    "thresholding": False,
    "timestep_spacing": "leading",
    "variance_type": "fixed_small",
}


def _write_json(path: Path, value: dict) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(value, indent=2, sort_keys=True) + "\n", encoding="utf-8")


def _save(model: torch.nn.Module, folder: Path, fp32: bool, fp16: bool, max_shard_size: str = "10GB") -> None:
    """save_pretrained as the Hub holds it: the fp32 weights and/or the `fp16` variant."""
    if fp32:
        model.save_pretrained(folder, safe_serialization=True, max_shard_size=max_shard_size)
    if fp16:
        half = model.half() if not fp32 else _copy(model).half()
        half.save_pretrained(folder, safe_serialization=True, variant="fp16", max_shard_size=max_shard_size)


def _copy(model: torch.nn.Module) -> torch.nn.Module:
    import copy

    return copy.deepcopy(model)


def _pipeline_index(class_name: str, parts: dict) -> dict:
    return {"_class_name": class_name, "_diffusers_version": "0.31.0", **parts}


def build(out: Path) -> dict:
    """Writes the repos under `out`; returns {role: folder}."""
    torch.set_num_threads(1)
    folders = {role: out / repo for role, repo in REPOS.items()}
    for folder in folders.values():
        if folder.exists():
            shutil.rmtree(folder)
        folder.mkdir(parents=True)

    prior = folders["prior"]
    _save(arch.build_component("text_encoder", "tiny"), prior / "text_encoder", fp32=True, fp16=True)
    _save(arch.build_component("image_encoder", "tiny"), prior / "image_encoder", fp32=True, fp16=True)
    _save(arch.build_component("prior", "tiny"), prior / "prior", fp32=True, fp16=True)
    # A checkpoint format the tool must not fetch (the real repos carry .bin beside .safetensors).
    (prior / "text_encoder" / "pytorch_model.bin").write_bytes(b"not for download\n")
    tiny_tokenizer.write_tokenizer(prior / "tokenizer", arch.TINY["text_encoder"]["vocab_size"])
    (prior / "tokenizer" / "tokenizer.json").unlink()  # as published: the slow tokenizer's files only
    _write_json(prior / "scheduler" / "scheduler_config.json", PRIOR_SCHEDULER_CONFIG)
    _write_json(
        prior / "image_processor" / "preprocessor_config.json",
        {"crop_size": 224, "do_center_crop": True, "do_normalize": True, "do_resize": True, "size": 224},
    )
    _write_json(
        prior / "model_index.json",
        _pipeline_index(
            "KandinskyV22PriorPipeline",
            {
                "image_encoder": ["transformers", "CLIPVisionModelWithProjection"],
                "image_processor": ["transformers", "CLIPImageProcessor"],
                "prior": ["diffusers", "PriorTransformer"],
                "scheduler": ["diffusers", "UnCLIPScheduler"],
                "text_encoder": ["transformers", "CLIPTextModelWithProjection"],
                "tokenizer": ["transformers", "CLIPTokenizer"],
            },
        ),
    )

    decoder_parts = {
        "movq": ["diffusers", "VQModel"],
        "scheduler": ["diffusers", "DDPMScheduler"],
        "unet": ["diffusers", "UNet2DConditionModel"],
    }
    movq = arch.build_component("movq", "tiny")
    layouts = {
        # role: (UNet component, fp32, fp16, UNet shard size, pipeline class)
        "decoder": ("unet", True, True, "10GB", "KandinskyV22Pipeline"),
        "inpaint": ("unet_inpaint", True, False, INPAINT_SHARD_SIZE, "KandinskyV22InpaintPipeline"),
        "controlnet_depth": ("unet_depth", False, True, "10GB", "KandinskyV22ControlnetPipeline"),
    }
    for role, (unet_name, fp32, fp16, shard, pipeline) in layouts.items():
        folder = folders[role]
        _save(arch.build_component(unet_name, "tiny"), folder / "unet", fp32=fp32, fp16=fp16, max_shard_size=shard)
        _save(_copy(movq), folder / "movq", fp32=fp32, fp16=fp16)
        _write_json(folder / "scheduler" / "scheduler_config.json", DECODER_SCHEDULER_CONFIG)
        _write_json(folder / "model_index.json", _pipeline_index(pipeline, decoder_parts))

    depth = folders["depth_estimator"]
    _save(arch.build_component("depth_estimator", "tiny"), depth, fp32=True, fp16=False)
    arch.depth_image_processor("tiny").save_pretrained(depth)
    return folders


def main() -> None:
    parser = argparse.ArgumentParser(description="Tiny Kandinsky 2.2 checkpoints in Hub layout (mock Hub repos)")
    parser.add_argument("out", type=Path, help="folder of <owner>/<name>/ repos (mock_hub.py --root)")
    args = parser.parse_args()
    for role, folder in build(args.out).items():
        files = sorted(p for p in folder.rglob("*") if p.is_file())
        size = sum(p.stat().st_size for p in files)
        print(f"{REPOS[role]:>42}: {len(files)} files, {size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
