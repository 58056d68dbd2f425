"""An ONNX model -> the chain of layers `snnc convert` turns into populations and projections.

A convertible model is one path from its input to its output: linear ops (Gemm, MatMul with an Add,
Conv, AveragePool, Flatten/Reshape) between ReLUs. Each ReLU ends a `Layer` (its ops become one
projection into a population of integrate-and-fire neurons) and the ops after the last ReLU feed the
output layer. Identity and Dropout (inference: identity) pass through; a final Softmax is dropped
(it keeps the arg max). Anything else, a branch, or a MaxPool where the method cannot take one, is an
E-ONNX error naming the node.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from snnc.frontend import onnx_ops as ops
from snnc.frontend.onnx_ops import Op, Shape, node_name, onnx_error

PASS_THROUGH = ("Identity", "Dropout")
SUPPORTED = (
    "Gemm",
    "MatMul",
    "Add",
    "Conv",
    "AveragePool",
    "Flatten",
    "Reshape",
    "Relu",
    "Softmax",
    *PASS_THROUGH,
)


@dataclass
class Layer:
    """The linear ops between two activations, and whether a ReLU follows (False: the output)."""

    ops: list[Op]
    relu: tuple[str, str] | None  # ("Relu", node name), or None for the output layer
    extra: list[tuple[str, str]] = field(default_factory=list)  # nodes dropped into this layer (Softmax, ...)

    @property
    def in_shape(self) -> Shape:
        return self.ops[0].in_shape

    @property
    def out_shape(self) -> Shape:
        return self.ops[-1].out_shape

    def forward(self, x: np.ndarray) -> np.ndarray:
        y = ops.chain_forward(self.ops, x)
        return np.maximum(y, 0.0) if self.relu else y

    @property
    def bias(self) -> np.ndarray | None:
        return ops.chain_bias(self.ops)

    @property
    def nodes(self) -> list[tuple[str, str]]:
        out = [n for op in self.ops for n in op.nodes]
        return out + ([self.relu] if self.relu else []) + self.extra


@dataclass
class Model:
    input_name: str
    input_shape: Shape  # ONNX order, without the batch axis
    layers: list[Layer]

    def activations(self, x: np.ndarray) -> list[np.ndarray]:
        """Each layer's output (the ANN's ReLU activations, then the output layer's values)."""
        out = []
        for layer in self.layers:
            x = layer.forward(x)
            out.append(x)
        return out


def read_model(path: Path):  # noqa: ANN201
    """The parsed and checked ONNX ModelProto, or an E-ONNX error saying why not."""
    try:
        import onnx
    except ImportError:
        raise onnx_error("ONNX conversion needs the 'onnx' package", "pip install 'snnc[convert]'") from None
    if not path.is_file():
        raise onnx_error(f"no such file: {path}")
    try:
        model = onnx.load(str(path))
        onnx.checker.check_model(model)
    except Exception as e:  # noqa: BLE001 - protobuf and the checker raise many kinds for a bad file
        raise onnx_error(
            f"cannot read '{path}' as an ONNX model ({type(e).__name__}: {str(e).strip()[:300]})"
        ) from None
    return model


def _constants(graph) -> dict[str, np.ndarray]:  # noqa: ANN001
    from onnx import numpy_helper

    values = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    for node in graph.node:
        if node.op_type == "Constant":
            values[node.output[0]] = numpy_helper.to_array(ops.attributes(node)["value"])
    return values


def _input(graph, constants: dict) -> tuple[str, Shape]:  # noqa: ANN001
    inputs = [i for i in graph.input if i.name not in constants]
    if len(inputs) != 1:
        raise onnx_error(
            f"the ONNX graph has {len(inputs)} data inputs ({', '.join(i.name for i in inputs)})",
            "snnc convert takes a network with one input",
        )
    dims = inputs[0].type.tensor_type.shape.dim
    shape = tuple(int(d.dim_value) for d in dims[1:])
    if len(dims) not in (2, 4) or any(s <= 0 for s in shape):
        raise onnx_error(
            f"ONNX input '{inputs[0].name}' has shape {[d.dim_value or d.dim_param for d in dims]}",
            "snnc convert takes (batch, features) or (batch, channels, height, width) with fixed sizes",
        )
    return inputs[0].name, shape


