"""`Trainable(...)` params in the source: arguments checked where they are written (unit of the
initial value and bounds, min <= max, lr, a known param), and refused where training cannot follow
them (e-prop's readout filter, a synapse param in on_pre, off EventProp's gradient path, a
refractory period, GeNN), each with file:line:col."""

from __future__ import annotations

from pathlib import Path

import pytest
from snnc.backends import check_supported
from snnc.frontend import check_file, load_file
from snnc.ir.diagnostics import DiagnosticError
from snnc.passes.discretise import discretise
from snnc.passes.eprop import eprop

from snnc.api import lower

NET = """use std.{{SpikeInput, LIF, LeakyIntegrate, Exponential}}
network g {{
    input  x   = SpikeInput(3)
    hidden h   = LIF(4{hidden})
    output out = LeakyIntegrate(2, readout = avg_var)
    x -> h   : Dense(weight = 1.0), Exponential({syn})
    h -> out : Dense(weight = 1.0), Exponential(tau = 5 ms)
{extra}}}
train g {{
    algorithm = {algorithm}
    loss = sparse_categorical_crossentropy
}}
"""


def _write(
    tmp_path: Path, hidden: str = "", syn: str = "tau = 5 ms", algorithm: str = "eventprop", extra: str = ""
) -> Path:
    path = tmp_path / "net.snn"
    path.write_text(NET.format(hidden=hidden, syn=syn, algorithm=algorithm, extra=extra))
    return path


def _errors(path: Path) -> list[tuple[str, int, int, str]]:
    return [
        (d.code, d.span.line, d.span.col, d.message) for d in check_file(str(path)) if d.severity == "error"
    ]


def test_trainable_params_lower_with_their_bounds(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        hidden=", tau_mem = Trainable(20 ms, per_neuron = true, min = 2 ms, max = 200 ms, lr = 0.1)"
        ", v_thresh = Trainable(Normal(1.0, 0.1))",
        syn="tau = Trainable(5 ms)",
    )
    assert _errors(path) == []
    net = load_file(str(path))
    h = net.populations["h"]
    tau = h.trainable["tau_mem"]
    assert (tau.per_neuron, tau.min, tau.max, tau.lr_scale) == (True, 2.0, 200.0, 0.1)
    assert h.param_inits["tau_mem"].args == {"value": 20.0}  # per neuron, all starting at 20 ms
    assert h.trainable["v_thresh"].per_neuron and h.param_inits["v_thresh"].kind == "normal"
    syn = net.projections["x_to_h"]
    assert not syn.synapse_trainable["tau"].per_neuron and syn.synapse_params["tau"] == 5.0


@pytest.mark.parametrize(
    ("hidden", "code", "col", "fragment"),
    [
        (", tau_mem = Trainable(20 ms, min = 2 mV)", "E-DIM", 58, "bound min = 2 mV has dimension voltage"),
        (", tau_mem = Trainable(20 mV)", "E-DIM", 45, "LIF.tau_mem is time"),
        (
            ", tau_mem = Trainable(20 ms, min = 50 ms, max = 10 ms)",
            "E-VALUE",
            58,
            "min (50) is above max (10)",
        ),
        (", tau_mem = Trainable(20 ms, lr = -1)", "E-VALUE", 57, "lr is a positive number"),
        (", tau_mem = Trainable(20 ms, step = 1)", "E-UNKNOWN-PARAM", 52, "has no argument 'step'"),
        (", tau_mem = Trainable(per_neuron = true)", "E-ARGCOUNT", 35, "needs an initial value"),
        (", tau_m = Trainable(20 ms)", "E-UNKNOWN-PARAM", 25, "LIF has no parameter 'tau_m'"),
        (", v = Trainable(0.0)", "E-TYPE", 29, "'v' is not a param"),
        (", v_thresh = Trainable(Normal(1.0, 0.1), per_neuron = false)", "E-VALUE", 77, "shared"),
        (", tau_refrac = Trainable(1 ms)", "E-ALGO", 38, "refractory period"),
    ],
)
def test_bad_trainable_params_are_located(
    tmp_path: Path, hidden: str, code: str, col: int, fragment: str
) -> None:
    errors = _errors(_write(tmp_path, hidden=hidden))
    assert any(c == code and ln == 4 and cl == col and fragment in m for c, ln, cl, m in errors), errors


def test_eprop_trains_neuron_params_of_hidden_populations(tmp_path: Path) -> None:
    hidden = ", tau_mem = Trainable(20 ms, per_neuron = true), v_thresh = Trainable(1.0)"
    assert _errors(_write(tmp_path, hidden=hidden, algorithm="eprop")) == []


def test_eprop_trains_synapse_params_into_hidden_populations(tmp_path: Path) -> None:
    assert _errors(_write(tmp_path, syn="tau = Trainable(5 ms, per_neuron = true)", algorithm="eprop")) == []


GAIN = """synapse Gain {
    param g = 1.0
    state i = 0.0
    on_pre { i += w * g }
    output impulse i
}
"""


def test_eprop_refuses_a_synapse_param_in_on_pre(tmp_path: Path) -> None:
    path = _write(tmp_path, algorithm="eprop")
    text = path.read_text().replace(
        "x -> h   : Dense(weight = 1.0), Exponential(tau = 5 ms)",
        "x -> h   : Dense(weight = 1.0), Gain(g = Trainable(1.0))",
    )
    path.write_text(GAIN + text)
    errors = _errors(path)
    assert [
        (c, ln, cl) for c, ln, cl, m in errors if "on_pre, whose dependence on it e-prop does not derive" in m
    ] == [("E-ALGO", 12, 46)], errors


