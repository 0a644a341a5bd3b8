"""`--check`: each exported graph against its PyTorch module on sample inputs.

The torch side runs the unmodified diffusers/transformers modules (no export rewrites), so the
numbers also cover the attention and repeat_interleave rewrites. Reported per output: max abs
error, max abs reference value, and cosine similarity of the flattened tensors.
"""

from __future__ import annotations

from pathlib import Path
from typing import Dict, List

import numpy as np
import torch

from architectures import GraphSpec
from onnx_runner import run_many

SPATIAL = {"unet", "unet_inpaint", "unet_depth", "movq_decoder", "movq_encoder"}


def _sample_sets(spec: GraphSpec, model) -> List[tuple]:
    if spec.component == "depth_estimator":
        # The traced size, a square at the position-embedding grid (where transformers skips the
        # interpolation) and a taller non-square size: the graph must follow the input size.
        patch = model.config.patch_size
        grid = model.config.backbone_config.image_size // patch
        return [
            spec.sample_inputs(model, 2, seed=1),
            spec.sample_inputs(model, 1, seed=2, size_px=(grid * patch, grid * patch)),
            spec.sample_inputs(model, 1, seed=3, size_px=((grid + 2) * patch, (grid - 2) * patch)),
        ]
    if spec.component in SPATIAL:
        return [spec.sample_inputs(model, 2, seed=1), spec.sample_inputs(model, 1, seed=2, latent_hw=(8, 16))]
    return [spec.sample_inputs(model, 2, seed=1), spec.sample_inputs(model, 1, seed=2)]


def _to_numpy(value: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(value.detach().cpu().numpy())


def torch_references(spec: GraphSpec, model) -> List[tuple]:
    """Sample inputs and the unmodified torch module's outputs for them (float32 numpy)."""
    wrapper = spec.wrapper(model).eval()
    pairs = []
    for inputs in _sample_sets(spec, model):
        with torch.no_grad():
            out = wrapper(*inputs)
        out = out if isinstance(out, tuple) else (out,)
        feeds = {name: _to_numpy(value) for name, value in zip(spec.inputs, inputs)}
        pairs.append((feeds, [_to_numpy(o.float()) for o in out]))
    return pairs


def compare_graph(spec: GraphSpec, graph_path: Path, references: List[tuple]) -> Dict[str, dict]:
    """Runs the saved graph on the reference inputs; returns {output: {max_abs_err, max_abs_ref,
    cosine}}, the worst case over all sample sets."""
    results = run_many([(str(graph_path), feeds, spec.outputs) for feeds, _ in references])
    report: Dict[str, dict] = {}
    for (_, ref_outputs), got in zip(references, results):
        for name, ref in zip(spec.outputs, ref_outputs):
            actual = got[name].astype(np.float32)
            if actual.shape != ref.shape:
                raise ValueError(f"{spec.component}.{name}: shape {actual.shape}, torch {ref.shape}")
            err = float(np.max(np.abs(actual - ref)))
            a, b = actual.ravel().astype(np.float64), ref.ravel().astype(np.float64)
            cosine = float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b) + 1e-30))
            entry = report.setdefault(name, {"max_abs_err": 0.0, "max_abs_ref": 0.0, "cosine": 1.0})
            entry["max_abs_err"] = max(entry["max_abs_err"], err)
            entry["max_abs_ref"] = max(entry["max_abs_ref"], float(np.max(np.abs(ref))))
            entry["cosine"] = min(entry["cosine"], cosine)
            if not np.all(np.isfinite(actual)):
                entry["non_finite"] = True
    return report


def manifest_check(report: Dict[str, dict]) -> dict:
    """The manifest's `check` of a component (models/CONTRACT.md): the worst output of a report.
    A non-finite output counts as cosine -1 (JSON has no NaN or infinity)."""
    broken = any(r.get("non_finite") for r in report.values())
    finite_max = float(np.finfo(np.float64).max)
    return {
        # float64 rounding can put an exact match a hair above 1; the manifest's range is [-1, 1]
        "cosine": -1.0 if broken else max(-1.0, min(1.0, min(r["cosine"] for r in report.values()))),
        "maxAbsError": finite_max if broken else max(r["max_abs_err"] for r in report.values()),
        "maxAbsReference": max(r["max_abs_ref"] for r in report.values()),
    }


def format_report(component: str, report: Dict[str, dict]) -> str:
    parts = [
        f"{name}: max|err| {r['max_abs_err']:.3g} (max|ref| {r['max_abs_ref']:.3g}), cosine {r['cosine']:.7f}"
        for name, r in report.items()
    ]
    return f"{component:>14}  " + "; ".join(parts)
