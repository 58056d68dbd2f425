"""The ONNX operators `snnc convert` understands, each as a numpy function on a batch in ONNX layout.

A converted network is a chain ReLU -> linear ops -> ReLU -> ...; each linear op here is read from
its ONNX node into an `Op`: its output shape, its numpy forward (batch first, channels first, as
ONNX computes it) and its bias. The ANN's activations (for threshold balancing and the tests) and the
dense matrix of a chain of ops both come from these forwards, so there is one reading of each
operator. Anything an op cannot express is an E-ONNX error naming the node.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from snnc.ir.diagnostics import Diagnostic, DiagnosticError

Shape = tuple[int, ...]


def onnx_error(message: str, hint: str | None = None) -> DiagnosticError:
    return DiagnosticError(Diagnostic("E-ONNX", message, hint=hint))


@dataclass
class Op:
    """One linear ONNX node (or a MatMul with the Add after it)."""

    nodes: list[tuple[str, str]]  # (op type, node name)
    in_shape: Shape  # without the batch axis, ONNX order ((C, H, W) or (n,))
    out_shape: Shape
    forward: Callable[[np.ndarray], np.ndarray]  # [batch, *in_shape] -> [batch, *out_shape], no bias
    bias: np.ndarray | None = None  # [*out_shape] or None
    window: tuple[str, dict[str, Any], np.ndarray | None] | None = None  # snnc Conv2D/AvgPool2D form


def node_name(node) -> str:  # noqa: ANN001
    """How errors and the mapping table name a node: its name, else its type and outputs."""
    return node.name or f"{node.op_type}({', '.join(node.output)})"


def attributes(node) -> dict[str, Any]:  # noqa: ANN001
    from onnx import helper

    return {a.name: helper.get_attribute_value(a) for a in node.attribute}


def gemm(node, a_shape: Shape, b: np.ndarray, c: np.ndarray | None) -> Op:  # noqa: ANN001
    """Gemm: Y = alpha A B' + beta C, A [batch, n] (transA = 0)."""
    name, att = node_name(node), attributes(node)
    if att.get("transA", 0):
        raise onnx_error(
            f"ONNX node '{name}' (Gemm): transA = 1 is not supported", "A is the batch of inputs"
        )
    w = np.asarray(b, np.float64)
    if att.get("transB", 0):
        w = w.T
    w = w * float(att.get("alpha", 1.0))
    return _matmul(node, a_shape, w, None if c is None else np.asarray(c, np.float64) * att.get("beta", 1.0))


def _matmul(node, a_shape: Shape, w: np.ndarray, bias: np.ndarray | None) -> Op:  # noqa: ANN001
    name = node_name(node)
    if w.ndim != 2:
        raise onnx_error(f"ONNX node '{name}' ({node.op_type}): weight has shape {w.shape}, expected 2-D")
    if len(a_shape) != 1 or a_shape[0] != w.shape[0]:
        raise onnx_error(
            f"ONNX node '{name}' ({node.op_type}): weight {w.shape} does not take an input of shape {a_shape}",
            "a Flatten or Reshape to (batch, features) goes before it",
        )
    if bias is not None:
        bias = np.broadcast_to(np.asarray(bias, np.float64), (w.shape[1],)).copy()
    return Op([(node.op_type, name)], a_shape, (w.shape[1],), lambda x: x @ w, bias)


def matmul(node, a_shape: Shape, b: np.ndarray) -> Op:  # noqa: ANN001
    return _matmul(node, a_shape, np.asarray(b, np.float64), None)


def _pairs(name: str, kind: str, att: dict, key: str, default: list[int], n: int) -> list[int]:
    value = [int(v) for v in att.get(key, default)]
    if len(value) != n:
        raise onnx_error(f"ONNX node '{name}' ({kind}): {key} = {value} is not a 2-D value")
    return value