def to_layers(model, allow_max_pool: bool = False) -> Model:  # noqa: ANN001
    """Walk the one path from the input to the output; see the module docstring."""
    graph = model.graph
    constants = _constants(graph)
    name, shape = _input(graph, constants)
    nodes = [n for n in graph.node if n.op_type != "Constant"]
    for node in nodes:
        if node.op_type not in SUPPORTED:
            hint = (
                "rate-coded neurons have no max; use AveragePool (or a method that takes MaxPool)"
                if node.op_type == "MaxPool" and not allow_max_pool
                else "snnc convert maps Gemm, MatMul(+Add), Conv, AveragePool, Flatten, Reshape and Relu"
            )
            raise onnx_error(
                f"ONNX node '{node_name(node)}' has type {node.op_type}, which snnc cannot convert", hint
            )
    readers: dict[str, list] = {}
    for node in nodes:
        for i in node.input:
            if i and i not in constants:
                readers.setdefault(i, []).append(node)
    outputs = [o.name for o in graph.output]
    if len(outputs) != 1:
        raise onnx_error(
            f"the ONNX graph has {len(outputs)} outputs", "snnc convert takes a network with one output"
        )
    layers: list[Layer] = []
    pending: list[Op] = []
    extra: list[tuple[str, str]] = []
    current, cur_shape = name, shape
    while current != outputs[0]:
        nxt = readers.get(current, [])
        if len(nxt) != 1:
            which = ", ".join(f"'{node_name(n)}' ({n.op_type})" for n in nxt) or "no node"
            raise onnx_error(
                f"the value '{current}' is read by {which}",
                "snnc convert takes a chain of layers: one reader per value, no branches or skip connections",
            )
        node = nxt[0]
        data = [i for i in node.input if i and i not in constants]
        if len(data) != 1:
            raise onnx_error(
                f"ONNX node '{node_name(node)}' ({node.op_type}) combines {len(data)} activations",
                "snnc convert takes a chain of layers: no residual or concatenated inputs",
            )
        if node.input[0] in constants:
            raise onnx_error(
                f"ONNX node '{node_name(node)}' ({node.op_type}) reads a constant as its first input",
                "snnc convert reads the activations as the first input (x W, not W x)",
            )
        params = [constants[i] for i in node.input[1:] if i in constants]
        kind = node.op_type
        if kind == "Add":
            if not pending or pending[-1].nodes[0][0] != "MatMul" or pending[-1].bias is not None:
                raise onnx_error(
                    f"ONNX node '{node_name(node)}' (Add) is not the bias of a MatMul",
                    "snnc convert reads Add only as MatMul + Add (a dense layer's bias)",
                )
            op = pending[-1]
            op.bias = np.broadcast_to(np.asarray(params[0], np.float64), op.out_shape).copy()
            op.nodes.append(("Add", node_name(node)))
        elif kind == "Relu":
            if not pending:
                raise onnx_error(f"ONNX node '{node_name(node)}' (Relu) follows no linear layer")
            layers.append(Layer(pending, ("Relu", node_name(node)), extra))
            pending, extra = [], []
        elif kind in PASS_THROUGH:
            extra.append((kind, node_name(node)))
        elif kind == "Softmax":
            if node.output[0] != outputs[0]:
                raise onnx_error(
                    f"ONNX node '{node_name(node)}' (Softmax) is not the last node",
                    "only a final Softmax is dropped",
                )
            extra.append((kind, node_name(node)))
        else:
            pending.append(_linear(node, cur_shape, params))
            cur_shape = pending[-1].out_shape
        current = node.output[0]
    if not pending:
        raise onnx_error(
            "the ONNX graph ends in a Relu", "snnc convert reads the last linear layer as the output"
        )
    layers.append(Layer(pending, None, extra))
    return Model(name, shape, layers)


def _linear(node, shape: Shape, params: list[np.ndarray]) -> Op:  # noqa: ANN001
    kind = node.op_type
    need = {
        "Gemm": (1, 2),
        "MatMul": (1, 1),
        "Conv": (1, 2),
        "AveragePool": (0, 0),
        "Flatten": (0, 0),
        "Reshape": (1, 1),
    }
    lo, hi = need[kind]
    if not lo <= len(params) <= hi:
        raise onnx_error(
            f"ONNX node '{node_name(node)}' ({kind}) takes {len(params)} constant inputs",
            "weights and shapes must be initializers or Constant nodes",
        )
    if kind == "Gemm":
        return ops.gemm(node, shape, params[0], params[1] if len(params) > 1 else None)
    if kind == "MatMul":
        return ops.matmul(node, shape, params[0])
    if kind == "Conv":
        return ops.conv(node, shape, params[0], params[1] if len(params) > 1 else None)
    if kind == "AveragePool":
        return ops.average_pool(node, shape)
    return ops.flatten(node, shape, params[0] if params else None)


def dense_matrix(layer_ops: list[Op]) -> np.ndarray:
    """The [pre, post] matrix of a chain of linear ops in ONNX flat order (the bias left out)."""
    n = math.prod(layer_ops[0].in_shape)
    basis = np.eye(n).reshape(n, *layer_ops[0].in_shape)
    return ops.chain_forward(layer_ops, basis, with_bias=False).reshape(n, -1)
