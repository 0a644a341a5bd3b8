"""Records reference outputs of depth control from a photo for the tiny fixture set.

Two parts, both run through the real libraries over the seeded tiny modules that were exported:

1. transformers' `depth-estimation` pipeline (DepthEstimationPipeline: DPTImageProcessor ->
   DepthAnythingForDepthEstimation -> bicubic resize to the photo's size -> `depth * 255 / max`
   cast to uint8), then diffusers' `make_hint` from the Kandinsky 2.2 ControlNet examples
   (`np.array(depth) / 255` stacked to three channels), on photos of several sizes.
2. Image-to-image with depth control, as the docstring example of
   `KandinskyV22ControlnetImg2ImgPipeline` does it, with ONE generator for every stage:
   - `prior: "text"`: KandinskyV22PriorPipeline (as the depth ControlNet example and the Combined
     pipelines), then KandinskyV22ControlnetImg2ImgPipeline;
   - `prior: "emb2emb"`: the img2img example itself: KandinskyV22PriorEmb2EmbPipeline on
     (prompt, photo, prior strength), then again on (negative prompt or "", photo, strength 1) whose
     image embedding is the negative one, then KandinskyV22ControlnetImg2ImgPipeline.
   The photo goes to the depth pipeline at the output size (the example resizes it first).

Output: <set>/reference-depth/cases.json, <case>/*.npy, inputs/*.png, depth PNGs.
Run through kandinsky_export.py --tiny-random, or directly:
`. /work/refenv/env.sh && /usr/bin/python3 models/export/record_depth_reference.py models/fixtures/tiny`
"""

from __future__ import annotations

import argparse
import importlib
import shutil
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import torch
from PIL import Image

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from architectures import (  # noqa: E402
    DECODER_SCHEDULER,
    DEPTH_IMAGE_PROCESSOR,
    PRIOR_SCHEDULER,
    TINY,
    build_component,
    depth_image_processor,
)
from record_reference import IMAGE_PROCESSOR, NEGATIVE, RNG_SITES, Recorder, dumps_compact, wrap_forward  # noqa: E402
from record_mix_reference import test_picture  # noqa: E402
from tiny_tokenizer import load_reference_tokenizer  # noqa: E402

# Where each module looks up randn_tensor: the shared sites plus the two pipelines used here only.
DEPTH_RNG_SITES = {
    **RNG_SITES,
    "diffusers.pipelines.kandinsky2_2.pipeline_kandinsky2_2_prior_emb2emb": "prior.initial_latents",
    "diffusers.pipelines.kandinsky2_2.pipeline_kandinsky2_2_controlnet_img2img": "decoder.img2img_noise",
}

# (name, width, height): the pipeline cases' photo, a wide one (fit the height), a tall odd one
# (fit the width, sides rounded to multiples of 14) and one larger than the processor size.
PHOTOS = [("photo_64", 64, 64), ("photo_w128_h64", 128, 64), ("photo_w75_h97", 75, 97), ("photo_w200_h150", 200, 150)]


@dataclass
class DepthCase:
    name: str
    prior: str  # "text" | "emb2emb"
    prompt: str
    negative_prompt: Optional[str]
    seed: int
    height: int
    width: int
    prior_steps: int
    decoder_steps: int
    strength: float
    prior_strength: Optional[float] = None  # emb2emb: the first prior run's strength (the example's 0.85)
    prior_guidance_scale: float = 4.0
    guidance_scale: float = 4.0
    photo: str = "inputs/photo_64.png"


CASES: List[DepthCase] = [
    DepthCase("depth_img2img_64_s05", "text", "a robot in a room", None, 13, 64, 64, 2, 4, 0.5),
    DepthCase("depth_img2img_64_emb2emb_neg", "emb2emb", "a robot in a room", NEGATIVE, 21, 64, 64, 3, 4, 0.5, prior_strength=0.85),
]


