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


# --------------------------------------------------------------------------------------------------
# From source text (parser + std library)
# --------------------------------------------------------------------------------------------------

import glob  # noqa: E402
import os  # noqa: E402

from snnc.frontend import check_file, load_file, load_models, load_source  # noqa: E402
from snnc.frontend.stdlib import std_models  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
EXAMPLES = sorted(glob.glob(os.path.join(REPO, "examples", "*.snn")))


@pytest.mark.parametrize("path", EXAMPLES, ids=os.path.basename)
def test_examples_load_without_diagnostics(path):
    assert [d.render() for d in check_file(path)] == []
    net = load_file(path)
    assert net.populations and net.projections
    assert all(m.source == "std" for m in net.models.values() if m.name in std_models())


def test_examples_exist():
    assert len(EXAMPLES) >= 2


def test_all_std_models_load():
    names = sorted(std_models())
    text = "use std.*\n"
    models = load_models(text, is_path=False)
    assert set(names) <= set(models)
    for name in ("LIF", "ALIF", "LeakyIntegrate", "LI", "IntegrateFire", "SpikeInput", "PoissonInput"):
        assert models[name].is_neuron, name
    assert models["Delta"].impulse and models["Exponential"].output == "i"
    assert models["LIF"].params["tau_mem"].value == 20.0 and models["LIF"].params["tau_mem"].dim == TIME
    assert models["SpikeInput"].generator == "spike_source"
    assert models["PoissonInput"].generator == "poisson"


SRC = """
use std.{SpikeInput, LIF, LeakyIntegrate}
network n {
    input x = SpikeInput((8, 8, 1))
    hidden c = LIF((6, 6, 2), tau_mem = 1 s, v = 0.5)
    hidden p = LIF((3, 3, 2))
    output o = LeakyIntegrate(10, readout = sum_var)
    x -> c : Conv2D(2, (3, 3), padding = "valid")
    c -> p : AvgPool2D(pool = 2)
    p -> o : Dense(weight = Uniform(-1, 1), delay = 2 ms, trainable = false)
    p -> o : Sparse(0.5, weight = 0.25)
    c -> c : Dense()
}
"""


def test_network_from_source():
    net = load_source(SRC, "n.snn")
    assert net.name == "n" and net.train is None and net.dt == 1.0 and net.duration == 100.0
    c = net.populations["c"]
    assert c.shape == (6, 6, 2) and c.params["tau_mem"] == 1000.0 and c.inits == {"v": 0.5}
    conv = net.projections["x_to_c"].connectivity
    assert conv.kind == "conv2d" and conv.args == {
        "filters": 2,
        "kernel": (3, 3),
        "stride": (1, 1),
        "padding": "valid",
    }
    pool = net.projections["c_to_p"]
    assert pool.connectivity.args == {"pool": (2, 2), "stride": (2, 2)} and not pool.trainable
    assert pool.weight.args == {"value": 0.25}
    # default synapse: std Delta; repeated pairs get _2
    assert net.projections["p_to_o"].synapse == "Delta" and "Delta" in net.models
    assert net.models["Delta"].source == "std"
    po = net.projections["p_to_o"]
    assert po.delay == 2.0 and not po.trainable and po.weight.kind == "uniform"
    assert po.weight.args == {"low": -1.0, "high": 1.0}
    assert net.projections["p_to_o_2"].connectivity.args == {"p": 0.5}
    assert net.projections["c_to_c"].recurrent
    assert net.populations["o"].readout.kind == "sum_var" and net.populations["o"].readout.var == "v"
    assert set(net.models) == {"SpikeInput", "LIF", "LeakyIntegrate", "Delta"}


def test_use_file_relative_and_cycle_safe(tmp_path):
    (tmp_path / "a.snn").write_text('use "b.snn"\nneuron A {\n    state v = 0.0\n    input i\n}\n')
    (tmp_path / "b.snn").write_text(
        'use "a.snn"\nsynapse B {\n    state i = 0.0\n    on_pre { i += w }\n    output i\n}\n'
    )
    (tmp_path / "main.snn").write_text(
        'use "a.snn"\nnetwork n {\n    hidden h = A(3)\n    h -> h : Dense(), B\n}\n'
    )
    net = load_file(str(tmp_path / "main.snn"))
    assert set(net.models) == {"A", "B"}
    assert net.models["A"].source == str(tmp_path / "a.snn")


