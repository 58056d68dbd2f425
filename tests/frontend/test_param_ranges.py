"""Param values outside the range their meaning allows: a std model's time constants (> 0), refractory
periods (>= 0) and switches (0 or 1), and any model's `refractory =` period (>= 0), each an E-VALUE
at the value with file:line:col. A user's own model keeps every value its equations allow."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from snnc.frontend import check_file

ROOT = Path(__file__).resolve().parents[2]
NET = """use std.{{SpikeInput, LIF, ALIF, IntegrateFire, LeakyIntegrate, Exponential}}
network g {{
    input  x   = SpikeInput(3)
    hidden h   = {hidden}
    output out = LeakyIntegrate(4{output}, readout = avg_var)
    x -> h   : Dense(weight = 1.0), Exponential({syn})
    h -> out : Dense(weight = 1.0), Exponential(tau = 5 ms)
}}
"""


def _errors(
    tmp_path: Path, hidden: str = "LIF(4)", output: str = "", syn: str = "tau = 5 ms", head: str = ""
):
    """Errors of NET with `head` (models) before it, lines counted from NET's first."""
    np.save(tmp_path / "taus.npy", np.array([10.0, 20.0, -1.0, 30.0]))
    np.save(tmp_path / "good.npy", np.array([10.0, 20.0, 15.0, 30.0]))
    path = tmp_path / "net.snn"
    path.write_text(head + NET.format(hidden=hidden, output=output, syn=syn))
    lines = len(head.splitlines())
    return [
        (d.code, d.span.line - lines, d.span.col, d.message)
        for d in check_file(str(path))
        if d.severity == "error"
    ]


BAD = [
    # (hidden population, output overrides, synapse overrides, line, column, message fragment)
    ("LIF(4, tau_mem = -20 ms)", "", "tau = 5 ms", 4, 35, "tau_mem = -20 ms is outside its range"),
    ("LIF(4, tau_mem = 0 ms)", "", "tau = 5 ms", 4, 35, "must be above 0 ms"),
    ("LIF(4, tau_refrac = -1 ms)", "", "tau = 5 ms", 4, 38, "tau_refrac is a refractory period of LIF"),
    ("LIF(4, relative_reset = 0.5)", "", "tau = 5 ms", 4, 42, "must be true or false"),
    ("ALIF(4, tau_adapt = -2 s)", "", "tau = 5 ms", 4, 38, "tau_adapt = -2 s is outside"),
    ("ALIF(4, tau_refrac = -1 ms)", "", "tau = 5 ms", 4, 39, "must be at least 0 ms"),
    ("IntegrateFire(4, tau_mem = -5 ms)", "", "tau = 5 ms", 4, 45, "time constant of IntegrateFire"),
    ("LIF(4)", ", tau_mem = -20 ms", "tau = 5 ms", 5, 46, "time constant of LeakyIntegrate"),
    ("LIF(4)", "", "tau = -5 ms", 6, 55, "synapse Exponential: tau = -5 ms"),
    ("LIF(4, tau_mem = Trainable(-3 ms))", "", "tau = 5 ms", 4, 35, "Trainable(-3 ms) is outside"),
    ("LIF(4, tau_mem = Trainable(20 ms, min = 0 ms))", "", "tau = 5 ms", 4, 35, "Trainable(min = 0 ms)"),
    ("LIF(4)", "", "tau = Trainable(5 ms, max = -1 ms)", 6, 55, "lets tau leave its range"),
    ("LIF(4, tau_mem = Uniform(-1 ms, 20 ms))", "", "tau = 5 ms", 4, 35, "not -1 ms and 20 ms"),
    ("LIF(4, tau_mem = Trainable(Uniform(0 ms, 2 ms)))", "", "tau = 5 ms", 4, 45, "Uniform()'s bounds"),
    ('LIF(4, tau_mem = File("taus.npy"))', "", "tau = 5 ms", 4, 35, "holds 1 value(s) of tau_mem outside"),
    ("LIF(4)", "", 'tau = File("taus.npy")', 6, 55, "value(s) of tau outside its range"),
]


