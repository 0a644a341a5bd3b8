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


@contextlib.contextmanager
def export_rewrites():
    from diffusers.models.attention_processor import Attention
    from transformers.models.clip import modeling_clip

    original_scores = Attention.get_attention_scores
    original_causal = modeling_clip._create_4d_causal_attention_mask
    Attention.get_attention_scores = _plain_attention_scores
    torch.Tensor.repeat_interleave = _repeat_interleave_by_expand
    modeling_clip._create_4d_causal_attention_mask = _constant_causal_mask
    try:
        yield
    finally:
        Attention.get_attention_scores = original_scores
        torch.Tensor.repeat_interleave = _original_repeat_interleave
        modeling_clip._create_4d_causal_attention_mask = original_causal
