"""Records reference outputs of the diffusers Kandinsky 2.2 pipelines for the tiny fixture set.

Every case runs the real diffusers pipelines over the same seeded torch modules that were exported
to ONNX. Seed mode "combined" (the default): ONE `torch.Generator().manual_seed(seed)` used first by
the prior and then, continuing its state, by the decoder (what KandinskyV22CombinedPipeline,
-Img2ImgCombined and -InpaintCombined do; the depth ControlNet case chains KandinskyV22PriorPipeline
and KandinskyV22ControlnetPipeline by hand the same way). Seed mode "separate": the prior pipeline
and the decoder pipeline are called one after the other, each with its own
`torch.Generator().manual_seed(seed)`, as many diffusers scripts do. Intermediates are captured by wrapping module forwards, the pipelines' step
callbacks and every `randn_tensor` draw, so the order of random draws is part of the record.

Output: <out>/cases.json and <out>/<case>/*.npy (float32 / int64 / bool, little-endian, C order),
input images in <out>/inputs/. Run through kandinsky_export.py --tiny-random (or directly, with the
same arguments) on a machine with diffusers; see models/README.md.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import torch
from PIL import Image

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from recording import IMAGE_PROCESSOR, NEGATIVE, SCHEDULERS, CheckpointModules, Recorder, TinyModules  # noqa: E402
from recording import case_recorder, command_line  # noqa: E402
from recording import decoder_call, generation_params, latents_callback, legacy_callback, library_versions  # noqa: E402
from recording import prepare_output, prior_call, quiet, record_movq, record_unet, recording_rng  # noqa: E402
from recording import seeded_generator, wrap_forward, write_cases  # noqa: E402
from tiny_tokenizer import load_reference_tokenizer  # noqa: E402


@dataclass
class Case:
    name: str
    pipeline: str  # txt2img | img2img | inpaint | depth
    prompt: str
    negative_prompt: Optional[str]
    seed: int
    height: int
    width: int
    prior_steps: int
    decoder_steps: int
    prior_guidance_scale: float = 4.0
    guidance_scale: float = 4.0
    num_images_per_prompt: int = 1
    strength: Optional[float] = None
    inputs: Dict[str, str] = field(default_factory=dict)
    seed_mode: str = "combined"  # combined | separate
    # The decoder scheduler: None for the set's own; "ddpm", "ddim" or "dpmpp-2m" built from its
    # config with from_config (checkpoint cases only; the tiny set's own is DDPM).
    scheduler: Optional[str] = None


CASES: List[Case] = [
    Case("txt2img_64", "txt2img", "a red cat, 4k photo", None, 0, 64, 64, 2, 3),
    Case("txt2img_64_neg", "txt2img", "a red cat, 4k photo", NEGATIVE, 0, 64, 64, 2, 3),
    Case("txt2img_h64_w128", "txt2img", "portrait of a horse in a field at sunset", None, 42, 64, 128, 3, 2),
    Case("txt2img_h64_w128_neg", "txt2img", "portrait of a horse in a field at sunset", NEGATIVE, 42, 64, 128, 3, 2),
    # A width that is not a multiple of 64: diffusers rounds it up (downscale_height_and_width), 96 → 128.
    Case("txt2img_h64_w96", "txt2img", "portrait of a horse in a field at sunset", None, 42, 64, 96, 3, 2),
    Case("txt2img_64_x2_neg", "txt2img", "a blue dragon over the mountains", NEGATIVE, 7, 64, 64, 2, 2, num_images_per_prompt=2),
    Case(
        "txt2img_64_noguidance",
        "txt2img",
        "a red cat, 4k photo",
        None,
        3,
        64,
        64,
        2,
        2,
        prior_guidance_scale=1.0,
        guidance_scale=1.0,
    ),
    Case("img2img_64_s05", "img2img", "oil painting of a house", None, 11, 64, 64, 2, 4, strength=0.5, inputs={"image": "inputs/img2img_input.png"}),
    Case(
        "img2img_64_s05_neg",
        "img2img",
        "oil painting of a house",
        NEGATIVE,
        11,
        64,
        64,
        2,
        4,
        strength=0.5,
        inputs={"image": "inputs/img2img_input.png"},
    ),
    Case(
        "inpaint_64",
        "inpaint",
        "a yellow flower",
        None,
        5,
        64,
        64,
        2,
        3,
        inputs={"image": "inputs/img2img_input.png", "mask": "inputs/inpaint_mask.png"},
    ),
    Case(
        "inpaint_64_neg",
        "inpaint",
        "a yellow flower",
        NEGATIVE,
        5,
        64,
        64,
        2,
        3,
        inputs={"image": "inputs/img2img_input.png", "mask": "inputs/inpaint_mask.png"},
    ),
    Case("depth_64", "depth", "a robot in a room", None, 9, 64, 64, 2, 3, inputs={"hint": "inputs/depth_hint.png"}),
    Case("depth_64_neg", "depth", "a robot in a room", NEGATIVE, 9, 64, 64, 2, 3, inputs={"hint": "inputs/depth_hint.png"}),
    # Seed mode "separate": KandinskyV22PriorPipeline, then the mode's decoder pipeline, each seeded.
    Case("txt2img_64_neg_separate", "txt2img", "a red cat, 4k photo", NEGATIVE, 0, 64, 64, 2, 3, seed_mode="separate"),
    Case(
        "txt2img_64_x2_neg_separate",
        "txt2img",
        "a blue dragon over the mountains",
        NEGATIVE,
        7,
        64,
        64,
        2,
        2,
        num_images_per_prompt=2,
        seed_mode="separate",
    ),
    Case(
        "img2img_64_s05_separate",
        "img2img",
        "oil painting of a house",
        None,
        11,
        64,
        64,
        2,
        4,
        strength=0.5,
        inputs={"image": "inputs/img2img_input.png"},
        seed_mode="separate",
    ),
    Case(
        "inpaint_64_separate",
        "inpaint",
        "a yellow flower",
        None,
        5,
        64,
        64,
        2,
        3,
        inputs={"image": "inputs/img2img_input.png", "mask": "inputs/inpaint_mask.png"},
        seed_mode="separate",
    ),
    Case(
        "depth_64_separate",
        "depth",
        "a robot in a room",
        None,
        9,
        64,
        64,
        2,
        3,
        inputs={"hint": "inputs/depth_hint.png"},
        seed_mode="separate",
    ),
]

IMG = "inputs/img2img_input.png"
MASK = "inputs/inpaint_mask.png"
HINT = "inputs/depth_hint.png"

# The cases of a checkpoint set (--checkpoints, models/fixtures/tiny-diffusers): every mode in both
# seed modes with the checkpoints' own schedulers, a size that is not a multiple of 64 (96 -> 128),
# and DDPM picked over the checkpoints' DDIM through from_config.
CHECKPOINT_CASES: List[Case] = [
    Case("txt2img_h64_w96_neg", "txt2img", "portrait of a horse in a field at sunset", NEGATIVE, 42, 64, 96, 3, 3),
    Case("txt2img_64_ddpm", "txt2img", "a red cat, 4k photo", None, 0, 64, 64, 2, 3, scheduler="ddpm"),
    Case("txt2img_64_neg_separate", "txt2img", "a red cat, 4k photo", NEGATIVE, 0, 64, 64, 2, 3, seed_mode="separate"),
    Case("img2img_64_s05", "img2img", "oil painting of a house", NEGATIVE, 11, 64, 64, 2, 4, strength=0.5, inputs={"image": IMG}),
    Case(
        "img2img_64_s05_separate",
        "img2img",
        "oil painting of a house",
        None,
        11,
        64,
        64,
        2,
        4,
        strength=0.5,
        inputs={"image": IMG},
        seed_mode="separate",
    ),
    Case("inpaint_64", "inpaint", "a yellow flower", NEGATIVE, 5, 64, 64, 2, 3, inputs={"image": IMG, "mask": MASK}),
    Case(
        "inpaint_64_separate",
        "inpaint",
        "a yellow flower",
        None,
        5,
        64,
        64,
        2,
        3,
        inputs={"image": IMG, "mask": MASK},
        seed_mode="separate",
    ),
    Case("depth_64", "depth", "a robot in a room", NEGATIVE, 9, 64, 64, 2, 3, inputs={"hint": HINT}),
    Case("depth_64_separate", "depth", "a robot in a room", None, 9, 64, 64, 2, 3, inputs={"hint": HINT}, seed_mode="separate"),
    # Depth control of a picture: KandinskyV22ControlnetImg2ImgPipeline with a given depth map.
    Case("depth_img2img_64_s05", "depth", "a robot in a room", None, 13, 64, 64, 2, 4, strength=0.5, inputs={"image": IMG, "hint": HINT}),
    Case(
        "depth_img2img_64_s05_separate",
        "depth",
        "a robot in a room",
        NEGATIVE,
        13,
        64,
        64,
        2,
        4,
        strength=0.5,
        inputs={"image": IMG, "hint": HINT},
        seed_mode="separate",
    ),
]

# Extra prompts whose token ids are recorded (tokenizer parity for JS tokenizers).
TOKENIZER_PROMPTS = [
    "",
    "a red cat, 4k photo",
    NEGATIVE,
    "Portrait of a HORSE   in a field at sunset!",
    "don't stop: 3 cats & 12 dogs (#1) -- it's 100% \"quoted\" ~tilde~ back\\slash",
    "café naïve — emoji 🐱 漢字",
    " ".join(["a very long prompt"] * 30),
]


# ---------------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------------


def write_input_images(inputs_dir: Path) -> None:
    """Small deterministic pictures: an RGB scene, a repaint mask (white = repaint) whose edges do
    not fall on the 8-pixel latent grid, and a depth map (bright = near)."""
    inputs_dir.mkdir(parents=True, exist_ok=True)
    y, x = np.mgrid[0:64, 0:64].astype(np.float32)
    rgb = np.stack([x * 4, y * 4, 255 - (x + y) * 2], axis=-1)
    disc = (x - 40) ** 2 + (y - 24) ** 2 < 12**2
    rgb[disc] = [250, 200, 40]
    rgb[50:58, 6:30] = [30, 30, 30]
    Image.fromarray(np.clip(rgb, 0, 255).astype(np.uint8), "RGB").save(inputs_dir / "img2img_input.png")

    mask = np.zeros((64, 64), np.uint8)
    mask[13:37, 21:51] = 255
    Image.fromarray(mask, "L").save(inputs_dir / "inpaint_mask.png")

    depth = np.clip(255 - y * 3 + 40 * (((x - 32) ** 2 + (y - 36) ** 2) < 14**2), 0, 255)
    Image.fromarray(depth.astype(np.uint8), "L").save(inputs_dir / "depth_hint.png")


def hint_from_depth_png(path: Path) -> torch.Tensor:
    """Depth map (8-bit gray) -> hint [1, 3, H, W] in [0, 1], as diffusers' ControlNet example does."""
    depth = np.array(Image.open(path).convert("L")).astype(np.float32) / 255.0
    return torch.from_numpy(np.stack([depth] * 3, axis=0))[None]


