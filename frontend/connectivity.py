"""Connectivity and weight initialisers of a connection: argument specs and shape arithmetic.

`Dense`, `Sparse`/`FixedProbability(p)`, `OneToOne`, `Conv2D(filters, kernel, stride, padding)`,
`AvgPool2D(pool, stride)`. Conv2D/AvgPool2D read the pre population as (H, W, C) and the post
population's shape must be exactly the computed output shape (so a mistake shows up here, not as an
index error in generated code). Stored args are normalised: kernel/pool/stride as (h, w) tuples.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from snnc.frontend import ast
from snnc.frontend import messages as M
from snnc.frontend.unparse import unparse
from snnc.frontend.values import integer, literal
from snnc.ir.diagnostics import DiagnosticBag, Span


@dataclass(frozen=True)
class ConnSpec:
    kind: str
    positional: tuple[str, ...]  # required, in order
    optional: dict[str, Any]  # name -> default


CONNECTIVITIES: dict[str, ConnSpec] = {
    "Dense": ConnSpec("dense", (), {}),
    "Sparse": ConnSpec("sparse", ("p",), {}),
    "FixedProbability": ConnSpec("sparse", ("p",), {}),
    "OneToOne": ConnSpec("one_to_one", (), {}),
    "Conv2D": ConnSpec("conv2d", ("filters", "kernel"), {"stride": 1, "padding": "valid"}),
    "AvgPool2D": ConnSpec("avg_pool2d", ("pool",), {"stride": None}),
}
#: keywords every connectivity accepts (they describe the connection, not the pattern)
COMMON = ("weight", "delay", "target", "trainable")

#: initialiser name -> (kind, parameter names in positional order)
INITIALISERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "Normal": ("normal", ("mean", "sd")),
    "Uniform": ("uniform", ("low", "high")),
    "Constant": ("constant", ("value",)),
    "File": ("file", ("path",)),
}


def pair(e: ast.Expr, bag: DiagnosticBag, what: str) -> tuple[int, int] | None:
    """An int `k` or a tuple `(kh, kw)` of positive ints -> (kh, kw)."""
    items = e.items if isinstance(e, ast.Tuple) else (e,)
    if len(items) not in (1, 2):
        bag.error(M.SHAPE, f"{what} must be a number or a pair (h, w), not '{unparse(e)}'", e.span)
        return None
    values = [integer(i, bag, what, minimum=1) for i in items]
    if any(v is None for v in values):
        return None
    return (values[0], values[-1])  # type: ignore[return-value]


def conv_output_shape(
    pre: tuple[int, ...], filters: int, kernel: tuple[int, int], stride: tuple[int, int], padding: str
) -> tuple[int, int, int] | None:
    """Output (H, W, filters) of a 2-D convolution on an (H, W, C) input; None if the kernel does not fit."""
    h, w = pre[0], pre[1]
    if padding == "same":
        return (math.ceil(h / stride[0]), math.ceil(w / stride[1]), filters)
    if kernel[0] > h or kernel[1] > w:
        return None
    return ((h - kernel[0]) // stride[0] + 1, (w - kernel[1]) // stride[1] + 1, filters)


def pool_output_shape(
    pre: tuple[int, ...], pool: tuple[int, int], stride: tuple[int, int]
) -> tuple[int, int, int] | None:
    h, w, c = pre
    if pool[0] > h or pool[1] > w:
        return None
    return ((h - pool[0]) // stride[0] + 1, (w - pool[1]) // stride[1] + 1, c)


def bind_args(
    call: ast.Call, spec: ConnSpec, bag: DiagnosticBag
) -> tuple[dict[str, ast.Expr], dict[str, ast.Keyword]] | None:
    """Match positional and keyword arguments against the spec; common keywords are returned apart."""
    names = list(spec.positional) + list(spec.optional)
    bound: dict[str, ast.Expr] = {}
    common: dict[str, ast.Keyword] = {}
    ok = True
    if len(call.args) > len(names):
        bag.error(
            M.ARGCOUNT,
            f"{call.func}() takes at most {len(names)} positional argument(s), {len(call.args)} given",
            call.span,
            f"arguments: {', '.join(names) or 'none'}; keywords: {', '.join(COMMON)}",
        )
        ok = False
    for name, value in zip(names, call.args, strict=False):
        bound[name] = value
    for kw in call.kwargs:
        if kw.name in bound or kw.name in common:
            bag.error(M.DUPLICATE, f"{call.func}(): '{kw.name}' given twice", kw.span)
            ok = False
        elif kw.name in COMMON:
            common[kw.name] = kw
        elif kw.name in names:
            bound[kw.name] = kw.value
        else:
            from snnc.ir.diagnostics import did_you_mean

            bag.error(
                M.UNKNOWN_PARAM,
                f"{call.func}() has no argument '{kw.name}'",
                kw.span,
                did_you_mean(kw.name, names + list(COMMON))
                or f"arguments: {', '.join(names + list(COMMON))}",
            )
            ok = False
    missing = [n for n in spec.positional if n not in bound]
    if missing:
        bag.error(M.ARGCOUNT, f"{call.func}() needs {', '.join(missing)}", call.span)
        ok = False
    return (bound, common) if ok else None


def connectivity_args(
    call: ast.Call, spec: ConnSpec, bound: dict[str, ast.Expr], bag: DiagnosticBag
) -> dict[str, Any] | None:
    """Check and normalise the connectivity's own arguments."""
    if spec.kind == "sparse":
        p = literal(bound["p"], bag)
        if p is None:
            return None
        if isinstance(p, bool) or not isinstance(p, int | float) or not 0 < p <= 1:
            bag.error(M.VALUE, f"the connection probability p must be in (0, 1], not {p}", bound["p"].span)
            return None
        return {"p": float(p)}
    if spec.kind == "conv2d":
        filters = integer(bound["filters"], bag, "filters", minimum=1)
        kernel = pair(bound["kernel"], bag, "kernel")
        stride = pair(bound["stride"], bag, "stride") if "stride" in bound else (1, 1)
        padding = literal(bound["padding"], bag) if "padding" in bound else "valid"
        if padding not in ("valid", "same"):
            bag.error(M.VALUE, f'padding must be "valid" or "same", not {padding!r}', bound["padding"].span)
            return None
        if None in (filters, kernel, stride):
            return None
        return {"filters": filters, "kernel": kernel, "stride": stride, "padding": padding}
    if spec.kind == "avg_pool2d":
        pool = pair(bound["pool"], bag, "pool")
        stride = pair(bound["stride"], bag, "stride") if "stride" in bound else pool
        if pool is None or stride is None:
            return None
        return {"pool": pool, "stride": stride}
    return {}


