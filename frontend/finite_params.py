"""A param value that makes a model's equations divide by zero (`tau_mem = 0 ms`) is the user's
mistake, caught where it is written.

Without this check the value went through the passes as sympy's `zoo` (complex infinity) and
stopped the C printer with an internal error (exit 3), or trained into NaN. The check puts each
number into the model's ODEs, derived params, spike condition, reset and `on_pre` actions; an
expression that stops being finite names the param that made it so, at its override's location.
"""

from __future__ import annotations

from collections.abc import Iterable

import sympy
from snnc.frontend import ast
from snnc.frontend import messages as M
from snnc.frontend.dims import unit_text
from snnc.frontend.unparse import unparse
from snnc.ir import model as ir
from snnc.ir.diagnostics import DiagnosticBag
from snnc.ir.symbols import sym

_NOT_FINITE = (sympy.zoo, sympy.nan, sympy.oo, -sympy.oo)


def _equations(model: ir.Model) -> Iterable[tuple[str, sympy.Basic]]:
    """(how the user wrote it, expression) for every equation a param value enters."""
    for ode in model.odes:
        yield f"d{ode.state}/dt = {ode.rhs}", ode.rhs
    for d in model.derived.values():
        yield f"{d.name} = {d.expr}", d.expr
    if model.spike is not None:
        yield f"spike when {model.spike}", model.spike
    for a in (*model.reset, *model.on_pre):
        yield f"{a.target} {a.op} {a.expr}", a.expr


def _default_text(p: ir.Param) -> str:
    return f"{p.value:g}" + ("" if p.dim.dimensionless else f" {unit_text(p.dim)}")


def _finite(expr: sympy.Basic) -> bool:
    return not any(expr.has(x) for x in _NOT_FINITE)


def check_finite_params(
    model: ir.Model,
    params: dict[str, float],
    kwargs: list[ast.Keyword],
    owner: str,
    bag: DiagnosticBag,
    skip: Iterable[str] = (),
) -> None:
    """Report each param whose value (given or default) makes one of `model`'s equations non-finite.

    `skip` names params without one value here (per-neuron values are checked when they are drawn
    or read)."""
    skipped = set(skip)
    values = {sym(k): sympy.Float(v) for k, v in params.items() if k not in skipped}
    given = {kw.name: kw for kw in kwargs}
    reported: set[str] = set()
    for text, expr in _equations(model):
        expr = sympy.sympify(expr)
        if not _finite(expr) or _finite(expr.xreplace(values)):
            continue  # already so in the model itself (its own checks say so), or finite
        for name in sorted(str(s) for s in expr.free_symbols if s in values):
            if name in reported or _finite(expr.xreplace({sym(name): values[sym(name)]})):
                continue
            reported.add(name)
            kw = given.get(name)
            value = (
                unparse(kw.value) if kw is not None else f"{_default_text(model.params[name])} (the default)"
            )
            span = kw.value.span if kw is not None else model.params[name].span
            bag.error(
                M.VALUE,
                f"{owner}: {name} = {value} makes {model.name}'s '{text}' infinite (a division by zero)",
                span,
                f"give {name} a value that is not 0",
            )