def _window_common(node, in_shape: Shape, kernel: tuple[int, int]) -> tuple[int, tuple[int, int]]:  # noqa: ANN001
    """(stride, (pad_h, pad_w)) of a 2-D Conv/AveragePool, or an error naming what snnc lacks.
    `kernel`: the window's extent on the input (a dilated Conv's span)."""
    name, kind, att = node_name(node), node.op_type, attributes(node)
    if len(in_shape) != 3:
        raise onnx_error(
            f"ONNX node '{name}' ({kind}) needs a (C, H, W) input, but its input has shape {in_shape}"
        )
    if att.get("auto_pad", b"NOTSET") not in (b"NOTSET", "NOTSET", b"VALID", "VALID"):
        raise onnx_error(
            f"ONNX node '{name}' ({kind}): auto_pad = {att['auto_pad']!r} is not supported",
            "export with explicit pads",
        )
    sh, sw = _pairs(name, kind, att, "strides", [1, 1], 2)
    if sh != sw or sh < 1:
        raise onnx_error(
            f"ONNX node '{name}' ({kind}): strides ({sh}, {sw}) are not supported",
            "snnc's Conv2D/AvgPool2D take one positive stride for both axes",
        )
    top, left, bottom, right = _pairs(name, kind, att, "pads", [0, 0, 0, 0], 4)
    if (top, left) != (bottom, right) or min(top, left) < 0:
        raise onnx_error(
            f"ONNX node '{name}' ({kind}): pads {[top, left, bottom, right]} are not symmetric",
            "snnc pads as PyTorch does: the same rows above and below, the same columns left and right",
        )
    _, h, w = in_shape
    if h + 2 * top < kernel[0] or w + 2 * left < kernel[1]:
        raise onnx_error(
            f"ONNX node '{name}' ({kind}): the window {kernel} is larger than the padded input "
            f"{(h + 2 * top, w + 2 * left)}"
        )
    return sh, (top, left)


def _patches(
    x: np.ndarray,
    kernel: tuple[int, int],
    stride: int,
    pad: tuple[int, int],
    dilation: tuple[int, int] = (1, 1),
) -> np.ndarray:
    """[batch, C, H, W] -> [batch, OH, OW, C, kh, kw] windows (zero padding), taps `dilation` apart."""
    x = np.pad(x, ((0, 0), (0, 0), (pad[0], pad[0]), (pad[1], pad[1])))
    (kh, kw), (dh, dw) = kernel, dilation
    span = (dh * (kh - 1) + 1, dw * (kw - 1) + 1)
    oh = (x.shape[2] - span[0]) // stride + 1
    ow = (x.shape[3] - span[1]) // stride + 1
    win = np.lib.stride_tricks.sliding_window_view(x, span, axis=(2, 3))[..., ::dh, ::dw]
    return win[:, :, : (oh - 1) * stride + 1 : stride, : (ow - 1) * stride + 1 : stride].transpose(
        0, 2, 3, 1, 4, 5
    )


