"""Writes the smoke-test graph the app and the e2e harness run on every backend.

y = Sigmoid(x @ W + b) with x: float32[2, 3], W: float32[3, 4], b: float32[4]. Small enough to
check by hand, yet it exercises a MatMul, a broadcast Add and an elementwise op on the GPU.
The weights are also written to JSON so tests compute the expected output independently of ORT.

Run: /usr/bin/python3 models/smoke/make_smoke_model.py   (needs the `onnx` package)
"""

import json
import pathlib

import onnx
from onnx import TensorProto, helper, numpy_helper
import numpy as np

HERE = pathlib.Path(__file__).resolve().parent

W = np.array([[0.5, -1.0, 2.0, 0.25], [1.5, 0.75, -0.5, -2.0], [-1.25, 0.1, 0.3, 1.0]], dtype=np.float32)
B = np.array([0.1, -0.2, 0.3, -0.4], dtype=np.float32)

graph = helper.make_graph(
    nodes=[
        helper.make_node("MatMul", ["x", "W"], ["xw"]),
        helper.make_node("Add", ["xw", "b"], ["logits"]),
        helper.make_node("Sigmoid", ["logits"], ["y"]),
    ],
    name="smoke_matmul_sigmoid",
    inputs=[helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 3])],
    outputs=[helper.make_tensor_value_info("y", TensorProto.FLOAT, [2, 4])],
    initializer=[numpy_helper.from_array(W, "W"), numpy_helper.from_array(B, "b")],
)
model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], producer_name="kandinsky-web")
model.ir_version = 8
onnx.checker.check_model(model)
onnx.save(model, HERE / "matmul_sigmoid.onnx")
(HERE / "matmul_sigmoid.json").write_text(json.dumps({"W": W.tolist(), "b": B.tolist()}, indent=2) + "\n")
print("wrote", HERE / "matmul_sigmoid.onnx")
