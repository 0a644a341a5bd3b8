"""Builds a second set of tiny random-weight Kandinsky 2.2 checkpoints in diffusers' folder layout.

Made "elsewhere" on purpose: other dimensions than the tiny fixture (models/export/architectures.py
TINY) and the checkpoints' own scheduler configs, so that exporting them with the real-checkpoint
path of kandinsky_export.py (`--prior … --decoder …`) and comparing with diffusers' pipelines loaded
from these folders (`from_pretrained`) shows that nothing leans on the fixture's shapes or on fixed
scheduler configs. What differs from the fixture:

- embedding width 48 (fixture 32), text encoder 3 layers of 3 heads, vision encoder 40 wide with
  32 px patches projecting to 48, prior 2 layers of 4 heads × 8 (inner width 32, not the embedding's);
- MoVQ widths 32/32/32/64 (its spatial norms need multiples of 32) and a codebook of 16. The
  latents keep 4 channels: diffusers' img2img pipelines take a 4-channel `image` for latents
  (`prepare_latents`: `image.shape[1] == 4`), so they cannot run other latent widths;
- UNet: three levels (cross-attention, plain, cross-attention) 16/32/32 wide, 8 groups, heads of 8
  channels, cross-attention width 40;
- schedulers: the decoders' is DDIMScheduler with `set_alpha_to_one: false` (issue #18's case), the
  prior's UnCLIPScheduler with `clip_sample_range: 5.0`.

Deterministic: seeded torch modules, saved with save_pretrained; running it twice gives the same
bytes (the folders are not committed: this script regenerates them).

Usage: make_tiny_checkpoints.py OUT_DIR  ->  OUT_DIR/{prior,decoder,decoder-inpaint,controlnet-depth}/
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch
from torch import nn

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import tiny_tokenizer  # noqa: E402
from architectures import EAGER  # noqa: E402
from recording import IMAGE_PROCESSOR  # noqa: E402

EMBED = 48
LATENT_CHANNELS = 4
VOCAB = 1000

TEXT_ENCODER = dict(
    bos_token_id=0,
    eos_token_id=2,
    hidden_size=EMBED,
    projection_dim=EMBED,
    intermediate_size=64,
    layer_norm_eps=1e-05,
    num_attention_heads=3,
    num_hidden_layers=3,
    pad_token_id=1,
    vocab_size=VOCAB,
)
IMAGE_ENCODER = dict(
    hidden_size=40,
    image_size=224,
    projection_dim=EMBED,
    intermediate_size=56,
    num_attention_heads=5,
    num_channels=3,
    num_hidden_layers=2,
    patch_size=32,
)
PRIOR = dict(num_attention_heads=4, attention_head_dim=8, embedding_dim=EMBED, num_layers=2)
UNET = dict(
    in_channels=LATENT_CHANNELS,
    out_channels=2 * LATENT_CHANNELS,
    addition_embed_type="image",
    down_block_types=("SimpleCrossAttnDownBlock2D", "ResnetDownsampleBlock2D", "SimpleCrossAttnDownBlock2D"),
    up_block_types=("SimpleCrossAttnUpBlock2D", "ResnetUpsampleBlock2D", "SimpleCrossAttnUpBlock2D"),
    mid_block_type="UNetMidBlock2DSimpleCrossAttn",
    block_out_channels=(16, 32, 32),
    layers_per_block=1,
    norm_num_groups=8,
    encoder_hid_dim=EMBED,
    encoder_hid_dim_type="image_proj",
    cross_attention_dim=40,
    attention_head_dim=8,
    resnet_time_scale_shift="scale_shift",
    class_embed_type=None,
)
UNET_INPAINT = {"in_channels": 2 * LATENT_CHANNELS + 1}
# The image_hint embedding turns the hint into 4 channels, concatenated to the latents.
UNET_DEPTH = {"in_channels": LATENT_CHANNELS + 4, "addition_embed_type": "image_hint"}
MOVQ = dict(
    block_out_channels=[32, 32, 32, 64],
    down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D", "DownEncoderBlock2D", "AttnDownEncoderBlock2D"],
    in_channels=3,
    latent_channels=LATENT_CHANNELS,
    layers_per_block=1,
    norm_num_groups=8,
    norm_type="spatial",
    num_vq_embeddings=16,
    out_channels=3,
    up_block_types=["AttnUpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D"],
    vq_embed_dim=LATENT_CHANNELS,
)

PRIOR_SCHEDULER = dict(
    num_train_timesteps=1000,
    variance_type="fixed_small_log",
    clip_sample=True,
    clip_sample_range=5.0,
    prediction_type="sample",
    beta_schedule="squaredcos_cap_v2",
)
DECODER_SCHEDULER = dict(
    num_train_timesteps=1000,
    beta_start=0.00085,
    beta_end=0.012,
    beta_schedule="linear",
    clip_sample=False,
    set_alpha_to_one=False,
    steps_offset=1,
    prediction_type="epsilon",
    thresholding=False,
    timestep_spacing="leading",
)


def build(out_dir: Path) -> None:
    from diffusers import (
        DDIMScheduler,
        KandinskyV22ControlnetPipeline,
        KandinskyV22InpaintPipeline,
        KandinskyV22Pipeline,
        KandinskyV22PriorPipeline,
        PriorTransformer,
        UNet2DConditionModel,
        UnCLIPScheduler,
        VQModel,
    )
    from transformers import (
        CLIPImageProcessor,
        CLIPTextConfig,
        CLIPTextModelWithProjection,
        CLIPVisionConfig,
        CLIPVisionModelWithProjection,
    )

    torch.set_num_threads(1)
    out_dir.mkdir(parents=True, exist_ok=True)

    # The tokenizer first: save_pretrained copies the slow tokenizer's files from where it was read.
    tokenizer_source = out_dir / ".tokenizer-source"
    tiny_tokenizer.write_tokenizer(tokenizer_source, VOCAB)
    tokenizer = tiny_tokenizer.load_reference_tokenizer(tokenizer_source)

    torch.manual_seed(100)
    text_encoder = CLIPTextModelWithProjection(CLIPTextConfig(**TEXT_ENCODER, **EAGER)).eval()
    torch.manual_seed(101)
    image_encoder = CLIPVisionModelWithProjection(CLIPVisionConfig(**IMAGE_ENCODER, **EAGER)).eval()
    torch.manual_seed(102)
    prior = PriorTransformer(**PRIOR).eval()
    # Non-trivial clip statistics, so the prior's post-processing is not an identity.
    g = torch.Generator().manual_seed(103)
    prior.clip_mean = nn.Parameter(0.2 * torch.randn(1, EMBED, generator=g))
    prior.clip_std = nn.Parameter(0.4 + torch.rand(1, EMBED, generator=g))
    torch.manual_seed(104)
    movq = VQModel(**MOVQ).eval()
    unets = {}
    for seed, (name, extra) in enumerate((("unet", {}), ("inpaint", UNET_INPAINT), ("depth", UNET_DEPTH)), start=105):
        torch.manual_seed(seed)
        unets[name] = UNet2DConditionModel(**{**UNET, **extra}).eval()

    prior_pipe = KandinskyV22PriorPipeline(
        prior=prior,
        image_encoder=image_encoder,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        scheduler=UnCLIPScheduler(**PRIOR_SCHEDULER),
        image_processor=CLIPImageProcessor(**IMAGE_PROCESSOR),
    )
    prior_pipe.save_pretrained(out_dir / "prior", safe_serialization=False)
    decoders = {
        "decoder": (KandinskyV22Pipeline, unets["unet"]),
        "decoder-inpaint": (KandinskyV22InpaintPipeline, unets["inpaint"]),
        "controlnet-depth": (KandinskyV22ControlnetPipeline, unets["depth"]),
    }
    for folder, (pipeline_class, unet) in decoders.items():
        pipe = pipeline_class(unet=unet, scheduler=DDIMScheduler(**DECODER_SCHEDULER), movq=movq)
        pipe.save_pretrained(out_dir / folder, safe_serialization=False)
    for path in sorted(tokenizer_source.iterdir()):
        path.unlink()
    tokenizer_source.rmdir()
    print(f"checkpoints in {out_dir}: prior, decoder, decoder-inpaint, controlnet-depth")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("out_dir", type=Path, help="folder for prior/, decoder/, decoder-inpaint/, controlnet-depth/")
    build(parser.parse_args().out_dir)


if __name__ == "__main__":
    main()
