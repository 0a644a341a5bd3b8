"""What the reference recorders share (record_reference.py, record_mix_reference.py,
record_depth_reference.py).

- the tiny set's seeded torch modules and the diffusers pipeline components built over them;
- `Recorder`: one case folder of .npy intermediates and their index for cases.json;
- the hooks: module forwards, MoVQ encode/decode, the decoder UNet, the pipelines' step callbacks,
  and every `randn_tensor` draw (so the order of random draws is part of the record);
- single-threaded, seeded runs, and cases.json written with compact number lists.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import json
import re
import shutil
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional

import numpy as np
import torch
from PIL import Image

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

from architectures import DECODER_SCHEDULER, PRIOR_SCHEDULER, build_component  # noqa: E402

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

SCHEDULERS = {"prior": PRIOR_SCHEDULER, "decoder": DECODER_SCHEDULER}

NEGATIVE = "low quality, bad quality"

# Where each pipeline/scheduler module looks up randn_tensor, and what its draws are.
RNG_SITES = {
    "diffusers.pipelines.kandinsky2_2.pipeline_kandinsky2_2_prior": "prior.initial_latents",
    "diffusers.schedulers.scheduling_unclip": "prior.scheduler_step",
    "diffusers.pipelines.kandinsky2_2.pipeline_kandinsky2_2": "decoder.initial_latents",
    "diffusers.pipelines.kandinsky2_2.pipeline_kandinsky2_2_inpainting": "decoder.initial_latents",
    "diffusers.pipelines.kandinsky2_2.pipeline_kandinsky2_2_controlnet": "decoder.initial_latents",
    "diffusers.pipelines.kandinsky2_2.pipeline_kandinsky2_2_img2img": "decoder.img2img_noise",
    "diffusers.pipelines.kandinsky2_2.pipeline_kandinsky2_2_controlnet_img2img": "decoder.img2img_noise",
    "diffusers.schedulers.scheduling_ddpm": "decoder.scheduler_step",
}


# ---------------------------------------------------------------------------------------------
# Output
# ---------------------------------------------------------------------------------------------


class Recorder:
    """One case folder: .npy files, their index, the random draws in order and the step counters
    (a prior run starts at its initial-latents draw; the step callbacks and the scheduler draws
    advance the steps)."""

    def __init__(self, out_dir: Path):
        self.out_dir = out_dir
        self.tensors: Dict[str, dict] = {}
        self.rng_draws: List[dict] = []
        self.prior_timesteps: List[int] = []
        self.decoder_timesteps: List[int] = []
        self.prior_run = -1
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

    def load(self, name: str) -> np.ndarray:
        return np.load(self.out_dir / f"{name}.npy")

    def tensor_index(self) -> Dict[str, dict]:
        return dict(sorted(self.tensors.items()))


def case_recorder(case_dir: Path) -> Recorder:
    """A Recorder on an emptied case folder."""
    if case_dir.exists():
        shutil.rmtree(case_dir)
    case_dir.mkdir(parents=True)
    return Recorder(case_dir)


def prepare_output(out_root: Path, clean: bool = False) -> None:
    """Single-threaded torch (bit-identical recordings run to run) and the output folder."""
    torch.set_num_threads(1)
    if clean and out_root.exists():
        shutil.rmtree(out_root)
    out_root.mkdir(parents=True, exist_ok=True)


def library_versions(*extra: str) -> Dict[str, str]:
    """diffusers, transformers and torch versions, then any of "pillow", "numpy"."""
    import PIL
    import diffusers
    import transformers

    known = {"pillow": PIL.__version__, "numpy": np.__version__}
    versions = {"diffusers": diffusers.__version__, "transformers": transformers.__version__, "torch": torch.__version__}
    versions.update((name, known[name]) for name in extra)
    return versions


def generation_params(case, num_images_per_prompt: int, prompts: bool = True) -> dict:
    """A case's prompt and negative prompt (with `prompts`), seed, size, step and guidance settings,
    as cases.json lists them."""
    return {
        **({"prompt": case.prompt, "negative_prompt": case.negative_prompt} if prompts else {}),
        "seed": case.seed,
        "height": case.height,
        "width": case.width,
        "prior_num_inference_steps": case.prior_steps,
        "num_inference_steps": case.decoder_steps,
        "prior_guidance_scale": case.prior_guidance_scale,
        "guidance_scale": case.guidance_scale,
        "num_images_per_prompt": num_images_per_prompt,
    }


def dumps_compact(document) -> str:
    """Indented JSON with lists of numbers (shapes, token ids, timesteps) kept on one line."""
    text = json.dumps(document, indent=1, ensure_ascii=False)
    return re.sub(r"\[\s*([-0-9.eE,\s]*?)\s*\]", lambda m: "[" + ", ".join(x.strip() for x in m.group(1).split(",") if x.strip()) + "]", text)


def write_cases(out_root: Path, document: dict) -> None:
    (out_root / "cases.json").write_text(dumps_compact(document) + "\n", encoding="utf-8")


def command_line(doc: str, record_all: Callable, case_option: bool = False) -> None:
    """`<recorder>.py SET_DIR` (and `--case NAME`, repeatable, where the recorder can pick cases;
    `--checkpoints DIR`: record the checkpoint cases with the pipelines loaded from those folders)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("set_dir", type=Path, help="model set folder holding tokenizer/ (e.g. models/fixtures/tiny)")
    parser.add_argument(
        "--checkpoints",
        type=Path,
        help="diffusers checkpoint folders the set was exported from (prior/, decoder/, decoder-inpaint/, "
        "controlnet-depth/, as make_tiny_checkpoints.py writes them): their cases, their pipelines",
    )
    if case_option:
        parser.add_argument("--case", action="append", help="record only these cases")
    args = parser.parse_args()
    extra = {"checkpoints": args.checkpoints} if args.checkpoints else {}
    if case_option:
        record_all(args.set_dir, args.case, **extra)
    else:
        record_all(args.set_dir, **extra)