# ---------------------------------------------------------------------------------------------
# Recording
# ---------------------------------------------------------------------------------------------


def instrument(rec: Recorder, modules: TinyModules) -> None:
    """Text encoder and prior calls, then the decoder UNet and MoVQ (shared hooks)."""
    text_calls = {"n": 0}

    def on_text(args, kwargs, out):
        role = ["text_cond", "text_uncond"][text_calls["n"]]
        text_calls["n"] += 1
        ids = kwargs.get("input_ids", args[0] if args else None)
        rec.save(f"{role}_input_ids", ids.to(torch.int64))
        rec.save(f"{role}_text_embeds", out.text_embeds)
        rec.save(f"{role}_last_hidden_state", out.last_hidden_state)

    def on_prior(args, kwargs, out):
        i = rec.prior_step
        timestep = kwargs["timestep"]
        rec.prior_timesteps.append(int(timestep))
        if i == 0:
            rec.save("prior_proj_embedding", kwargs["proj_embedding"])
            rec.save("prior_encoder_hidden_states", kwargs["encoder_hidden_states"])
            rec.save("prior_attention_mask", kwargs["attention_mask"])
        rec.save(f"prior_model_input_{i}", args[0] if args else kwargs["hidden_states"])
        rec.save(f"prior_model_output_{i}", out.predicted_image_embedding if hasattr(out, "predicted_image_embedding") else out[0])

    wrap_forward(modules.text_encoder, on_text)
    wrap_forward(modules.prior, on_prior)
    record_unet(rec, modules.unet)
    record_movq(rec, modules.movq)


