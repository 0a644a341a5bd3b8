"""Records reference outputs of diffusers' Kandinsky 2.2 image mixing for the tiny fixture set.

Mixing is `KandinskyV22PriorPipeline.interpolate`: every prompt runs the whole prior, every picture
goes through CLIPImageProcessor and the image encoder, the embeddings are summed with their weights,
and one more prior run (on `negative_prompt`) gives the negative embedding. Its image embeddings
then go to `KandinskyV22Pipeline` (the decoder half of the Combined pipeline) with the SAME
generator, so the order of random draws over all prior runs and the decoder is part of the record.

Also recorded: CLIPImageProcessor (shortest side -> 224 with Pillow's bicubic, centre crop) on
pictures of several sizes, and plain Pillow resizes (bicubic, Lanczos), so the engine's TypeScript
resampler can be checked against Pillow byte for byte.

Uses the same seeded tiny modules, tokenizer and recording hooks as record_reference.py (recording.py).
Output: <set>/reference-mix/cases.json, <case>/*.npy, inputs/*.png, resample/*.png.
Run: `. /work/refenv/env.sh && /usr/bin/python3 models/export/record_mix_reference.py models/fixtures/tiny`
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Tuple, Union

import numpy as np
import torch
from PIL import Image

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from recording import IMAGE_PROCESSOR, NEGATIVE, SCHEDULERS, CheckpointModules, TinyModules, case_recorder  # noqa: E402
from recording import command_line  # noqa: E402
from recording import decoder_call, generation_params, latents_callback, library_versions, on_pictures  # noqa: E402
from recording import prepare_output, quiet, record_movq, record_unet, recording_rng, seeded_generator  # noqa: E402
from recording import test_picture, write_cases  # noqa: E402
from tiny_tokenizer import load_reference_tokenizer  # noqa: E402


@dataclass
class MixCase:
    name: str
    # A prompt (str) or an input picture ("image:<path relative to reference-mix/>").
    items: List[Tuple[str, float]]
    negative_prompt: Optional[str]
    seed: int
    height: int
    width: int
    prior_steps: int
    decoder_steps: int
    prior_guidance_scale: float = 4.0
    guidance_scale: float = 4.0
    num_images_per_prompt: int = 1
    # The image encoder's input is 600 KB of float32: record it once, for one case.
    record_pixel_values: bool = False
    # combined: one generator through interpolate and the decoder; separate: each seeded anew.
    seed_mode: str = "combined"


CASES: List[MixCase] = [
    MixCase("mix_two_prompts", [("a red cat, 4k photo", 0.3), ("a blue dragon over the mountains", 0.7)], None, 0, 64, 64, 2, 3),
    MixCase("mix_prompt_image", [("a red cat, 4k photo", 0.6), ("image:inputs/mix_image.png", 0.4)], None, 5, 64, 64, 2, 3, record_pixel_values=True),
    MixCase(
        "mix_prompts_image_neg_x2",
        [("portrait of a horse", 0.5), ("image:inputs/mix_image.png", 0.25), ("a yellow flower", 0.25)],
        NEGATIVE,
        7,
        64,
        128,
        3,
        2,
        num_images_per_prompt=2,
    ),
]

# The cases of a checkpoint set (--checkpoints): a prompt and a picture in one generator, and two
# prompts with a negative one with interpolate and the decoder each seeded.
CHECKPOINT_CASES: List[MixCase] = [
    MixCase("mix_prompt_image", [("a red cat, 4k photo", 0.6), ("image:inputs/mix_image.png", 0.4)], None, 5, 64, 64, 2, 3),
    MixCase(
        "mix_two_prompts_neg_separate",
        [("a red cat, 4k photo", 0.3), ("a blue dragon over the mountains", 0.7)],
        NEGATIVE,
        0,
        64,
        64,
        2,
        3,
        seed_mode="separate",
    ),
]

# (name, width, height): shorter and longer than 224, square, tall, wide, already 224 on one side.
PREPROCESS_SIZES = [
    ("mix_image", 96, 80),
    ("up_square", 64, 64),
    ("up_tall", 97, 531),
    ("down_wide", 400, 300),
    ("down_3x", 700, 672),
    ("short_224", 500, 224),
    ("exact_224", 224, 224),
    ("down_tall", 250, 900),
]

# Plain resizes the CLI uses for input pictures (bicubic) and masks (Lanczos): (name, in, out, mode).
RESAMPLE_CASES = [
    ("bicubic_up", (61, 47), (128, 64), "RGB", Image.BICUBIC),
    ("bicubic_down", (300, 170), (64, 128), "RGB", Image.BICUBIC),
    ("bicubic_down_grey", (200, 200), (64, 64), "L", Image.BICUBIC),
    ("lanczos_down_grey", (150, 90), (64, 64), "L", Image.LANCZOS),
    ("lanczos_up_rgb", (40, 30), (128, 64), "RGB", Image.LANCZOS),
]


def run_case(case: MixCase, tokenizer_dir: Path, out_root: Path, checkpoints: Optional[Path] = None) -> dict:
    from diffusers import KandinskyV22Pipeline, KandinskyV22PriorPipeline

    rec = case_recorder(out_root / case.name)
    modules = CheckpointModules.load(checkpoints) if checkpoints else TinyModules.build()
    tokenizer = load_reference_tokenizer(tokenizer_dir)

    def on_picture(pixels, out):
        # Only the mixed picture (get_zero_embed's zeros are left out).
        if case.record_pixel_values:
            rec.save("image_encoder_pixel_values", pixels)
        rec.save("image_encoder_image_embeds", out["image_embeds"])

    on_pictures(modules.image_encoder, on_picture)

    class RecordingPriorPipeline(KandinskyV22PriorPipeline):
        """Records what each of interpolate's prior runs returned."""

        def __call__(self, *args, **kwargs):
            out = super().__call__(*args, **kwargs)
            rec.save(f"mix_prior_{rec.prior_run}_image_embeds", out.image_embeds)
            rec.save(f"mix_prior_{rec.prior_run}_negative_image_embeds", out.negative_image_embeds)
            return out

    prior_pipe = quiet(RecordingPriorPipeline(**modules.prior_components(tokenizer)))
    decoder = quiet(KandinskyV22Pipeline(**modules.decoder_components()))
    record_unet(rec, modules.unet, steps=False)
    record_movq(rec, modules.movq)

    conditions: List[Union[str, Image.Image]] = []
    for item, _ in case.items:
        if item.startswith("image:"):
            conditions.append(Image.open(out_root / item[len("image:") :]).convert("RGB"))
        else:
            conditions.append(item)

    generator = seeded_generator(case.seed)
    with recording_rng(rec, prior_prefix="mix_prior_{run}_prior_"), torch.no_grad():
        # The engine's reading of one negative prompt: it is the prior's unconditional text in every
        # run (negative_prior_prompt) and the text whose embedding becomes the negative one
        # (negative_prompt), as in the Combined pipelines. Without one, diffusers' defaults.
        negative = {"negative_prior_prompt": case.negative_prompt, "negative_prompt": case.negative_prompt or ""}
        mixed = prior_pipe.interpolate(
            conditions,
            [weight for _, weight in case.items],
            num_images_per_prompt=case.num_images_per_prompt,
            num_inference_steps=case.prior_steps,
            generator=generator,
            guidance_scale=case.prior_guidance_scale,
            **negative,
        )
        if case.seed_mode == "separate":
            generator = seeded_generator(case.seed)  # the decoder pipeline's own generator
        rec.save("image_embeds", mixed.image_embeds)
        rec.save("negative_image_embeds", mixed.negative_image_embeds)
        images = decoder(
            image_embeds=mixed.image_embeds,
            negative_image_embeds=mixed.negative_image_embeds,
            callback_on_step_end=latents_callback(rec, "decoder"),
            **decoder_call(case, generator),
        ).images
    rec.save("output_image", images.astype(np.float32))

    return {
        "name": case.name,
        "diffusers_pipeline": "KandinskyV22PriorPipeline.interpolate + KandinskyV22Pipeline "
        + ("(one generator)" if case.seed_mode == "combined" else "(each seeded)"),
        "params": {
            "items": [
                {"image": item[len("image:") :], "weight": weight} if item.startswith("image:") else {"prompt": item, "weight": weight}
                for item, weight in case.items
            ],
            "negative_prior_prompt": case.negative_prompt,
            "negative_prompt": case.negative_prompt or "",
            **generation_params(case, case.num_images_per_prompt, prompts=False),
            "seed_mode": case.seed_mode,
        },
        "schedulers": modules.schedulers() if checkpoints else SCHEDULERS,
        "prior_runs": rec.prior_run + 1,
        "rng_draws": rec.rng_draws,
        "tensors": rec.tensor_index(),
    }