def conv(node, in_shape: Shape, weight: np.ndarray, bias: np.ndarray | None) -> Op:  # noqa: ANN001
    """Conv (2-D): weight [F, C / group, kh, kw]. `dilations` and `group` become Conv2D's own
    `dilation` and `groups` (filter f reads the C / group input channels of its group, as ONNX's)."""
    name, att = node_name(node), attributes(node)
    w = np.asarray(weight, np.float64)
    if w.ndim != 4:
        raise onnx_error(
            f"ONNX node '{name}' (Conv): weight has shape {w.shape}; snnc converts 2-D Conv only"
        )
    f, groups = int(w.shape[0]), int(att.get("group", 1))
    if groups < 1 or f % groups:
        raise onnx_error(f"ONNX node '{name}' (Conv): group = {groups} does not divide its {f} filters")
    dh, dw = _pairs(name, "Conv", att, "dilations", [1, 1], 2)
    if min(dh, dw) < 1:
        raise onnx_error(f"ONNX node '{name}' (Conv): dilations {[dh, dw]} must be at least 1")
    kernel = (int(w.shape[2]), int(w.shape[3]))
    span = (dh * (kernel[0] - 1) + 1, dw * (kernel[1] - 1) + 1)
    stride, pad = _window_common(node, in_shape, span)
    if w.shape[1] * groups != in_shape[0]:
        raise onnx_error(
            f"ONNX node '{name}' (Conv): weight takes {w.shape[1]} channels"
            + (f" per group ({groups} groups)" if groups != 1 else "")
            + f", the input has {in_shape[0]}"
        )
    _, h, wd = in_shape
    oh, ow = (h + 2 * pad[0] - span[0]) // stride + 1, (wd + 2 * pad[1] - span[1]) // stride + 1
    per_group = w.reshape(groups, f // groups, *w.shape[1:])  # [G, F / G, C / G, kh, kw]

    def forward(x: np.ndarray) -> np.ndarray:
        win = _patches(x, kernel, stride, pad, (dh, dw))  # [b, OH, OW, C, kh, kw]
        win = win.reshape(*win.shape[:3], groups, -1, *kernel)  # [b, OH, OW, G, C / G, kh, kw]
        return np.einsum("bhwgckl,gfckl->bgfhw", win, per_group).reshape(x.shape[0], f, oh, ow)

    args: dict[str, Any] = {"filters": f, "kernel": kernel, "stride": stride, "padding": pad}
    if (dh, dw) != (1, 1):
        args["dilation"] = (dh, dw)
    if groups != 1:
        args["groups"] = groups
    b = None if bias is None else np.asarray(bias, np.float64)[:, None, None] * np.ones((f, oh, ow))
    return Op(
        [("Conv", name)], in_shape, (f, oh, ow), forward, b, ("conv2d", args, w.transpose(2, 3, 1, 0).copy())
    )


def average_pool(node, in_shape: Shape) -> Op:  # noqa: ANN001
    name, att = node_name(node), attributes(node)
    kernel = tuple(_pairs(name, "AveragePool", att, "kernel_shape", [], 2))
    stride, pad = _window_common(node, in_shape, kernel)
    if pad != (0, 0):
        raise onnx_error(
            f"ONNX node '{name}' (AveragePool): pads are not supported", "snnc's AvgPool2D does not pad"
        )
    if att.get("ceil_mode", 0):
        raise onnx_error(f"ONNX node '{name}' (AveragePool): ceil_mode = 1 is not supported")
    c, h, w = in_shape
    out = (c, (h - kernel[0]) // stride + 1, (w - kernel[1]) // stride + 1)

    def forward(x: np.ndarray) -> np.ndarray:
        return _patches(x, kernel, stride, (0, 0)).mean(axis=(4, 5)).transpose(0, 3, 1, 2)

    return Op(
        [("AveragePool", name)],
        in_shape,
        out,
        forward,
        None,
        ("avg_pool2d", {"pool": kernel, "stride": stride}, None),
    )


def flatten(node, in_shape: Shape, target: np.ndarray | None = None) -> Op:  # noqa: ANN001
    """Flatten (axis 1) or a Reshape to (batch, features): a C-order reshape of each example."""
    name, n = node_name(node), math.prod(in_shape)
    if node.op_type == "Flatten" and int(attributes(node).get("axis", 1)) != 1:
        raise onnx_error(f"ONNX node '{name}' (Flatten): only axis = 1 (keep the batch axis) is supported")
    if target is not None:
        t = [int(v) for v in np.ravel(target)]
        if len(t) != 2 or t[0] not in (0, 1, -1) or t[1] not in (-1, n):
            raise onnx_error(
                f"ONNX node '{name}' (Reshape): shape {t} is not a flatten to (batch, {n})",
                "snnc converts Reshape only as a Flatten that keeps the batch axis",
            )
    return Op([(node.op_type, name)], in_shape, (n,), lambda x: x.reshape(x.shape[0], -1))


def chain_forward(ops: list[Op], x: np.ndarray, with_bias: bool = True) -> np.ndarray:
    for op in ops:
        x = op.forward(x)
        if with_bias and op.bias is not None:
            x = x + op.bias
    return x


def chain_bias(ops: list[Op]) -> np.ndarray | None:
    """The bias of a chain of linear ops (each op's bias pushed through the ops after it)."""
    if all(op.bias is None for op in ops):
        return None
    zero = np.zeros((1, *ops[0].in_shape))
    return chain_forward(ops, zero)[0]
