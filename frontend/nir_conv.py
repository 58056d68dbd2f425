"""NIR Conv2d / SumPool2d / AvgPool2d / Flatten -> snnc Conv2D / AvgPool2D, with the layout change.

NIR (like PyTorch) orders a 3-D population channels first, (C, H, W); snnc reads Conv2D/AvgPool2D
populations channels last, (H, W, C), neuron (y, x, c) at index (y*W + x)*C + c. Imported 3-D
populations are declared (H, W, C); dense chains touching them have their weights permuted
(`nir_order`), and a Flatten (a C-order reshape) is then a no-op on NIR's flat index.

What snnc's connectivities cannot express is an error naming the node and the parameter: unequal
strides, pool padding. A bias (one per filter) is a constant current into the population.
Padding is "valid", "same" where that is the same computation, else the numbers themselves
(`padding = (1, 1)`); dilation and groups other than 1 are Conv2D's own arguments. The GeNN backend
refuses the last two and numeric padding at `snnc check`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from snnc.ir.connectivity import KINDS
from snnc.ir.diagnostics import Diagnostic, DiagnosticError

CONV = "Conv2d"
POOLS = ("SumPool2d", "AvgPool2d")


def nir_error(message: str, hint: str | None = None) -> DiagnosticError:
    return DiagnosticError(Diagnostic("E-NIR", message, hint=hint))


def snnc_shape(nir_shape: tuple[int, ...]) -> tuple[int, ...]:
    """(C, H, W) -> (H, W, C); anything else -> one flat axis."""
    if len(nir_shape) == 3:
        c, h, w = nir_shape
        return (h, w, c)
    return (math.prod(nir_shape),)


def nir_order(nir_shape: tuple[int, ...]) -> np.ndarray:
    """perm[i] = the NIR (C-order) flat index of snnc neuron i."""
    n = math.prod(nir_shape)
    if len(nir_shape) != 3:
        return np.arange(n)
    return np.arange(n).reshape(nir_shape).transpose(1, 2, 0).ravel()


def _pair(node_name: str, what: str, value: Any) -> tuple[int, int]:
    a = np.asarray(value).ravel()
    if a.size not in (1, 2) or not np.all(a == np.round(a)):
        raise nir_error(f"NIR node '{node_name}': {what} must be an integer or a pair, not {value!r}")
    return (int(a[0]), int(a[-1]))


@dataclass
class Window:
    """A Conv2D or AvgPool2D connection: snnc connectivity args, the kernel, the output shape."""

    kind: str  # "conv2d" | "avg_pool2d"
    args: dict[str, Any]
    out_shape: tuple[int, int, int]  # NIR order (C, H, W)
    kernel: np.ndarray | None = None  # conv2d: [kh, kw, C / groups, F] (snnc's layout)
    gain: float = 1.0  # SumPool2d: the window area (snnc's AvgPool2D averages)
    notes: list[str] = field(default_factory=list)
    bias: np.ndarray | None = None  # conv2d: one per filter, added at every position

    def neuron_bias(self, channels_last: bool) -> np.ndarray | None:
        """The bias per output neuron: (H, W, C) order (snnc's) or (C, H, W) (NIR's flat index)."""
        if self.bias is None:
            return None
        f, oh, ow = self.out_shape
        return np.tile(self.bias, oh * ow) if channels_last else np.repeat(self.bias, oh * ow)


def _stride(name: str, value: Any) -> int:
    sh, sw = _pair(name, "stride", value)
    if sh != sw or sh < 1:
        raise nir_error(
            f"NIR node '{name}': stride ({sh}, {sw}) is not supported",
            "snnc's Conv2D/AvgPool2D take one positive stride for both axes",
        )
    return sh


def _padding(name: str, node, hw: tuple[int, int], window: dict[str, Any]) -> str | tuple[int, int]:  # noqa: ANN001
    """NIR's symmetric padding -> "valid", "same" when snnc's "same" is the same computation, else
    the pair itself (snnc's Conv2D takes PyTorch/NIR padding as numbers, on the C backend).
    `window`: the Conv2D args without padding (kernel, stride, dilation)."""
    conv, pad, stride = KINDS["conv2d"], node.padding, window["stride"]
    span = conv.span(window)
    if isinstance(pad, str):
        if pad == "valid":
            return "valid"
        if stride != 1:
            raise nir_error(f"NIR node '{name}': padding 'same' with stride {stride} is not defined")
        pads = ((span[0] - 1) // 2, (span[1] - 1) // 2)
    else:
        pads = _pair(name, "padding", pad)
    if pads == (0, 0):
        return "valid"
    if min(pads) < 0:
        raise nir_error(f"NIR node '{name}': padding {pads} is negative")
    same = {**window, "filters": 1, "padding": "same"}
    same_pads = conv.padding(same, (*hw, 1))
    same_out = conv.output_shape(same, (*hw, 1))
    for size, k, p, (same_pad, _), out in zip(hw, span, pads, same_pads, same_out[:2], strict=True):
        if ((size + 2 * p - k) // stride + 1, p) != (out, same_pad):
            return pads
    return "same"


def conv_window(name: str, node, in_shape: tuple[int, ...]) -> Window:  # noqa: ANN001
    """A NIR Conv2d reading a (C, H, W) population; its weight is [F, C / groups, kh, kw]."""
    w = np.asarray(node.weight, np.float64)
    if w.ndim != 4:
        raise nir_error(
            f"NIR node '{name}': Conv2d weight has shape {w.shape}, expected (out, in / groups, kH, kW)"
        )
    if len(in_shape) != 3:
        raise nir_error(
            f"NIR node '{name}': Conv2d needs a (C, H, W) input, but its input has shape {in_shape}"
        )
    c, h, wd = in_shape
    groups = int(node.groups)
    if groups < 1 or w.shape[0] % groups:
        raise nir_error(f"NIR node '{name}': groups = {groups} does not divide its {w.shape[0]} filters")
    dil = _pair(name, "dilation", node.dilation)
    if min(dil) < 1:
        raise nir_error(f"NIR node '{name}': dilation = {dil} must be at least 1")
    if w.shape[1] * groups != c:
        raise nir_error(
            f"NIR node '{name}': weight takes {w.shape[1]} input channels"
            + (f" per group ({groups} groups)" if groups != 1 else "")
            + f", the input has {c}"
        )
    if node.input_shape is not None and tuple(int(s) for s in np.ravel(node.input_shape)) != (h, wd):
        raise nir_error(
            f"NIR node '{name}': input_shape {tuple(np.ravel(node.input_shape))} but its input is {(h, wd)}"
        )
    bias = None if node.bias is None else np.asarray(node.bias, np.float64).reshape(-1)
    if bias is not None and bias.size == 1:
        bias = np.full(w.shape[0], bias[0])
    if bias is not None and bias.size != w.shape[0]:
        raise nir_error(f"NIR node '{name}': bias has {bias.size} values for {w.shape[0]} filters")
    window: dict[str, Any] = {
        "kernel": (int(w.shape[2]), int(w.shape[3])),
        "stride": _stride(name, node.stride),
    }
    if dil != (1, 1):
        window["dilation"] = dil
    padding = _padding(name, node, (h, wd), window)
    args = {"filters": int(w.shape[0]), **window, "padding": padding}
    if groups != 1:
        args["groups"] = groups
    out = KINDS["conv2d"].output_shape(args, (h, wd, c))
    if out is None:
        raise nir_error(
            f"NIR node '{name}': kernel {window['kernel']} (dilation {dil}) is larger than the input {(h, wd)}"
        )
    oh, ow, f = out
    bias = bias if bias is not None and np.any(bias) else None
    return Window("conv2d", args, (f, oh, ow), kernel=w.transpose(2, 3, 1, 0).copy(), bias=bias)


def pool_window(name: str, node, in_shape: tuple[int, ...]) -> Window:  # noqa: ANN001
    """A NIR SumPool2d/AvgPool2d reading a (C, H, W) population."""
    kind = type(node).__name__
    if len(in_shape) != 3:
        raise nir_error(
            f"NIR node '{name}': {kind} needs a (C, H, W) input, but its input has shape {in_shape}"
        )
    c, h, wd = in_shape
    pool = _pair(name, "kernel_size", node.kernel_size)
    stride = _stride(name, node.stride)
    pad = _pair(name, "padding", node.padding)
    if pad != (0, 0):
        raise nir_error(
            f"NIR node '{name}': {kind} padding {pad} is not supported", "snnc's AvgPool2D does not pad"
        )
    args = {"pool": pool, "stride": stride}
    out = KINDS["avg_pool2d"].output_shape(args, (h, wd, c)) if min(pool) >= 1 else None
    if out is None:
        raise nir_error(f"NIR node '{name}': kernel_size {pool} does not fit the input {(h, wd)}")
    gain = float(pool[0] * pool[1]) if kind == "SumPool2d" else 1.0
    return Window("avg_pool2d", args, (out[2], out[0], out[1]), gain=gain)


def window(name: str, node, in_shape: tuple[int, ...]) -> Window:  # noqa: ANN001
    return (
        conv_window(name, node, in_shape)
        if type(node).__name__ == CONV
        else pool_window(name, node, in_shape)
    )


def connectivity_text(win: Window, weight_file: str | None, extra: str = "") -> str:
    """The `.snn` connectivity call of a window; `extra` (", delay = 1.0 ms") is appended inside."""
    a = win.args
    if win.kind == "conv2d":
        kh, kw = a["kernel"]
        pad = a["padding"]
        pad_text = f'"{pad}"' if isinstance(pad, str) else f"({pad[0]}, {pad[1]})"
        more = f", dilation = ({a['dilation'][0]}, {a['dilation'][1]})" if "dilation" in a else ""
        more += f", groups = {a['groups']}" if "groups" in a else ""
        return (
            f"Conv2D(filters = {a['filters']}, kernel = ({kh}, {kw}), stride = {a['stride']}, "
            f'padding = {pad_text}{more}, weight = File("{weight_file}"){extra})'
        )
    ph, pw = a["pool"]
    return f"AvgPool2D(pool = ({ph}, {pw}), stride = {a['stride']}{extra})"
