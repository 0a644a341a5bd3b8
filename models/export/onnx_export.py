"""torch -> ONNX for one component, graph hygiene checks, external-data sharding and hashing."""

from __future__ import annotations

import collections
import hashlib
import os
import tempfile
from pathlib import Path
from typing import Dict, List, Tuple

import onnx
import torch
from onnx import TensorProto, numpy_helper

from architectures import GraphSpec
from export_rewrites import export_rewrites

OPSET = 17
# Ops that onnxruntime runs only on the CPU (sequence ops, control flow): a graph that has them
# would bounce tensors between GPU and CPU on every call.
FORBIDDEN_OPS = {"Loop", "If", "Scan", "SequenceEmpty", "SplitToSequence", "ConcatFromSequence", "SequenceAt"}
INLINE_LIMIT = 1024  # tensors smaller than this (bytes) stay inside the graph file
SHARD_ALIGN = 64


def export_graph(spec: GraphSpec, model: torch.nn.Module, work_dir: str, batch: int = 2) -> str:
    """Traces the wrapper with the export rewrites into `work_dir` (torch writes external data there
    for graphs over 2 GB) and returns the path; `load_exported` reads it back once the torch module
    has been released."""
    if hasattr(model, "set_default_attn_processor"):
        # torch >= 2 gives diffusers models SDPA processors, which the plain-attention rewrite
        # does not reach; the classic processors are what torch 1.13 uses anyway.
        model.set_default_attn_processor()
    wrapper = spec.wrapper(model).eval()
    sample = spec.sample_inputs(model, batch)
    path = os.path.join(work_dir, f"{spec.component}.onnx")
    with export_rewrites(), torch.no_grad():
        torch.onnx.export(
            wrapper,
            sample,
            path,
            input_names=spec.inputs,
            output_names=spec.outputs,
            dynamic_axes=spec.dynamic_axes,
            opset_version=OPSET,
            do_constant_folding=True,
        )
    graph = onnx.load(path, load_external_data=False)
    if _name_output_dims(graph, spec, wrapper, sample):
        # Only the graph structure changed: rewrite the protobuf, the external data stays.
        with open(path, "wb") as f:
            f.write(graph.SerializeToString())
    return path


def load_exported(spec: GraphSpec, path: str) -> onnx.ModelProto:
    graph = onnx.load(path, load_external_data=True)
    check_graph(graph, spec)
    return graph


DYNAMIC_AXES = {"batch", "height", "width", "height_px", "width_px", "depth_height", "depth_width"}


def _name_output_dims(graph: onnx.ModelProto, spec: GraphSpec, wrapper, sample) -> bool:
    """torch.onnx leaves generated names (e.g. 'LayerNormalization..._dim_1') on output dims it
    could not tie to an input; those dims are fixed sizes, so write the traced size instead."""
    generated = [
        (i, j)
        for i, out in enumerate(graph.graph.output)
        for j, d in enumerate(out.type.tensor_type.shape.dim)
        if d.dim_param and d.dim_param not in DYNAMIC_AXES
    ]
    if not generated:
        return False
    with torch.no_grad():
        outputs = wrapper(*sample)
    outputs = outputs if isinstance(outputs, tuple) else (outputs,)
    for i, j in generated:
        dim = graph.graph.output[i].type.tensor_type.shape.dim[j]
        dim.ClearField("dim_param")
        dim.dim_value = int(outputs[i].shape[j])
    return True


