"""A number that is not a finite real (`1/0`, `log(0)`, `0/0`, `sqrt(-1)`, `exp(1000)`) is E-VALUE at
the smallest part of the expression that makes it so, wherever an expression is written: equations,
spike conditions, resets, params, overrides, train settings. Before, `spike when v >= 1/0` was an
internal error (exit 3), `reset { v = 0/0 }` and `exp(1000)` compiled into NAN and inf, and `1/0` in
an ODE was refused only after the passes, without a location."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from snnc.frontend import check_file

ROOT = Path(__file__).resolve().parents[2]
SOURCE = """neuron N {
    param tau = 20 ms
    param th = 1.0
    state v = 0.0
    input i_syn
    dv/dt = (i_syn - v) / tau + DRIVE
    spike when v >= th
    reset { v = 0.0 }
}
use std.{SpikeInput, LeakyIntegrate, Exponential}
network n {
    input x = SpikeInput(3)
    hidden h = N(10)
    output out = LeakyIntegrate(2, readout = avg_var)
    x -> h : Dense(weight = 1.0), Exponential
    h -> out : Dense(), Exponential
}
train n {
    algorithm = none
    dt = 1 ms
    duration = 10 ms
}
"""
CASES = [
    # (written, replaced by, the text the error points at, why)
    ("+ DRIVE", "+ 1/0 / tau", "1/0", "infinite"),
    ("+ DRIVE", "+ log(0) / tau", "log(0)", "infinite"),
    ("+ DRIVE", "+ sqrt(-1) / tau", "sqrt(-1)", "imaginary"),
    ("+ DRIVE", "+ exp(1000) / tau", "exp(1000)", "inf in double precision"),
    ("(i_syn - v) / tau + DRIVE", "(i_syn - v) / (tau - tau)", "(i_syn - v) / (tau - tau)", "infinite"),
    ("v >= th", "v >= 1/0", "1/0", "infinite"),
    ("v = 0.0 }", "v = 0/0 }", "0/0", "undefined"),
    ("param th = 1.0", "param th = 0^(-1)", "0^(-1)", "infinite"),
    ("hidden h = N(10)", "hidden h = N(10, th = log(0))", "log(0)", "infinite"),
    ("dt = 1 ms", "dt = 1 ms / 0", "1 ms / 0", "infinite"),
]


def _errors(tmp_path: Path, old: str, new: str) -> list[tuple[str, str, str]]:
    path = tmp_path / "net.snn"
    text = SOURCE.replace(old, new).replace(" + DRIVE", "")
    path.write_text(text)
    lines = text.splitlines()
    return [
        (d.code, lines[d.span.line - 1][d.span.col - 1 : d.span.end_col - 1], d.message)
        for d in check_file(str(path))
        if d.severity == "error"
    ]


@pytest.mark.parametrize("old, new, at, why", CASES, ids=[c[1] for c in CASES])
def test_a_number_that_is_not_finite_is_located(tmp_path, old, new, at, why):
    errors = _errors(tmp_path, old, new)
    assert [(c, s) for c, s, _ in errors] == [("E-VALUE", at)], errors
    assert "is not a finite real number" in errors[0][2] and why in errors[0][2]


def test_finite_numbers_stay_accepted(tmp_path):
    assert _errors(tmp_path, "+ DRIVE", "+ exp(-1000) / tau + log(1) / tau + sqrt(0) / tau + 0/1 / tau") == []


def test_the_cli_exits_1_where_it_exited_3(tmp_path):
    path = tmp_path / "net.snn"
    path.write_text(SOURCE.replace("+ DRIVE", "").replace("v >= th", "v >= 1/0"))
    for command in (["check"], ["compile", "--emit", "c", "-o", str(tmp_path / "out")]):
        result = subprocess.run(
            [sys.executable, "-m", "snnc", *command, str(path)], capture_output=True, text=True, cwd=ROOT
        )
        out = result.stdout + result.stderr
        assert result.returncode == 1, out
        assert f"{path}:7:21: error: '1 / 0' is not a finite real number" in out and "Traceback" not in out