def test_eprop_refuses_a_readout_param_that_sets_its_filter(tmp_path: Path) -> None:
    """The hidden neurons' traces are filtered with the readout's κ, fixed at compile time."""
    path = _write(tmp_path, algorithm="eprop")
    text = path.read_text().replace("readout = avg_var", "tau_mem = Trainable(15 ms), readout = sum_var(v)")
    path.write_text(
        text.replace(
            "h -> out : Dense(weight = 1.0), Exponential(tau = 5 ms)", "h -> out : Dense(weight = 1.0)"
        )
    )
    assert _errors(path) == []  # found by the eprop pass, which `snnc check` runs
    with pytest.raises(DiagnosticError) as err:
        eprop(discretise(load_file(str(path))))
    d = err.value.diagnostics[0]
    assert (d.code, d.span.line, d.span.col) == ("E-EPROP-PARAM", 5, 46)
    assert "cannot train 'tau_mem' of output population 'out'" in d.message


def test_eprop_refuses_a_second_trained_output_bias(tmp_path: Path) -> None:
    path = _write(tmp_path, algorithm="eprop")
    path.write_text(path.read_text().replace("readout = avg_var", "bias = Trainable(0.0), readout = avg_var"))
    errors = _errors(path)
    assert [(c, ln) for c, ln, cl, m in errors if "trains the bias of output" in m] == [("E-ALGO", 5)], errors


def test_a_param_off_the_gradient_path_is_refused(tmp_path: Path) -> None:
    extra = "    hidden side = LIF(2, tau_mem = Trainable(20 ms))\n    x -> side : Dense(weight = 1.0), Exponential(tau = 5 ms)\n"
    errors = _errors(_write(tmp_path, extra=extra))
    assert any(
        c == "E-ALGO" and ln == 8 and "not on EventProp's gradient path" in m for c, ln, _, m in errors
    ), errors


def test_genn_trains_eventprop_params_at_check(tmp_path: Path) -> None:
    """GeNN trains EventProp's params, shared and per neuron, neuron and synapse ones, beside
    untrained per-neuron ones, and simulates a network with them (tests/backends/
    test_genn_eventprop_params.py, test_genn_per_neuron_params.py); e-prop's synapse params it
    refuses (below)."""
    trained = ", tau_mem = Trainable(20 ms, per_neuron = true), v_thresh = Trainable(1.0)"
    path = _write(
        tmp_path, hidden=trained + ", v_reset = Uniform(0.0, 0.1)", syn="tau = Trainable(Uniform(4 ms, 6 ms))"
    )
    assert check_supported(lower(path.read_text()), "genn") == []  # EventProp's
    assert check_supported(load_file(str(path)), "genn") == []  # simulated


def test_genn_accepts_eprop_synapse_params_and_a_backend_without_them_refuses_them(tmp_path: Path) -> None:
    """GeNN prints e-prop's synapse params as well as its neuron params (per post neuron, with the
    derived params computed once per trial: backends/genn/derived_printer.py); a backend that prints
    neuron params but not synapse params refuses them at the param."""
    import dataclasses

    from snnc.backends.capabilities import unsupported
    from snnc.backends.genn import CAPABILITIES

    path = _write(
        tmp_path, hidden=", v_thresh = Trainable(1.0)", syn="tau = Trainable(5 ms)", algorithm="eprop"
    )
    text = path.read_text().replace("Exponential(tau = 5 ms)", "Delta")  # a readout e-prop takes
    net = lower(text.replace("use std.{SpikeInput,", "use std.{Delta, SpikeInput,"))
    assert check_supported(net, "genn") == []
    assert check_supported(net, "c") == []
    found = unsupported(net, "genn", dataclasses.replace(CAPABILITIES, trainable_synapse_params=frozenset()))
    assert [(d.span.line, d.span.col) for d in found] == [(6, 55)], found
    assert "cannot train synapse params with eprop ('tau' of projection 'x_to_h')" in found[0].message


DELAYED_SYNAPSE = """use std.{SpikeInput, LIF, LeakyIntegrate, Exponential}
synapse Lagged {
    param tau   = 5 ms
    param delay = 1 ms
    state i = 0.0
    di/dt = -i / tau + 0 * delay / (tau * tau)
    on_pre { i += w }
    output i
}
network g {
    input  x   = SpikeInput(3)
    hidden h   = LIF(4)
    output out = LeakyIntegrate(2, readout = avg_var)
    x -> h   : Dense(weight = 1.0, delay = Trainable(1 ms, max = 5 ms)), Lagged(delay = Trainable(1 ms))
    h -> out : Dense(weight = 1.0), Exponential(tau = 5 ms)
}
train g {
    algorithm = eventprop
    loss = sparse_categorical_crossentropy
}
"""


def test_a_trainable_synapse_param_named_delay_beside_trainable_delays_is_refused(tmp_path: Path) -> None:
    """Both would be filed as `delay_x_to_h`; the param's Trainable is pointed at."""
    path = tmp_path / "net.snn"
    path.write_text(DELAYED_SYNAPSE)
    errors = _errors(path)
    assert any(
        "'delay' of projection 'x_to_h'" in msg and "delay_x_to_h" in msg and line == 14
        for _, line, _, msg in errors
    ), errors