def load_depth_pipeline():
    """transformers' DepthEstimationPipeline around the tiny model (what `pipeline("depth-estimation")`
    builds). Without the `tokenizers` package the `transformers.pipelines` package fails to import
    after it has loaded the depth-estimation module (this project's machines, TESTING.md)."""
    try:
        from transformers import pipeline

        factory = lambda model, processor: pipeline("depth-estimation", model=model, image_processor=processor)  # noqa: E731
    except (ImportError, RuntimeError):
        from transformers.pipelines.depth_estimation import DepthEstimationPipeline

        factory = lambda model, processor: DepthEstimationPipeline(model=model, image_processor=processor, framework="pt")  # noqa: E731
    model = build_component("depth_estimator", "tiny")
    return factory(model, depth_image_processor("tiny")), model


def estimate(depth_pipe, model, photo: Image.Image, rec: Recorder, prefix: str) -> torch.Tensor:
    """Photo -> depth map -> hint, recording every step; returns the hint [1, 3, H, W]."""
    seen = {}

    def on_model(args, kwargs, out):
        seen["pixel_values"] = kwargs.get("pixel_values", args[0] if args else None)
        seen["predicted_depth"] = out.predicted_depth

    original = model.forward
    wrap_forward(model, on_model)
    try:
        depth = depth_pipe(photo)["depth"]
    finally:
        model.forward = original
    rec.save(f"{prefix}pixel_values", seen["pixel_values"])
    rec.save(f"{prefix}predicted_depth", seen["predicted_depth"])
    array = np.array(depth)
    rec.save(f"{prefix}depth_map", array.astype(np.float32))
    # diffusers' make_hint (KandinskyV22ControlnetPipeline / -Img2ImgPipeline docstrings).
    image = array[:, :, None]
    image = np.concatenate([image, image, image], axis=2)
    detected_map = torch.from_numpy(image).float() / 255.0
    hint = detected_map.permute(2, 0, 1).unsqueeze(0)
    rec.save(f"{prefix}hint", hint)
    return hint


def record_photos(out_root: Path, depth_pipe, model) -> List[dict]:
    cases = []
    for index, (name, width, height) in enumerate(PHOTOS):
        source = f"inputs/{name}.png"
        test_picture(width, height, seed=300 + index).save(out_root / source)
        photo = Image.open(out_root / source).convert("RGB")
        case_dir = out_root / "estimate" / name
        if case_dir.exists():
            shutil.rmtree(case_dir)
        case_dir.mkdir(parents=True)
        rec = Recorder(case_dir)
        estimate(depth_pipe, model, photo, rec, "")
        Image.fromarray(np.load(case_dir / "depth_map.npy").astype(np.uint8), "L").save(case_dir / "depth_map.png")
        cases.append(
            {
                "name": name,
                "input": source,
                "width": width,
                "height": height,
                "processed": list(rec.tensors["pixel_values"]["shape"][2:]),
                "tensors": dict(sorted(rec.tensors.items())),
            }
        )
    return cases


@contextmanager
def recording_draws(rec: Recorder, runs: Dict[str, int]):
    """Logs every randn_tensor in order; prior draws are named per prior run."""
    patched = []
    for module_name, site in DEPTH_RNG_SITES.items():
        module = importlib.import_module(module_name)
        original = module.randn_tensor

        def draw(*args, _original=original, _site=site, **kwargs):
            value = _original(*args, **kwargs)
            if _site == "prior.initial_latents":
                runs["prior"] += 1
                runs["prior_step"] = 0
                name = f"prior_{runs['prior']}_noise"
            elif _site == "prior.scheduler_step":
                name = f"prior_{runs['prior']}_step_noise_{runs['prior_step']}"
                runs["prior_step"] += 1
            elif _site == "decoder.scheduler_step":
                name = f"decoder_step_noise_{runs['decoder_step']}"
                runs["decoder_step"] += 1
            else:
                name = "decoder_noise"
            rec.save(name, value)
            rec.rng_draws.append({"index": len(rec.rng_draws), "site": _site, "shape": list(value.shape), "tensor": name})
            return value

        module.randn_tensor = draw
        patched.append((module, original))
    try:
        yield
    finally:
        for module, original in patched:
            module.randn_tensor = original


