"""Evaluate a DiscreteModel numerically, following the step semantics of `ir/discrete.py`."""

from __future__ import annotations

import sympy
from snnc.ir.discrete import DiscreteModel
from snnc.ir.symbols import sym


def env_with_derived(dm: DiscreteModel, values: dict[str, float]) -> dict[sympy.Symbol, float]:
    """Params, states, inputs and dt from `values`, plus every derived param evaluated in order."""
    env = {sym(k): float(v) for k, v in values.items()}
    for name, expr in dm.derived:
        env[sym(name)] = float(expr.subs(env).evalf())
    return env


def step(dm: DiscreteModel, values: dict[str, float]) -> dict[str, float]:
    """New state values after one update (temps in order, then simultaneous assignments)."""
    env = env_with_derived(dm, values)
    for name, expr in dm.temps:
        env[sym(name)] = float(expr.subs(env).evalf())
    return {a.target: float(a.expr.subs(env).evalf()) for a in dm.update}


def output(dm: DiscreteModel, values: dict[str, float]) -> float:
    env = env_with_derived(dm, values)
    return float(dm.output.subs(env).evalf())


def reset(dm: DiscreteModel, values: dict[str, float]) -> dict[str, float]:
    env = env_with_derived(dm, values)
    out = {}
    for a in dm.reset:
        current = env[sym(a.target)]
        env[sym(a.target)] = float(a.as_value(current).subs(env).evalf())
        out[a.target] = env[sym(a.target)]
    return out