def check_shapes(
    kind: str,
    args: dict[str, Any],
    pre: tuple[int, ...],
    post: tuple[int, ...],
    span: Span,
    bag: DiagnosticBag,
) -> None:
    """Sizes that must agree: OneToOne sizes, Conv2D/AvgPool2D output shapes."""
    if kind == "one_to_one":
        if math.prod(pre) != math.prod(post):
            bag.error(
                M.SHAPE,
                f"OneToOne needs populations of equal size, but pre has {math.prod(pre)} neurons "
                f"{_shape(pre)} and post has {math.prod(post)} {_shape(post)}",
                span,
            )
        return
    if kind not in ("conv2d", "avg_pool2d"):
        return
    name = "Conv2D" if kind == "conv2d" else "AvgPool2D"
    if len(pre) != 3:
        bag.error(M.SHAPE, f"{name} needs a pre population of shape (H, W, C), not {_shape(pre)}", span)
        return
    if kind == "conv2d":
        out = conv_output_shape(pre, args["filters"], args["kernel"], args["stride"], args["padding"])
    else:
        out = pool_output_shape(pre, args["pool"], args["stride"])
    if out is None:
        bag.error(M.SHAPE, f"{name}: the window is larger than the input {_shape(pre)}", span)
    elif tuple(post) != out:
        bag.error(
            M.SHAPE,
            f"{name} maps {_shape(pre)} to {_shape(out)}, but the post population has shape {_shape(post)}",
            span,
            f"declare the post population with shape {_shape(out)}",
        )


def _shape(shape: tuple[int, ...]) -> str:
    return "(" + ", ".join(str(s) for s in shape) + ")"
