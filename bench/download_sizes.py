"""Download bytes of the real Kandinsky 2.2 text->image set at each precision preset, as JSON on stdout.

The shipped presets (fp32, fp16, int8, int4) come from models/export/size_table.py, which
instantiates the published configurations on the meta device and applies precision.py's rules.
Two presets that the export tool does not produce yet are computed with the same walk, to show what
it would take to reach the 2.0 GB goal:

  int4-conv     int4 as shipped, plus every Conv2d weight of >= 4096 elements as 4-bit blocks of 32
                along (in_channels x kH x kW) with a float32 scale per block (0.625 bytes/parameter)
  int4-conv-f16 the same with float16 block scales and every non-quantised tensor in float16
                (0.5625 bytes/parameter; biases and norms at 2 bytes)

    . /work/refenv/env.sh && /usr/bin/python3 bench/download_sizes.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "models" / "export"))

from torch import nn  # noqa: E402

import architectures as arch  # noqa: E402
import size_table  # noqa: E402
from precision import INT4_BLOCK, MIN_QUANT_ELEMENTS  # noqa: E402

TEXT_TO_IMAGE = ["text_encoder", "prior", "unet", "movq_decoder"]


def proposed_bytes(source: str, parts) -> dict:
    model = arch._build_on_meta(source, arch.FULL)
    modules = [getattr(model, p) for p in parts] if parts else [model]
    sizes = {"int4-conv": 0, "int4-conv-f16": 0}
    seen = set()
    for root in modules:
        for module in root.modules():
            for name, p in module.named_parameters(recurse=False):
                if id(p) in seen:
                    continue
                seen.add(id(p))
                n = p.numel()
                big = name == "weight" and n >= MIN_QUANT_ELEMENTS
                if big and isinstance(module, (nn.Linear, nn.Conv2d)):
                    blocks = -(-n // INT4_BLOCK)
                    sizes["int4-conv"] += n // 2 + 4 * blocks
                    sizes["int4-conv-f16"] += n // 2 + 2 * blocks
                elif big and isinstance(module, nn.Embedding):
                    sizes["int4-conv"] += n + 4 * p.shape[0]
                    sizes["int4-conv-f16"] += n + 2 * p.shape[0]
                else:
                    sizes["int4-conv"] += 4 * n
                    sizes["int4-conv-f16"] += 2 * n
    return sizes


def main() -> None:
    components = {}
    for component, source, parts in size_table.COMPONENTS:
        if component not in TEXT_TO_IMAGE:
            continue
        row = size_table.component_bytes(source, parts)
        row.update(proposed_bytes(source, parts))
        components[component] = row
    presets = ["fp32", "fp16", "int8", "int4", "int4-conv", "int4-conv-f16"]
    totals = {p: sum(components[c][p] for c in TEXT_TO_IMAGE) for p in presets}
    json.dump({"components": components, "textToImage": totals, "presets": presets}, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