def make_tokenizer_class(base, calls: List[dict]):
    class RecordingTokenizer(base):
        def __call__(self, text, *args, **kwargs):
            out = super().__call__(text, *args, **kwargs)
            if kwargs.get("padding") == "max_length":
                calls.append({"text": text, "input_ids": out["input_ids"], "attention_mask": out["attention_mask"]})
            return out

    return RecordingTokenizer


UNET_COMPONENTS = {"txt2img": "unet", "img2img": "unet", "inpaint": "unet_inpaint", "depth": "unet_depth"}

DIFFUSERS_PIPELINES = {
    "txt2img": "KandinskyV22CombinedPipeline",
    "img2img": "KandinskyV22Img2ImgCombinedPipeline",
    "inpaint": "KandinskyV22InpaintCombinedPipeline",
    "depth": "KandinskyV22PriorPipeline + KandinskyV22ControlnetPipeline (one generator)",
}

SEPARATE_PIPELINES = {
    "txt2img": "KandinskyV22PriorPipeline + KandinskyV22Pipeline (each seeded)",
    "img2img": "KandinskyV22PriorPipeline + KandinskyV22Img2ImgPipeline (each seeded)",
    "inpaint": "KandinskyV22PriorPipeline + KandinskyV22InpaintPipeline (each seeded)",
    "depth": "KandinskyV22PriorPipeline + KandinskyV22ControlnetPipeline (each seeded)",
    "depth-img2img": "KandinskyV22PriorPipeline + KandinskyV22ControlnetImg2ImgPipeline (each seeded)",
}


