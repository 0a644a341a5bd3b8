"""Runs ONNX graphs on the CPU: with the onnxruntime Python package when it is installed (a normal
machine, see requirements.txt), otherwise through onnxruntime-node (`run_onnx.mjs`, this project's
development machines, whose Python has no onnxruntime)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Dict, List, Sequence, Tuple

import numpy as np

HERE = Path(__file__).resolve().parent

Run = Tuple[str, Dict[str, np.ndarray], Sequence[str]]  # (model path, feeds, output names)


def backend() -> str:
    try:
        import onnxruntime  # noqa: F401

        return "onnxruntime"
    except ImportError:
        return "onnxruntime-node"


def run_many(runs: List[Run]) -> List[Dict[str, np.ndarray]]:
    if backend() == "onnxruntime":
        return _run_python(runs)
    return _run_node(runs)


def run(model: str, feeds: Dict[str, np.ndarray], outputs: Sequence[str]) -> Dict[str, np.ndarray]:
    return run_many([(model, feeds, outputs)])[0]


def _run_python(runs: List[Run]) -> List[Dict[str, np.ndarray]]:
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    sessions = {}
    results = []
    for model, feeds, outputs in runs:
        if model not in sessions:
            sessions[model] = ort.InferenceSession(model, options, providers=["CPUExecutionProvider"])
        values = sessions[model].run(list(outputs), feeds)
        results.append(dict(zip(outputs, values)))
    return results


def _run_node(runs: List[Run]) -> List[Dict[str, np.ndarray]]:
    node = shutil.which("node")
    if node is None:
        raise RuntimeError("neither the onnxruntime Python package nor node (with onnxruntime-node) is available")
    with tempfile.TemporaryDirectory(prefix="kandinsky-onnx-") as tmp:
        job = {"runs": []}
        for i, (model, feeds, outputs) in enumerate(runs):
            inputs = {}
            for name, value in feeds.items():
                path = os.path.join(tmp, f"{i}-in-{name}.npy")
                np.save(path, np.ascontiguousarray(value))
                inputs[name] = path
            job["runs"].append(
                {
                    "model": os.path.abspath(model),
                    "inputs": inputs,
                    "outputs": {name: os.path.join(tmp, f"{i}-out-{name}.npy") for name in outputs},
                }
            )
        job_path = os.path.join(tmp, "job.json")
        with open(job_path, "w") as f:
            json.dump(job, f)
        completed = subprocess.run([node, str(HERE / "run_onnx.mjs"), job_path], capture_output=True, text=True)
        if completed.returncode != 0:
            raise RuntimeError(f"run_onnx.mjs failed:\n{completed.stderr[-4000:]}")
        return [{name: np.load(path) for name, path in spec["outputs"].items()} for spec in job["runs"]]
