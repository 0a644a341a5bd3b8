"""Where a quantised graph's error comes from: quantises one group of weights at a time in an fp32
graph (fake quantisation: the weights are replaced by their dequantised values, exactly what
MatMulNBits and DequantizeLinear compute with) and reports the worst cosine of its outputs against
the fp32 graph, so a publisher can see which weights a preset should keep at more bits.

    . "$REFENV/env.sh" && /usr/bin/python3 models/export/sensitivity.py models/fixtures/tiny unet
    ... --linear-bits 4 --conv-bits 6 --per-conv

Groups: the Linear (MatMul / Gemm) weights by role (timestep embedding, image-embedding
projections, the resnets' time_emb_proj, attention and the rest), the Conv weights together (or
one by one with --per-conv), then every Linear and everything. Only weights precision.py would
quantise count (>= MIN_QUANT_ELEMENTS; Conv rows a multiple of the block). Inputs: seeded random
ones of the contract's shapes at two batch sizes; the text-to-image UNet and the MoVQ decoder.
"""

from __future__ import annotations

import argparse
import copy
import json
import re
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, Tuple

import numpy as np
import onnx
from onnx import numpy_helper

sys.path.insert(0, str(Path(__file__).resolve().parent))

import precision as P  # noqa: E402
from onnx_runner import run_many  # noqa: E402

LINEAR_ROLES = [
    ("timestep embedding", re.compile(r"time_embedding\.")),
    ("image embedding into the timestep (add_embedding)", re.compile(r"add_embedding\.")),
    ("image embedding into tokens (encoder_hid_proj)", re.compile(r"encoder_hid_proj\.")),
    ("resnets' time_emb_proj", re.compile(r"time_emb_proj\.")),
]
OTHER_LINEAR = "attention and other Linear"


def _dequantised(blocks: np.ndarray, bits: int) -> np.ndarray:
    q, scale = P._block_quantize(blocks, bits)
    return (q.astype(np.float32) - 2 ** (bits - 1)) * scale.astype(np.float32)[:, None]


