"""`ir.symbols.is_zero`: a fast answer for expressions that are not zero, sympy's for the rest."""

from __future__ import annotations

import pytest
import sympy
from snnc.ir.symbols import is_zero, sym

x, y, tau = sym("x"), sym("y"), sym("tau")

ZERO = [
    sympy.Integer(0),
    sympy.exp(x) * sympy.exp(y) - sympy.exp(x + y),
    sympy.sin(x) ** 2 + sympy.cos(x) ** 2 - 1,
    (x**2 - 1) / (x - 1) - x - 1,
    (1 - sympy.exp(-1 / tau)) * tau - tau + tau * sympy.exp(-1 / tau),
]
NONZERO = [
    x - y,
    (x - 1) * (y - 1),  # zero on two lines, not everywhere
    sympy.exp(-x / tau),
    sympy.Piecewise((x, x > 1), (0, True)),
    sympy.Integer(3),
]


@pytest.mark.parametrize("expr", ZERO, ids=str)
def test_identically_zero(expr: sympy.Expr) -> None:
    assert is_zero(expr)


@pytest.mark.parametrize("expr", NONZERO, ids=str)
def test_not_zero(expr: sympy.Expr) -> None:
    assert not is_zero(expr)


def test_a_difference_that_expands_to_zero_is_not_simplified(monkeypatch: pytest.MonkeyPatch) -> None:
    """The delay gradient's linearity check: expr − w·∂expr/∂w of an expanded expr linear in w."""
    w, lam_v, lam_i = sym("w"), sym("lam_v"), sym("lam_i")
    expr = sympy.expand(w * (lam_i / tau - lam_v * x / (tau + y)))
    per_weight = sympy.expand(sympy.diff(expr, w))

    def refuse(e: sympy.Expr) -> sympy.Expr:
        raise AssertionError("simplify ran on an expression that expands to 0")

    monkeypatch.setattr(sympy, "simplify", refuse)
    assert is_zero(expr - w * per_weight)
    assert is_zero((x + y) ** 2 - x**2 - 2 * x * y - y**2)
