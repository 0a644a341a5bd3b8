"""Export-time rewrites that keep the graphs GPU-friendly without changing their numbers.

1. Attention as plain MatMul -> (Add mask) -> Softmax -> MatMul. diffusers'
   `Attention.get_attention_scores` computes `baddbmm(empty, q, k^T, beta=0)` when there is no mask;
   torch.onnx turns the `empty` into ConstantOfShape -> Mul(0) -> Add, which onnxruntime places on
   the CPU and uploads to the GPU on every call ([heads, Lq, Lk] floats: hundreds of MB per UNet
   call at 512 px, see ../shared/TESTING.md).
2. `Tensor.repeat_interleave(n, dim=0)` with an int `n` (the prior's attention mask, one copy per
   head) as Unsqueeze -> Expand -> Reshape. torch 1.13 exports it with a dynamic batch as a Loop over
   SplitToSequence, which runs on the CPU.

3. CLIP's causal mask as a constant [1, 1, 77, 77] expanded to the batch, instead of a
   `torch.full` of the traced length (a float ConstantOfShape built on the CPU on every call).

4. The depth estimator's size-dependent steps (Dinov2's position-embedding interpolation, Depth
   Anything's head upsampling) read the input size as Python numbers, which tracing bakes in as
   constants: the graph would only be right at the traced size. The rewrites compute the same
   values from the run-time shape: a bicubic Resize whose scales are `(patches + 0.1) / grid`
   exactly as transformers passes them (or 1, an exact identity, where transformers skips the
   interpolation), and the head's bilinear resize to `patches * 14`.

The reference recordings never use these patches; `--check` measures the difference.
"""

from __future__ import annotations

import contextlib

import torch


def _plain_attention_scores(self, query, key, attention_mask=None):
    dtype = query.dtype
    if self.upcast_attention:
        query = query.float()
        key = key.float()
    scores = torch.matmul(query, key.transpose(-1, -2)) * self.scale
    if attention_mask is not None:
        scores = scores + attention_mask
    if self.upcast_softmax:
        scores = scores.float()
    return scores.softmax(dim=-1).to(dtype)


_original_repeat_interleave = torch.Tensor.repeat_interleave


def _repeat_interleave_by_expand(self, repeats, dim=None, **kwargs):
    if isinstance(repeats, int) and dim == 0 and not kwargs:
        expanded = self.unsqueeze(1).expand(self.shape[0], repeats, *self.shape[1:])
        return expanded.reshape(-1, *self.shape[1:])
    return _original_repeat_interleave(self, repeats, dim=dim, **kwargs)


def _constant_causal_mask(input_shape, dtype, device, past_key_values_length=0, sliding_window=None):
    if past_key_values_length or sliding_window is not None:
        raise NotImplementedError("the text encoder export has no cache and no sliding window")
    length = int(input_shape[-1])  # the text length is fixed (77); a Python int makes a constant
    mask = torch.full((length, length), torch.finfo(dtype).min, dtype=dtype, device=device).triu(1)
    return mask[None, None].expand(input_shape[0], 1, length, length)


class _ResizeBicubicByScales(torch.autograd.Function):
    """torch's bicubic `interpolate(scale_factor=...)` (align_corners=False, a = -0.75) with the
    scale factors as a run-time tensor: exported as one ONNX Resize with a dynamic `scales` input.
    ONNX's half_pixel mapping `(x + 0.5) / scale - 0.5` is torch's mapping for a given scale factor."""

    @staticmethod
    def forward(ctx, x, scales):
        factors = (float(scales[2]), float(scales[3]))
        return torch.nn.functional.interpolate(x, scale_factor=factors, mode="bicubic", align_corners=False)

    @staticmethod
    def symbolic(g, x, scales):
        roi = g.op("Constant", value_t=torch.tensor([], dtype=torch.float32))
        return g.op(
            "Resize",
            x,
            roi,
            scales,
            mode_s="cubic",
            coordinate_transformation_mode_s="half_pixel",
            cubic_coeff_a_f=-0.75,
            nearest_mode_s="floor",
        )


def _dynamic_pos_encoding(self, embeddings, height, width):
    import math

    num_positions = self.position_embeddings.shape[1] - 1
    grid = int(math.sqrt(num_positions))
    dim = embeddings.shape[-1]
    patch = self.config.patch_size
    rows = (height // patch).to(torch.float32) if torch.is_tensor(height) else torch.tensor(float(height // patch))
    cols = (width // patch).to(torch.float32) if torch.is_tensor(width) else torch.tensor(float(width // patch))
    # transformers returns the table unchanged when the patch grid is its own size and square.
    same = (rows == grid) & (cols == grid)
    one = torch.ones((), dtype=torch.float32)
    scale_rows = torch.where(same, one, (rows + 0.1) / math.sqrt(num_positions))
    scale_cols = torch.where(same, one, (cols + 0.1) / math.sqrt(num_positions))
    scales = torch.stack([one, one, scale_rows, scale_cols])
    class_pos_embed = self.position_embeddings[:, 0]
    table = self.position_embeddings[:, 1:].reshape(1, grid, grid, dim).permute(0, 3, 1, 2)
    table = _ResizeBicubicByScales.apply(table.to(torch.float32), scales)
    table = table.permute(0, 2, 3, 1).reshape(1, -1, dim)
    return torch.cat((class_pos_embed.unsqueeze(0), table), dim=1)


def _dynamic_depth_head(self, hidden_states, patch_height, patch_width):
    hidden_states = hidden_states[self.head_in_index]
    predicted_depth = self.conv1(hidden_states)
    predicted_depth = torch.nn.functional.interpolate(
        predicted_depth,
        size=(patch_height * self.patch_size, patch_width * self.patch_size),
        mode="bilinear",
        align_corners=True,
    )
    predicted_depth = self.conv2(predicted_depth)
    predicted_depth = self.activation1(predicted_depth)
    predicted_depth = self.conv3(predicted_depth)
    predicted_depth = self.activation2(predicted_depth) * self.max_depth
    return predicted_depth.squeeze(dim=1)


@contextlib.contextmanager
def export_rewrites():
    from diffusers.models.attention_processor import Attention
    from transformers.models.clip import modeling_clip
    from transformers.models.depth_anything import modeling_depth_anything
    from transformers.models.dinov2 import modeling_dinov2

    original_scores = Attention.get_attention_scores
    original_causal = modeling_clip._create_4d_causal_attention_mask
    original_pos = modeling_dinov2.Dinov2Embeddings.interpolate_pos_encoding
    original_head = modeling_depth_anything.DepthAnythingDepthEstimationHead.forward
    Attention.get_attention_scores = _plain_attention_scores
    torch.Tensor.repeat_interleave = _repeat_interleave_by_expand
    modeling_clip._create_4d_causal_attention_mask = _constant_causal_mask
    modeling_dinov2.Dinov2Embeddings.interpolate_pos_encoding = _dynamic_pos_encoding
    modeling_depth_anything.DepthAnythingDepthEstimationHead.forward = _dynamic_depth_head
    try:
        yield
    finally:
        Attention.get_attention_scores = original_scores
        torch.Tensor.repeat_interleave = _original_repeat_interleave
        modeling_clip._create_4d_causal_attention_mask = original_causal
        modeling_dinov2.Dinov2Embeddings.interpolate_pos_encoding = original_pos
        modeling_depth_anything.DepthAnythingDepthEstimationHead.forward = original_head
