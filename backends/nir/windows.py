"""snnc Conv2D / AvgPool2D projections -> NIR Conv2d / SumPool2d / AvgPool2d nodes.

snnc's layouts are channels last ((H, W, C) populations, [kh, kw, C, F] kernels); NIR's are channels
first ((C, H, W), [F, C, kh, kw]). An AvgPool2D whose synapse `gain` is the window area is NIR's
SumPool2d (that is how `snnc import` writes one); gain 1 is AvgPool2d. snnc's "same" padding is
exported as NIR's symmetric padding when the two compute the same thing, else it is an error.
"""

from __future__ import annotations

import numpy as np
from snnc.ir.connectivity import KINDS, explicit_padding, window_dilation, window_groups
from snnc.ir.diagnostics import Diagnostic, DiagnosticError
from snnc.ir.model import Projection


def _error(message: str, hint: str | None = None) -> DiagnosticError:
    return DiagnosticError(Diagnostic("E-NIR-EXPORT", message, hint=hint))


def nir_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """snnc (H, W, C) -> NIR (C, H, W); other shapes flat."""
    if len(shape) == 3:
        h, w, c = shape
        return (c, h, w)
    return (int(np.prod(shape)),)


def _require_symmetric(proj: Projection, g: dict, pads: tuple[tuple[int, int], tuple[int, int]]) -> None:
    """NIR pads both sides by the same amount; that computes snnc's "same" windows when it gives
    the same output size."""
    (dh, dw) = window_dilation(g)
    spans = (dh * (g["KH"] - 1) + 1, dw * (g["KW"] - 1) + 1)
    for size, k_size, out, (before, after) in zip(
        (g["H"], g["W"]), spans, (g["OH"], g["OW"]), pads, strict=True
    ):
        if (size + 2 * before - k_size) // g["STRIDE"] + 1 != out:
            raise _error(
                f"projection '{proj.name}': padding \"same\" pads {before} before and {after} after, which "
                "NIR's symmetric padding cannot state",
                'use an odd kernel with stride 1, or padding "valid"',
            )


def conv_node(proj: Projection, pre_shape: tuple[int, ...], kernel: np.ndarray):  # noqa: ANN201
    """A NIR Conv2d for a conv2d projection; `kernel` is snnc's [kh, kw, C / groups, F] (any shape
    that reshapes), NIR's weight [F, C / groups, kh, kw]."""
    import nir

    conv, a = KINDS["conv2d"], proj.connectivity.args
    g = conv.geometry(a, tuple(pre_shape))
    k = np.asarray(kernel, np.float64).reshape(conv.weight_shape(0, 0, g)).transpose(3, 2, 0, 1).copy()
    if not explicit_padding(a):  # numbers are NIR's own symmetric padding already
        _require_symmetric(proj, g, conv.padding(a, tuple(pre_shape)))
    return nir.Conv2d(
        input_shape=(g["H"], g["W"]),
        weight=k,
        stride=g["STRIDE"],
        padding=(g["PAD_T"], g["PAD_L"]),
        dilation=window_dilation(g),
        groups=window_groups(g),
        bias=np.zeros(g["F"]),
    )


def pool_node(proj: Projection, gain: float):  # noqa: ANN201
    """SumPool2d when the synapse gain is the window area, AvgPool2d when it is 1 (else None)."""
    import nir

    pool, a = KINDS["avg_pool2d"], proj.connectivity.args
    (ph, pw), stride = pool.window(a), pool.stride(a)
    fields = dict(kernel_size=np.array([ph, pw]), stride=np.array([stride, stride]), padding=np.array([0, 0]))
    if np.isclose(gain, ph * pw, rtol=1e-12):
        return nir.SumPool2d(**fields)
    if gain == 1.0:
        return nir.AvgPool2d(**fields)
    return None
