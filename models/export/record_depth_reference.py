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

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional

import numpy as np
import torch
from PIL import Image

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from architectures import DEPTH_IMAGE_PROCESSOR, TINY, build_component, depth_image_processor  # noqa: E402
from recording import IMAGE_PROCESSOR, NEGATIVE, RNG_SITES, SCHEDULERS, Recorder, TinyModules, case_recorder  # noqa: E402
from recording import command_line, decoder_call, generation_params, latents_callback, legacy_callback  # noqa: E402
from recording import library_versions, on_pictures, prepare_output, prior_call, quiet, record_movq  # noqa: E402
from recording import record_unet, recording_rng, seeded_generator, test_picture, wrap_forward, write_cases  # noqa: E402
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
        rec = case_recorder(out_root / "estimate" / name)
        estimate(depth_pipe, model, photo, rec, "")
        Image.fromarray(rec.load("depth_map").astype(np.uint8), "L").save(rec.out_dir / "depth_map.png")
        cases.append(
            {
                "name": name,
                "input": source,
                "width": width,
                "height": height,
                "processed": list(rec.tensors["pixel_values"]["shape"][2:]),
                "tensors": rec.tensor_index(),
            }
        )
    return cases


def run_case(case: DepthCase, tokenizer_dir: Path, out_root: Path, depth_pipe, depth_model) -> dict:
    from diffusers import KandinskyV22ControlnetImg2ImgPipeline, KandinskyV22PriorEmb2EmbPipeline, KandinskyV22PriorPipeline

    rec = case_recorder(out_root / case.name)
    modules = TinyModules.build("unet_depth")
    tokenizer = load_reference_tokenizer(tokenizer_dir)

    def on_picture(pixels, out):
        # Only the photo's embedding (get_zero_embed's zeros are left out), the first time.
        if "photo_image_embeds" not in rec.tensors:
            rec.save("photo_image_embeds", out["image_embeds"])

    on_pictures(modules.image_encoder, on_picture)
    record_unet(rec, modules.unet)
    record_movq(rec, modules.movq)

    prior_kwargs = modules.prior_components(tokenizer)
    decoder = quiet(KandinskyV22ControlnetImg2ImgPipeline(**modules.decoder_components()))

    photo = Image.open(out_root / case.photo).convert("RGB")
    hint = estimate(depth_pipe, depth_model, photo, rec, "depth_")

    generator = seeded_generator(case.seed)
    with recording_rng(rec, prior_prefix="prior_{run}_", sites=DEPTH_RNG_SITES), torch.no_grad():
        if case.prior == "text":
            prior_pipe = quiet(KandinskyV22PriorPipeline(**prior_kwargs))
            image_embeds, negative_image_embeds = prior_pipe(
                prompt=case.prompt, negative_prompt=case.negative_prompt, return_dict=False, **prior_call(case, generator)
            )
        else:
            prior_pipe = quiet(KandinskyV22PriorEmb2EmbPipeline(**prior_kwargs))
            image_embeds = prior_pipe(
                prompt=case.prompt, image=photo, strength=case.prior_strength, **prior_call(case, generator)
            ).image_embeds
            negative_image_embeds = prior_pipe(
                prompt=case.negative_prompt or "", image=photo, strength=1.0, **prior_call(case, generator)
            ).image_embeds
        rec.save("image_embeds", image_embeds)
        rec.save("negative_image_embeds", negative_image_embeds)
        images = decoder(
            image_embeds=image_embeds,
            negative_image_embeds=negative_image_embeds,
            image=photo,
            hint=hint,
            strength=case.strength,
            callback=legacy_callback(latents_callback(rec, "decoder")),
            callback_steps=1,
            **decoder_call(case, generator),
        ).images
    rec.save("output_image", images.astype(np.float32))

    pipelines = {
        "text": "KandinskyV22PriorPipeline + KandinskyV22ControlnetImg2ImgPipeline (one generator)",
        "emb2emb": (
            "KandinskyV22PriorEmb2EmbPipeline (prompt, photo, prior_strength) + KandinskyV22PriorEmb2EmbPipeline "
            "(negative_prompt or '', photo, 1.0) + KandinskyV22ControlnetImg2ImgPipeline (one generator)"
        ),
    }
    params = {**generation_params(case, 1), "strength": case.strength}
    if case.prior_strength is not None:
        params["prior_strength"] = case.prior_strength
    return {
        "name": case.name,
        "prior": case.prior,
        "diffusers_pipeline": pipelines[case.prior],
        "params": params,
        "inputs": {"photo": case.photo},
        "prior_runs": rec.prior_run + 1,
        "rng_draws": rec.rng_draws,
        "tensors": rec.tensor_index(),
    }


def record_all(set_dir: Path) -> None:
    out_root = set_dir / "reference-depth"
    prepare_output(out_root, clean=True)
    (out_root / "inputs").mkdir()
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
        "recorded_with": library_versions("pillow", "numpy"),
        "generator": (
            "one CPU torch.Generator seeded with manual_seed(seed): each prior run in order, then the decoder; "
            "every draw is listed in rng_draws"
        ),
        "npy": "float32, little-endian, C order (depth_map: the uint8 depth image as float32)",
        "schedulers": SCHEDULERS,
        "image_processor": IMAGE_PROCESSOR,
        "depth_image_processor": {**DEPTH_IMAGE_PROCESSOR, "size": TINY["depth_estimator"]["image_size"]},
        "estimate_cases": photos,
        "cases": cases,
    }
    write_cases(out_root, document)


if __name__ == "__main__":
    command_line(__doc__, record_all)
