"""The executed EventProp jump divides by the crossing's secant over its step (recorded at the spike,
`names.CROSSING_SECANT`), floored, where the exact jump divides by ∇θ·f⁻: at a coarse dt the state at
the step's end can sit at or below the threshold's rate (i_syn ≈ v_thresh), the secant never does."""

from __future__ import annotations

import math

import sympy
from snnc.ir import names as N
from snnc.ir.symbols import sym
from snnc.ir.training import executed_jump
from snnc.passes.eventprop import DEFAULT_MIN_CROSSING_RATE, eventprop

try:
    from .eventprop_models import network
except ImportError:
    from eventprop_models import network


def _evaluate(expr: sympy.Expr, i_syn: float, secant: float | None = None) -> float:
    values = {
        N.CROSSING_SECANT: (i_syn - 1.0) / 20.0 if secant is None else secant,  # default: = ∇θ·f⁻
        N.adjoint("v"): 0.7,
        N.adjoint("i__h_to_out"): -0.3,
        N.D: 0.2,
        N.DLP_DTS: 0.1,
        "tau_mem": 20.0,
        "v_thresh": 1.0,
        "v_reset": 0.0,
        "relative_reset": 0.0,
        "i_syn": i_syn,
    }
    return float(expr.xreplace({sym(k): v for k, v in values.items()}))


def test_guarded_jump_equals_exact_jump_above_the_floor_and_is_finite_below() -> None:
    """Where the secant equals ∇θ·f⁻ (dt -> 0) the executed jump is the exact one; below the floor it
    divides by the floor; it divides by the secant, not by ∇θ·f⁻ at the step's end, which at a
    coarse dt can be negative while the secant is positive."""
    out = eventprop(network()).training.populations["out"]
    exact = next(a.expr for a in out.jump if a.target == N.adjoint("v"))
    guarded = next(a.expr for a in executed_jump(out) if a.target == N.adjoint("v"))
    assert out.min_crossing_rate == DEFAULT_MIN_CROSSING_RATE
    assert guarded.has(sympy.Max) and guarded.has(sym(N.CROSSING_SECANT))
    assert N.CROSSING_SECANT in {r.name for r in out.records}
    for i_syn in (1.2, 1.5, 3.0):  # (i_syn - v_thresh)/tau_mem well above 1e-3 per ms
        assert math.isclose(_evaluate(guarded, i_syn), _evaluate(exact, i_syn), rel_tol=1e-12)
    floor = DEFAULT_MIN_CROSSING_RATE
    for i_syn in (1.0 + 1e-9, 0.9):  # at or below threshold: the exact jump blows up or flips sign
        rate = (i_syn - 1.0) / 20.0  # ∇θ·f⁻ = (i_syn - v_thresh)/tau_mem
        expected = _evaluate(exact, i_syn) * rate / floor  # same numerator, floored denominator
        assert math.isclose(_evaluate(guarded, i_syn), expected, rel_tol=1e-9)
        assert math.isfinite(_evaluate(guarded, i_syn, secant=0.04))
        with_secant = _evaluate(exact, i_syn) * rate / 0.04  # the step's secant, not the end's rate
        assert math.isclose(_evaluate(guarded, i_syn, secant=0.04), with_secant, rel_tol=1e-9)
    assert math.isfinite(_evaluate(guarded, 1.0))


def test_min_crossing_rate_is_an_eventprop_option() -> None:
    import dataclasses

    net = network()
    algo = dataclasses.replace(
        net.train.algorithm, args={**net.train.algorithm.args, "min_crossing_rate": 0.05}
    )
    net = dataclasses.replace(net, train=dataclasses.replace(net.train, algorithm=algo))
    out = eventprop(net).training.populations["out"]
    assert out.min_crossing_rate == 0.05
