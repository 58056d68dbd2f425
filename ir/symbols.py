"""One place that makes sympy symbols and names the functions the language allows.

All symbols are real; making them here guarantees that the same name always yields an equal symbol.
"""

from __future__ import annotations

import random

import sympy

#: names reserved by the language inside model equations
TIME = "t"
TIMESTEP = "dt"
WEIGHT = "w"
RESERVED = frozenset({TIME, TIMESTEP, WEIGHT})


def sym(name: str) -> sympy.Symbol:
    return sympy.Symbol(name, real=True)


def is_zero(expr: sympy.Expr) -> bool:
    """Whether `expr` is identically zero. Most expressions the passes test are not, and their value
    at a few random points shows it at once; an expression that vanishes there is expanded (a
    difference of the same terms, such as a delay gradient's check that it is linear in the weight,
    cancels to 0) and only handed to `sympy.simplify` if that does not show it (slow, and its first
    call imports sympy.physics: half a second of a compile; 80 ms of shd_delays' passes here)."""
    expr = sympy.sympify(expr)
    if expr == 0:
        return True
    free = sorted(expr.free_symbols, key=str)
    rng = random.Random(0)
    for _ in range(3):
        point = {s: sympy.Float(rng.uniform(0.3, 1.7), 50) for s in free}
        try:  # 50 digits: the rounding left by cancelling terms stays far below the threshold
            value = complex(expr.xreplace(point).evalf(50))
        except (TypeError, ValueError, ZeroDivisionError):
            break  # not a plain number there (a Piecewise left open, a pole): let simplify decide
        if abs(value) > 1e-20 and value == value:
            return False
    return sympy.expand(expr) == 0 or sympy.simplify(expr) == 0


t = sym(TIME)
dt = sym(TIMESTEP)
w = sym(WEIGHT)

#: functions callable in model expressions -> (sympy function, number of arguments)
FUNCTIONS: dict[str, tuple[object, int]] = {
    "exp": (sympy.exp, 1),
    "log": (sympy.log, 1),
    "sqrt": (sympy.sqrt, 1),
    "abs": (sympy.Abs, 1),
    "sin": (sympy.sin, 1),
    "cos": (sympy.cos, 1),
    "tanh": (sympy.tanh, 1),
    "sigmoid": (lambda x: 1 / (1 + sympy.exp(-x)), 1),
    "min": (sympy.Min, 2),
    "max": (sympy.Max, 2),
    "heaviside": (lambda x: sympy.Heaviside(x, 1), 1),
}