def check_graph(graph: onnx.ModelProto, spec: GraphSpec) -> Dict[str, int]:
    inputs = [i.name for i in graph.graph.input]
    outputs = [o.name for o in graph.graph.output]
    if inputs != spec.inputs or outputs != spec.outputs:
        raise ValueError(f"{spec.component}: graph I/O {inputs} -> {outputs}, contract {spec.inputs} -> {spec.outputs}")
    ops = collections.Counter(n.op_type for n in graph.graph.node)
    forbidden = sorted(set(ops) & FORBIDDEN_OPS)
    if forbidden:
        raise ValueError(f"{spec.component}: CPU-only ops in the graph: {forbidden}")
    # The baddbmm pattern builds a float [heads, Lq, Lk] tensor with ConstantOfShape on every call.
    # Small float fills (rank <= 2, e.g. diffusers' `timesteps * torch.ones(batch)`) are harmless.
    from precision import skeleton

    inferred = onnx.shape_inference.infer_shapes(skeleton(graph))
    ranks = {}
    for value in list(inferred.graph.value_info) + list(inferred.graph.input):
        dims = value.type.tensor_type.shape.dim
        if len(dims) == 1 and dims[0].HasField("dim_value"):
            ranks[value.name] = dims[0].dim_value
    for node in graph.graph.node:
        if node.op_type != "ConstantOfShape":
            continue
        value = next((a.t for a in node.attribute if a.name == "value"), None)
        is_float = value is None or value.data_type not in (TensorProto.INT64, TensorProto.INT32, TensorProto.BOOL)
        rank = ranks.get(node.input[0])
        if is_float and (rank is None or rank > 2):
            raise ValueError(
                f"{spec.component}: {node.name} builds a float tensor of rank {rank} at run time (the baddbmm "
                "pattern); export attention as MatMul -> Softmax -> MatMul"
            )
    return dict(ops)


def _tensor_bytes(tensor: TensorProto) -> bytes:
    if tensor.HasField("raw_data"):
        return tensor.raw_data
    return numpy_helper.to_array(tensor).tobytes()


def save_graph(graph: onnx.ModelProto, out_dir: Path, stem: str, shard_bytes: int) -> Tuple[Path, List[Path]]:
    """Writes `<stem>.onnx`, and when the weights exceed one shard, external-data shards
    `<stem>.onnx.data-NN` of at most `shard_bytes` each (a tensor never straddles two shards)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    graph_path = out_dir / f"{stem}.onnx"
    for old in out_dir.glob(f"{stem}.onnx.data-*"):
        old.unlink()
    large = [t for t in graph.graph.initializer if len(_tensor_bytes(t)) >= INLINE_LIMIT]
    total = sum(len(_tensor_bytes(t)) for t in large)
    shards: List[Path] = []
    if total > shard_bytes:
        current: List[bytes] = []
        size = 0

        def flush():
            nonlocal current, size
            if current:
                path = out_dir / f"{stem}.onnx.data-{len(shards):02d}"
                with open(path, "wb") as f:
                    for chunk in current:
                        f.write(chunk)
                shards.append(path)
            current, size = [], 0

        for tensor in large:
            data = _tensor_bytes(tensor)
            padding = (-size) % SHARD_ALIGN
            if size and size + padding + len(data) > shard_bytes:
                flush()
                padding = 0
            if padding:
                current.append(b"\0" * padding)
                size += padding
            location = f"{stem}.onnx.data-{len(shards):02d}"
            offset = size
            current.append(data)
            size += len(data)
            tensor.ClearField("raw_data")
            for field in ("float_data", "int32_data", "int64_data", "double_data", "uint64_data", "string_data"):
                tensor.ClearField(field)
            del tensor.external_data[:]
            tensor.data_location = TensorProto.EXTERNAL
            for key, value in (("location", location), ("offset", str(offset)), ("length", str(len(data)))):
                entry = tensor.external_data.add()
                entry.key = key
                entry.value = value
        flush()
    with open(graph_path, "wb") as f:
        f.write(graph.SerializeToString())
    return graph_path, shards


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def graph_io(graph_path: Path) -> Dict[str, List[dict]]:
    """Names, element types and symbolic shapes of a saved graph (for reports and the manifest)."""
    model = onnx.load(str(graph_path), load_external_data=False)

    def describe(values):
        out = []
        for v in values:
            t = v.type.tensor_type
            dims = [d.dim_param if d.dim_param else d.dim_value for d in t.shape.dim]
            out.append({"name": v.name, "dtype": TensorProto.DataType.Name(t.elem_type).lower(), "shape": dims})
        return out

    return {"inputs": describe(model.graph.input), "outputs": describe(model.graph.output)}
