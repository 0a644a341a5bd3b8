"""Download bytes of the real Kandinsky 2.2 text->image set at each precision preset, as JSON on stdout.

The figures are models/export/size_table.py's: the published configurations instantiated on the
meta device, with precision.py's rules applied (weights only; graph structure, a few hundred KB per
graph, is not included).

    . /work/refenv/env.sh && /usr/bin/python3 bench/download_sizes.py
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "models" / "export"))

import size_table  # noqa: E402

TEXT_TO_IMAGE = ["text_encoder", "prior", "unet", "movq_decoder"]
PRESETS = list(size_table.PRESETS)


def main() -> None:
    components = {
        component: size_table.component_bytes(source, parts)
        for component, source, parts in size_table.COMPONENTS
        if component in TEXT_TO_IMAGE
    }
    totals = {p: sum(components[c][p] for c in TEXT_TO_IMAGE) for p in PRESETS}
    json.dump({"components": components, "textToImage": totals, "presets": PRESETS}, sys.stdout, indent=2)
    print()


if __name__ == "__main__":
    main()
