"""Random weights that quantise like trained ones: heavy tails and outlier input channels.

The random sets (`--random-weights tiny | full-size`) draw weights from the frameworks' inits:
uniform (PyTorch's default Linear / Conv init, diffusers) or Gaussian (transformers' CLIP init, std
0.02). Both are light-tailed (excess kurtosis -1.2 and 0): every block of 32 has about the same
range, which is the easy case for block quantisation. Trained weights are not like that, and a
precision search tuned on easy weights would choose too few bits. `realistic(module)` rewrites
every Linear and Conv weight of a module in place, seeded by the parameter's name:

1. Heavy tails. The values are redrawn from a Student-t distribution with NU = 6 degrees of
   freedom, scaled to the tensor's own standard deviation (so activations keep their scale and
   the untrained networks stay numerically tame). Its excess kurtosis is 6 / (NU - 4) = 3, the
   Laplace distribution's, which is how quantisation papers commonly model trained weights
   (Banner et al. 2019, "Post training 4-bit quantization of convolutional networks for
   rapid-deployment" (ACIQ), fit trained tensors with Laplace or Gaussian priors; Chmiel et al.
   2020, "Robust Quantization: One Model to Rule Them All", start from trained weights being
   bell-shaped with heavy tails and measure their kurtosis). The exact kurtosis of Kandinsky 2.2's
   CLIP and UNet weights was not measured here (no real weights on this machine), and the papers'
   per-layer figures could not be checked from this machine either: 3 is a stated assumption,
   recorded as EXCESS_KURTOSIS.
2. Outlier input channels. A fraction OUTLIER_FRACTION of each weight's input channels (at least
   one) is multiplied by OUTLIER_SCALE before the tensor is rescaled to its standard deviation.
   The shape of the figure follows Dettmers et al. 2022, "LLM.int8(): 8-bit Matrix Multiplication
   for Transformers at Scale": a few systematic feature dimensions carry values far larger than
   the rest (its abstract: isolating them keeps "more than 99.9%" of values in 8-bit, i.e. the
   outlier dimensions are under 0.1%; magnitudes of about 20x the others are quoted in summaries of
   the paper, not verified from the paper here). Those are activation outliers in large language
   models; diffusion models show both weight and activation outliers (Q-Diffusion, Li et al. 2023;
   SVDQuant, Li et al. 2024, which motivate their methods by them; their numbers not verified
   here). Weights that read an outlier feature are, after training, commonly the ones that carry
   its scale, so an input-channel outlier in the weight is the hard case for blocks laid along the
   input dimension, as MatMulNBits' and the Conv blocks of precision.py are. OUTLIER_FRACTION =
   0.5% (0.1% rounds to zero channels in every layer under 1000 inputs; with the at-least-one rule
   the tiny layers, 32 to 128 inputs, get 1 outlier channel, 0.8 to 3%) and OUTLIER_SCALE = 4.
   The scale is not a published weight figure (the quoted ~20x is about activations): it is chosen
   so that, with the tails above, a full-size layer's excess kurtosis comes out at about 7 to 10
   (measured with `statistics`: [1280, 320] 7.5, [320, 2560] 9.3; largest |w| 20 to 30 standard
   deviations), heavier than the Laplace tails alone. A tiny layer, where one channel is 1/32 of
   its inputs, comes out higher on its own ([128, 32]: 39); over whole graphs the medians are 10.8
   (tiny UNet, 52 weights) and 13.5 (tiny MoVQ decoder, 35), the largest |w| 13 to 14 standard
   deviations. At a scale of 10 the full-size layer shapes above measured 95 to
   140 and the tiny ones up to 290, which no published figure here supports.

Weights of fewer than MIN_ELEMENTS values (biases are not touched at all; small projections) keep
their init: they are never quantised (precision.MIN_QUANT_ELEMENTS).

The rewrite is deterministic: the same module, built with the same seed, gets the same weights, so
the export tool (graphs) and quality.py (the torch reference) see the same numbers.
"""

from __future__ import annotations

import hashlib
from typing import Dict

import numpy as np

NU = 6.0
EXCESS_KURTOSIS = 6.0 / (NU - 4.0)
OUTLIER_FRACTION = 0.005
OUTLIER_SCALE = 4.0
MIN_ELEMENTS = 4096


def _seed(name: str) -> int:
    return int.from_bytes(hashlib.sha256(name.encode("utf-8")).digest()[:8], "little")


def realistic_array(weight: np.ndarray, name: str, input_axis: int = 1) -> np.ndarray:
    """A weight of the same shape and standard deviation, with Student-t tails and outlier input
    channels along `input_axis` (1 for torch Linear [out, in] and Conv [out, in, kH, kW])."""
    std = float(np.std(weight))
    if weight.size < MIN_ELEMENTS or std == 0.0:
        return weight
    rng = np.random.default_rng(_seed(name))
    values = rng.standard_t(NU, size=weight.shape) / np.sqrt(NU / (NU - 2.0))
    inputs = weight.shape[input_axis]
    count = max(1, int(round(OUTLIER_FRACTION * inputs)))
    channels = rng.choice(inputs, size=count, replace=False)
    scale = np.ones(inputs)
    scale[channels] = OUTLIER_SCALE
    shape = [1] * weight.ndim
    shape[input_axis] = inputs
    values = values * scale.reshape(shape)
    values = values * (std / np.std(values)) + float(np.mean(weight))
    return values.astype(weight.dtype)


def realistic(module, prefix: str = ""):
    """Rewrites the module's Linear and Conv weights in place (module docstring); returns it."""
    import torch

    with torch.no_grad():
        for name, sub in module.named_modules():
            if isinstance(sub, (torch.nn.Linear, torch.nn.Conv1d, torch.nn.Conv2d)) and sub.weight is not None:
                full = f"{prefix}{name}.weight"
                array = sub.weight.detach().cpu().numpy()
                sub.weight.copy_(torch.from_numpy(realistic_array(array, full)))
    return module


def statistics(weight: np.ndarray) -> Dict[str, float]:
    """Excess kurtosis and the largest |w| over the standard deviation (for the README's table)."""
    x = weight.astype(np.float64).ravel()
    x = x - x.mean()
    var = float(np.mean(x**2))
    return {"excessKurtosis": float(np.mean(x**4) / var**2 - 3.0), "maxOverStd": float(np.max(np.abs(x)) / np.sqrt(var))}
