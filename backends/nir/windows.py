"""snnc Conv2D / AvgPool2D projections -> NIR Conv2d / SumPool2d / AvgPool2d nodes.

snnc's layouts are channels last ((H, W, C) populations, [kh, kw, C, F] kernels); NIR's are channels
first ((C, H, W), [F, C, kh, kw]). An AvgPool2D whose synapse `gain` is the window area is NIR's
SumPool2d (that is how `snnc import` writes one); gain 1 is AvgPool2d. snnc's "same" padding is
exported as NIR's symmetric padding when the two compute the same thing, else it is an error.
"""

from __future__ import annotations

import numpy as np
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


def _pair(v) -> tuple[int, int]:  # noqa: ANN001
    a = np.ravel(np.asarray(v))
    return (int(a[0]), int(a[-1]))


def _same_padding(
    proj: Projection, hw: tuple[int, int], kernel: tuple[int, int], stride: int
) -> tuple[int, int]:
    pads = []
    for size, k in zip(hw, kernel, strict=True):
        out = -(-size // stride)
        total = max((out - 1) * stride + k - size, 0)
        if (size + 2 * (total // 2) - k) // stride + 1 != out:
            raise _error(
                f"projection '{proj.name}': padding \"same\" pads {total // 2} before and {total - total // 2} "
                "after, which NIR's symmetric padding cannot state",
                'use an odd kernel with stride 1, or padding "valid"',
            )
        pads.append(total // 2)
    return (pads[0], pads[1])


def conv_node(proj: Projection, pre_shape: tuple[int, ...], kernel: np.ndarray):  # noqa: ANN201
    """A NIR Conv2d for a conv2d projection; `kernel` is snnc's [kh, kw, C, F] (any shape that reshapes)."""
    import nir

    a = proj.connectivity.args
    h, w, c = pre_shape
    kh, kw = _pair(a["kernel"])
    stride = _pair(a.get("stride", 1))[0]
    f = int(a["filters"])
    k = np.asarray(kernel, np.float64).reshape(kh, kw, c, f).transpose(3, 2, 0, 1).copy()
    pad = (0, 0) if a.get("padding", "valid") == "valid" else _same_padding(proj, (h, w), (kh, kw), stride)
    return nir.Conv2d(
        input_shape=(h, w), weight=k, stride=stride, padding=pad, dilation=1, groups=1, bias=np.zeros(f)
    )


def pool_node(proj: Projection, gain: float):  # noqa: ANN201
    """SumPool2d when the synapse gain is the window area, AvgPool2d when it is 1 (else None)."""
    import nir

    a = proj.connectivity.args
    ph, pw = _pair(a["pool"])
    stride = _pair(a.get("stride") or (ph, pw))[0]
    fields = dict(kernel_size=np.array([ph, pw]), stride=np.array([stride, stride]), padding=np.array([0, 0]))
    if np.isclose(gain, ph * pw, rtol=1e-12):
        return nir.SumPool2d(**fields)
    if gain == 1.0:
        return nir.AvgPool2d(**fields)
    return None