# ---------------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------------


def test_picture(width: int, height: int, seed: int, mode: str = "RGB") -> Image.Image:
    """Smooth gradients, hard-edged shapes, one-pixel stripes (they clip after the negative lobes)
    and a patch of noise: every part of a kernel matters, and the PNG stays small."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    u, v = x / max(width - 1, 1), y / max(height - 1, 1)
    rgb = np.stack([255 * u, 255 * v, 128 + 100 * np.sin(6 * u + 4 * v)], axis=-1)
    disc = (u - 0.6) ** 2 + (v - 0.4) ** 2 < 0.05
    rgb[disc] = [250, 30, 40]
    rgb[(np.abs(u - 0.3) < 0.08) & (np.abs(v - 0.7) < 0.15)] = [10, 240, 20]
    stripes = (np.abs(u - 0.75) < 0.1) & (v > 0.75)
    rgb[stripes] = np.where((x[stripes] % 2 == 0)[:, None], 255.0, 0.0)
    patch = (u < 0.2) & (v < 0.2)
    rgb[patch] += rng.normal(0, 40, (int(patch.sum()), 3))
    image = Image.fromarray(np.clip(np.round(rgb), 0, 255).astype(np.uint8), "RGB")
    return image.convert(mode)


# ---------------------------------------------------------------------------------------------
# Modules and pipeline components
# ---------------------------------------------------------------------------------------------


@dataclass
class TinyModules:
    """The tiny set's seeded modules for one case (the same weights that were exported)."""

    text_encoder: torch.nn.Module
    image_encoder: torch.nn.Module
    prior: torch.nn.Module
    unet: torch.nn.Module
    movq: torch.nn.Module

    @classmethod
    def build(cls, unet_name: str = "unet") -> "TinyModules":
        return cls(
            text_encoder=build_component("text_encoder", "tiny"),
            image_encoder=build_component("image_encoder", "tiny"),
            prior=build_component("prior", "tiny"),
            unet=build_component(unet_name, "tiny"),
            movq=build_component("movq", "tiny"),
        )

    def prior_components(self, tokenizer) -> dict:
        """Keyword arguments of the prior pipelines (fresh UnCLIP scheduler and image processor)."""
        from diffusers import UnCLIPScheduler
        from transformers import CLIPImageProcessor

        return dict(
            prior=self.prior,
            image_encoder=self.image_encoder,
            text_encoder=self.text_encoder,
            tokenizer=tokenizer,
            scheduler=UnCLIPScheduler(**{k: v for k, v in PRIOR_SCHEDULER.items() if k != "class_name"}),
            image_processor=CLIPImageProcessor(**IMAGE_PROCESSOR),
        )

    def decoder_components(self) -> dict:
        """Keyword arguments of the decoder pipelines (fresh DDPM scheduler)."""
        from diffusers import DDPMScheduler

        scheduler = DDPMScheduler(**{k: v for k, v in DECODER_SCHEDULER.items() if k != "class_name"})
        return dict(unet=self.unet, scheduler=scheduler, movq=self.movq)


