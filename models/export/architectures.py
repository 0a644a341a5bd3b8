"""Kandinsky 2.2 component architectures at two sizes, and the thin wrappers we export.

`tiny` reproduces the dimensions diffusers' own kandinsky2_2 fast tests build (seeded with
torch.manual_seed(0) before each component, as those tests do). `full` is the published
configuration of kandinsky-community/kandinsky-2-2-{prior,decoder,decoder-inpaint,controlnet-depth}.
The wrappers fix the ONNX interface described in models/CONTRACT.md: named tensors in, named
tensors out, no Python-side options.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Tuple

import torch
from torch import nn

# ---------------------------------------------------------------------------------------------
# Configurations
# ---------------------------------------------------------------------------------------------

TEXT_MAX_LENGTH = 77
MOVQ_SCALE_FACTOR = 8

TINY = {
    # transformers.CLIPTextConfig (test_kandinsky_prior.py Dummies.dummy_text_encoder)
    "text_encoder": dict(
        bos_token_id=0,
        eos_token_id=2,
        hidden_size=32,
        projection_dim=32,
        intermediate_size=37,
        layer_norm_eps=1e-05,
        num_attention_heads=4,
        num_hidden_layers=5,
        pad_token_id=1,
        vocab_size=1000,
    ),
    # transformers.CLIPVisionConfig (Dummies.dummy_image_encoder)
    "image_encoder": dict(
        hidden_size=32,
        image_size=224,
        projection_dim=32,
        intermediate_size=37,
        num_attention_heads=4,
        num_channels=3,
        num_hidden_layers=5,
        patch_size=14,
    ),
    # diffusers.PriorTransformer (Dummies.dummy_prior)
    "prior": dict(num_attention_heads=2, attention_head_dim=12, embedding_dim=32, num_layers=1),
    # diffusers.UNet2DConditionModel (test_kandinsky.py / _inpaint.py / _controlnet.py)
    "unet": dict(
        in_channels=4,
        out_channels=8,
        addition_embed_type="image",
        down_block_types=("ResnetDownsampleBlock2D", "SimpleCrossAttnDownBlock2D"),
        up_block_types=("SimpleCrossAttnUpBlock2D", "ResnetUpsampleBlock2D"),
        mid_block_type="UNetMidBlock2DSimpleCrossAttn",
        block_out_channels=(32, 64),
        layers_per_block=1,
        encoder_hid_dim=32,
        encoder_hid_dim_type="image_proj",
        cross_attention_dim=32,
        attention_head_dim=4,
        resnet_time_scale_shift="scale_shift",
        class_embed_type=None,
    ),
    "unet_inpaint": {"in_channels": 9},
    "unet_depth": {"in_channels": 8, "addition_embed_type": "image_hint", "cross_attention_dim": 100},
    # diffusers.VQModel: the four-level MoVQ of test_kandinsky_controlnet.py, so that the tiny set
    # has the real scale factor 8 (the two-level test MoVQ would give 2).
    "movq": dict(
        block_out_channels=[32, 32, 64, 64],
        down_block_types=[
            "DownEncoderBlock2D",
            "DownEncoderBlock2D",
            "DownEncoderBlock2D",
            "AttnDownEncoderBlock2D",
        ],
        in_channels=3,
        latent_channels=4,
        layers_per_block=1,
        norm_num_groups=8,
        norm_type="spatial",
        num_vq_embeddings=12,
        out_channels=3,
        up_block_types=["AttnUpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D"],
        vq_embed_dim=4,
    ),
    # transformers.DepthAnythingConfig around a Dinov2Config backbone: Depth Anything small's layout
    # (four backbone outputs, four reassemble factors, fusion + head) at test dimensions. The
    # backbone's position embeddings are for 70 px (5x5 patches) while the tiny set preprocesses to
    # 56 px (4x4), so the position-embedding interpolation is exercised by every fixture run.
    "depth_estimator": dict(
        backbone=dict(
            hidden_size=32,
            num_hidden_layers=4,
            num_attention_heads=4,
            mlp_ratio=4,
            image_size=70,
            patch_size=14,
            out_indices=[1, 2, 3, 4],
            apply_layernorm=True,
            reshape_hidden_states=False,
        ),
        reassemble_hidden_size=32,
        patch_size=14,
        neck_hidden_sizes=[8, 16, 32, 32],
        fusion_hidden_size=16,
        head_hidden_size=8,
        # DPTImageProcessor settings (the real model's preprocessor_config.json, smaller size).
        image_size=56,
    ),
}

# The published configurations (kandinsky-community/kandinsky-2-2-prior: text_encoder, image_encoder,
# prior; kandinsky-2-2-decoder: unet, movq; -decoder-inpaint: unet with 9 input channels;
# -controlnet-depth: unet with the image_hint embedding). When real checkpoints are given to the
# tool their own config.json files are used instead; these only size the random-weight sets.
FULL = {
    "text_encoder": dict(
        vocab_size=49408,
        hidden_size=1280,
        intermediate_size=5120,
        projection_dim=1280,
        num_hidden_layers=32,
        num_attention_heads=20,
        max_position_embeddings=77,
        hidden_act="gelu",
        layer_norm_eps=1e-05,
        bos_token_id=0,
        eos_token_id=2,
        pad_token_id=1,
    ),
    "image_encoder": dict(
        hidden_size=1664,
        intermediate_size=8192,
        projection_dim=1280,
        num_hidden_layers=48,
        num_attention_heads=16,
        num_channels=3,
        image_size=224,
        patch_size=14,
        hidden_act="gelu",
        layer_norm_eps=1e-05,
    ),
    "prior": dict(
        num_attention_heads=32,
        attention_head_dim=64,
        num_layers=20,
        embedding_dim=1280,
        num_embeddings=77,
        additional_embeddings=4,
        dropout=0.0,
        time_embed_act_fn="silu",
        norm_in_type=None,
        embedding_proj_norm_type=None,
        encoder_hid_proj_type="linear",
        added_emb_type="prd",
    ),
    "unet": dict(
        in_channels=4,
        out_channels=8,
        addition_embed_type="image",
        addition_embed_type_num_heads=64,
        attention_head_dim=64,
        block_out_channels=(384, 768, 1152, 1536),
        cross_attention_dim=768,
        down_block_types=(
            "ResnetDownsampleBlock2D",
            "SimpleCrossAttnDownBlock2D",
            "SimpleCrossAttnDownBlock2D",
            "SimpleCrossAttnDownBlock2D",
        ),
        encoder_hid_dim=1280,
        encoder_hid_dim_type="image_proj",
        layers_per_block=3,
        mid_block_type="UNetMidBlock2DSimpleCrossAttn",
        norm_num_groups=32,
        resnet_time_scale_shift="scale_shift",
        up_block_types=(
            "SimpleCrossAttnUpBlock2D",
            "SimpleCrossAttnUpBlock2D",
            "SimpleCrossAttnUpBlock2D",
            "ResnetUpsampleBlock2D",
        ),
        class_embed_type=None,
        sample_size=64,
    ),
    "unet_inpaint": {"in_channels": 9},
    "unet_depth": {"in_channels": 8, "addition_embed_type": "image_hint"},
    "movq": dict(
        block_out_channels=[128, 256, 256, 512],
        down_block_types=[
            "DownEncoderBlock2D",
            "DownEncoderBlock2D",
            "DownEncoderBlock2D",
            "AttnDownEncoderBlock2D",
        ],
        in_channels=3,
        latent_channels=4,
        layers_per_block=2,
        norm_num_groups=32,
        norm_type="spatial",
        num_vq_embeddings=16384,
        out_channels=3,
        up_block_types=["AttnUpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D", "UpDecoderBlock2D"],
        vq_embed_dim=4,
        sample_size=32,
        scaling_factor=0.18215,
    ),
    # LiheYoung/depth-anything-small-hf (Apache-2.0): Dinov2-small backbone (facebook/dinov2-small,
    # outputs of layers 9-12), neck [48, 96, 192, 384], fusion 64, head 32; preprocessed to 518 px.
    "depth_estimator": dict(
        backbone=dict(
            hidden_size=384,
            num_hidden_layers=12,
            num_attention_heads=6,
            mlp_ratio=4,
            image_size=518,
            patch_size=14,
            layerscale_value=1.0,
            out_indices=[9, 10, 11, 12],
            apply_layernorm=True,
            reshape_hidden_states=False,
        ),
        reassemble_hidden_size=384,
        patch_size=14,
        neck_hidden_sizes=[48, 96, 192, 384],
        fusion_hidden_size=64,
        head_hidden_size=32,
        image_size=518,
    ),
}

# DPTImageProcessor of Depth Anything (preprocessor_config.json of depth-anything-small-hf): keep
# the aspect ratio, sides a multiple of 14, bicubic, /255, ImageNet mean/std. Only the size differs
# between the real and the tiny set (manifest dims.depthImageSize).
DEPTH_IMAGE_PROCESSOR = dict(
    do_resize=True,
    keep_aspect_ratio=True,
    ensure_multiple_of=14,
    resample=3,
    do_rescale=True,
    rescale_factor=1 / 255,
    do_normalize=True,
    image_mean=[0.485, 0.456, 0.406],
    image_std=[0.229, 0.224, 0.225],
    do_pad=False,
)


def depth_image_processor(size: str = "tiny"):
    """The transformers DPTImageProcessor the depth-estimation pipeline uses for this set."""
    from transformers import DPTImageProcessor

    side = (TINY if size == "tiny" else FULL)["depth_estimator"]["image_size"]
    return DPTImageProcessor(size={"height": side, "width": side}, **DEPTH_IMAGE_PROCESSOR)


def _depth_config(sizes: dict):
    from transformers import DepthAnythingConfig, Dinov2Config

    spec = dict(sizes["depth_estimator"])
    backbone = Dinov2Config(**spec.pop("backbone"))
    spec.pop("image_size")
    return DepthAnythingConfig(backbone_config=backbone, depth_estimation_type="relative", **spec)

# Scheduler configurations shipped in the manifest (the engine implements both schedulers).
PRIOR_SCHEDULER = {
    "class_name": "UnCLIPScheduler",
    "num_train_timesteps": 1000,
    "beta_schedule": "squaredcos_cap_v2",
    "variance_type": "fixed_small_log",
    "prediction_type": "sample",
    "clip_sample": True,
    "clip_sample_range": 10.0,
}
DECODER_SCHEDULER = {
    "class_name": "DDPMScheduler",
    "num_train_timesteps": 1000,
    "beta_schedule": "linear",
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "variance_type": "fixed_small",
    "prediction_type": "epsilon",
    "clip_sample": False,
    "clip_sample_range": 1.0,
    "thresholding": False,
    "timestep_spacing": "leading",
    "steps_offset": 1,
}

# ---------------------------------------------------------------------------------------------
# Building the torch modules
# ---------------------------------------------------------------------------------------------


def _unet_kwargs(sizes: dict, variant: str) -> dict:
    kwargs = dict(sizes["unet"])
    if variant != "unet":
        kwargs.update(sizes[variant])
    return kwargs


# transformers picks SDPA attention on torch >= 2.1; the export wants the plain (eager) attention,
# which is also what torch 1.13 (this project's reference environment) always uses.
EAGER = {"attn_implementation": "eager"}


def build_component(name: str, size: str, seed: int = 0) -> nn.Module:
    """Instantiates one component with random weights (seeded like diffusers' tests)."""
    from diffusers import PriorTransformer, UNet2DConditionModel, VQModel
    from transformers import (
        CLIPTextConfig,
        CLIPTextModelWithProjection,
        CLIPVisionConfig,
        CLIPVisionModelWithProjection,
    )

    sizes = TINY if size == "tiny" else FULL
    torch.manual_seed(seed)
    if name == "text_encoder":
        model = CLIPTextModelWithProjection(CLIPTextConfig(**sizes["text_encoder"], **EAGER))
    elif name == "image_encoder":
        model = CLIPVisionModelWithProjection(CLIPVisionConfig(**sizes["image_encoder"], **EAGER))
    elif name == "prior":
        model = PriorTransformer(**sizes["prior"])
        # diffusers' init leaves clip_mean and clip_std at zero (its tests set clip_std to one),
        # which makes every image embedding zero and the prior and text encoder invisible in the
        # picture; an identity would leave the post-processing untested. Seeded values at every
        # size (until session 8 only the tiny sets had them: a full-size set's embedding was zero).
        g = torch.Generator().manual_seed(1234)
        dim = model.clip_mean.shape[1]
        model.clip_mean = nn.Parameter(0.1 * torch.randn(1, dim, generator=g))
        model.clip_std = nn.Parameter(0.5 + torch.rand(1, dim, generator=g))
    elif name in ("unet", "unet_inpaint", "unet_depth"):
        model = UNet2DConditionModel(**_unet_kwargs(sizes, name))
    elif name in ("movq", "movq_encoder", "movq_decoder"):
        model = VQModel(**sizes["movq"])
    elif name == "depth_estimator":
        from transformers import DepthAnythingForDepthEstimation

        model = DepthAnythingForDepthEstimation(_depth_config(sizes))
        # The preprocessing size travels with the module to the manifest (dims.depthImageSize).
        model.kandinsky_image_size = sizes["depth_estimator"]["image_size"]
        if size == "tiny":
            # transformers' init (std 0.02) leaves the tiny head's output flat to 1e-7, and then
            # every depth map is one grey. PyTorch's default layer init keeps the signal; the last
            # conv's bias then moves the output so that most pixels are above the final ReLU and
            # some are clipped at 0, as in real depth maps (far background), which tests the
            # pipeline's normalisation, bicubic undershoot and uint8 cast.
            for layer in model.modules():
                if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
                    layer.reset_parameters()
            with torch.no_grad():
                model.head.conv3.bias.add_(0.222)
    else:
        raise ValueError(f"unknown component {name!r}")
    return model.eval()


def count_parameters(name: str, size: str = "full") -> int:
    """Parameter count of a component without allocating its weights (meta tensors)."""
    from diffusers import PriorTransformer, UNet2DConditionModel, VQModel
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection, CLIPVisionConfig, CLIPVisionModelWithProjection

    sizes = TINY if size == "tiny" else FULL
    model = _build_on_meta(name, sizes)
    if name == "movq_encoder":
        parts = [model.encoder, model.quant_conv]
        return sum(p.numel() for part in parts for p in part.parameters())
    if name == "movq_decoder":
        parts = [model.post_quant_conv, model.decoder]
        return sum(p.numel() for part in parts for p in part.parameters())
    return sum(p.numel() for p in model.parameters())


def _build_on_meta(name: str, sizes: dict) -> nn.Module:
    """torch 1.13 has no `with torch.device('meta')`; swap parameter creation to meta instead."""
    from diffusers import PriorTransformer, UNet2DConditionModel, VQModel
    from transformers import CLIPTextConfig, CLIPTextModelWithProjection, CLIPVisionConfig, CLIPVisionModelWithProjection

    original = nn.Module.register_parameter

    def register_on_meta(module, pname, param):
        if param is not None and param.device.type != "meta":
            param = nn.Parameter(param.data.to("meta"), requires_grad=param.requires_grad)
        return original(module, pname, param)

    nn.Module.register_parameter = register_on_meta
    try:
        if name == "text_encoder":
            return CLIPTextModelWithProjection(CLIPTextConfig(**sizes["text_encoder"]))
        if name == "image_encoder":
            return CLIPVisionModelWithProjection(CLIPVisionConfig(**sizes["image_encoder"]))
        if name == "prior":
            return PriorTransformer(**sizes["prior"])
        if name in ("unet", "unet_inpaint", "unet_depth"):
            return UNet2DConditionModel(**_unet_kwargs(sizes, name))
        if name == "depth_estimator":
            from transformers import DepthAnythingForDepthEstimation

            return DepthAnythingForDepthEstimation(_depth_config(sizes))
        return VQModel(**sizes["movq"])
    finally:
        nn.Module.register_parameter = original


# ---------------------------------------------------------------------------------------------
# Export wrappers: the ONNX interface of each component (see models/CONTRACT.md)
# ---------------------------------------------------------------------------------------------


class TextEncoderGraph(nn.Module):
    def __init__(self, text_encoder):
        super().__init__()
        self.text_encoder = text_encoder

    def forward(self, input_ids):
        out = self.text_encoder(input_ids=input_ids, return_dict=True)
        return out.text_embeds, out.last_hidden_state


class ImageEncoderGraph(nn.Module):
    def __init__(self, image_encoder):
        super().__init__()
        self.image_encoder = image_encoder

    def forward(self, pixel_values):
        return self.image_encoder(pixel_values=pixel_values, return_dict=True).image_embeds


class PriorGraph(nn.Module):
    """The PriorTransformer alone: returns *normalised* embeddings; the engine applies
    `x * clip_std + clip_mean` once, after the last scheduler step (see CONTRACT.md)."""

    def __init__(self, prior):
        super().__init__()
        self.prior = prior

    def forward(self, latents, timestep, proj_embedding, encoder_hidden_states, attention_mask):
        return self.prior(
            latents,
            timestep=timestep,
            proj_embedding=proj_embedding,
            encoder_hidden_states=encoder_hidden_states,
            attention_mask=attention_mask,
            return_dict=False,
        )[0]


class UNetGraph(nn.Module):
    def __init__(self, unet):
        super().__init__()
        self.unet = unet

    def forward(self, sample, timestep, image_embeds):
        return self.unet(
            sample, timestep, encoder_hidden_states=None, added_cond_kwargs={"image_embeds": image_embeds}, return_dict=False
        )[0]


class UNetDepthGraph(nn.Module):
    def __init__(self, unet):
        super().__init__()
        self.unet = unet

    def forward(self, sample, timestep, image_embeds, hint):
        return self.unet(
            sample,
            timestep,
            encoder_hidden_states=None,
            added_cond_kwargs={"image_embeds": image_embeds, "hint": hint},
            return_dict=False,
        )[0]


class UNetInpaintGraph(nn.Module):
    """Takes the three inpainting inputs separately and concatenates them in the graph.

    The first Conv is widened from 9 to 12 input channels with zero weights (the pad channels are
    zeros too), which computes the same numbers: onnxruntime-web's native WebGPU provider
    miscomputes 3x3 Convs whose input channel count is divisible by 3 but not by 4 (TESTING.md)."""

    PADDED_CHANNELS = 12

    def __init__(self, unet):
        super().__init__()
        unet = copy.deepcopy(unet)
        conv = unet.conv_in
        extra = self.PADDED_CHANNELS - conv.in_channels
        if extra > 0:
            wide = nn.Conv2d(
                self.PADDED_CHANNELS,
                conv.out_channels,
                conv.kernel_size,
                stride=conv.stride,
                padding=conv.padding,
                bias=conv.bias is not None,
            )
            with torch.no_grad():
                wide.weight.zero_()
                wide.weight[:, : conv.in_channels] = conv.weight
                if conv.bias is not None:
                    wide.bias.copy_(conv.bias)
            unet.conv_in = wide
        self.extra = max(extra, 0)
        self.unet = unet

    def forward(self, sample, timestep, image_embeds, masked_image_latents, mask):
        model_input = torch.cat([sample, masked_image_latents, mask], dim=1)
        if self.extra:
            model_input = nn.functional.pad(model_input, (0, 0, 0, 0, 0, self.extra))
        return self.unet(
            model_input,
            timestep,
            encoder_hidden_states=None,
            added_cond_kwargs={"image_embeds": image_embeds},
            return_dict=False,
        )[0]


class MoVQDecoderGraph(nn.Module):
    """VQModel.decode(latents, force_not_quantize=True): no codebook lookup; raw output in ~[-1, 1]."""

    def __init__(self, movq):
        super().__init__()
        self.movq = movq

    def forward(self, latents):
        return self.movq.decode(latents, force_not_quantize=True, return_dict=False)[0]


class MoVQEncoderGraph(nn.Module):
    """VQModel.encode(image).latents: encoder + quant_conv, unquantised, unscaled (as the
    img2img and inpaint pipelines use it)."""

    def __init__(self, movq):
        super().__init__()
        self.movq = movq

    def forward(self, image):
        return self.movq.encode(image, return_dict=False)[0]


class DepthEstimatorGraph(nn.Module):
    """DepthAnythingForDepthEstimation: preprocessed pixels -> relative depth (larger = nearer) at
    the input's size. Pre- and post-processing (DPTImageProcessor, the depth-estimation pipeline's
    bicubic resize and uint8 scaling) belong to the engine, as for the other components."""

    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, pixel_values):
        return self.model(pixel_values=pixel_values, return_dict=True).predicted_depth