@pytest.mark.parametrize("hidden, output, syn, line, col, fragment", BAD, ids=[b[-1][:30] for b in BAD])
def test_std_param_out_of_range_is_located(tmp_path, hidden, output, syn, line, col, fragment):
    errors = _errors(tmp_path, hidden, output, syn)
    assert [(c, ln, cl) for c, ln, cl, _ in errors] == [("E-VALUE", line, col)], errors
    assert fragment in errors[0][3], errors


GOOD = [
    ("LIF(4, tau_mem = 1e-3 ms, tau_refrac = 0 ms, relative_reset = true)", "", "tau = 5 ms"),
    ("LIF(4, relative_reset = 0, v_thresh = -1.0, v_reset = -2.0)", "", "tau = 0.1 ms"),
    ("ALIF(4, beta = -0.5, tau_refrac = 2 ms)", ", bias = -3.0", "tau = 5 ms"),
    ('LIF(4, tau_mem = File("good.npy"), tau_refrac = 5 ms)', "", 'tau = File("good.npy")'),
    ("LIF(4, tau_mem = Trainable(Uniform(1 ms, 2 ms)))", "", "tau = Normal(5 ms, 10 ms)"),
    (
        "LIF(4, tau_mem = Trainable(20 ms, min = 1 ms, max = 100 ms))",
        "",
        "tau = Trainable(5 ms, min = 0.5 ms)",
    ),
]


@pytest.mark.parametrize("hidden, output, syn", GOOD)
def test_std_params_in_range_are_accepted(tmp_path, hidden, output, syn):
    assert _errors(tmp_path, hidden, output, syn) == []


USER = """neuron Growing {
    param tau = 20 ms
    param tau_r = 2 ms
    state v = 0.0
    input i_syn
    dv/dt = (i_syn - v) / tau
    spike when v >= 1
    reset { v = 0.0 }
    refractory = 2 * tau_r - 5 ms
}
"""


def test_user_model_keeps_its_values_but_not_a_negative_refractory_period(tmp_path):
    """`tau = -20 ms` in a user's model is the user's meaning; a refractory period below 0 is not."""
    ok = _errors(tmp_path, "Growing(4, tau = -20 ms, tau_r = 3 ms)", head=USER)
    assert ok == []
    written = _errors(tmp_path, "Growing(4, tau = -20 ms, tau_r = 1 ms)", head=USER)
    assert [(c, ln, cl) for c, ln, cl, _ in written] == [("E-VALUE", 4, 51)], written
    assert "refractory period '2*tau_r - 5' is -3 ms" in written[0][3]
    default = _errors(tmp_path, "Growing(4)", head=USER)  # the default 2 ms: -1 ms, at the population
    assert [(c, ln, cl) for c, ln, cl, _ in default] == [("E-VALUE", 4, 5)], default


def test_a_local_model_named_like_a_std_one_is_the_users(tmp_path):
    """Without `use std.LIF` the file's own LIF wins over the prelude's."""
    local = USER.replace("Growing", "LIF").replace("tau_r = 2 ms", "tau_r = 3 ms")
    path = tmp_path / "net.snn"
    path.write_text(local + NET.format(hidden="LIF(4, tau = -20 ms)", output="", syn="").split("\n", 1)[1])
    assert [d.message for d in check_file(str(path)) if d.severity == "error"] == []


def test_the_cli_exits_1_without_a_traceback(tmp_path):
    path = tmp_path / "net.snn"
    path.write_text(NET.format(hidden="LIF(4, tau_mem = -20 ms)", output="", syn="tau = 5 ms"))
    result = subprocess.run(
        [sys.executable, "-m", "snnc", "check", str(path)], capture_output=True, text=True, cwd=ROOT
    )
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert f"{path}:4:35: error: population 'h': tau_mem = -20 ms" in out and "Traceback" not in out