# The decoder checkpoint folder each UNet comes from (the real-checkpoint export's arguments).
CHECKPOINT_FOLDERS = {"unet": "decoder", "unet_inpaint": "decoder-inpaint", "unet_depth": "controlnet-depth"}


def scheduler_record(scheduler) -> dict:
    """A scheduler's class and config as cases.json lists them (the manifest's form)."""
    fields = {k: v for k, v in scheduler.config.items() if not k.startswith("_")}
    return {"class_name": type(scheduler).__name__, **fields}


@dataclass
class CheckpointModules:
    """A case's modules and schedulers from checkpoint folders in diffusers' layout
    (make_tiny_checkpoints.py: prior/, decoder/, decoder-inpaint/, controlnet-depth/), loaded with
    the pipelines' own from_pretrained. `decoder_scheduler`: None for the checkpoint's own, or the
    class a case picks instead, built with from_config as a diffusers user swaps schedulers."""

    text_encoder: torch.nn.Module
    image_encoder: torch.nn.Module
    prior: torch.nn.Module
    unet: torch.nn.Module
    movq: torch.nn.Module
    prior_scheduler: object
    decoder_scheduler: object
    image_processor: object

    @classmethod
    def load(cls, root: Path, unet_name: str = "unet", decoder_scheduler: Optional[str] = None) -> "CheckpointModules":
        try:
            import refenv_compat  # noqa: F401  (this project's machines: patches AddedToken, see TESTING.md)
        except ImportError:
            pass
        from diffusers import DDIMScheduler, DDPMScheduler, DPMSolverMultistepScheduler
        from diffusers import KandinskyV22Pipeline, KandinskyV22PriorPipeline

        prior_pipe = KandinskyV22PriorPipeline.from_pretrained(root / "prior")
        decoder_pipe = KandinskyV22Pipeline.from_pretrained(root / CHECKPOINT_FOLDERS[unet_name])
        scheduler = decoder_pipe.scheduler
        if decoder_scheduler is not None:
            chosen = {"ddpm": DDPMScheduler, "ddim": DDIMScheduler, "dpmpp-2m": DPMSolverMultistepScheduler}
            scheduler = chosen[decoder_scheduler].from_config(scheduler.config)
        return cls(
            text_encoder=prior_pipe.text_encoder.eval(),
            image_encoder=prior_pipe.image_encoder.eval(),
            prior=prior_pipe.prior.eval(),
            unet=decoder_pipe.unet.eval(),
            movq=decoder_pipe.movq.eval(),
            prior_scheduler=prior_pipe.scheduler,
            decoder_scheduler=scheduler,
            image_processor=prior_pipe.image_processor,
        )

    def prior_components(self, tokenizer) -> dict:
        """Keyword arguments of the prior pipelines: the checkpoint's components, a fresh copy of its scheduler."""
        return dict(
            prior=self.prior,
            image_encoder=self.image_encoder,
            text_encoder=self.text_encoder,
            tokenizer=tokenizer,
            scheduler=type(self.prior_scheduler).from_config(self.prior_scheduler.config),
            image_processor=self.image_processor,
        )

    def decoder_components(self) -> dict:
        """Keyword arguments of the decoder pipelines: a fresh copy of the case's scheduler."""
        scheduler = type(self.decoder_scheduler).from_config(self.decoder_scheduler.config)
        return dict(unet=self.unet, scheduler=scheduler, movq=self.movq)

    def schedulers(self) -> dict:
        return {"prior": scheduler_record(self.prior_scheduler), "decoder": scheduler_record(self.decoder_scheduler)}


def quiet(pipe):
    """The pipeline without its progress bar."""
    pipe.set_progress_bar_config(disable=True)
    return pipe


def seeded_generator(seed: int) -> torch.Generator:
    """The one CPU generator a case's prior runs and decoder draw from, in turn."""
    return torch.Generator().manual_seed(seed)


