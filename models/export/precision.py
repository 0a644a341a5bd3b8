"""Precision conversion of exported fp32 graphs. Graph inputs and outputs stay float32 at every
precision (CONTRACT.md), so the engine is precision-agnostic.

fp16  weights and activations in float16, except LayerNormalization / InstanceNormalization
      (diffusers' GroupNorm) / Softmax, which run in float32 between Casts, and the timestep
      embedding (Sin/Cos and everything feeding them: t · freq needs float32 near t = 999).
      Needs the WebGPU feature "shader-f16".
int8  weight-only: MatMul / Gemm / Conv / Gather weights stored as int8 with a float32 scale per
      output channel (symmetric), dequantised in the graph (DequantizeLinear); compute stays fp32,
      so it runs on adapters without shader-f16.
int4  weight-only, 4-bit blocks of 32 with a scale per block (symmetric, zero point 8):
      MatMul / Gemm weights as com.microsoft MatMulNBits (which onnxruntime-web runs on WebGPU);
      Conv weights blocked along each output channel's (in_channels x kH x kW) values, unpacked in
      the graph (below); Gather weights, and Conv weights whose row length is not a multiple of 32
      (only the tiny conv_in layers), int8 like above; compute fp32.
int4c6  int4 with 6-bit convolutions: MatMul / Gemm weights 4-bit (MatMulNBits) and Gather int8 as
      at int4, and the same Conv weights as 6-bit blocks of 32 (symmetric, codes 0..63, zero point
      32), 0.8125 bytes per weight (below); their quantisation error is ~4x smaller than 4-bit's.
searched  bits chosen per weight by a plan ({initializer: 4 | 6 | 8 | 16 | 32}, quantize_plan; the
      plan comes from precision_search.py): each weight is stored as the presets store it at those
      bits (4: MatMulNBits or 4-bit Conv blocks, 6: 6-bit Conv blocks, 8: int8 per channel), or as
      float16 cast to float32 in the graph (16: the Cast reads only an initializer, so constant
      folding makes it a float32 weight at load), or float32 (32); compute stays float32, so it
      needs no shader-f16. The presets int8 / int4 / int4c6 are plans too (one bits per kind), and
      run through the same code (quantize_weights), byte for byte what they were before plans.

Block scales are stored as float16 (`<weight>__scales_f16`; 2 bytes per 32 weights instead of 4)
and cast to float32 in the graph (`Cast` -> `<weight>__scales`), because MatMulNBits takes scales
of its input's type and DequantizeLinear of its output's. The Cast reads only an initializer, so
onnxruntime's constant folding replaces it with a float32 initializer at session creation; nothing
runs per call. The scale search (`_block_quantize`) measures each candidate after rounding it to
float16, so the stored scale is the one chosen.

Conv at int4. There is no 4-bit Conv op, and the graphs are opset 17: no int4 tensor type and no
blocked DequantizeLinear, both opset 21, which onnx 1.12 here cannot write (and onnxruntime-web
1.30's WebGPU DequantizeLinear shader unpacks only 8-bit inputs). So a weight W[O, I, kH, kW]
is stored as `__q4`, uint8 [B, 16] (B = O * I*kH*kW / 32 blocks; byte j of a block holds element j
in its low nibble and element j + 16 in its high nibble), plus `__scales_f16`, float16 [B] (cast to
float32 `scales`, above), and the graph rebuilds it with:

    lo    = BitShift(BitShift(q4, 4, LEFT), 4, RIGHT)      uint8 [B, 16]  (the shift wraps in uint8)
    hi    = BitShift(q4, 4, RIGHT)                           uint8 [B, 16]
    codes = Concat(lo, hi, axis=1)                           uint8 [B, 32]
    zero  = ConstantOfShape([B], value=uint8 8)
    W     = Reshape(DequantizeLinear(codes, scales, zero, axis=0), [O, I, kH, kW])

Every input of BitShift / Concat / ConstantOfShape is an initializer, so onnxruntime's constant
folding (graph optimisation level basic and up, on by default in onnxruntime-web and -node) turns
them into one uint8 weight at session creation, on its CPU kernels, before WebGPU placement; what
remains per call is DequantizeLinear with a per-axis scale over the [blocks, 32] view (a blocked
dequantisation written with opset-13 per-axis semantics) and a Reshape, which onnxruntime-web's
WebGPU provider runs itself, exactly like the int8 preset's DequantizeLinear -> Conv. Hence: a
download of 0.5625 bytes per weight, a resident uint8 copy (1 byte per weight) in memory like int8,
and no float32 copy of the convolutions held between calls. The alternative, unpacking to float32
with plain float ops, would be folded into float32 weights: 4 bytes per weight resident, and in the
wasm heap while folding (the full-size UNet's 938 M convolution weights are 3.75 GB, at wasm32's
4 GB limit on their own), so it was not used. Were folding disabled, the unpacking would still be
correct: BitShift would run on onnxruntime's CPU kernels on every call.
Conv at 6 bits (int4c6). The same blocks of 32 along each output channel's values; codes c in
0..63, four in every three bytes, stored as three byte planes `__q6a`, `__q6b`, `__q6c`, uint8
[B, 8] each: byte j of plane k (k = 0, 1, 2) holds code 8k + j in its high 6 bits and bits 2k, 2k + 1
of code 24 + j in its low 2 bits. 24 bytes per block plus a 2-byte scale. The graph rebuilds the
codes with ops onnxruntime's CPU provider has for uint8 (BitShift, Mod, Add; checked on
onnxruntime-node and -web 1.30; the three terms of c3 share no bits, so the Adds never carry):

    c_k   = BitShift(plane_k, 2, RIGHT)                          uint8 [B, 8], codes 8k .. 8k + 7
    r_k   = Mod(plane_k, 4)                                      uint8 [B, 8]
    c3    = Add(Add(r_0, BitShift(r_1, 2, LEFT)), BitShift(r_2, 4, LEFT))    codes 24 .. 31
    codes = Concat(c_0, c_1, c_2, c3, axis=1)                    uint8 [B, 32]
    zero  = ConstantOfShape([B], value=uint8 32)
    W     = Reshape(DequantizeLinear(codes, scales, zero, axis=0), [O, I, kH, kW])

All of it reads only initializers and stays uint8, so constant folding leaves exactly int4's
per-call DequantizeLinear + Reshape and the same resident uint8 weight. The layout is chosen for
the load-time peak: onnxruntime keeps every folded intermediate until its folding pass ends, so the
peak grows with the bytes of all intermediates together. These planes make 3.5 bytes per weight of
intermediates and codes (int4's nibbles: 2.5); a 4-bit plane plus a 2-bit plane (int4's nibbles,
then 2-bit fields shifted into place and added) made 7.25, and the full-size UNet's session
creation in onnxruntime-node (CPU) peaked at 7.0 GB with them against 3.5 GB with these (int4:
2.6 GB; same codes, same outputs).

Verified: models/int4.test.ts (onnxruntime-node: outputs against fp32, no BitShift and no float16
scale left in the optimised graph) and e2e/int4.spec.ts (onnxruntime-web WebGPU in Chromium:
outputs equal to the wasm CPU provider's, and as many nodes left on the CPU as in the fp32 graph).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Dict, List, Optional, Set, Tuple

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

FP32_OPS = {"LayerNormalization", "InstanceNormalization", "GroupNormalization", "Softmax"}
TIMESTEP_OPS = {"Sin", "Cos"}
# (op type, input index) that must be float32 whatever the data type is.
FP32_ONLY_INPUTS = {("Resize", 2)}
FP16_MAX = 65504.0
MIN_QUANT_ELEMENTS = 4096  # smaller weights stay float32 (biases, norms, tiny projections)
INT4_BLOCK = 32  # the block length of every blocked preset (4-bit and 6-bit alike)
# Weight-only presets: (bits of MatMul / Gemm weights, bits of Conv weights).
QUANT_PRESETS = {"int8": (8, 8), "int4": (4, 4), "int4c6": (4, 6)}


def convert(
    graph: onnx.ModelProto, precision: str, component: str, plan: Optional[Dict[str, int]] = None
) -> Tuple[onnx.ModelProto, dict]:
    """The graph at `precision`; `searched` takes the graph's plan ({weight: bits}, quantize_plan)
    and its info gains `plan`, the float parameters at each bits ({"4": n, ...}: plan_summary)."""
    if plan is not None and precision != "searched":
        raise ValueError(f"{component}: a per-weight plan is for the searched precision, not {precision}")
    if precision == "fp32":
        return graph, {"precision": "fp32", "required_features": []}
    if precision == "fp16":
        return to_fp16(graph), {"precision": "fp16", "required_features": ["shader-f16"]}
    if precision in QUANT_PRESETS:
        linear_bits, conv_bits = QUANT_PRESETS[precision]
        return quantize_weights(graph, linear_bits, conv_bits), {"precision": precision, "required_features": []}
    if precision == "searched":
        if plan is None:
            raise ValueError(f"{component}: the searched precision needs a plan (precision_search.py)")
        sizes = {i.name: int(np.prod(i.dims)) for i in graph.graph.initializer}
        graph, applied = quantize_plan(graph, plan)
        return graph, {"precision": "searched", "required_features": [], "plan": plan_summary(applied, sizes)}
    raise ValueError(f"unknown precision {precision!r} (known: fp32, fp16, {', '.join(QUANT_PRESETS)}, searched)")


def plan_summary(applied: Dict[str, int], sizes: Dict[str, int]) -> Dict[str, int]:
    """How many parameters of the plan's weights got each bits: {"4": n, "6": n, ...}, every key of
    PLAN_BITS present (0 where none), in that order (the manifest's `plan`)."""
    summary = {str(bits): 0 for bits in PLAN_BITS}
    for name, bits in applied.items():
        summary[str(bits)] += sizes[name]
    return summary


# ---------------------------------------------------------------------------------------------
# fp16
# ---------------------------------------------------------------------------------------------


def _producers(graph: onnx.GraphProto) -> Dict[str, onnx.NodeProto]:
    return {out: node for node in graph.node for out in node.output}


def skeleton(model: onnx.ModelProto) -> onnx.ModelProto:
    """The graph with large initializers reduced to name, type and dims: shape inference needs no
    weights, and a full-size graph with them is over protobuf's 2 GB limit."""
    light = onnx.ModelProto()
    light.ir_version = model.ir_version
    light.opset_import.extend(model.opset_import)
    light.graph.name = model.graph.name
    light.graph.node.extend(model.graph.node)
    light.graph.input.extend(model.graph.input)
    light.graph.output.extend(model.graph.output)
    for init in model.graph.initializer:
        if init.HasField("raw_data") and len(init.raw_data) > 4096:
            stub = light.graph.initializer.add()
            stub.name = init.name
            stub.data_type = init.data_type
            stub.dims.extend(init.dims)
            stub.raw_data = b""
            # Shape inference reads no values from large weights; give it a correctly sized zero
            # buffer only if it ever needs one (it does not for the ops in these graphs).
        else:
            light.graph.initializer.append(init)
    return light


def _float_values(model: onnx.ModelProto) -> Set[str]:
    """Names of every float32 value (inputs, initializers, node outputs), from shape inference."""
    inferred = onnx.shape_inference.infer_shapes(skeleton(model))
    floats = set()
    for value in list(inferred.graph.value_info) + list(inferred.graph.input) + list(inferred.graph.output):
        if value.type.tensor_type.elem_type == TensorProto.FLOAT:
            floats.add(value.name)
    for init in model.graph.initializer:
        if init.data_type == TensorProto.FLOAT:
            floats.add(init.name)
    for node in model.graph.node:
        if node.op_type == "Constant":
            t = next((a.t for a in node.attribute if a.name == "value"), None)
            if t is not None and t.data_type == TensorProto.FLOAT:
                floats.add(node.output[0])
        if node.op_type == "Cast" and next(a.i for a in node.attribute if a.name == "to") == TensorProto.FLOAT:
            floats.add(node.output[0])
    return floats


def _fp32_region(graph: onnx.GraphProto, floats: Set[str]) -> Set[int]:
    """Indices of nodes that compute in float32: the kept ops and every float producer upstream
    of the timestep embedding's Sin/Cos."""
    producers = _producers(graph)
    index = {id(n): i for i, n in enumerate(graph.node)}
    region = {i for i, n in enumerate(graph.node) if n.op_type in FP32_OPS}
    stack = [n for n in graph.node if n.op_type in TIMESTEP_OPS]
    while stack:
        node = stack.pop()
        i = index[id(node)]
        if i in region and node.op_type not in TIMESTEP_OPS:
            continue
        region.add(i)
        for name in node.input:
            producer = producers.get(name)
            if producer is not None and name in floats and index[id(producer)] not in region:
                stack.append(producer)
    return region


def to_fp16(model: onnx.ModelProto) -> onnx.ModelProto:
    graph = model.graph
    floats = _float_values(model)
    region = _fp32_region(graph, floats)
    graph_inputs = {i.name for i in graph.input}
    initializers = {i.name: i for i in graph.initializer}

    # dtype each float value will have after conversion.
    dtype: Dict[str, int] = {name: TensorProto.FLOAT for name in graph_inputs if name in floats}
    for i, node in enumerate(graph.node):
        for out in node.output:
            if out in floats:
                dtype[out] = TensorProto.FLOAT if i in region else TensorProto.FLOAT16

    # Initializers: fp16 where any fp16 consumer reads them, plus an fp32 copy if needed.
    needs: Dict[str, Set[int]] = defaultdict(set)
    for i, node in enumerate(graph.node):
        for k, name in enumerate(node.input):
            if name in initializers and name in floats:
                wanted = TensorProto.FLOAT if (i in region or (node.op_type, k) in FP32_ONLY_INPUTS) else TensorProto.FLOAT16
                needs[name].add(wanted)
    new_inits = []
    for init in graph.initializer:
        wanted = needs.get(init.name)
        if not wanted or init.data_type != TensorProto.FLOAT:
            new_inits.append(init)
            continue
        array = numpy_helper.to_array(init)
        if TensorProto.FLOAT16 in wanted:
            half = numpy_helper.from_array(np.clip(array, -FP16_MAX, FP16_MAX).astype(np.float16), init.name)
            new_inits.append(half)
            dtype[init.name] = TensorProto.FLOAT16
            if TensorProto.FLOAT in wanted:
                new_inits.append(numpy_helper.from_array(array, init.name + "__fp32"))
        else:
            new_inits.append(init)
            dtype[init.name] = TensorProto.FLOAT
    del graph.initializer[:]
    graph.initializer.extend(new_inits)

    # Constant-producing nodes in the fp16 region emit fp16.
    for i, node in enumerate(graph.node):
        if i in region:
            continue
        if node.op_type in ("Constant", "ConstantOfShape"):
            for attr in node.attribute:
                if attr.name == "value" and attr.t.data_type == TensorProto.FLOAT:
                    value = numpy_helper.to_array(attr.t)
                    attr.t.CopyFrom(numpy_helper.from_array(np.clip(value, -FP16_MAX, FP16_MAX).astype(np.float16), attr.t.name))
        elif node.op_type == "Cast":
            for attr in node.attribute:
                if attr.name == "to" and attr.i == TensorProto.FLOAT:
                    attr.i = TensorProto.FLOAT16

    # Casts where a consumer needs the other float type.
    new_nodes: List[onnx.NodeProto] = []
    casts: Dict[Tuple[str, int], str] = {}

    def cast_of(name: str, to: int) -> str:
        key = (name, to)
        if key not in casts:
            if to == TensorProto.FLOAT and name in initializers and f"{name}__fp32" in {i.name for i in graph.initializer}:
                casts[key] = f"{name}__fp32"
                return casts[key]
            out = f"{name}__to_{'fp32' if to == TensorProto.FLOAT else 'fp16'}"
            new_nodes.append(helper.make_node("Cast", [name], [out], to=to, name=out))
            casts[key] = out
        return casts[key]

    for i, node in enumerate(graph.node):
        for k, name in enumerate(node.input):
            if name not in dtype:
                continue
            wanted = TensorProto.FLOAT if (i in region or (node.op_type, k) in FP32_ONLY_INPUTS) else TensorProto.FLOAT16
            if dtype[name] != wanted:
                node.input[k] = cast_of(name, wanted)
        new_nodes.append(node)

    # Graph outputs stay float32.
    for output in graph.output:
        if dtype.get(output.name) == TensorProto.FLOAT16:
            inner = output.name + "__fp16"
            for node in new_nodes:
                for k, name in enumerate(node.input):
                    if name == output.name:
                        node.input[k] = inner
                for k, name in enumerate(node.output):
                    if name == output.name:
                        node.output[k] = inner
            new_nodes.append(helper.make_node("Cast", [inner], [output.name], to=TensorProto.FLOAT, name=output.name + "__cast"))

    del graph.node[:]
    graph.node.extend(_topological(new_nodes, graph))
    del graph.value_info[:]
    return model


def _topological(nodes: List[onnx.NodeProto], graph: onnx.GraphProto) -> List[onnx.NodeProto]:
    available = {i.name for i in graph.input} | {i.name for i in graph.initializer} | {""}
    pending = list(nodes)
    ordered = []
    while pending:
        progress = []
        rest = []
        for node in pending:
            if all(name in available for name in node.input):
                progress.append(node)
                available.update(node.output)
            else:
                rest.append(node)
        if not progress:
            raise ValueError(f"graph has a cycle or a missing input near {rest[0].name}")
        ordered.extend(progress)
        pending = rest
    return ordered


# ---------------------------------------------------------------------------------------------
# Weight-only quantisation
# ---------------------------------------------------------------------------------------------

# (op type, weight input index, output-channel axis of the weight as stored)
WEIGHT_INPUTS = {("MatMul", 1): 1, ("Conv", 1): 0, ("Gather", 0): 0}


def _weight_axis(node: onnx.NodeProto, k: int) -> Optional[int]:
    if node.op_type == "Gemm" and k == 1:
        trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
        return 0 if trans_b else 1
    return WEIGHT_INPUTS.get((node.op_type, k))


def _int8_values(array: np.ndarray, axis: int) -> Tuple[np.ndarray, np.ndarray, List[int]]:
    """Symmetric int8 with one scale per index of `axis`: (q, scale, the shape scale broadcasts as)."""
    reduce_axes = tuple(a for a in range(array.ndim) if a != axis)
    scale = np.max(np.abs(array), axis=reduce_axes) / 127.0
    scale = np.where(scale == 0, 1.0, scale).astype(np.float32)
    shape = [1] * array.ndim
    shape[axis] = -1
    q = np.clip(np.round(array / scale.reshape(shape)), -127, 127).astype(np.int8)
    return q, scale, shape


def int8_relative_error(array: np.ndarray, axis: int) -> float:
    """||dequantised - array||^2 / ||array||^2 of the int8 a plan's 8 bits store."""
    q, scale, shape = _int8_values(array, axis)
    w = array.astype(np.float64)
    error = q.astype(np.float64) * scale.reshape(shape) - w
    return float(np.sum(error**2) / (np.sum(w**2) + 1e-30))


def weight_axes(model: onnx.ModelProto) -> Dict[str, int]:
    """{initializer name: the axis its int8 scales run along} of the weights weight_kinds lists."""
    kinds = weight_kinds(model)
    axes: Dict[str, int] = {}
    for node in model.graph.node:
        for k, name in enumerate(node.input):
            axis = _weight_axis(node, k)
            if name in kinds and axis is not None:
                axes.setdefault(name, axis)
    return axes


def _int8_dequantize(name: str, array: np.ndarray, axis: int) -> Tuple[List[onnx.TensorProto], onnx.NodeProto]:
    q, scale, _ = _int8_values(array, axis)
    tensors = [
        numpy_helper.from_array(q, name + "__int8"),
        numpy_helper.from_array(scale, name + "__scale"),
        numpy_helper.from_array(np.zeros_like(scale, dtype=np.int8), name + "__zero"),
    ]
    node = helper.make_node(
        "DequantizeLinear", [t.name for t in tensors], [name + "__dequant"], axis=axis, name=name + "__dequant"
    )
    return tensors, node


BLOCK_SCALE_SEARCH = np.linspace(0.8, 1.2, 9)
FP16_TINY = float(np.finfo(np.float16).smallest_subnormal)


def _block_quantize(w: np.ndarray, bits: int) -> Tuple[np.ndarray, np.ndarray]:
    """Blocks w[B, 32] -> codes uint8 [B, 32] in 0 .. 2^bits - 1 (zero point 2^(bits-1)) and a
    float16 scale per block (symmetric). The scale is the one of ±absmax/qmax x {0.8 ... 1.2}
    (qmax = 2^(bits-1) - 1), rounded to float16 as stored, with the least squared error in its
    block: the sign puts the extra negative level on the side that needs it and the factor trades
    clipping for resolution. At 4 bits this cuts the rms error by ~15% over round(w / (absmax/7))
    (Gaussian or uniform weights)."""
    qmax = 2 ** (bits - 1) - 1
    qmin = -(2 ** (bits - 1))
    w = w.astype(np.float32)
    absmax = np.max(np.abs(w), axis=1)
    absmax = np.where(absmax == 0, float(qmax), absmax).astype(np.float32)
    best_err = np.full(w.shape[0], np.inf, np.float32)
    best_scale = np.zeros(w.shape[0], np.float32)
    for factor in BLOCK_SCALE_SEARCH:
        for sign in (1.0, -1.0):
            scale = _as_fp16((sign * factor / qmax) * absmax, sign)
            q = np.clip(np.round(w / scale[:, None]), qmin, qmax)
            err = np.sum(np.square(q * scale[:, None] - w), axis=1)
            better = err < best_err
            best_err = np.where(better, err, best_err)
            best_scale = np.where(better, scale, best_scale)
    q = (np.clip(np.round(w / best_scale[:, None]), qmin, qmax) - qmin).astype(np.uint8)
    return q, best_scale.astype(np.float16)


def _as_fp16(scale: np.ndarray, sign: float) -> np.ndarray:
    """The float16 value of each scale, as float32; never 0 (a scale under float16's range, only
    for blocks of weights below ~1e-7, becomes the smallest subnormal and its codes clip)."""
    rounded = scale.astype(np.float16).astype(np.float32)
    return np.where(rounded == 0, np.float32(sign * FP16_TINY), rounded).astype(np.float32)


def _fp16_scales(name: str, scale: np.ndarray) -> Tuple[onnx.TensorProto, onnx.NodeProto, str]:
    """Block scales stored as float16 (half the bytes) and cast to the float32 the consumers
    take; the Cast reads only an initializer, so constant folding makes it a float32 initializer
    at session creation."""
    if scale.dtype != np.float16:
        raise ValueError(f"{name}: block scales must be float16, got {scale.dtype}")
    stored = numpy_helper.from_array(scale.reshape(-1), name + "__scales_f16")
    out = name + "__scales"
    return stored, helper.make_node("Cast", [stored.name], [out], to=TensorProto.FLOAT, name=out), out


INT4_SHIFT = "int4__shift4"  # the shared uint8 scalar 4 of the Conv unpacking
# The shared uint8 scalars of the Conv unpackings (shift amounts; 4 is also int4c6's modulus), by value.
SHIFTS = {2: "quant__shift2", 4: INT4_SHIFT}


def _shift(value: str, amount: int, direction: str, out: str) -> onnx.NodeProto:
    return helper.make_node("BitShift", [value, SHIFTS[amount]], [out], direction=direction, name=out)


def _int4_conv_dequantize(name: str, array: np.ndarray) -> Tuple[List[onnx.TensorProto], List[onnx.NodeProto]]:
    """W[O, ...] -> 4-bit blocks of 32 along each output channel's flattened values, unpacked to
    float32 in the graph (module docstring). The caller checks that the row length divides by 32."""
    w = array.reshape(-1, INT4_BLOCK).astype(np.float32)  # [B, 32], blocks never straddle rows
    blocks = w.shape[0]
    q, scale = _block_quantize(w, 4)
    half = INT4_BLOCK // 2
    packed = (q[:, :half] | (q[:, half:] << 4)).astype(np.uint8)  # [B, 16]
    stored_scale, cast, scales = _fp16_scales(name, scale)
    tensors = [
        numpy_helper.from_array(packed, name + "__q4"),
        stored_scale,
        numpy_helper.from_array(np.array([blocks], np.int64), name + "__blocks"),
        numpy_helper.from_array(np.array(array.shape, np.int64), name + "__shape"),
    ]
    q4, _, blocks_shape, shape = (t.name for t in tensors)
    eight = numpy_helper.from_array(np.array([8], np.uint8), "value")
    nodes = [
        cast,
        helper.make_node("BitShift", [q4, INT4_SHIFT], [name + "__lo_up"], direction="LEFT", name=name + "__lo_up"),
        helper.make_node("BitShift", [name + "__lo_up", INT4_SHIFT], [name + "__lo"], direction="RIGHT", name=name + "__lo"),
        helper.make_node("BitShift", [q4, INT4_SHIFT], [name + "__hi"], direction="RIGHT", name=name + "__hi"),
        helper.make_node("Concat", [name + "__lo", name + "__hi"], [name + "__codes"], axis=1, name=name + "__codes"),
        helper.make_node("ConstantOfShape", [blocks_shape], [name + "__zero"], value=eight, name=name + "__zero"),
        helper.make_node(
            "DequantizeLinear", [name + "__codes", scales, name + "__zero"], [name + "__blocks_f32"], axis=0,
            name=name + "__dequant_blocks",
        ),
        helper.make_node("Reshape", [name + "__blocks_f32", shape], [name + "__dequant"], name=name + "__dequant"),
    ]
    return tensors, nodes


def _conv6_dequantize(name: str, array: np.ndarray) -> Tuple[List[onnx.TensorProto], List[onnx.NodeProto]]:
    """W[O, ...] -> 6-bit blocks of 32 (codes 0..63, zero point 32) along each output channel's
    flattened values, as three byte planes unpacked in the graph (module docstring, "Conv at 6
    bits"). The caller checks that the row length divides by 32."""
    w = array.reshape(-1, INT4_BLOCK).astype(np.float32)  # [B, 32], blocks never straddle rows
    q, scale = _block_quantize(w, 6)
    return _conv6_graph(name, q, scale, array.shape)


def _conv6_graph(name: str, q: np.ndarray, scale: np.ndarray, shape_of_w) -> Tuple[List[onnx.TensorProto], List[onnx.NodeProto]]:
    """The planes, scales and unpacking nodes of 6-bit codes q [B, 32] with float16 scales [B]."""
    blocks = q.shape[0]
    quarter = INT4_BLOCK // 4
    codes = q.reshape(blocks, 4, quarter)  # codes[:, k, j] = code 8k + j
    planes = [
        ((codes[:, k] << 2) | ((codes[:, 3] >> (2 * k)) & 3)).astype(np.uint8) for k in range(3)
    ]  # each [B, 8]
    stored_scale, cast, scales = _fp16_scales(name, scale)
    tensors = [numpy_helper.from_array(plane, f"{name}__q6{'abc'[k]}") for k, plane in enumerate(planes)] + [
        stored_scale,
        numpy_helper.from_array(np.array([blocks], np.int64), name + "__blocks"),
        numpy_helper.from_array(np.array(shape_of_w, np.int64), name + "__shape"),
    ]
    plane_names = [t.name for t in tensors[:3]]
    blocks_shape, shape = tensors[4].name, tensors[5].name
    zero_point = numpy_helper.from_array(np.array([32], np.uint8), "value")
    nodes = [cast]
    for k, plane in enumerate(plane_names):
        nodes.append(_shift(plane, 2, "RIGHT", f"{name}__c{k}"))  # codes 8k .. 8k + 7
        nodes.append(
            helper.make_node("Mod", [plane, SHIFTS[4]], [f"{name}__r{k}"], name=f"{name}__r{k}")
        )  # 2 bits of codes 24 .. 31
    nodes += [
        _shift(name + "__r1", 2, "LEFT", name + "__r1s"),
        _shift(name + "__r2", 4, "LEFT", name + "__r2s"),
        helper.make_node("Add", [name + "__r0", name + "__r1s"], [name + "__r01"], name=name + "__r01"),
        helper.make_node("Add", [name + "__r01", name + "__r2s"], [name + "__c3"], name=name + "__c3"),
        helper.make_node(
            "Concat", [f"{name}__c{k}" for k in range(4)], [name + "__codes"], axis=1, name=name + "__codes"
        ),
        helper.make_node("ConstantOfShape", [blocks_shape], [name + "__zero"], value=zero_point, name=name + "__zero"),
        helper.make_node(
            "DequantizeLinear", [name + "__codes", scales, name + "__zero"], [name + "__blocks_f32"], axis=0,
            name=name + "__dequant_blocks",
        ),
        helper.make_node("Reshape", [name + "__blocks_f32", shape], [name + "__dequant"], name=name + "__dequant"),
    ]
    return tensors, nodes


def _matmul_nbits(node: onnx.NodeProto, weight: np.ndarray, name: str, bias: Optional[str]) -> Tuple[List[onnx.TensorProto], List[onnx.NodeProto]]:
    """MatMul(A, W[K, N]) -> com.microsoft MatMulNBits with 4-bit symmetric blocks (zero point 8)
    and float16-stored block scales."""
    k_dim, n_dim = weight.shape
    blocks = -(-k_dim // INT4_BLOCK)
    padded = np.zeros((blocks * INT4_BLOCK, n_dim), np.float32)
    padded[:k_dim] = weight
    w = padded.T.reshape(n_dim * blocks, INT4_BLOCK)  # [N x blocks, block]
    q, scale = _block_quantize(w, 4)
    q = q.reshape(n_dim, blocks, INT4_BLOCK)
    packed = (q[..., 0::2] | (q[..., 1::2] << 4)).astype(np.uint8)  # low nibble first
    stored_scale, cast, scales = _fp16_scales(name, scale)
    tensors = [numpy_helper.from_array(packed, name + "__q4"), stored_scale]
    out = node.output[0] if bias is None else node.output[0] + "__nobias"
    nodes = [
        cast,
        helper.make_node(
            "MatMulNBits",
            [node.input[0], tensors[0].name, scales],
            [out],
            domain="com.microsoft",
            K=k_dim,
            N=n_dim,
            bits=4,
            block_size=INT4_BLOCK,
            name=node.name + "__nbits",
        ),
    ]
    if bias is not None:
        nodes.append(helper.make_node("Add", [out, bias], [node.output[0]], name=node.name + "__bias"))
    return tensors, nodes


def int4_conv_weight(op_type: str, k: int, shape) -> bool:
    """Whether the int4 presets store this (already size-eligible) weight as blocks (4-bit at int4,
    6-bit at int4c6): a Conv weight whose per-output-channel length (in_channels x kernel) is a
    multiple of the block."""
    if op_type != "Conv" or k != 1 or len(shape) < 3:
        return False
    row = int(np.prod(shape[1:]))
    return row % INT4_BLOCK == 0


def quantize_weights(model: onnx.ModelProto, linear_bits: int, conv_bits: int) -> onnx.ModelProto:
    """Weight-only quantisation. linear_bits: 8 (int8 per channel) or 4 (MatMulNBits) for MatMul /
    Gemm weights; conv_bits: 8, 6 or 4 for Conv weights (6 and 4 as blocks of 32 where the row
    length allows, else int8). Gather weights are int8 at every preset."""
    if linear_bits not in (4, 8) or conv_bits not in (4, 6, 8):
        raise ValueError(f"unsupported bits: MatMul {linear_bits} (4 or 8), Conv {conv_bits} (4, 6 or 8)")

    def bits_of(name: str, kind: str) -> int:
        return {"linear": linear_bits, "conv": conv_bits}.get(kind, 8)

    model, _ = _quantize(model, bits_of, microsoft_opset=linear_bits == 4)
    return model


# Bits a plan may give each kind of weight (PLAN_BITS: all of them). 16 is a float16 initializer
# cast to float32 in the graph (folded at load: compute stays float32), 32 leaves it as it is.
PLAN_BITS = (4, 6, 8, 16, 32)
PLAN_BITS_BY_KIND = {"linear": (4, 8, 16, 32), "conv": (4, 6, 8, 16, 32), "gather": (8, 16, 32)}


def _float_weights(model: onnx.ModelProto):
    """(node, weight name, element count, whether it has the weight's axis) for every float32
    initializer a MatMul / Gemm / Conv / Gather reads as its weight (WEIGHT_INPUTS)."""
    initializers = {i.name: i for i in model.graph.initializer}
    for node in model.graph.node:
        for k, name in enumerate(node.input):
            init = initializers.get(name)
            axis = _weight_axis(node, k)
            if axis is None or init is None or init.data_type != TensorProto.FLOAT:
                continue
            yield node, name, int(np.prod(init.dims)), axis < len(init.dims)


def weight_kinds(model: onnx.ModelProto) -> Dict[str, str]:
    """{initializer name: 'linear' | 'conv' | 'gather'} of every weight a plan may name: the float32
    initializers of >= MIN_QUANT_ELEMENTS that MatMul / Gemm / Conv / Gather read as their weight."""
    kinds: Dict[str, str] = {}
    for node, name, elements, has_axis in _float_weights(model):
        if elements < MIN_QUANT_ELEMENTS or not has_axis:
            continue
        kind = {"MatMul": "linear", "Gemm": "linear", "Conv": "conv", "Gather": "gather"}[node.op_type]
        if kinds.setdefault(name, kind) != kind:
            raise ValueError(f"{name} is read both as a {kinds[name]} and a {kind} weight")
    return kinds


def small_weights(model: onnx.ModelProto) -> Set[str]:
    """The float32 initializers MatMul / Gemm / Conv / Gather read as their weight that are too small
    to quantise (< MIN_QUANT_ELEMENTS): a plan may store them as float16 (16) or leave them (32).
    On the tiny sets they are a large share of the bytes (the tiny text encoder's 32 x 32 linears);
    at full size, a few hundred kilobytes."""
    return {name for _, name, elements, _ in _float_weights(model) if elements < MIN_QUANT_ELEMENTS}


def quantize_plan(model: onnx.ModelProto, plan: Dict[str, int]) -> Tuple[onnx.ModelProto, Dict[str, int]]:
    """Weight-only quantisation with bits chosen per weight: plan = {initializer name: 4 | 6 | 8 |
    16 | 32}. Linear (MatMul / Gemm) weights: 4 (MatMulNBits), 8, 16, 32; Conv weights: 4 or 6
    (blocks of 32), 8, 16, 32; Gather weights: 8, 16, 32; weights too small to quantise
    (small_weights): 16, 32. Where a row does not allow blocks (a Conv row length not a multiple of
    32; a MatMul weight MatMulNBits cannot take) 4 and 6 become 8, as at the presets. Weights the
    plan leaves out stay float32. Returns the graph and the bits each weight got, {name: bits}.
    Names that are not weights, and bits a kind cannot have, are errors."""
    kinds = weight_kinds(model)
    small = small_weights(model) & set(plan)
    for name in small:
        if plan[name] not in (16, 32):
            raise ValueError(f"plan: {name!r} is a weight under {MIN_QUANT_ELEMENTS} elements; its bits are (16, 32), got {plan[name]!r}")
    for name, bits in plan.items():
        if name in small:
            continue
        if name not in kinds:
            raise ValueError(f"plan: {name!r} is not a weight this graph quantises (MatMul/Gemm/Conv/Gather, >= {MIN_QUANT_ELEMENTS} elements)")
        if bits not in PLAN_BITS_BY_KIND[kinds[name]]:
            raise ValueError(f"plan: {name!r} is a {kinds[name]} weight; its bits are {PLAN_BITS_BY_KIND[kinds[name]]}, got {bits!r}")
    return _quantize(model, lambda name, kind: plan.get(name, 32), microsoft_opset=False, small=small)


def _fp16_weight(name: str, array: np.ndarray) -> Tuple[List[onnx.TensorProto], List[onnx.NodeProto]]:
    """A weight stored as float16 and cast to float32 in the graph (folded at load)."""
    stored = numpy_helper.from_array(np.clip(array, -FP16_MAX, FP16_MAX).astype(np.float16), name + "__f16")
    out = name + "__from_f16"
    return [stored], [helper.make_node("Cast", [stored.name], [out], to=TensorProto.FLOAT, name=out)]


def _quantize(
    model: onnx.ModelProto, bits_of, microsoft_opset: bool, small: Set[str] = frozenset()
) -> Tuple[onnx.ModelProto, Dict[str, int]]:
    """The weight-only quantisation both the presets and plans run: bits_of(name, kind) gives each
    eligible weight's bits (kind 'linear' | 'conv' | 'gather'), and of the weights in `small` (under
    MIN_QUANT_ELEMENTS, 16 or 32 bits only); returns the graph and the bits each weight got."""
    graph = model.graph
    initializers = {i.name: i for i in graph.initializer}
    consumers: Dict[str, List[Tuple[onnx.NodeProto, int]]] = defaultdict(list)
    for node in graph.node:
        for k, name in enumerate(node.input):
            consumers[name].append((node, k))

    new_nodes: List[onnx.NodeProto] = []
    new_inits: List[onnx.TensorProto] = []
    replaced: Set[str] = set()
    dequantized: Dict[str, str] = {}
    shifts_added: Set[str] = set()
    applied: Dict[str, int] = {}
    used_nbits = False

    def eligible(name: str) -> bool:
        init = initializers.get(name)
        if init is None or init.data_type != TensorProto.FLOAT:
            return False
        return int(np.prod(init.dims)) >= MIN_QUANT_ELEMENTS or name in small

    for node in graph.node:
        # 4 bits: plain 2-D weights of MatMul (and Gemm without transposed A) become MatMulNBits.
        if (
            node.op_type in ("MatMul", "Gemm") and eligible(node.input[1]) and len(consumers[node.input[1]]) == 1
            and bits_of(node.input[1], "linear") == 4
        ):
            attrs = {a.name: a for a in node.attribute}
            weight = numpy_helper.to_array(initializers[node.input[1]])
            plain_gemm = node.op_type == "Gemm" and attrs.get("transA", helper.make_attribute("transA", 0)).i == 0 and (
                attrs.get("alpha") is None or attrs["alpha"].f == 1.0
            ) and (attrs.get("beta") is None or attrs["beta"].f == 1.0)
            if weight.ndim == 2 and weight.shape[1] % 2 == 0 and (node.op_type == "MatMul" or plain_gemm):
                if node.op_type == "Gemm" and attrs.get("transB") is not None and attrs["transB"].i == 1:
                    weight = weight.T
                bias = node.input[2] if node.op_type == "Gemm" and len(node.input) > 2 and node.input[2] else None
                tensors, nodes = _matmul_nbits(node, weight, node.input[1], bias)
                new_inits.extend(tensors)
                new_nodes.extend(nodes)
                replaced.add(node.input[1])
                applied[node.input[1]] = 4
                used_nbits = True
                continue
        for k, name in enumerate(node.input):
            axis = _weight_axis(node, k)
            if axis is None or not eligible(name):
                continue
            if name not in dequantized:
                array = numpy_helper.to_array(initializers[name])
                if axis >= array.ndim:
                    continue
                kind = {"Conv": "conv", "Gather": "gather"}.get(node.op_type, "linear")
                bits = bits_of(name, kind)
                if bits == 32:
                    applied[name] = 32
                    dequantized[name] = name
                    continue
                if bits == 16:
                    tensors, deqs = _fp16_weight(name, array)
                    applied[name] = 16
                elif bits in (4, 6) and int4_conv_weight(node.op_type, k, array.shape):
                    unpack = _int4_conv_dequantize if bits == 4 else _conv6_dequantize
                    tensors, deqs = unpack(name, array)
                    applied[name] = bits
                    for amount, shift_name in SHIFTS.items():  # shared scalars, added at first use
                        used = any(shift_name in d.input[1:] for d in deqs)
                        if used and shift_name not in shifts_added:
                            new_inits.append(numpy_helper.from_array(np.array(amount, np.uint8), shift_name))
                            shifts_added.add(shift_name)
                else:
                    tensors, deq = _int8_dequantize(name, array, axis)
                    deqs = [deq]
                    applied[name] = 8
                new_inits.extend(tensors)
                new_nodes.extend(deqs)
                dequantized[name] = deqs[-1].output[0]
            node.input[k] = dequantized[name]
        new_nodes.append(node)

    still_used = {name for node in new_nodes for name in node.input}
    kept = [i for i in graph.initializer if i.name in still_used]
    del graph.initializer[:]
    graph.initializer.extend(kept + new_inits)
    del graph.node[:]
    graph.node.extend(_topological(new_nodes, graph))
    if (microsoft_opset or used_nbits) and not any(o.domain == "com.microsoft" for o in model.opset_import):
        model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    return model, applied
