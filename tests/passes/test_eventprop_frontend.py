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


def test_an_impulse_synapse_is_refused_at_the_users_projection() -> None:
    """EventProp needs a synapse state that spikes jump; the refusal points at the projection in the
    user's file, not at the library's `synapse Delta`."""
    import pytest
    from snnc.ir.diagnostics import DiagnosticError

    source = SOURCE.replace("Exponential(tau = 5 ms)", "Delta()", 1).replace(
        "use std.{", "use std.{Delta, ", 1
    )
    with pytest.raises(DiagnosticError) as info:
        compile_ir(load_source(source, "yy.snn"))
    d = info.value.diagnostics[0]
    assert "projection 'x_to_h' uses synapse model 'Delta'" in d.message
    line = next(i for i, text in enumerate(source.splitlines(), 1) if "Delta()" in text)
    assert (d.span.file, d.span.line) == ("yy.snn", line)