def prior_call(case, generator: torch.Generator) -> dict:
    """A prior pipeline call's step, guidance and generator arguments for a case (embeddings out as tensors)."""
    return dict(num_inference_steps=case.prior_steps, generator=generator, guidance_scale=case.prior_guidance_scale, output_type="pt")


def decoder_call(case, generator: torch.Generator) -> dict:
    """A decoder pipeline call's size, step, guidance and generator arguments for a case (image out as numpy)."""
    return dict(
        height=case.height,
        width=case.width,
        num_inference_steps=case.decoder_steps,
        guidance_scale=case.guidance_scale,
        generator=generator,
        output_type="np",
    )


# ---------------------------------------------------------------------------------------------
# Hooks
# ---------------------------------------------------------------------------------------------


@contextlib.contextmanager
def recording_rng(rec: Recorder, prior_prefix: str = "prior_", sites: Dict[str, str] = RNG_SITES):
    """Wraps `randn_tensor` where each module of `sites` looks it up, saving and listing every draw.

    Names: `<prior_prefix>noise` for a prior run's initial latents, `<prior_prefix>step_noise_<step>`
    for its scheduler steps (`{run}` in the prefix is the prior run's index), `decoder_step_noise_<step>`,
    and `decoder_noise` for the decoder's initial latents or img2img noise."""

    def name_of(site: str) -> str:
        if site == "prior.initial_latents":
            rec.prior_run += 1
            rec.prior_step = 0
            return prior_prefix.format(run=rec.prior_run) + "noise"
        if site == "prior.scheduler_step":
            rec.prior_step += 1
            return prior_prefix.format(run=rec.prior_run) + f"step_noise_{rec.prior_step - 1}"
        if site == "decoder.scheduler_step":
            rec.decoder_step += 1
            return f"decoder_step_noise_{rec.decoder_step - 1}"
        return "decoder_noise"

    patched = []
    for module_name, site in sites.items():
        module = importlib.import_module(module_name)
        original = module.randn_tensor

        def draw(*args, _original=original, _site=site, **kwargs):
            value = _original(*args, **kwargs)
            name = name_of(_site)
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


def on_pictures(image_encoder: torch.nn.Module, on_call: Callable) -> None:
    """Calls on_call(pixel_values, out) for the image encoder's pictures; get_zero_embed also runs
    the encoder, on zeros, which is left out."""

    def on_encoder(args, kwargs, out):
        pixels = kwargs.get("pixel_values", args[0] if args else None)
        if bool(pixels.abs().sum() > 0):
            on_call(pixels, out)

    wrap_forward(image_encoder, on_encoder)


def record_unet(rec: Recorder, unet: torch.nn.Module, steps: bool = True) -> None:
    """The decoder UNet's image embeddings (and ControlNet hint) from its first call, its
    timesteps and, with `steps`, every step's model input and output."""

    def on_unet(args, kwargs, out):
        i = rec.decoder_step
        timestep = kwargs.get("timestep", args[1] if len(args) > 1 else None)
        rec.decoder_timesteps.append(int(timestep))
        if "decoder_image_embeds" not in rec.tensors:
            rec.save("decoder_image_embeds", kwargs["added_cond_kwargs"]["image_embeds"])
            if "hint" in kwargs["added_cond_kwargs"]:
                rec.save("decoder_hint", kwargs["added_cond_kwargs"]["hint"])
        if steps:
            rec.save(f"decoder_model_input_{i}", kwargs.get("sample", args[0] if args else None))
            rec.save(f"decoder_model_output_{i}", out[0] if isinstance(out, tuple) else out.sample)

    wrap_forward(unet, on_unet)


def record_movq(rec: Recorder, movq: torch.nn.Module) -> None:
    """MoVQ decode (latents in, picture out) and encode (picture in, latents out)."""
    original_decode, original_encode = movq.decode, movq.encode

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

    movq.decode, movq.encode = decode, encode


def latents_callback(rec: Recorder, stage: str):
    """A `callback_on_step_end` saving `<stage>_latents_<i>` and moving to step i + 1."""

    def callback(pipe, i, t, kwargs):
        rec.save(f"{stage}_latents_{i}", kwargs["latents"])
        setattr(rec, f"{stage}_step", i + 1)
        return {}

    return callback


def legacy_callback(callback):
    """The same for pipelines that take the older `callback(i, t, latents)`."""
    return lambda i, t, latents: callback(None, i, t, {"latents": latents})
