"""Lowering tests on hand-built ASTs: IR contents, base units, sympy equations."""

from __future__ import annotations

import pytest
import sympy
from lowering_ast import (
    call,
    conn,
    exp_syn,
    lif,
    model,
    module,
    n,
    network,
    num,
    param,
    pop,
    spike_input,
    state,
    train,
)
from snnc.frontend.lower import lower
from snnc.ir.diagnostics import DiagnosticError
from snnc.ir.symbols import sym
from snnc.ir.units import TIME, VOLTAGE


def _net(*extra_items, pops=None, conns=None, settings=None):
    pops = (
        pops
        if pops is not None
        else [
            pop("input", "x", call("SpikeInput", num(4))),
            pop("hidden", "h", call("LIF", num(10), tau_mem=num(10, "ms"))),
            pop("output", "out", call("LIF", num(3), readout=n("avg_var"))),
        ]
    )
    conns = (
        conns
        if conns is not None
        else [
            conn("x", "h", call("Dense", weight=call("Normal", mean=num(0), sd=num(1))), call("Exponential")),
            conn("h", "out", call("Dense"), call("Exponential", tau=num(1, "s"))),
        ]
    )
    items = [lif(), exp_syn(), spike_input(), *extra_items, network("net", pops, conns)]
    if settings is not None:
        items.append(train("net", **settings))
    return lower(module(*items))


def test_params_are_in_base_units_and_odes_are_sympy():
    net = _net()
    m = net.models["LIF"]
    assert m.params["tau_mem"].value == 20.0 and m.params["tau_mem"].dim == TIME
    v, i, tau = sym("v"), sym("i_syn"), sym("tau_mem")
    assert sympy.simplify(m.ode_for("v").rhs - (i - v) / tau) == 0
    assert m.spike == sympy.Ge(v, sym("v_thresh"), evaluate=False)
    assert net.populations["h"].params["tau_mem"] == 10.0
    assert net.populations["out"].params["tau_mem"] == 20.0
    assert net.projections["h_to_out"].synapse_params["tau"] == 1000.0
    assert net.projections["x_to_h"].weight.kind == "normal"
    assert net.projections["x_to_h"].target == "i_syn"
    assert set(net.models) == {"LIF", "Exponential", "SpikeInput"}
    assert net.populations["out"].readout.kind == "avg_var" and net.populations["out"].readout.var == "v"


def test_hz_becomes_per_ms_and_state_override():
    rate = model("neuron", "Rate", param("r", num(10, "Hz")), state("v", num(0.0)))
    net = _net(rate, pops=[pop("hidden", "r", call("Rate", num(2), v=num(0.5)))], conns=[])
    assert net.models["Rate"].params["r"].value == pytest.approx(0.01)
    assert net.populations["r"].inits == {"v": 0.5}
    assert net.populations["r"].shape == (2,)


def test_voltage_params():
    m = model("neuron", "V", param("vt", num(-50, "mV")), state("v", num(-65, "mV")))
    net = _net(m, pops=[pop("hidden", "a", call("V", num(1)))], conns=[])
    assert net.models["V"].params["vt"].dim == VOLTAGE
    assert net.models["V"].states["v"].init == -65.0


def test_train_block_sets_dt_duration():
    net = _net(
        settings=dict(
            algorithm=call("eventprop"),
            loss=n("sparse_categorical_crossentropy"),
            dt=num(0.5, "ms"),
            duration=num(1, "s"),
            batch_size=num(16),
        )
    )
    assert net.dt == 0.5 and net.duration == 1000.0
    assert net.train.batch_size == 16 and net.train.loss.name == "sparse_categorical_crossentropy"


def test_several_errors_in_one_run():
    with pytest.raises(DiagnosticError) as ei:
        _net(
            pops=[
                pop("input", "x", call("SpikeInput", num(4))),
                pop("hidden", "h", call("LIFF", num(10))),
                pop("hidden", "k", call("LIF", num(10), tau_men=num(1, "ms"))),
            ],
            conns=[],
        )
    codes = [d.code for d in ei.value.diagnostics]
    assert codes == ["E-UNDEFINED", "E-UNKNOWN-PARAM"]
    assert "did you mean 'LIF'" in ei.value.diagnostics[0].hint
    assert "did you mean 'tau_mem'" in ei.value.diagnostics[1].hint