# ---------------------------------------------------------------------------------------------
# Graph specifications: names, sample inputs for tracing, dynamic axes
# ---------------------------------------------------------------------------------------------


@dataclass
class GraphSpec:
    component: str  # manifest component id, also the file stem
    source: str  # which torch module it wraps (build_component name)
    wrapper: Callable[[nn.Module], nn.Module]
    inputs: List[str]
    outputs: List[str]
    dynamic_axes: Dict[str, Dict[int, str]]
    sample_inputs: Callable[[nn.Module, int], Tuple[torch.Tensor, ...]] = field(repr=False)


def text_encoder_inputs(model, batch: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    vocab = model.config.vocab_size
    ids = torch.randint(0, vocab - 2, (batch, TEXT_MAX_LENGTH), generator=g)
    ids[:, 0] = vocab - 2  # start token
    ids[:, 5:] = vocab - 1  # end token then padding (end token has the largest id, as in CLIP)
    return (ids,)


def image_encoder_inputs(model, batch: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    size = model.config.vision_config.image_size if hasattr(model.config, "vision_config") else model.config.image_size
    return (torch.randn(batch, 3, size, size, generator=g),)


def prior_inputs(model, batch: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    dim = model.config.embedding_dim
    text_dim = model.encoder_hidden_states_proj.in_features if model.encoder_hidden_states_proj is not None else dim
    mask = torch.zeros(batch, TEXT_MAX_LENGTH, dtype=torch.bool)
    mask[:, :6] = True
    return (
        torch.randn(batch, dim, generator=g),
        torch.full((batch,), 999.0),
        torch.randn(batch, dim, generator=g),
        torch.randn(batch, TEXT_MAX_LENGTH, text_dim, generator=g),
        mask,
    )


def _unet_embed_dim(unet) -> int:
    return unet.config.encoder_hid_dim


def _unet_latent_channels(unet) -> int:
    """The latents' channels: every Kandinsky 2.2 UNet predicts noise and variance, 2 x latents."""
    return unet.config.out_channels // 2


def unet_inputs(model, batch: int, seed: int = 0, latent_hw=(8, 8)):
    g = torch.Generator().manual_seed(seed)
    h, w = latent_hw
    return (
        torch.randn(batch, _unet_latent_channels(model), h, w, generator=g),
        torch.full((batch,), 501.0),
        torch.randn(batch, _unet_embed_dim(model), generator=g),
    )


def unet_inpaint_inputs(model, batch: int, seed: int = 0, latent_hw=(8, 8)):
    g = torch.Generator().manual_seed(seed)
    h, w = latent_hw
    mask = (torch.rand(batch, 1, h, w, generator=g) > 0.5).float()
    return (
        torch.randn(batch, _unet_latent_channels(model), h, w, generator=g),
        torch.full((batch,), 501.0),
        torch.randn(batch, _unet_embed_dim(model), generator=g),
        torch.randn(batch, _unet_latent_channels(model), h, w, generator=g),
        mask,
    )


def unet_depth_inputs(model, batch: int, seed: int = 0, latent_hw=(8, 8)):
    g = torch.Generator().manual_seed(seed)
    h, w = latent_hw
    return (
        torch.randn(batch, _unet_latent_channels(model), h, w, generator=g),
        torch.full((batch,), 501.0),
        torch.randn(batch, _unet_embed_dim(model), generator=g),
        torch.rand(batch, 3, h * MOVQ_SCALE_FACTOR, w * MOVQ_SCALE_FACTOR, generator=g),
    )


def movq_decoder_inputs(model, batch: int, seed: int = 0, latent_hw=(8, 8)):
    g = torch.Generator().manual_seed(seed)
    h, w = latent_hw
    return (torch.randn(batch, model.config.latent_channels, h, w, generator=g),)


def movq_encoder_inputs(model, batch: int, seed: int = 0, latent_hw=(8, 8)):
    g = torch.Generator().manual_seed(seed)
    h, w = latent_hw
    return (torch.rand(batch, 3, h * MOVQ_SCALE_FACTOR, w * MOVQ_SCALE_FACTOR, generator=g) * 2 - 1,)


def depth_estimator_inputs(model, batch: int, seed: int = 0, size_px=None):
    """Preprocessed-like pixels (ImageNet-normalised range). The default size differs from the
    backbone's position-embedding grid on both axes, so tracing takes the interpolation path."""
    g = torch.Generator().manual_seed(seed)
    patch = model.config.patch_size
    grid = model.config.backbone_config.image_size // patch
    h, w = size_px or ((grid - 1) * patch, (grid + 1) * patch)
    return (torch.randn(batch, 3, h, w, generator=g),)


_B = {0: "batch"}
_BHW = {0: "batch", 2: "height", 3: "width"}
_BHW8 = {0: "batch", 2: "height_px", 3: "width_px"}

GRAPHS: List[GraphSpec] = [
    GraphSpec(
        "text_encoder",
        "text_encoder",
        TextEncoderGraph,
        ["input_ids"],
        ["text_embeds", "last_hidden_state"],
        {"input_ids": _B, "text_embeds": _B, "last_hidden_state": _B},
        text_encoder_inputs,
    ),
    GraphSpec(
        "prior",
        "prior",
        PriorGraph,
        ["latents", "timestep", "proj_embedding", "encoder_hidden_states", "attention_mask"],
        ["predicted_image_embedding"],
        {
            "latents": _B,
            "timestep": _B,
            "proj_embedding": _B,
            "encoder_hidden_states": _B,
            "attention_mask": _B,
            "predicted_image_embedding": _B,
        },
        prior_inputs,
    ),
    GraphSpec(
        "image_encoder",
        "image_encoder",
        ImageEncoderGraph,
        ["pixel_values"],
        ["image_embeds"],
        {"pixel_values": _B, "image_embeds": _B},
        image_encoder_inputs,
    ),
    GraphSpec(
        "unet",
        "unet",
        UNetGraph,
        ["sample", "timestep", "image_embeds"],
        ["noise_pred"],
        {"sample": _BHW, "timestep": _B, "image_embeds": _B, "noise_pred": _BHW},
        unet_inputs,
    ),
    GraphSpec(
        "unet_inpaint",
        "unet_inpaint",
        UNetInpaintGraph,
        ["sample", "timestep", "image_embeds", "masked_image_latents", "mask"],
        ["noise_pred"],
        {
            "sample": _BHW,
            "timestep": _B,
            "image_embeds": _B,
            "masked_image_latents": _BHW,
            "mask": _BHW,
            "noise_pred": _BHW,
        },
        unet_inpaint_inputs,
    ),
    GraphSpec(
        "unet_depth",
        "unet_depth",
        UNetDepthGraph,
        ["sample", "timestep", "image_embeds", "hint"],
        ["noise_pred"],
        {"sample": _BHW, "timestep": _B, "image_embeds": _B, "hint": _BHW8, "noise_pred": _BHW},
        unet_depth_inputs,
    ),
    GraphSpec(
        "movq_decoder",
        "movq",
        MoVQDecoderGraph,
        ["latents"],
        ["sample"],
        {"latents": _BHW, "sample": _BHW8},
        movq_decoder_inputs,
    ),
    GraphSpec(
        "movq_encoder",
        "movq",
        MoVQEncoderGraph,
        ["image"],
        ["latents"],
        {"image": _BHW8, "latents": _BHW},
        movq_encoder_inputs,
    ),
    GraphSpec(
        "depth_estimator",
        "depth_estimator",
        DepthEstimatorGraph,
        ["pixel_values"],
        ["predicted_depth"],
        {
            "pixel_values": {0: "batch", 2: "depth_height", 3: "depth_width"},
            "predicted_depth": {0: "batch", 1: "depth_height", 2: "depth_width"},
        },
        depth_estimator_inputs,
    ),
]

GRAPHS_BY_NAME = {spec.component: spec for spec in GRAPHS}