def record_preprocessing(out_root: Path) -> List[dict]:
    """CLIPImageProcessor on pictures of several sizes; its uint8 crop is saved as a PNG, after
    checking that rescaling and normalising that crop gives the processor's pixel_values exactly."""
    from transformers import CLIPImageProcessor

    processor = CLIPImageProcessor(**IMAGE_PROCESSOR)
    mean = np.array(IMAGE_PROCESSOR["image_mean"], dtype=np.float32)
    std = np.array(IMAGE_PROCESSOR["image_std"], dtype=np.float32)
    (out_root / "inputs").mkdir(parents=True, exist_ok=True)
    (out_root / "preprocess").mkdir(parents=True, exist_ok=True)
    cases = []
    for index, (name, width, height) in enumerate(PREPROCESS_SIZES):
        picture = test_picture(width, height, seed=100 + index)
        source = f"inputs/{name}.png"
        picture.save(out_root / source)
        picture = Image.open(out_root / source).convert("RGB")
        pixel_values = processor(picture, return_tensors="np").pixel_values[0]
        # The same steps by hand, to store the 8-bit crop the TypeScript port must reproduce.
        short, long = min(width, height), max(width, height)
        new_long = int(224 * long / short)
        size = (new_long, 224) if width >= height else (224, new_long)
        if width == height:
            size = (224, 224)
        resized = np.array(picture.resize(size, resample=Image.BICUBIC))
        top, left = (resized.shape[0] - 224) // 2, (resized.shape[1] - 224) // 2
        crop = resized[top : top + 224, left : left + 224]
        by_hand = ((crop.astype(np.float64) * (1 / 255)).astype(np.float32) - mean) / std
        if not np.array_equal(by_hand.transpose(2, 0, 1), pixel_values):
            raise AssertionError(f"{name}: hand-made preprocessing differs from CLIPImageProcessor")
        expected = f"preprocess/{name}_crop.png"
        Image.fromarray(crop, "RGB").save(out_root / expected)
        cases.append({"name": name, "input": source, "width": width, "height": height, "resized": list(size), "crop": expected})
    return cases


