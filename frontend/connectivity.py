"""Connectivity calls and weight initialisers of a connection: arguments, checked with a location.

What each connectivity kind takes and which shapes fit it is said once, in `snnc.ir.connectivity`
(`Dense`, `Sparse`/`FixedProbability(p)`, `OneToOne`, `Conv2D(filters, kernel, stride, padding, dilation, groups)`,
`AvgPool2D(pool, stride)`); this module reads a call against that spec and turns its problems into
diagnostics at the argument or call they are about, so `snnc check` reports them before any pass runs.
Stored args are normalised: every argument of the spec, kernel/pool/stride as (h, w) tuples.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from snnc.frontend import ast
from snnc.frontend import messages as M
from snnc.frontend.unparse import unparse
from snnc.frontend.values import integer, literal
from snnc.ir import model as ir
from snnc.ir.connectivity import REQUIRED, Arg, ConnectivityKind, shape_text
from snnc.ir.diagnostics import DiagnosticBag, Span

#: keywords every connectivity accepts (they describe the connection, not the pattern)
COMMON = ("weight", "delay", "target", "trainable")

#: initialiser name -> (kind, parameter names in positional order)
INITIALISERS: dict[str, tuple[str, tuple[str, ...]]] = {
    "Normal": ("normal", ("mean", "sd")),
    "Uniform": ("uniform", ("low", "high")),
    "Constant": ("constant", ("value",)),
    "File": ("file", ("path",)),
}


def pair(e: ast.Expr, bag: DiagnosticBag, what: str, minimum: int = 1) -> tuple[int, int] | None:
    """An int `k` or a tuple `(kh, kw)` of ints >= `minimum` -> (kh, kw)."""
    items = e.items if isinstance(e, ast.Tuple) else (e,)
    if len(items) not in (1, 2):
        bag.error(M.SHAPE, f"{what} must be a number or a pair (h, w), not '{unparse(e)}'", e.span)
        return None
    values = [integer(i, bag, what, minimum=minimum) for i in items]
    if any(v is None for v in values):
        return None
    return (values[0], values[-1])  # type: ignore[return-value]


def bind_args(
    call: ast.Call, conn: ConnectivityKind, bag: DiagnosticBag
) -> tuple[dict[str, ast.Expr], dict[str, ast.Keyword]] | None:
    """Match positional and keyword arguments against the spec; common keywords are returned apart."""
    names = [a.name for a in conn.spec]
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
    missing = [a.name for a in conn.spec if a.default is REQUIRED and a.name not in bound]
    if missing:
        bag.error(M.ARGCOUNT, f"{call.func}() needs {', '.join(missing)}", call.span)
        ok = False
    return (bound, common) if ok else None


def connectivity_args(
    conn: ConnectivityKind, bound: dict[str, ast.Expr], bag: DiagnosticBag
) -> dict[str, Any] | None:
    """Check each given argument against its type; the normalised args, or None after an error."""
    values: dict[str, Any] = {}
    for a in conn.spec:
        if a.name in bound:
            values[a.name] = _argument(a, bound[a.name], bag)
    if any(v is None for v in values.values()):
        return None
    return conn.normalise(values)


def _argument(a: Arg, e: ast.Expr, bag: DiagnosticBag) -> Any:
    if a.type == "count":
        return integer(e, bag, a.name, minimum=1)
    if a.type == "window":
        return pair(e, bag, a.name)
    if a.type == "padding" and not isinstance(e, (ast.String, ast.Name)):  # "same" or same: a choice
        return pair(e, bag, a.name, minimum=0)
    value = literal(e, bag)
    if value is None:
        return None
    if a.type == "probability":
        if isinstance(value, bool) or not isinstance(value, int | float) or not 0 < value <= 1:
            bag.error(M.VALUE, f"the connection probability {a.name} must be in (0, 1], not {value}", e.span)
            return None
        return float(value)
    if a.type in ("choice", "padding") and value not in a.choices:
        choices = " or ".join(f'"{c}"' for c in a.choices)
        bag.error(M.VALUE, f"{a.name} must be {choices}, not {value!r}", e.span)
        return None
    return value


#: what a connectivity problem is -> its diagnostic code
PROBLEM_CODES = {"shape": M.SHAPE, "value": M.VALUE}


def check_fit(
    conn: ConnectivityKind,
    args: dict[str, Any],
    bound: dict[str, ast.Expr],
    pre: tuple[int, ...],
    post: tuple[int, ...],
    span: Span,
    bag: DiagnosticBag,
) -> bool:
    """Report what does not fit (OneToOne sizes, window shapes and strides) at the argument it is
    about, or at the call; False when something did not fit."""
    problems = conn.problems(args, pre, post)
    for p in problems:
        where = bound[p.arg].span if p.arg in bound else span
        bag.error(PROBLEM_CODES[p.what], p.message, where, p.hint)
    return not problems


def check_weight_file(
    init: ir.Initialiser,
    conn: ConnectivityKind,
    args: dict[str, Any],
    pre: tuple[int, ...],
    post: tuple[int, ...],
    bag: DiagnosticBag,
) -> None:
    """A `File(...)` weight must hold a numeric array with as many entries as the connection has
    weights, in its shape (or flat), all of them finite and all of them in the file. The header is
    read first (never unpickled), then the values through a memory map. A sparse connection's
    count is known only once it is drawn, so it is checked then."""
    shape = conn.weight_shape(math.prod(pre), math.prod(post), conn.geometry(args, pre))
    name = init.args["path"]
    try:
        with open(init.args["resolved"], "rb") as f:
            version = np.lib.format.read_magic(f)
            read = (
                np.lib.format.read_array_header_1_0
                if version == (1, 0)
                else np.lib.format.read_array_header_2_0
            )
            file_shape, _, dtype = read(f)
    except (OSError, ValueError) as exc:
        bag.error(M.WEIGHT_FILE, f"cannot read weight file '{name}': {exc}", init.span)
        return
    if dtype.kind not in "biuf":
        bag.error(M.WEIGHT_FILE, f"weight file '{name}' is not a numeric .npy array ({dtype})", init.span)
    elif -1 not in shape and math.prod(file_shape) != math.prod(shape):
        bag.error(
            M.WEIGHT_FILE,
            f"weight file '{name}' holds {math.prod(file_shape)} values {shape_text(file_shape)}, "
            f"but {conn.call} needs {math.prod(shape)} weights {shape_text(shape)}",
            init.span,
            f"save an array of shape {shape_text(shape)}",
        )
    elif -1 not in shape and len(file_shape) > 1 and _squeezed(file_shape) != _squeezed(shape):
        # the right count in another shape ([post, pre] for [pre, post]) would be reshaped, not
        # transposed: every weight in the wrong place
        bag.error(
            M.WEIGHT_FILE,
            f"weight file '{name}' has shape {shape_text(file_shape)}, but {conn.call} needs "
            f"{shape_text(shape)}",
            init.span,
            "save the array in that shape (transpose it if it is [post, pre]), or flat in that order",
        )
    else:
        _check_weight_values(init, name, bag)


def _squeezed(shape: tuple[int, ...]) -> tuple[int, ...]:
    return tuple(s for s in shape if s != 1)


def _check_weight_values(init: ir.Initialiser, name: str, bag: DiagnosticBag) -> None:
    """Every value present (a truncated file fails to map) and finite."""
    try:
        values = np.load(init.args["resolved"], mmap_mode="r", allow_pickle=False)
    except (OSError, ValueError) as exc:
        bag.error(M.WEIGHT_FILE, f"cannot read weight file '{name}': {exc} (is it truncated?)", init.span)
        return
    if values.size and not np.isfinite(values).all():
        bag.error(M.WEIGHT_FILE, f"weight file '{name}' holds values that are not finite", init.span)
