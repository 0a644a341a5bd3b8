"""Writes PNGs in every 8-bit colour type with Pillow (an encoder independent of ours) plus the
RGBA pixels they hold, so png.test.ts checks our decoder against another implementation.

Run: /usr/bin/python3 test-support/testdata/make_png_samples.py
"""

import json
import pathlib
import random

from PIL import Image, PngImagePlugin

HERE = pathlib.Path(__file__).resolve().parent
random.seed(7)
W, H = 13, 7  # odd sizes catch stride mistakes
rgba = [(random.randrange(256), random.randrange(256), random.randrange(256), random.randrange(256)) for _ in range(W * H)]
base = Image.new("RGBA", (W, H))
base.putdata(rgba)

samples = {}
for name, image in {
    "rgba": base,
    "rgb": base.convert("RGB"),
    "grey": base.convert("L"),
    "grey_alpha": base.convert("LA"),
    "palette": base.convert("RGB").quantize(colors=16),  # Pillow writes 4-bit indices
    "bilevel": base.convert("1"),  # 1-bit grey
    "grey16": base.convert("L").point(lambda v: v * 257, "I"),  # 16-bit grey
}.items():
    info = PngImagePlugin.PngInfo()
    info.add_text("Comment", "made by Pillow")
    info.add_itxt("prompt", "a café at dusk, 夕暮れ")
    path = HERE / f"{name}.png"
    image.save(path, pnginfo=info)
    reread = Image.open(path)
    if reread.mode in ("I", "I;16"):  # Pillow clips 16-bit grey when converting: keep the high byte
        reread = reread.point(lambda v: v / 256).convert("L")
    samples[name] = [list(px) for px in reread.convert("RGBA").getdata()]
(HERE / "png_samples.json").write_text(json.dumps({"width": W, "height": H, "pixels": samples}) + "\n")
print("wrote", len(samples), "samples")