def pipeline_description(case: Case) -> str:
    if case.pipeline == "depth" and "image" in case.inputs:
        if case.seed_mode == "separate":
            return SEPARATE_PIPELINES["depth-img2img"]
        return "KandinskyV22PriorPipeline + KandinskyV22ControlnetImg2ImgPipeline (one generator)"
    return DIFFUSERS_PIPELINES[case.pipeline] if case.seed_mode == "combined" else SEPARATE_PIPELINES[case.pipeline]


def run_case(case: Case, tokenizer_dir: Path, out_root: Path, checkpoints: Optional[Path] = None) -> dict:
    from diffusers import (
        KandinskyV22CombinedPipeline,
        KandinskyV22ControlnetImg2ImgPipeline,
        KandinskyV22ControlnetPipeline,
        KandinskyV22Img2ImgCombinedPipeline,
        KandinskyV22Img2ImgPipeline,
        KandinskyV22InpaintCombinedPipeline,
        KandinskyV22InpaintPipeline,
        KandinskyV22Pipeline,
        KandinskyV22PriorPipeline,
    )

    rec = case_recorder(out_root / case.name)
    unet_name = UNET_COMPONENTS[case.pipeline]
    modules = CheckpointModules.load(checkpoints, unet_name, case.scheduler) if checkpoints else TinyModules.build(unet_name)
    if case.scheduler is not None and checkpoints is None:
        raise ValueError(f"{case.name}: picking a scheduler is for checkpoint cases")

    base_tokenizer = load_reference_tokenizer(tokenizer_dir)
    tokenizer_calls: List[dict] = []
    tokenizer = make_tokenizer_class(type(base_tokenizer), tokenizer_calls)(
        vocab_file=str(tokenizer_dir / "vocab.json"), merges_file=str(tokenizer_dir / "merges.txt"), model_max_length=77
    )
    instrument(rec, modules)

    prior_components = modules.prior_components(tokenizer)
    decoder_components = modules.decoder_components()
    prior_callback = latents_callback(rec, "prior")
    decoder_callback = latents_callback(rec, "decoder")

    generator = seeded_generator(case.seed)
    common = dict(
        prompt=case.prompt,
        negative_prompt=case.negative_prompt,
        num_inference_steps=case.decoder_steps,
        guidance_scale=case.guidance_scale,
        prior_guidance_scale=case.prior_guidance_scale,
        prior_num_inference_steps=case.prior_steps,
        num_images_per_prompt=case.num_images_per_prompt,
        height=case.height,
        width=case.width,
        generator=generator,
        output_type="np",
        prior_callback_on_step_end=prior_callback,
        callback_on_step_end=decoder_callback,
    )
    with recording_rng(rec), torch.no_grad():
        if case.seed_mode == "separate":
            # The prior pipeline, then the decoder pipeline, each with a generator seeded anew.
            prior_pipe = quiet(KandinskyV22PriorPipeline(**prior_components))
            image_embeds, negative_image_embeds = prior_pipe(
                prompt=case.prompt,
                negative_prompt=case.negative_prompt,
                num_images_per_prompt=case.num_images_per_prompt,
                return_dict=False,
                callback_on_step_end=prior_callback,
                **prior_call(case, seeded_generator(case.seed)),
            )
            decoder_class = {
                "txt2img": KandinskyV22Pipeline,
                "img2img": KandinskyV22Img2ImgPipeline,
                "inpaint": KandinskyV22InpaintPipeline,
                "depth": KandinskyV22ControlnetImg2ImgPipeline if "image" in case.inputs else KandinskyV22ControlnetPipeline,
            }[case.pipeline]
            decoder_inputs: Dict[str, object] = {}
            if "image" in case.inputs:
                picture = Image.open(out_root / case.inputs["image"]).convert("RGB")
                decoder_inputs["image"] = [picture] * image_embeds.shape[0]
            if "mask" in case.inputs:
                decoder_inputs["mask_image"] = Image.open(out_root / case.inputs["mask"]).convert("L")
            if case.strength is not None:
                decoder_inputs["strength"] = case.strength
            if "hint" in case.inputs:
                hint = hint_from_depth_png(out_root / case.inputs["hint"])
                rec.save("input_hint", hint)
                decoder_inputs["hint"] = hint.repeat(image_embeds.shape[0], 1, 1, 1)
            callback = (
                dict(callback=legacy_callback(decoder_callback), callback_steps=1)
                if case.pipeline == "depth"
                else dict(callback_on_step_end=decoder_callback)
            )
            images = quiet(decoder_class(**decoder_components))(
                image_embeds=image_embeds,
                negative_image_embeds=negative_image_embeds,
                **decoder_inputs,
                **callback,
                **decoder_call(case, seeded_generator(case.seed)),
            ).images
        elif case.pipeline == "depth":
            prior_pipe = quiet(KandinskyV22PriorPipeline(**prior_components))
            image_embeds, negative_image_embeds = prior_pipe(
                prompt=case.prompt,
                negative_prompt=case.negative_prompt,
                num_images_per_prompt=case.num_images_per_prompt,
                return_dict=False,
                callback_on_step_end=prior_callback,
                **prior_call(case, generator),
            )
            hint = hint_from_depth_png(out_root / case.inputs["hint"])
            rec.save("input_hint", hint)
            if "image" in case.inputs:
                # Depth control of a picture: the img2img ControlNet pipeline (its own strength).
                images = quiet(KandinskyV22ControlnetImg2ImgPipeline(**decoder_components))(
                    image_embeds=image_embeds,
                    negative_image_embeds=negative_image_embeds,
                    image=Image.open(out_root / case.inputs["image"]).convert("RGB"),
                    hint=hint,
                    strength=case.strength,
                    num_images_per_prompt=case.num_images_per_prompt,
                    callback=legacy_callback(decoder_callback),
                    callback_steps=1,
                    **decoder_call(case, generator),
                ).images
            else:
                images = quiet(KandinskyV22ControlnetPipeline(**decoder_components))(
                    image_embeds=image_embeds,
                    negative_image_embeds=negative_image_embeds,
                    hint=hint,
                    num_images_per_prompt=case.num_images_per_prompt,
                    callback=legacy_callback(decoder_callback),
                    callback_steps=1,
                    **decoder_call(case, generator),
                ).images
        else:
            combined = {
                "txt2img": KandinskyV22CombinedPipeline,
                "img2img": KandinskyV22Img2ImgCombinedPipeline,
                "inpaint": KandinskyV22InpaintCombinedPipeline,
            }[case.pipeline]
            # The Combined pipelines take the prior's components with a "prior_" prefix.
            pipe = quiet(combined(**decoder_components, **{f"prior_{k}": v for k, v in prior_components.items()}))
            inputs: Dict[str, object] = {}
            if "image" in case.inputs:
                inputs["image"] = Image.open(out_root / case.inputs["image"]).convert("RGB")
            if "mask" in case.inputs:
                inputs["mask_image"] = Image.open(out_root / case.inputs["mask"]).convert("L")
            if case.strength is not None:
                inputs["strength"] = case.strength
            images = pipe(**inputs, **common).images

    rec.save("output_image", images.astype(np.float32))
    if case.pipeline == "inpaint":
        # Convenience copies of what the UNet's extra inputs were (first image of the batch).
        model_input = rec.load("decoder_model_input_0")
        channels = (model_input.shape[1] - 1) // 2  # latents, masked image latents, mask
        rec.save("masked_image_latents", model_input[:1, channels : 2 * channels])
        rec.save("mask_latent", model_input[:1, 2 * channels : 2 * channels + 1])

    # The prior's output embeddings are what the decoder's UNet received (negative first under
    # classifier-free guidance); record them as the prior pipeline returned them.
    embeds = rec.load("decoder_image_embeds")
    per_batch = embeds.shape[0] // 2 if case.guidance_scale > 1 else embeds.shape[0]
    if case.guidance_scale > 1:
        rec.save("negative_image_embeds", embeds[:per_batch])
        rec.save("image_embeds", embeds[per_batch:])
    else:
        rec.save("image_embeds", embeds)

    for role, call in zip(["text_cond", "text_uncond"], tokenizer_calls):
        rec.save(f"{role}_attention_mask", np.asarray(call["attention_mask"], dtype=np.int64))

    params = generation_params(case, case.num_images_per_prompt)
    if case.strength is not None:
        params["strength"] = case.strength
    params["seed_mode"] = case.seed_mode
    if case.scheduler is not None:
        params["scheduler"] = case.scheduler
    return {
        "name": case.name,
        "pipeline": case.pipeline,
        "diffusers_pipeline": pipeline_description(case),
        "unet_component": unet_name,
        "params": params,
        "schedulers": modules.schedulers() if checkpoints else SCHEDULERS,
        "inputs": case.inputs,
        "prior_timesteps": rec.prior_timesteps,
        "decoder_timesteps": rec.decoder_timesteps,
        "rng_draws": rec.rng_draws,
        "tensors": rec.tensor_index(),
    }