def run_case(case: DepthCase, tokenizer_dir: Path, out_root: Path, depth_pipe, depth_model) -> dict:
    from diffusers import (
        DDPMScheduler,
        KandinskyV22ControlnetImg2ImgPipeline,
        KandinskyV22PriorEmb2EmbPipeline,
        KandinskyV22PriorPipeline,
        UnCLIPScheduler,
    )
    from transformers import CLIPImageProcessor

    case_dir = out_root / case.name
    if case_dir.exists():
        shutil.rmtree(case_dir)
    case_dir.mkdir(parents=True)
    rec = Recorder(case_dir)
    runs = {"prior": -1, "prior_step": 0, "decoder_step": 0}

    text_encoder = build_component("text_encoder", "tiny")
    image_encoder = build_component("image_encoder", "tiny")
    prior = build_component("prior", "tiny")
    unet = build_component("unet_depth", "tiny")
    movq = build_component("movq", "tiny")
    tokenizer = load_reference_tokenizer(tokenizer_dir)

    def on_image_encoder(args, kwargs, out):
        pixels = kwargs.get("pixel_values", args[0] if args else None)
        # get_zero_embed runs the encoder on zeros too; only the photo's embedding is of interest.
        if bool(pixels.abs().sum() > 0) and "photo_image_embeds" not in rec.tensors:
            rec.save("photo_image_embeds", out["image_embeds"])

    wrap_forward(image_encoder, on_image_encoder)

    def on_unet(args, kwargs, out):
        i = runs["decoder_step"]
        if i == 0:
            rec.save("decoder_image_embeds", kwargs["added_cond_kwargs"]["image_embeds"])
            rec.save("decoder_hint", kwargs["added_cond_kwargs"]["hint"])
        rec.save(f"decoder_model_input_{i}", kwargs["sample"])
        rec.save(f"decoder_model_output_{i}", out[0] if isinstance(out, tuple) else out.sample)

    wrap_forward(unet, on_unet)
    original_decode, original_encode = movq.decode, movq.encode

    def decode(latents, *args, **kwargs):
        rec.save("movq_input_latents", latents)
        out = original_decode(latents, *args, **kwargs)
        rec.save("movq_output", out["sample"])
        return out

    def encode(image, *args, **kwargs):
        rec.save("input_image", image)
        out = original_encode(image, *args, **kwargs)
        rec.save("image_latents", out["latents"])
        return out

    movq.decode, movq.encode = decode, encode

    prior_kwargs = dict(
        prior=prior,
        image_encoder=image_encoder,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        scheduler=UnCLIPScheduler(**{k: v for k, v in PRIOR_SCHEDULER.items() if k != "class_name"}),
        image_processor=CLIPImageProcessor(**IMAGE_PROCESSOR),
    )
    decoder = KandinskyV22ControlnetImg2ImgPipeline(
        unet=unet, scheduler=DDPMScheduler(**{k: v for k, v in DECODER_SCHEDULER.items() if k != "class_name"}), movq=movq
    )
    decoder.set_progress_bar_config(disable=True)

    def decoder_callback(i, t, latents):
        rec.save(f"decoder_latents_{i}", latents)
        runs["decoder_step"] = i + 1

    photo = Image.open(out_root / case.photo).convert("RGB")
    hint = estimate(depth_pipe, depth_model, photo, rec, "depth_")

    generator = torch.Generator().manual_seed(case.seed)
    with recording_draws(rec, runs), torch.no_grad():
        if case.prior == "text":
            prior_pipe = KandinskyV22PriorPipeline(**prior_kwargs)
            prior_pipe.set_progress_bar_config(disable=True)
            image_embeds, negative_image_embeds = prior_pipe(
                prompt=case.prompt,
                negative_prompt=case.negative_prompt,
                num_inference_steps=case.prior_steps,
                generator=generator,
                guidance_scale=case.prior_guidance_scale,
                output_type="pt",
                return_dict=False,
            )
        else:
            prior_pipe = KandinskyV22PriorEmb2EmbPipeline(**prior_kwargs)
            prior_pipe.set_progress_bar_config(disable=True)
            image_embeds = prior_pipe(
                prompt=case.prompt,
                image=photo,
                strength=case.prior_strength,
                num_inference_steps=case.prior_steps,
                generator=generator,
                guidance_scale=case.prior_guidance_scale,
                output_type="pt",
            ).image_embeds
            negative_image_embeds = prior_pipe(
                prompt=case.negative_prompt or "",
                image=photo,
                strength=1.0,
                num_inference_steps=case.prior_steps,
                generator=generator,
                guidance_scale=case.prior_guidance_scale,
                output_type="pt",
            ).image_embeds
        rec.save("image_embeds", image_embeds)
        rec.save("negative_image_embeds", negative_image_embeds)
        images = decoder(
            image_embeds=image_embeds,
            negative_image_embeds=negative_image_embeds,
            image=photo,
            hint=hint,
            strength=case.strength,
            height=case.height,
            width=case.width,
            num_inference_steps=case.decoder_steps,
            guidance_scale=case.guidance_scale,
            generator=generator,
            output_type="np",
            callback=decoder_callback,
            callback_steps=1,
        ).images
    rec.save("output_image", images.astype(np.float32))

    pipelines = {
        "text": "KandinskyV22PriorPipeline + KandinskyV22ControlnetImg2ImgPipeline (one generator)",
        "emb2emb": (
            "KandinskyV22PriorEmb2EmbPipeline (prompt, photo, prior_strength) + KandinskyV22PriorEmb2EmbPipeline "
            "(negative_prompt or '', photo, 1.0) + KandinskyV22ControlnetImg2ImgPipeline (one generator)"
        ),
    }
    params = {
        "prompt": case.prompt,
        "negative_prompt": case.negative_prompt,
        "seed": case.seed,
        "height": case.height,
        "width": case.width,
        "prior_num_inference_steps": case.prior_steps,
        "num_inference_steps": case.decoder_steps,
        "prior_guidance_scale": case.prior_guidance_scale,
        "guidance_scale": case.guidance_scale,
        "num_images_per_prompt": 1,
        "strength": case.strength,
    }
    if case.prior_strength is not None:
        params["prior_strength"] = case.prior_strength
    return {
        "name": case.name,
        "prior": case.prior,
        "diffusers_pipeline": pipelines[case.prior],
        "params": params,
        "inputs": {"photo": case.photo},
        "prior_runs": runs["prior"] + 1,
        "rng_draws": rec.rng_draws,
        "tensors": dict(sorted(rec.tensors.items())),
    }


