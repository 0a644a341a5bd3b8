"""Records reference outputs of the diffusers Kandinsky 2.2 pipelines for the tiny fixture set.

Every case runs the real diffusers pipelines over the same seeded torch modules that were exported
to ONNX, with ONE `torch.Generator().manual_seed(seed)` used first by the prior and then, continuing
its state, by the decoder (what KandinskyV22CombinedPipeline, -Img2ImgCombined and -InpaintCombined
do; the depth ControlNet case chains KandinskyV22PriorPipeline and KandinskyV22ControlnetPipeline by
hand the same way). Intermediates are captured by wrapping module forwards, the pipelines' step
callbacks and every `randn_tensor` draw, so the order of random draws is part of the record.

Output: <out>/cases.json and <out>/<case>/*.npy (float32 / int64 / bool, little-endian, C order),
input images in <out>/inputs/. Run through kandinsky_export.py --tiny-random (or directly, with the
same arguments) on a machine with diffusers; see models/README.md.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import re
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional

import numpy as np
import torch
from PIL import Image

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from architectures import DECODER_SCHEDULER, PRIOR_SCHEDULER, build_component  # noqa: E402
from tiny_tokenizer import load_reference_tokenizer  # noqa: E402

# CLIPImageProcessor settings of the real prior (and of diffusers' tiny tests).
IMAGE_PROCESSOR = dict(
    crop_size=224,
    do_center_crop=True,
    do_normalize=True,
    do_resize=True,
    image_mean=[0.48145466, 0.4578275, 0.40821073],
    image_std=[0.26862954, 0.26130258, 0.27577711],
    resample=3,
    size=224,
)


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


NEGATIVE = "low quality, bad quality"

CASES: List[Case] = [
    Case("txt2img_64", "txt2img", "a red cat, 4k photo", None, 0, 64, 64, 2, 3),
    Case("txt2img_64_neg", "txt2img", "a red cat, 4k photo", NEGATIVE, 0, 64, 64, 2, 3),
    Case("txt2img_h64_w128", "txt2img", "portrait of a horse in a field at sunset", None, 42, 64, 128, 3, 2),
    Case("txt2img_h64_w128_neg", "txt2img", "portrait of a horse in a field at sunset", NEGATIVE, 42, 64, 128, 3, 2),
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


class Recorder:
    def __init__(self, out_dir: Path):
        self.out_dir = out_dir
        self.tensors: Dict[str, dict] = {}
        self.rng_draws: List[dict] = []
        self.prior_timesteps: List[int] = []
        self.decoder_timesteps: List[int] = []
        self.prior_step = 0
        self.decoder_step = 0

    def save(self, name: str, value) -> None:
        if isinstance(value, torch.Tensor):
            value = value.detach().cpu().numpy()
        value = np.asarray(value)
        if value.dtype == np.float64:
            value = value.astype(np.float32)
        if value.dtype not in (np.float32, np.int64, np.bool_):
            raise TypeError(f"{name}: unexpected dtype {value.dtype}")
        value = np.ascontiguousarray(value.astype(value.dtype.newbyteorder("<")))
        if name in self.tensors:
            raise ValueError(f"{name} recorded twice")
        np.save(self.out_dir / f"{name}.npy", value)
        self.tensors[name] = {"file": f"{name}.npy", "dtype": str(value.dtype), "shape": list(value.shape)}


RNG_SITES = {
    "diffusers.pipelines.kandinsky2_2.pipeline_kandinsky2_2_prior": "prior.initial_latents",
    "diffusers.schedulers.scheduling_unclip": "prior.scheduler_step",
    "diffusers.pipelines.kandinsky2_2.pipeline_kandinsky2_2": "decoder.initial_latents",
    "diffusers.pipelines.kandinsky2_2.pipeline_kandinsky2_2_inpainting": "decoder.initial_latents",
    "diffusers.pipelines.kandinsky2_2.pipeline_kandinsky2_2_controlnet": "decoder.initial_latents",
    "diffusers.pipelines.kandinsky2_2.pipeline_kandinsky2_2_img2img": "decoder.img2img_noise",
    "diffusers.schedulers.scheduling_ddpm": "decoder.scheduler_step",
}


@contextlib.contextmanager
def recording_rng(rec: Recorder):
    """Wraps `randn_tensor` where each pipeline/scheduler module looks it up, logging every draw."""
    patched = []
    for module_name, site in RNG_SITES.items():
        module = importlib.import_module(module_name)
        original = module.randn_tensor

        def draw(*args, _original=original, _site=site, **kwargs):
            value = _original(*args, **kwargs)
            if _site == "prior.scheduler_step":
                name = f"prior_step_noise_{rec.prior_step}"
            elif _site == "decoder.scheduler_step":
                name = f"decoder_step_noise_{rec.decoder_step}"
            elif _site == "prior.initial_latents":
                name = "prior_noise"
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


def wrap_forward(module: torch.nn.Module, on_call):
    original = module.forward

    def forward(*args, **kwargs):
        out = original(*args, **kwargs)
        on_call(args, kwargs, out)
        return out

    module.forward = forward


def instrument(rec: Recorder, text_encoder, prior, unet, movq, tokenizer_calls: List[dict]):
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

    def on_unet(args, kwargs, out):
        i = rec.decoder_step
        timestep = kwargs.get("timestep", args[1] if len(args) > 1 else None)
        rec.decoder_timesteps.append(int(timestep))
        sample = kwargs.get("sample", args[0] if args else None)
        if i == 0:
            rec.save("decoder_image_embeds", kwargs["added_cond_kwargs"]["image_embeds"])
            if "hint" in kwargs["added_cond_kwargs"]:
                rec.save("decoder_hint", kwargs["added_cond_kwargs"]["hint"])
        rec.save(f"decoder_model_input_{i}", sample)
        rec.save(f"decoder_model_output_{i}", out[0] if isinstance(out, tuple) else out.sample)

    wrap_forward(text_encoder, on_text)
    wrap_forward(prior, on_prior)
    wrap_forward(unet, on_unet)

    original_decode = movq.decode
    original_encode = movq.encode

    def decode(latents, *args, **kwargs):
        rec.save("movq_input_latents", latents)
        out = original_decode(latents, *args, **kwargs)
        rec.save("movq_output", out["sample"] if isinstance(out, dict) or hasattr(out, "sample") else out[0])
        return out

    def encode(image, *args, **kwargs):
        rec.save("input_image", image)
        out = original_encode(image, *args, **kwargs)
        rec.save("image_latents", out["latents"] if hasattr(out, "latents") or isinstance(out, dict) else out[0])
        return out

    movq.decode = decode
    movq.encode = encode


def make_tokenizer_class(base, calls: List[dict]):
    class RecordingTokenizer(base):
        def __call__(self, text, *args, **kwargs):
            out = super().__call__(text, *args, **kwargs)
            if kwargs.get("padding") == "max_length":
                calls.append({"text": text, "input_ids": out["input_ids"], "attention_mask": out["attention_mask"]})
            return out

    return RecordingTokenizer


def run_case(case: Case, tokenizer_dir: Path, out_root: Path) -> dict:
    from diffusers import (
        DDPMScheduler,
        KandinskyV22CombinedPipeline,
        KandinskyV22ControlnetPipeline,
        KandinskyV22Img2ImgCombinedPipeline,
        KandinskyV22InpaintCombinedPipeline,
        KandinskyV22PriorPipeline,
        UnCLIPScheduler,
    )
    from transformers import CLIPImageProcessor

    case_dir = out_root / case.name
    if case_dir.exists():
        shutil.rmtree(case_dir)
    case_dir.mkdir(parents=True)
    rec = Recorder(case_dir)

    text_encoder = build_component("text_encoder", "tiny")
    image_encoder = build_component("image_encoder", "tiny")
    prior = build_component("prior", "tiny")
    unet_name = {"txt2img": "unet", "img2img": "unet", "inpaint": "unet_inpaint", "depth": "unet_depth"}[case.pipeline]
    unet = build_component(unet_name, "tiny")
    movq = build_component("movq", "tiny")

    base_tokenizer = load_reference_tokenizer(tokenizer_dir)
    tokenizer_calls: List[dict] = []
    tokenizer = make_tokenizer_class(type(base_tokenizer), tokenizer_calls)(
        vocab_file=str(tokenizer_dir / "vocab.json"), merges_file=str(tokenizer_dir / "merges.txt"), model_max_length=77
    )
    instrument(rec, text_encoder, prior, unet, movq, tokenizer_calls)

    prior_scheduler = UnCLIPScheduler(**{k: v for k, v in PRIOR_SCHEDULER.items() if k != "class_name"})
    scheduler = DDPMScheduler(**{k: v for k, v in DECODER_SCHEDULER.items() if k != "class_name"})
    image_processor = CLIPImageProcessor(**IMAGE_PROCESSOR)

    def prior_callback(pipe, i, t, kwargs):
        rec.save(f"prior_latents_{i}", kwargs["latents"])
        rec.prior_step = i + 1
        return {}

    def decoder_callback(pipe, i, t, kwargs):
        rec.save(f"decoder_latents_{i}", kwargs["latents"])
        rec.decoder_step = i + 1
        return {}

    generator = torch.Generator().manual_seed(case.seed)
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
    components = dict(
        unet=unet,
        scheduler=scheduler,
        movq=movq,
        prior_prior=prior,
        prior_image_encoder=image_encoder,
        prior_text_encoder=text_encoder,
        prior_tokenizer=tokenizer,
        prior_scheduler=prior_scheduler,
        prior_image_processor=image_processor,
    )
    inputs_root = out_root
    with recording_rng(rec), torch.no_grad():
        if case.pipeline == "txt2img":
            pipe = KandinskyV22CombinedPipeline(**components)
            pipe.set_progress_bar_config(disable=True)
            images = pipe(**common).images
        elif case.pipeline == "img2img":
            pipe = KandinskyV22Img2ImgCombinedPipeline(**components)
            pipe.set_progress_bar_config(disable=True)
            image = Image.open(inputs_root / case.inputs["image"]).convert("RGB")
            images = pipe(image=image, strength=case.strength, **common).images
        elif case.pipeline == "inpaint":
            pipe = KandinskyV22InpaintCombinedPipeline(**components)
            pipe.set_progress_bar_config(disable=True)
            image = Image.open(inputs_root / case.inputs["image"]).convert("RGB")
            mask = Image.open(inputs_root / case.inputs["mask"]).convert("L")
            images = pipe(image=image, mask_image=mask, **common).images
        elif case.pipeline == "depth":
            prior_pipe = KandinskyV22PriorPipeline(
                prior=prior,
                image_encoder=image_encoder,
                text_encoder=text_encoder,
                tokenizer=tokenizer,
                scheduler=prior_scheduler,
                image_processor=image_processor,
            )
            prior_pipe.set_progress_bar_config(disable=True)
            image_embeds, negative_image_embeds = prior_pipe(
                prompt=case.prompt,
                negative_prompt=case.negative_prompt,
                num_images_per_prompt=case.num_images_per_prompt,
                num_inference_steps=case.prior_steps,
                generator=generator,
                guidance_scale=case.prior_guidance_scale,
                output_type="pt",
                return_dict=False,
                callback_on_step_end=prior_callback,
            )
            hint = hint_from_depth_png(inputs_root / case.inputs["hint"])
            rec.save("input_hint", hint)
            pipe = KandinskyV22ControlnetPipeline(unet=unet, scheduler=scheduler, movq=movq)
            pipe.set_progress_bar_config(disable=True)

            def legacy_callback(i, t, latents):
                decoder_callback(pipe, i, t, {"latents": latents})

            images = pipe(
                image_embeds=image_embeds,
                negative_image_embeds=negative_image_embeds,
                hint=hint,
                height=case.height,
                width=case.width,
                num_inference_steps=case.decoder_steps,
                guidance_scale=case.guidance_scale,
                num_images_per_prompt=case.num_images_per_prompt,
                generator=generator,
                output_type="np",
                callback=legacy_callback,
                callback_steps=1,
            ).images
        else:
            raise ValueError(case.pipeline)

    rec.save("output_image", images.astype(np.float32))
    if case.pipeline == "inpaint":
        # Convenience copies of what the UNet's extra inputs were (first image of the batch).
        model_input = rec_load(case_dir, "decoder_model_input_0")
        rec.save("masked_image_latents", model_input[:1, 4:8])
        rec.save("mask_latent", model_input[:1, 8:9])

    # The prior's output embeddings are what the decoder's UNet received (negative first under
    # classifier-free guidance); record them as the prior pipeline returned them.
    embeds = rec_load(case_dir, "decoder_image_embeds")
    per_batch = embeds.shape[0] // 2 if case.guidance_scale > 1 else embeds.shape[0]
    if case.guidance_scale > 1:
        rec.save("negative_image_embeds", embeds[:per_batch])
        rec.save("image_embeds", embeds[per_batch:])
    else:
        rec.save("image_embeds", embeds)

    for role, call in zip(["text_cond", "text_uncond"], tokenizer_calls):
        rec.save(f"{role}_attention_mask", np.asarray(call["attention_mask"], dtype=np.int64))

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
        "num_images_per_prompt": case.num_images_per_prompt,
    }
    if case.strength is not None:
        params["strength"] = case.strength
    diffusers_pipeline = {
        "txt2img": "KandinskyV22CombinedPipeline",
        "img2img": "KandinskyV22Img2ImgCombinedPipeline",
        "inpaint": "KandinskyV22InpaintCombinedPipeline",
        "depth": "KandinskyV22PriorPipeline + KandinskyV22ControlnetPipeline (one generator)",
    }[case.pipeline]
    return {
        "name": case.name,
        "pipeline": case.pipeline,
        "diffusers_pipeline": diffusers_pipeline,
        "unet_component": unet_name,
        "params": params,
        "schedulers": {"prior": PRIOR_SCHEDULER, "decoder": DECODER_SCHEDULER},
        "inputs": case.inputs,
        "prior_timesteps": rec.prior_timesteps,
        "decoder_timesteps": rec.decoder_timesteps,
        "rng_draws": rec.rng_draws,
        "tensors": dict(sorted(rec.tensors.items())),
    }


def dumps_compact(document) -> str:
    """Indented JSON with lists of numbers (shapes, token ids, timesteps) kept on one line."""
    text = json.dumps(document, indent=1, ensure_ascii=False)
    return re.sub(r"\[\s*([-0-9.eE,\s]*?)\s*\]", lambda m: "[" + ", ".join(x.strip() for x in m.group(1).split(",") if x.strip()) + "]", text)


def rec_load(case_dir: Path, name: str) -> np.ndarray:
    return np.load(case_dir / f"{name}.npy")


def record_tokenizer_cases(tokenizer_dir: Path) -> List[dict]:
    tokenizer = load_reference_tokenizer(tokenizer_dir)
    out = []
    for prompt in TOKENIZER_PROMPTS:
        enc = tokenizer(prompt, padding="max_length", max_length=77, truncation=True)
        out.append({"text": prompt, "input_ids": list(enc["input_ids"]), "attention_mask": list(enc["attention_mask"])})
    return out


def record_all(set_dir: Path, only: Optional[List[str]] = None) -> dict:
    import diffusers
    import transformers

    torch.set_num_threads(1)
    out_root = set_dir / "reference"
    out_root.mkdir(parents=True, exist_ok=True)
    write_input_images(out_root / "inputs")
    tokenizer_dir = set_dir / "tokenizer"
    cases = []
    for case in CASES:
        if only and case.name not in only:
            continue
        print(f"  recording {case.name}", flush=True)
        cases.append(run_case(case, tokenizer_dir, out_root))
    document = {
        "format": 1,
        "description": "Reference intermediates of the diffusers Kandinsky 2.2 pipelines on the tiny random-weight set",
        "recorded_with": {"diffusers": diffusers.__version__, "transformers": transformers.__version__, "torch": torch.__version__},
        "generator": (
            "one CPU torch.Generator seeded with manual_seed(seed); the prior draws first, the decoder continues "
            "the same generator state; every draw is listed in rng_draws in order"
        ),
        "npy": "float32 / int64 / bool, little-endian, C order",
        "schedulers": {"prior": PRIOR_SCHEDULER, "decoder": DECODER_SCHEDULER},
        "image_processor": IMAGE_PROCESSOR,
        "inputs": {
            "inputs/img2img_input.png": "64x64 RGB; image for img2img and inpaint (converted as array / 127.5 - 1, NCHW)",
            "inputs/inpaint_mask.png": "64x64 8-bit gray; white (>= 0.5 after / 255) = repaint",
            "inputs/depth_hint.png": "64x64 8-bit gray depth map; hint = gray / 255 repeated to 3 channels, NCHW",
        },
        "tokenizer_cases": record_tokenizer_cases(tokenizer_dir),
        "cases": cases,
    }
    (out_root / "cases.json").write_text(dumps_compact(document) + "\n", encoding="utf-8")
    return document


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("set_dir", type=Path, help="model set folder holding tokenizer/ (e.g. models/fixtures/tiny)")
    parser.add_argument("--case", action="append", help="record only these cases")
    args = parser.parse_args()
    record_all(args.set_dir, args.case)


if __name__ == "__main__":
    main()