def fake_linear(w: np.ndarray, bits: int) -> np.ndarray:
    """W[K, N] as MatMulNBits sees it at `bits` (blocks of 32 along K per output), or int8 per
    output channel at 8 bits (precision._int8_dequantize)."""
    if bits == 8:
        scale = np.maximum(np.max(np.abs(w), axis=0), 1e-30) / 127
        return np.clip(np.round(w / scale), -127, 127) * scale
    k, n = w.shape
    blocks = -(-k // P.INT4_BLOCK)
    padded = np.zeros((blocks * P.INT4_BLOCK, n), np.float32)
    padded[:k] = w
    deq = _dequantised(padded.T.reshape(n * blocks, P.INT4_BLOCK), bits)
    return deq.reshape(n, blocks * P.INT4_BLOCK).T[:k]


def fake_conv(w: np.ndarray, bits: int) -> np.ndarray:
    """W[O, I, kH, kW] in blocks of 32 along each output channel's values."""
    if bits == 8:
        flat = w.reshape(w.shape[0], -1)
        scale = np.maximum(np.max(np.abs(flat), axis=1), 1e-30)[:, None] / 127
        return (np.clip(np.round(flat / scale), -127, 127) * scale).reshape(w.shape)
    return _dequantised(w.reshape(-1, P.INT4_BLOCK), bits).reshape(w.shape)


def groups_of(model: onnx.ModelProto, per_conv: bool) -> Dict[str, List[Tuple[str, str, bool]]]:
    """{group: [(weight name, 'linear' | 'conv', stored transposed)]}."""
    inits = {i.name: i for i in model.graph.initializer}
    groups: Dict[str, List[Tuple[str, str, bool]]] = {}
    for node in model.graph.node:
        if len(node.input) < 2 or node.input[1] not in inits:
            continue
        name = node.input[1]
        dims = list(inits[name].dims)
        if int(np.prod(dims)) < P.MIN_QUANT_ELEMENTS:
            continue
        if node.op_type in ("MatMul", "Gemm") and len(dims) == 2:
            transposed = node.op_type == "Gemm" and any(a.name == "transB" and a.i == 1 for a in node.attribute)
            role = next((label for label, pattern in LINEAR_ROLES if pattern.search(name)), OTHER_LINEAR)
            groups.setdefault(f"Linear: {role}", []).append((name, "linear", transposed))
        elif node.op_type == "Conv" and P.int4_conv_weight("Conv", 1, dims):
            groups.setdefault(f"Conv: {name}" if per_conv else "Conv", []).append((name, "conv", False))
    return groups


def with_fake_quant(model: onnx.ModelProto, weights, linear_bits: int, conv_bits: int) -> onnx.ModelProto:
    out = copy.deepcopy(model)
    inits = {i.name: i for i in out.graph.initializer}
    for name, kind, transposed in weights:
        w = numpy_helper.to_array(inits[name]).astype(np.float32)
        if kind == "linear":
            d = fake_linear(w.T if transposed else w, linear_bits)
            d = d.T if transposed else d
        else:
            d = fake_conv(w, conv_bits)
        inits[name].CopyFrom(numpy_helper.from_array(d.astype(np.float32), name))
    return out


def sample_feeds(component: str, channels: int, embed: int) -> Tuple[List[dict], str]:
    """Seeded random inputs at two batch sizes and shapes, and the output to compare."""
    rng = np.random.default_rng(0)
    feeds = []
    for batch, h, w in [(2, 8, 8), (1, 8, 16)]:
        latents = rng.standard_normal((batch, channels, h, w)).astype(np.float32)
        if component == "unet":
            timestep = np.array([999.0, 420.0][:batch], np.float32)
            embeds = rng.standard_normal((batch, embed)).astype(np.float32)
            feeds.append({"sample": latents, "timestep": timestep, "image_embeds": embeds})
        else:
            feeds.append({"latents": latents})
    return feeds, ("noise_pred" if component == "unet" else "sample")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description="Per-group quantisation sensitivity of an fp32 graph")
    parser.add_argument("set", type=Path, help="an fp32 model-set folder (manifest.json beside the graphs)")
    parser.add_argument("component", choices=["unet", "movq_decoder"])
    parser.add_argument("--linear-bits", type=int, choices=[4, 8], default=4)
    parser.add_argument("--conv-bits", type=int, choices=[4, 6, 8], default=6)
    parser.add_argument("--per-conv", action="store_true", help="each Conv weight alone instead of all together")
    args = parser.parse_args(argv)
    manifest = json.loads((args.set / "manifest.json").read_text(encoding="utf-8"))
    dims = manifest["dims"]
    model = onnx.load(str(args.set / f"{args.component}.onnx"), load_external_data=True)
    groups = groups_of(model, args.per_conv)
    linear = [w for g, ws in groups.items() if g.startswith("Linear") for w in ws]
    every = [w for ws in groups.values() for w in ws]
    tests = list(groups.items()) + [("every Linear", linear), ("everything", every)]
    feeds, output = sample_feeds(args.component, dims["latentChannels"], dims["imageEmbedDim"])
    params = {i.name: int(np.prod(i.dims)) for i in model.graph.initializer}
    with tempfile.TemporaryDirectory(prefix="kandinsky-sensitivity-") as work:
        reference = str(Path(work) / "fp32.onnx")
        onnx.save(model, reference)
        paths = []
        for i, (_, weights) in enumerate(tests):
            path = str(Path(work) / f"q{i}.onnx")
            onnx.save(with_fake_quant(model, weights, args.linear_bits, args.conv_bits), path)
            paths.append(path)
        runs = [(reference, f, [output]) for f in feeds] + [(p, f, [output]) for p in paths for f in feeds]
        results = run_many(runs)
    n = len(feeds)
    print(f"{args.component}: Linear at {args.linear_bits} bits, Conv at {args.conv_bits} bits; worst cosine vs fp32")
    for i, (label, weights) in enumerate(tests):
        worst = 1.0
        for j in range(n):
            a = results[n + i * n + j][output].ravel().astype(np.float64)
            b = results[j][output].ravel().astype(np.float64)
            worst = min(worst, float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-30)))
        count = sum(params[name] for name, _, _ in weights)
        print(f"  {label:58s} {count / 1e6:9.3f} M parameters   cosine {worst:.6f}")


if __name__ == "__main__":
    main()
