"""EventProp on networks written in `.snn`, through the frontend and the pass pipeline."""

from __future__ import annotations

import sympy
from snnc.frontend import load_source
from snnc.ir import names as N
from snnc.ir.symbols import sym
from snnc.passes.pipeline import build_pipeline, compile_ir

SOURCE = """
use std.{LIF, Exponential, SpikeInput}

network yinyang {
    input  x   = SpikeInput(4)
    hidden h   = LIF(10)
    output out = LIF(3, readout = first_spike_time)
    x -> h     : Dense(weight = Normal(mean = 1.5, sd = 0.78)), Exponential(tau = 5 ms)
    h -> out   : Dense(weight = Normal(mean = 0.93, sd = 0.1)), Exponential(tau = 5 ms)
}

train yinyang {
    algorithm  = eventprop(max_spikes = 500)
    loss       = relative_mse(delta = 1.0)
    optimizer  = adam(lr = 0.003)
    dt         = 0.05 ms
    duration   = 30 ms
}
"""


def test_std_lif_through_the_pipeline() -> None:
    net = load_source(SOURCE, "yy.snn")
    assert [p.name for p in build_pipeline(net)] == ["discretise", "eventprop", "simplify"]
    out, _ = compile_ir(net)
    tr = out.training
    assert tr.max_spikes == 500 and set(tr.populations) == {"h", "out"}
    jump = next(a.expr for a in tr.populations["h"].jump if a.target == N.adjoint("v"))
    # std.LIF resets to v_reset (relative_reset = 0 by default): the DESIGN.md form with v_reset = 0
    params = {sym("relative_reset"): 0, sym("v_reset"): 0}
    lv, i, tau, vth = sym(N.adjoint("v")), sym("i_syn"), sym("tau_mem"), sym("v_thresh")
    expect = (i * lv - tau * (sym(N.DLP_DTS) + sym(N.D))) / (i - vth)
    assert sympy.simplify(jump.xreplace(params) - expect) == 0


def test_an_impulse_into_a_spiking_population_derives_the_pulse_rule() -> None:
    """std Delta into std LIF: a spike the step's impulses cause (v⁻ − Δv < v_thresh) takes λ⁻ = Jᵀλ⁺
    (no crossing rate) and hands G / Δv to the arrivals: the hand derivation for LIF (reset to
    v_reset, J = 0): G = −λ_v·(i_syn − v_reset)/τ_m + ∂l_p/∂t_s + D, Δv = dt·i/τ_m."""
    source = SOURCE.replace("Exponential(tau = 5 ms)", "Delta()", 1).replace(
        "use std.{", "use std.{Delta, ", 1
    )
    out, _ = compile_ir(load_source(source, "yy.snn"))
    h = out.training.populations["h"]
    params = {sym("relative_reset"): 0, sym("v_reset"): 0}
    lv, i, tau, vth, v = sym(N.adjoint("v")), sym("i_syn"), sym("tau_mem"), sym("v_thresh"), sym("v")
    pulse = sym("dt") * sym(N.coupled("i", "x_to_h")) / tau
    assert dict(h.pulse) == {"v": pulse}
    assert sympy.simplify(h.pulse_test.xreplace(params) - (v - pulse - vth)) == 0
    (jump,) = h.pulse_jump
    assert jump.target == N.adjoint("v") and jump.expr.xreplace(params) == 0
    G = -lv * i / tau + sym(N.DLP_DTS) + sym(N.D)
    assert sympy.simplify(h.pulse_cause.xreplace(params) - G / pulse) == 0
    assert out.training.transmissions.get("x_to_h") is None  # an input's spike times do not train
    assert {r.name: r.at for r in h.records}[N.coupled("i", "x_to_h")] == "update"


def test_an_impulse_into_a_conductance_is_refused_at_the_users_equation() -> None:
    """An impulse into an input the dynamics multiply by the state has no jump to differentiate;
    the refusal points at the user's equation (file:line:col)."""
    import pytest
    from snnc.ir.diagnostics import DiagnosticError

    source = """
use std.{Delta, SpikeInput, LeakyIntegrate, Exponential}
neuron CondLIF {
    param tau_mem = 20 ms
    state v = 0.0
    input i_syn
    dv/dt = (i_syn * (2.0 - v) - v) / tau_mem
    spike when v >= 1.0
    reset { v = 0.0 }
}
network n {
    input  x   = SpikeInput(2)
    hidden h   = CondLIF(3)
    output out = LeakyIntegrate(2, readout = avg_var)
    x -> h   : Dense(weight = Normal(mean = 1.0, sd = 0.1)), Delta()
    h -> out : Dense(weight = Normal(mean = 1.0, sd = 0.1)), Exponential(tau = 5 ms)
}
train n {
    algorithm = eventprop(max_spikes = 50)
    loss = sparse_categorical_crossentropy
}
"""
    with pytest.raises(DiagnosticError) as info:
        compile_ir(load_source(source, "cond.snn"))
    d = info.value.diagnostics[0]
    assert "multiplies input 'i_syn'" in d.message and "Delta synapse" in d.message
    line = next(i for i, text in enumerate(source.splitlines(), 1) if "dv/dt" in text)
    assert (d.span.file, d.span.line) == ("cond.snn", line) and d.span.col > 0


def test_a_misspelt_eventprop_option_is_an_error_at_the_algorithm() -> None:
    """`eventprop(max_spike = 50)` used to be ignored: the network trained with the default 500."""
    import pytest
    from snnc.ir.diagnostics import DiagnosticError

    net = load_source(SOURCE.replace("max_spikes = 500", "max_spike = 50"), "yy.snn")
    with pytest.raises(DiagnosticError) as err:
        compile_ir(net)
    d = err.value.diagnostics[0]
    assert d.code == "E-EVENTPROP-OPTION" and "'max_spike'" in d.message and "max_spikes" in d.hint
    assert (d.span.line, d.span.col) == (13, 18)
    ok = SOURCE.replace(
        "max_spikes = 500", "max_spikes = 50, min_crossing_rate = 0.01, reg_lambda_upper = 1e-9"
    )
    assert compile_ir(load_source(ok, "yy.snn"))[0].training.max_spikes == 50


def test_a_crossing_rate_floor_that_is_not_positive_is_an_error() -> None:
    """`min_crossing_rate = 0` let a spike's divisor reach 0 (NaN gradients, found only in training)."""
    import pytest
    from snnc.ir.diagnostics import DiagnosticError

    for rate in ("0", "-1"):
        net = load_source(
            SOURCE.replace("max_spikes = 500", f"max_spikes = 500, min_crossing_rate = {rate}"), "yy.snn"
        )
        with pytest.raises(DiagnosticError, match="must be a positive rate") as err:
            compile_ir(net)
        assert (err.value.diagnostics[0].span.line, err.value.diagnostics[0].span.col) == (13, 18)
