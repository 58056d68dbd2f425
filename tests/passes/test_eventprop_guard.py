"""The executed EventProp jump divides by a crossing rate recorded at the spike
(`names.CROSSING_RATE_RECORD`: ∇θ·f⁻ on the threshold with the inputs the step's update read),
floored, where the exact jump divides by ∇θ·f⁻ of the state it is handed: at a coarse dt the inputs
of the step's end can sit at or below the threshold's rate (i_syn ≈ v_thresh)."""

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


def _evaluate(expr: sympy.Expr, i_syn: float, recorded: float | None = None) -> float:
    values = {
        N.CROSSING_RATE_RECORD: (i_syn - 1.0) / 20.0 if recorded is None else recorded,  # default: = ∇θ·f⁻
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
    """Where the recorded rate equals ∇θ·f⁻ the executed jump is the exact one; below the floor it
    divides by the floor; it divides by the recorded rate, not by ∇θ·f⁻ of the inputs at the step's
    end, which at a coarse dt can be negative while the recorded one is positive."""
    out = eventprop(network()).training.populations["out"]
    exact = next(a.expr for a in out.jump if a.target == N.adjoint("v"))
    guarded = next(a.expr for a in executed_jump(out) if a.target == N.adjoint("v"))
    assert out.min_crossing_rate == DEFAULT_MIN_CROSSING_RATE
    assert guarded.has(sympy.Max) and guarded.has(sym(N.CROSSING_RATE_RECORD))
    assert N.CROSSING_RATE_RECORD in {r.name for r in out.records}
    for i_syn in (1.2, 1.5, 3.0):  # (i_syn - v_thresh)/tau_mem well above 1e-3 per ms
        assert math.isclose(_evaluate(guarded, i_syn), _evaluate(exact, i_syn), rel_tol=1e-12)
    floor = DEFAULT_MIN_CROSSING_RATE
    for i_syn in (1.0 + 1e-9, 0.9):  # at or below threshold: the exact jump blows up or flips sign
        rate = (i_syn - 1.0) / 20.0  # ∇θ·f⁻ = (i_syn - v_thresh)/tau_mem
        expected = _evaluate(exact, i_syn) * rate / floor  # same numerator, floored denominator
        assert math.isclose(_evaluate(guarded, i_syn), expected, rel_tol=1e-9)
        assert math.isfinite(_evaluate(guarded, i_syn, recorded=0.04))
        with_recorded = _evaluate(exact, i_syn) * rate / 0.04  # the recorded rate, not the end's
        assert math.isclose(_evaluate(guarded, i_syn, recorded=0.04), with_recorded, rel_tol=1e-9)
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


def test_the_recorded_rate_and_the_jump_take_the_inputs_the_update_read() -> None:
    """The recorded rate is ∇θ·f⁻ on the threshold, (i_syn − v_thresh)/τ_m for LIF, over the synapse
    states the step's update read (before their own decay, `at="update"`), and so is every record the
    jump's f⁺ reads: inputs are continuous across the reset, so f⁺ and f⁻ take the same i_syn. The
    secant over the step, (v_after − v_before)/dt, which this replaced, gave hidden gradients further
    from those of a fine step (tests/runtime/test_coarse_dt_gradients.py)."""
    out = eventprop(network()).training.populations["out"]
    records = {r.name: r for r in out.records if r.name != N.SPIKE_TIME}
    rate = records[N.CROSSING_RATE_RECORD].expr
    i_out, v_thresh, tau = sym("i__h_to_out"), sym("v_thresh"), sym("tau_mem")
    assert sympy.simplify(rate - (i_out - v_thresh) / tau) == 0
    assert {r.at for r in records.values()} == {"update"}
    assert records["i_syn"].expr == i_out
