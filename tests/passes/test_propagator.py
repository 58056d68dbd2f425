"""The closed-form matrix exponential (`passes/exact.propagator`) against sympy's general one.

Chains of states (a synapse driving a membrane, an adaptation driving a threshold) are triangular up
to an ordering of the states; their exponential comes from Parlett's recurrence instead of a Jordan
form. Both are evaluated numerically at the same parameter values and must agree.
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy
from snnc.ir.symbols import dt
from snnc.passes.exact import _triangular_exp, propagator

a, b, c, w, g = sympy.symbols("a b c w g", positive=True)
VALUES = {a: 0.02, b: 0.005, c: 0.011, w: 1.3, g: 0.7, dt: 1e-3}


def _numeric(m: sympy.Matrix) -> np.ndarray:
    return np.array(m.subs(VALUES).evalf(30), dtype=float)


TRIANGULAR = {
    "synapse -> membrane": sympy.Matrix([[-1 / a, 1 / a], [0, -1 / b]]),
    "its transpose (the adjoint)": sympy.Matrix([[-1 / a, 0], [1 / a, -1 / b]]),
    "three-state chain": sympy.Matrix([[-1 / a, 1 / a, 0], [0, -1 / b, g], [0, 0, -1 / c]]),
    "triangular after reordering": sympy.Matrix([[-1 / a, w, 2], [0, -1 / b, 0], [0, 3, -1 / c]]),
    "numbers": sympy.Matrix([[-50, 50], [0, -200]]),
}


@pytest.mark.parametrize("name", list(TRIANGULAR))
def test_triangular_systems_match_sympys_exponential(name: str) -> None:
    m = TRIANGULAR[name]
    fast = _triangular_exp(m * dt)
    assert fast is not None, "the recurrence should apply to a triangular system"
    np.testing.assert_allclose(_numeric(fast), _numeric((m * dt).exp()), rtol=1e-12, atol=1e-15)
    assert propagator(m, ["x"] * m.rows) == fast


def test_cycles_and_equal_rates_take_sympys_route() -> None:
    cycle = sympy.Matrix([[-1 / a, 1], [1, -1 / b]])
    equal = sympy.Matrix([[-50, 50], [0, -50]])  # a Jordan block: t·e^{-50 t} terms
    assert _triangular_exp(cycle * dt) is None
    assert _triangular_exp(equal * dt) is None
    np.testing.assert_allclose(
        _numeric(propagator(equal, ["v", "i"])), _numeric((equal * dt).exp()), rtol=1e-12
    )


def test_constant_inputs_are_taken_one_at_a_time() -> None:
    """A membrane v driven by a filtered bias i_b and two constant inputs (bias, i_syn): rows 2 and 3
    are zero, two zeros on the diagonal that the recurrence alone would take for a Jordan block."""
    from snnc.passes.exact import _inputs_apart_exp

    m = sympy.Matrix(
        [[-1 / a, w / a, 0, w / a], [0, -1 / b, 1 / b, 0], [0, 0, 0, 0], [0, 0, 0, 0]]
    )  # states v, i_b; inputs bias, i_syn
    assert _triangular_exp(m * dt) is None
    fast = _inputs_apart_exp(m * dt)
    assert fast is not None
    np.testing.assert_allclose(_numeric(fast), _numeric((m * dt).exp()), rtol=1e-12, atol=1e-15)
    assert propagator(m, ["v", "i_b"]) == fast