def record_all(set_dir: Path) -> None:
    import PIL
    import diffusers
    import transformers

    torch.set_num_threads(1)
    out_root = set_dir / "reference-depth"
    if out_root.exists():
        shutil.rmtree(out_root)
    (out_root / "inputs").mkdir(parents=True)
    depth_pipe, depth_model = load_depth_pipeline()
    photos = record_photos(out_root, depth_pipe, depth_model)
    cases = []
    for case in CASES:
        print(f"  recording {case.name}", flush=True)
        cases.append(run_case(case, set_dir / "tokenizer", out_root, depth_pipe, depth_model))
    document = {
        "format": 1,
        "description": "Depth estimation (transformers depth-estimation pipeline) and depth-controlled image-to-image "
        "(diffusers Kandinsky 2.2) on the tiny random-weight set",
        "recorded_with": {
            "diffusers": diffusers.__version__,
            "transformers": transformers.__version__,
            "torch": torch.__version__,
            "pillow": PIL.__version__,
            "numpy": np.__version__,
        },
        "generator": (
            "one CPU torch.Generator seeded with manual_seed(seed): each prior run in order, then the decoder; "
            "every draw is listed in rng_draws"
        ),
        "npy": "float32, little-endian, C order (depth_map: the uint8 depth image as float32)",
        "schedulers": {"prior": PRIOR_SCHEDULER, "decoder": DECODER_SCHEDULER},
        "image_processor": IMAGE_PROCESSOR,
        "depth_image_processor": {**DEPTH_IMAGE_PROCESSOR, "size": TINY["depth_estimator"]["image_size"]},
        "estimate_cases": photos,
        "cases": cases,
    }
    (out_root / "cases.json").write_text(dumps_compact(document) + "\n", encoding="utf-8")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("set_dir", type=Path, help="model set folder holding tokenizer/ (models/fixtures/tiny)")
    record_all(parser.parse_args().set_dir)


if __name__ == "__main__":
    main()
