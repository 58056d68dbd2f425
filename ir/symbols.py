"""One place that makes sympy symbols and names the functions the language allows.

All symbols are real; making them here guarantees that the same name always yields an equal symbol.
"""

from __future__ import annotations

import sympy

#: names reserved by the language inside model equations
TIME = "t"
TIMESTEP = "dt"
WEIGHT = "w"
RESERVED = frozenset({TIME, TIMESTEP, WEIGHT})


def sym(name: str) -> sympy.Symbol:
    return sympy.Symbol(name, real=True)


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
