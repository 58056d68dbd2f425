"""Constant values outside equations: overrides, connection options, readout and training options.

Numbers become floats in base units (`2 ms` -> 2.0, `10 Hz` -> 0.01); whole unitless numbers stay
ints; strings, booleans, bare names (as strings), tuples and calls (as `ir.model.Call`) pass through.
"""

from __future__ import annotations

from typing import Any

from snnc.frontend import ast
from snnc.frontend import messages as M
from snnc.frontend.exprs import UNKNOWN, ExprLowerer
from snnc.frontend.unparse import unparse
from snnc.ir import model as ir
from snnc.ir.diagnostics import DiagnosticBag
from snnc.ir.units import DIMENSIONLESS, Dim

_NUMERIC = (ast.Number, ast.UnaryOp, ast.BinOp)


def quantity(e: ast.Expr, bag: DiagnosticBag) -> tuple[float, Dim, bool] | None:
    """A constant number with its dimension and whether it is a literal zero; None after an error."""
    r = ExprLowerer(bag, {}).number_expr(e)
    if r is UNKNOWN:
        return None
    value = r.constant
    if value is None:
        bag.error(M.TYPE, f"'{unparse(e)}' must be a constant number", e.span)
        return None
    return value, r.dim or DIMENSIONLESS, r.zero


def integer(e: ast.Expr, bag: DiagnosticBag, what: str, minimum: int | None = None) -> int | None:
    """A whole unitless number (a size, a count, a seed), checked against `minimum`."""
    q = quantity(e, bag) if isinstance(e, _NUMERIC) else None
    if q is None:
        if not isinstance(e, _NUMERIC):
            bag.error(M.TYPE, f"{what} must be a whole number, not '{unparse(e)}'", e.span)
        return None
    value, dim, _ = q
    if not dim.dimensionless or not float(value).is_integer():
        bag.error(M.TYPE, f"{what} must be a whole number without a unit, not '{unparse(e)}'", e.span)
        return None
    if minimum is not None and value < minimum:
        bag.error(M.VALUE, f"{what} must be at least {minimum}, not {int(value)}", e.span)
        return None
    return int(value)


def literal(e: ast.Expr, bag: DiagnosticBag) -> Any:
    """Any option value as a plain Python value (see the module docstring)."""
    if isinstance(e, ast.String):
        return e.value
    if isinstance(e, ast.Bool):
        return e.value
    if isinstance(e, ast.Name):
        return e.id
    if isinstance(e, ast.Attribute):
        return unparse(e)
    if isinstance(e, ast.Tuple):
        return tuple(literal(i, bag) for i in e.items)
    if isinstance(e, ast.Call):
        return call(e, bag)
    if isinstance(e, ast.Number) and e.unit is None and e.is_int:
        return int(e.value)
    q = quantity(e, bag)
    return None if q is None else q[0]


def call(e: ast.Expr, bag: DiagnosticBag) -> ir.Call | None:
    """`adam(lr = 0.001)` -> Call("adam", {"lr": 0.001}); a bare name is a call without options."""
    if isinstance(e, ast.Name):
        return ir.Call(e.id, {}, e.span)
    if not isinstance(e, ast.Call):
        bag.error(M.TYPE, f"expected a name or a call such as 'adam(lr = 0.001)', not '{unparse(e)}'", e.span)
        return None
    if e.args:
        bag.error(
            M.ARGCOUNT,
            f"{e.func}(...) takes keyword options only",
            e.args[0].span,
            f"name the option, e.g. '{e.func}(name = {unparse(e.args[0])})'",
        )
    args: dict[str, Any] = {}
    for kw in e.kwargs:
        if kw.name in args:
            bag.error(M.DUPLICATE, f"option '{kw.name}' given twice to {e.func}()", kw.span)
            continue
        args[kw.name] = literal(kw.value, bag)
    return ir.Call(e.func, args, e.span)
