"""Per-neuron params in the source: the initialisers weights take, checked where they are written
(dimension, file length and type, what cannot differ between neurons) and refused by backends and
algorithms that cannot run them, each with file:line:col."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from snnc.backends import check_supported as unsupported_on
from snnc.frontend import check_file, load_file

ROOT = Path(__file__).resolve().parents[2]
NET = """use std.{{SpikeInput, LIF, LeakyIntegrate, Exponential}}
network g {{
    input  x   = SpikeInput(3)
    hidden h   = LIF(4{hidden})
    output out = LeakyIntegrate(2{output}, readout = avg_var)
    x -> h   : Dense(weight = 1.0), Exponential({syn})
    h -> out : Dense(weight = 1.0), Exponential(tau = 5 ms)
}}
train g {{
    algorithm = {algorithm}
    loss = sparse_categorical_crossentropy
}}
"""


def _write(
    tmp_path: Path, hidden: str = "", output: str = "", syn: str = "tau = 5 ms", algorithm: str = "eventprop"
) -> Path:
    np.save(tmp_path / "four.npy", np.array([10.0, 12.0, 14.0, 16.0]))
    np.save(tmp_path / "three.npy", np.ones(3))
    np.save(tmp_path / "text.npy", np.array(["a", "b", "c", "d"]))
    path = tmp_path / "net.snn"
    path.write_text(NET.format(hidden=hidden, output=output, syn=syn, algorithm=algorithm))
    return path


def _errors(path: Path) -> list[tuple[str, int, int, str]]:
    return [
        (d.code, d.span.line, d.span.col, d.message) for d in check_file(str(path)) if d.severity == "error"
    ]


def test_valid_per_neuron_params_lower_to_initialisers(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        hidden=', tau_mem = Uniform(10 ms, 30 ms), v_thresh = File("four.npy")',
        output=", bias = Normal(0.0, 0.1), tau_mem = Constant(10 ms)",
        syn="tau = Normal(mean = 5 ms, sd = 1 ms)",
    )
    assert _errors(path) == []
    net = load_file(str(path))
    h, out = net.populations["h"], net.populations["out"]
    assert h.param_inits["tau_mem"].kind == "uniform" and h.param_inits["tau_mem"].args == {
        "low": 10.0,
        "high": 30.0,
    }
    assert h.param_inits["v_thresh"].kind == "file"
    assert set(out.param_inits) == {"bias"} and out.params["tau_mem"] == 10.0  # Constant is one number
    assert net.projections["x_to_h"].synapse_param_inits["tau"].args == {"mean": 5.0, "sd": 1.0}


@pytest.mark.parametrize(
    ("hidden", "syn", "code", "col", "fragment"),
    [
        (", tau_mem = Uniform(10 mV, 30 ms)", "tau = 5 ms", "E-DIM", 43, "LIF.tau_mem is time"),
        (', v_thresh = File("three.npy")', "tau = 5 ms", "E-WEIGHT-FILE", 36, "holds 3 values"),
        (', v_thresh = File("text.npy")', "tau = 5 ms", "E-WEIGHT-FILE", 36, "not a numeric"),
        (
            ', v_thresh = File("missing.npy")',
            "tau = 5 ms",
            "E-FILE",
            41,
            "param file 'missing.npy' not found",
        ),
        (", v = Uniform(0.0, 0.5)", "tau = 5 ms", "E-TYPE", 29, "initial values have no per-neuron values"),
        (", tau_refrac = Uniform(1 ms, 2 ms)", "tau = 5 ms", "E-TYPE", 38, "refractory period"),
        (", tau_mem = Uniform(30 ms, 10 ms)", "tau = 5 ms", "E-VALUE", 35, "low (30) is above high (10)"),
    ],
)
def test_bad_per_neuron_values_are_located(
    tmp_path: Path, hidden: str, syn: str, code: str, col: int, fragment: str
) -> None:
    errors = _errors(_write(tmp_path, hidden=hidden, syn=syn))
    assert any(c == code and ln == 4 and cl == col and fragment in m for c, ln, cl, m in errors), errors


def test_a_synapse_param_file_has_one_value_per_post_neuron(tmp_path: Path) -> None:
    assert _errors(_write(tmp_path, syn='tau = File("four.npy")')) == []
    path = _write(tmp_path, syn='tau = File("three.npy")')
    assert any(
        c == "E-WEIGHT-FILE" and ln == 6 and "post population 'h' has 4 neurons" in m
        for c, ln, _, m in _errors(path)
    )


def test_the_cli_exits_1_with_file_line_col(tmp_path: Path) -> None:
    path = _write(tmp_path, hidden=', v_thresh = File("three.npy")')
    result = subprocess.run(
        [sys.executable, "-m", "snnc", "check", str(path)], capture_output=True, text=True, cwd=ROOT
    )
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert f"{path}:4:36: error: param file 'three.npy' holds 3 values" in out and "Traceback" not in out


def test_both_backends_take_per_neuron_params_at_check(tmp_path: Path) -> None:
    """GeNN runs them too (tests/backends/test_genn_per_neuron_params.py); a backend without them
    refuses each at the param."""
    import dataclasses

    from snnc.backends import get_backend
    from snnc.backends.capabilities import unsupported

    path = _write(tmp_path, hidden=", tau_mem = Uniform(10 ms, 30 ms)", syn="tau = Normal(5 ms, 1 ms)")
    network = load_file(str(path))
    assert unsupported_on(network, "genn") == unsupported_on(network, "c") == []
    without = dataclasses.replace(get_backend("genn").capabilities, per_neuron_params=False)
    found = unsupported(network, "other", without)
    assert [(d.span.line, d.span.col) for d in found] == [(4, 35), (6, 55)]
    assert "has no per-neuron params ('tau_mem' of population 'h')" in found[0].message


def test_eprop_refuses_per_neuron_params_but_takes_an_output_bias(tmp_path: Path) -> None:
    eprop = "eprop"
    path = _write(tmp_path, hidden=", tau_mem = Uniform(10 ms, 30 ms)", algorithm=eprop)
    errors = _errors(path)
    assert any(c == "E-ALGO" and (ln, cl) == (4, 35) and "one per neuron" in m for c, ln, cl, m in errors), (
        errors
    )
    assert _errors(_write(tmp_path, output=", bias = Normal(0.0, 0.1)", algorithm=eprop)) == []