def test_weight_file_is_resolved_relative_to_source(tmp_path):
    import numpy as np

    np.save(tmp_path / "w.npy", np.zeros((3, 3)))
    (tmp_path / "m.snn").write_text(
        'network n {\n    hidden h = LIF(3)\n    h -> h : Dense(weight = File("w.npy"))\n}\n'
    )
    w = load_file(str(tmp_path / "m.snn")).projections["h_to_h"].weight
    assert w.kind == "file" and w.args["path"] == "w.npy" and w.args["resolved"] == str(tmp_path / "w.npy")


def test_unknown_std_name_is_reported():
    with pytest.raises(DiagnosticError) as ei:
        load_source("use std.{LIF, Exponentail}\n", "u.snn")
    d = ei.value.diagnostics[0]
    assert d.code == "E-UNDEFINED" and d.hint == "did you mean 'Exponential'?"


def test_readout_var_and_first_spike_time():
    net = load_source(
        "network n {\n    input x = SpikeInput(2)\n    output o = LIF(2, readout = first_spike_time)\n"
        "    output q = ALIF(2, readout = max_var(a))\n    x -> o : Dense()\n    x -> q : Dense()\n}\n",
        "r.snn",
    )
    assert net.populations["o"].readout == net.populations["o"].readout.__class__(
        "first_spike_time", None, {}, net.populations["o"].readout.span
    )
    assert net.populations["q"].readout.var == "a"


def test_expression_sympy_and_dims():
    text = """
neuron Adex {
    param tau = 10 ms
    param e_l = -70 mV
    param delta_t = 2 mV
    param v_t = -50 mV
    param r = 0.5 MOhm
    state v = -70 mV
    input i : nA
    dv/dt = (-(v - e_l) + delta_t * exp((v - v_t) / delta_t) + r * i) / tau
    spike when v >= 0 and not v < v_t
    reset { v = e_l }
    refractory = 2 ms integrating
    method = euler(sub_steps = 4)
}
"""
    m = load_models(text, is_path=False)["Adex"]
    v, e_l, dT, v_t, r, i, tau = (sym(s) for s in ("v", "e_l", "delta_t", "v_t", "r", "i", "tau"))
    expected = (-(v - e_l) + dT * sympy.exp((v - v_t) / dT) + r * i) / tau
    assert sympy.simplify(m.ode_for("v").rhs - expected) == 0
    assert m.states["v"].init == -70.0 and m.states["v"].dim == VOLTAGE
    assert m.refractory == 2 and m.refractory_integrates
    assert m.method == "euler" and m.sub_steps == 4
    assert isinstance(m.spike, sympy.And)


def test_derived_params_and_param_expressions_follow_overrides():
    text = """
neuron D {
    param tau = 10 ms
    param tau2 = 2 * tau
    param n = 3
    derived alpha = exp(-dt / tau)
    state v = 0.0
    dv/dt = -v / tau2
}
network k {
    hidden a = D(1, tau = 5 ms)
}
"""
    net = load_source(text, "d.snn")
    m = net.models["D"]
    assert m.params["tau2"].value == 20.0 and m.params["n"].integer
    assert sympy.simplify(m.derived["alpha"].expr - sympy.exp(-sym("dt") / sym("tau"))) == 0
    assert net.populations["a"].params == {"tau": 5.0, "tau2": 10.0, "n": 3.0}


CURRENT_SYN = """
synapse CurrentExp {
    param tau = 5 ms
    state i = 0 nA
    di/dt = -i / tau
    on_pre { i += w }
    output i
}
neuron N {
    param c = 1 nF
    state v = 0 mV
    input i_syn : nA
    dv/dt = i_syn / c
}
network k {
    hidden a = N(2)
    a -> a : Dense(weight = Constant(WEIGHT)), CurrentExp
}
"""


def test_weight_unit_must_match_the_synapse_state():
    net = load_source(CURRENT_SYN.replace("WEIGHT", "0.5 pA"), "c.snn")
    assert net.projections["a_to_a"].weight.args == {"value": pytest.approx(0.0005)}
    with pytest.raises(DiagnosticError) as ei:
        load_source(CURRENT_SYN.replace("WEIGHT", "0.5 mV"), "c.snn")
    assert [d.code for d in ei.value.diagnostics] == ["E-DIM"]
    assert "current (nA)" in ei.value.diagnostics[0].message
