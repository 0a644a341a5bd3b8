"""Download size of each real Kandinsky 2.2 component at each precision, computed from the published
configurations (architectures.FULL) without allocating weights, with the same rules as precision.py:

fp32 4 bytes/parameter; fp16 2; int8: Linear / Conv / Embedding weights of >= 4096 elements as int8
plus a float32 scale per output channel, the rest float32; int4: Linear weights, and Conv weights whose
in_channels x kH x kW is a multiple of 32, as 4-bit blocks of 32 with a float16 scale per block
(0.5625 bytes/parameter), the other Conv weights and Embedding weights int8, the rest float32;
int4c6: as int4, but those Conv weights as 6-bit blocks of 32 with a float16 scale per block
(0.8125 bytes/parameter). Graph structure (a few hundred KB per graph) is not included.

    . /work/refenv/env.sh && /usr/bin/python3 models/export/size_table.py
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from torch import nn  # noqa: E402

import architectures as arch  # noqa: E402
from precision import INT4_BLOCK, MIN_QUANT_ELEMENTS, int4_conv_weight  # noqa: E402

SCALE_BYTES = 2  # block scales are stored as float16
PRESETS = ("fp32", "fp16", "int8", "int4", "int4c6")

COMPONENTS = [
    ("text_encoder", "text_encoder", None),
    ("prior", "prior", None),
    ("image_encoder", "image_encoder", None),
    ("unet", "unet", None),
    ("unet_inpaint", "unet_inpaint", None),
    ("unet_depth", "unet_depth", None),
    ("movq_encoder", "movq", ("encoder", "quant_conv")),
    ("movq_decoder", "movq", ("post_quant_conv", "decoder")),
    ("depth_estimator", "depth_estimator", None),
]


def component_bytes(source: str, parts) -> dict:
    model = arch._build_on_meta(source, arch.FULL)
    modules = [getattr(model, p) for p in parts] if parts else [model]
    params = 0
    sizes = {p: 0 for p in PRESETS}
    seen = set()
    for root in modules:
        for module in root.modules():
            for name, p in module.named_parameters(recurse=False):
                if id(p) in seen:
                    continue
                seen.add(id(p))
                n = p.numel()
                params += n
                sizes["fp32"] += 4 * n
                sizes["fp16"] += 2 * n
                big = name == "weight" and n >= MIN_QUANT_ELEMENTS
                out_channels = p.shape[0]
                if big and isinstance(module, (nn.Linear, nn.Conv2d, nn.Embedding)):
                    sizes["int8"] += n + 4 * out_channels
                else:
                    sizes["int8"] += 4 * n
                if big and isinstance(module, nn.Linear) and out_channels % 2 == 0:
                    # MatMulNBits: each output's in_features padded to whole blocks
                    blocks = out_channels * -(-p.shape[1] // INT4_BLOCK)
                    sizes["int4"] += blocks * (INT4_BLOCK // 2 + SCALE_BYTES)
                    sizes["int4c6"] += blocks * (INT4_BLOCK // 2 + SCALE_BYTES)
                elif big and isinstance(module, nn.Conv2d) and int4_conv_weight("Conv", 1, p.shape):
                    blocks = n // INT4_BLOCK
                    sizes["int4"] += blocks * (INT4_BLOCK // 2 + SCALE_BYTES)  # 16 bytes of nibbles
                    sizes["int4c6"] += blocks * (INT4_BLOCK * 3 // 4 + SCALE_BYTES)  # 16 + 8 bytes of planes
                elif big and isinstance(module, (nn.Linear, nn.Conv2d, nn.Embedding)):
                    sizes["int4"] += n + 4 * out_channels
                    sizes["int4c6"] += n + 4 * out_channels
                else:
                    sizes["int4"] += 4 * n
                    sizes["int4c6"] += 4 * n
    # nn.Parameter attributes outside submodules (e.g. the prior's positional embedding) are
    # covered above via module.named_parameters(recurse=False) on the root.
    return {"params": params, **sizes}


def main() -> None:
    rows = []
    for component, source, parts in COMPONENTS:
        rows.append((component, component_bytes(source, parts)))
    gb = lambda b: f"{b / 1e9:.2f} GB" if b >= 1e9 else f"{b / 1e6:.0f} MB"  # noqa: E731
    print("| component | parameters | " + " | ".join(PRESETS) + " |")
    print("| --- | ---: | " + " | ".join("---:" for _ in PRESETS) + " |")
    for component, r in rows:
        print(f"| {component} | {r['params'] / 1e6:,.1f} M | " + " | ".join(gb(r[p]) for p in PRESETS) + " |")
    text2img = ["text_encoder", "prior", "unet", "movq_decoder"]
    sums = {p: sum(r[p] for c, r in rows if c in text2img) for p in PRESETS}
    print("| **text-to-image set** (text encoder, prior, unet, MoVQ decoder) | | " + " | ".join(gb(sums[p]) for p in PRESETS) + " |")
    print("exact bytes, text-to-image set: " + ", ".join(f"{p} {sums[p]:,}" for p in PRESETS))


if __name__ == "__main__":
    main()
