"""Param values outside the range their meaning allows (`tau_mem = -20 ms`, `tau_refrac = -1 ms`) are
the user's mistake, caught where they are written.

Without this check a negative membrane time constant made the leak a growth and trained silently, a
negative refractory period was read as none, and `relative_reset = 0.5` mixed the two resets. The
language declares no ranges, so the check is kept to what the compiler knows the meaning of: the
params of the standard library's models (`STD_RANGES`), and the period of any model's `refractory =`
(a time during which the neuron does not spike cannot be negative). A user's own model keeps every
value its equations allow.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import sympy
from snnc.frontend import ast
from snnc.frontend import messages as M
from snnc.frontend.dims import unit_text
from snnc.frontend.lower_model import evaluate
from snnc.frontend.unparse import unparse
from snnc.ir import model as ir
from snnc.ir.diagnostics import DiagnosticBag, Span
from snnc.ir.symbols import sym

if TYPE_CHECKING:
    import numpy as np


@dataclass(frozen=True)
class Range:
    """The values a param may take: above (or from) `low`, or a switch of 0 and 1."""

    what: str  # what the param is, for the message: "a time constant"
    low: float = 0.0
    low_open: bool = False  # True: `low` itself is outside
    switch: bool = False  # only 0 (false) and 1 (true)

    def holds(self, value: float) -> bool:
        if self.switch:
            return value in (0.0, 1.0)
        return value > self.low if self.low_open else value >= self.low

    def wanted(self, unit: str = "") -> str:
        """The range in words; `unit` follows the bound ("ms")."""
        if self.switch:
            return "true or false (1 or 0)"
        return f"{'above' if self.low_open else 'at least'} {self.low:g}{' ' + unit if unit else ''}"


TIME_CONSTANT = Range("a time constant", low_open=True)
PERIOD = Range("a refractory period")
SWITCH = Range("a switch", switch=True)

#: std model -> param -> its range (frontend/std/*.snn; a model of the same name in a user's file is
#: the user's own and is not checked)
STD_RANGES: dict[str, dict[str, Range]] = {
    "LIF": {"tau_mem": TIME_CONSTANT, "tau_refrac": PERIOD, "relative_reset": SWITCH},
    "ALIF": {"tau_mem": TIME_CONSTANT, "tau_adapt": TIME_CONSTANT, "tau_refrac": PERIOD},
    "IntegrateFire": {"tau_mem": TIME_CONSTANT, "tau_refrac": PERIOD},
    "LeakyIntegrate": {"tau_mem": TIME_CONSTANT},
    "LI": {"tau_mem": TIME_CONSTANT},
    "Exponential": {"tau": TIME_CONSTANT},
}


def param_ranges(model: ir.Model) -> dict[str, Range]:
    """The ranges snnc knows for `model`'s params: a std model's table, and a refractory period
    written as one param."""
    out = dict(STD_RANGES.get(model.name, {})) if model.source == "std" else {}
    if isinstance(model.refractory, sympy.Symbol) and str(model.refractory) in model.params:
        out.setdefault(str(model.refractory), PERIOD)
    return out


def unit_of(p: ir.Param) -> str:
    """The param's unit as written in messages ("ms"), "" for a dimensionless one."""
    return "" if p.dim.dimensionless else unit_text(p.dim)


def _text(value: float, p: ir.Param) -> str:
    return f"{value:g}" + (f" {unit_of(p)}" if unit_of(p) else "")


def _refractory_period(model: ir.Model, params: dict[str, float]) -> float | None:
    """The value of a refractory period written as an expression (None when it is not constant)."""
    expr = sympy.sympify(model.refractory)
    for _ in range(len(model.derived) + 1):  # derived params may be made of derived params
        expr = expr.xreplace({sym(n): sympy.sympify(d.expr) for n, d in model.derived.items()})
    return evaluate(expr, params)


def check_param_ranges(
    model: ir.Model,
    params: dict[str, float],
    kwargs: list[ast.Keyword],
    per_neuron: dict[str, ir.Initialiser],
    owner: str,
    bag: DiagnosticBag,
    where: Span | None = None,
    trainable: dict[str, ir.TrainableParam] | None = None,
) -> set[str]:
    """Report each param whose value (given, default, a Uniform's bound or a Trainable's `min` or
    `max`) is outside its range; returns the names reported. A File's values are checked where the
    file is read (`check_param_files`); a Normal's draws are unbounded and not checked. `where`
    locates a refractory expression's value when no param of it is written here."""
    given = {kw.name: kw for kw in kwargs}
    reported: set[str] = set()
    for name, r in param_ranges(model).items():
        p = model.params[name]
        tp = (trainable or {}).get(name)
        if tp is not None and not _bounds_hold(tp, p, r, model.name, owner, bag):
            reported.add(name)
        init = per_neuron.get(name)
        if init is not None:
            if init.kind == "uniform" and not (r.holds(init.args["low"]) and r.holds(init.args["high"])):
                bag.error(
                    M.VALUE,
                    f"{owner}: {name} is {r.what} of {model.name}, so Uniform()'s bounds must be "
                    f"{r.wanted(unit_of(p))}, not {_text(init.args['low'], p)} and "
                    f"{_text(init.args['high'], p)}",
                    init.span,
                )
                reported.add(name)
            continue
        value = params.get(name)
        if value is None or r.holds(value):
            continue
        kw = given.get(name)
        text = unparse(kw.value) if kw is not None else f"{_text(value, p)} (the default)"
        bag.error(
            M.VALUE,
            f"{owner}: {name} = {text} is outside its range: {name} is {r.what} of {model.name} and "
            f"must be {r.wanted(unit_of(p))}",
            kw.value.span if kw is not None else p.span,
        )
        reported.add(name)
    if model.refractory is not None and not isinstance(model.refractory, sympy.Symbol) and not per_neuron:
        _check_refractory_period(model, params, given, owner, bag, where)
    return reported


def _bounds_hold(
    tp: ir.TrainableParam, p: ir.Param, r: Range, model: str, owner: str, bag: DiagnosticBag
) -> bool:
    """Whether a Trainable's `min` and `max` (the values training clips to) lie in the range."""
    ok = True
    for which, bound in (("min", tp.min), ("max", tp.max)):
        if bound is not None and not r.holds(bound):
            bag.error(
                M.VALUE,
                f"{owner}: Trainable({which} = {_text(bound, p)}) lets {p.name} leave its range: "
                f"{p.name} is {r.what} of {model} and must be {r.wanted(unit_of(p))}",
                tp.span,
            )
            ok = False
    return ok


def _check_refractory_period(
    model: ir.Model,
    params: dict[str, float],
    given: dict[str, ast.Keyword],
    owner: str,
    bag: DiagnosticBag,
    where: Span | None,
) -> None:
    """A refractory period written as an expression (`2 * tau_r - 5 ms`) must not be negative."""
    period = _refractory_period(model, params)
    if period is None or period >= 0:
        return
    used = [n for n in sorted(str(s) for s in sympy.sympify(model.refractory).free_symbols) if n in given]
    bag.error(
        M.VALUE,
        f"{owner}: {model.name}'s refractory period '{model.refractory}' is {period:g} ms; a "
        "period cannot be negative",
        given[used[0]].value.span if used else where,
    )


def out_of_range(values: np.ndarray, r: Range) -> int:
    """How many of `values` lie outside `r`."""
    import numpy as np

    if r.switch:
        return int(np.count_nonzero((values != 0) & (values != 1)))
    return int(np.count_nonzero(values <= r.low if r.low_open else values < r.low))