def record_resampling(out_root: Path) -> List[dict]:
    (out_root / "resample").mkdir(parents=True, exist_ok=True)
    cases = []
    for index, (name, in_size, out_size, mode, resample) in enumerate(RESAMPLE_CASES):
        picture = test_picture(*in_size, seed=200 + index, mode=mode)
        source = f"resample/{name}_in.png"
        picture.save(out_root / source)
        expected = f"resample/{name}_out.png"
        Image.open(out_root / source).resize(out_size, resample=resample).save(out_root / expected)
        cases.append(
            {
                "name": name,
                "input": source,
                "output": expected,
                "mode": mode,
                "filter": {Image.BICUBIC: "bicubic", Image.LANCZOS: "lanczos"}[resample],
                "width": out_size[0],
                "height": out_size[1],
            }
        )
    return cases


def record_all(set_dir: Path, checkpoints: Optional[Path] = None) -> None:
    """The set's reference-mix/ folder; with `checkpoints` (the diffusers folders the set was exported
    from) CHECKPOINT_CASES run by the pipelines loaded from those folders, without the preprocessing
    and resampling cases (they do not depend on the set)."""
    out_root = set_dir / "reference-mix"
    prepare_output(out_root)
    preprocess = [] if checkpoints else record_preprocessing(out_root)
    resample = [] if checkpoints else record_resampling(out_root)
    if checkpoints:
        (out_root / "inputs").mkdir(exist_ok=True)
        # The picture record_preprocessing draws for "mix_image" (its first size, seed 100).
        test_picture(96, 80, seed=100).save(out_root / "inputs" / "mix_image.png")
    tokenizer_dir = checkpoints / "prior" / "tokenizer" if checkpoints else set_dir / "tokenizer"
    cases = []
    for case in CHECKPOINT_CASES if checkpoints else CASES:
        print(f"  recording {case.name}", flush=True)
        cases.append(run_case(case, tokenizer_dir, out_root, checkpoints))
    document = {
        "format": 1,
        "description": "Reference intermediates of diffusers' Kandinsky 2.2 image mixing (interpolate) on the tiny random-weight set",
        "recorded_with": library_versions("pillow"),
        "generator": (
            "one CPU torch.Generator seeded with manual_seed(seed): one prior run per prompt item in order, then the "
            "prior run on negative_prompt, then the decoder; every draw is listed in rng_draws"
        ),
        "npy": "float32, little-endian, C order",
        "schedulers": CheckpointModules.load(checkpoints).schedulers() if checkpoints else SCHEDULERS,
        "image_processor": IMAGE_PROCESSOR,
        "preprocess_cases": preprocess,
        "resample_cases": resample,
        "cases": cases,
    }
    write_cases(out_root, document)


if __name__ == "__main__":
    command_line(__doc__, record_all)
