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