def record_tokenizer_cases(tokenizer_dir: Path) -> List[dict]:
    tokenizer = load_reference_tokenizer(tokenizer_dir)
    out = []
    for prompt in TOKENIZER_PROMPTS:
        enc = tokenizer(prompt, padding="max_length", max_length=77, truncation=True)
        out.append({"text": prompt, "input_ids": list(enc["input_ids"]), "attention_mask": list(enc["attention_mask"])})
    return out


def record_all(set_dir: Path, only: Optional[List[str]] = None, checkpoints: Optional[Path] = None) -> dict:
    """The set's reference/ folder: the tiny set's CASES, or with `checkpoints` (the diffusers folders
    the set was exported from) CHECKPOINT_CASES run by the pipelines loaded from those folders."""
    out_root = set_dir / "reference"
    prepare_output(out_root)
    write_input_images(out_root / "inputs")
    # The checkpoints' own tokenizer files (the export copied them to the set's tokenizer/).
    tokenizer_dir = checkpoints / "prior" / "tokenizer" if checkpoints else set_dir / "tokenizer"
    cases = []
    for case in CHECKPOINT_CASES if checkpoints else CASES:
        if only and case.name not in only:
            continue
        print(f"  recording {case.name}", flush=True)
        cases.append(run_case(case, tokenizer_dir, out_root, checkpoints))
    what = (
        "the tiny diffusers-layout checkpoints of make_tiny_checkpoints.py, pipelines loaded with from_pretrained"
        if checkpoints
        else "the tiny random-weight set"
    )
    document = {
        "format": 1,
        "description": f"Reference intermediates of the diffusers Kandinsky 2.2 pipelines on {what}",
        "recorded_with": library_versions(),
        "generator": (
            "seed_mode combined: one CPU torch.Generator seeded with manual_seed(seed); the prior draws first, the "
            "decoder continues the same generator state. seed_mode separate: the prior pipeline and the decoder "
            "pipeline each get a generator seeded with manual_seed(seed). Every draw is listed in rng_draws in order"
        ),
        "npy": "float32 / int64 / bool, little-endian, C order",
        "schedulers": CheckpointModules.load(checkpoints).schedulers() if checkpoints else SCHEDULERS,
        "image_processor": IMAGE_PROCESSOR,
        "inputs": {
            "inputs/img2img_input.png": "64x64 RGB; image for img2img and inpaint (converted as array / 127.5 - 1, NCHW)",
            "inputs/inpaint_mask.png": "64x64 8-bit gray; white (>= 0.5 after / 255) = repaint",
            "inputs/depth_hint.png": "64x64 8-bit gray depth map; hint = gray / 255 repeated to 3 channels, NCHW",
        },
        "tokenizer_cases": record_tokenizer_cases(tokenizer_dir),
        "cases": cases,
    }
    write_cases(out_root, document)
    return document


if __name__ == "__main__":
    command_line(__doc__, record_all, case_option=True)
