"""`avg_var(v, start = …, stop = …)` / `sum_var(…)` / `avg_var_exp_weight(…)`: a readout summed over a window of the trial
(Bellec et al.'s answer read in the recall period). The options are checked where they are written,
and both gradient algorithms differentiate them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from snnc.frontend import check_file, load_file

ROOT = Path(__file__).resolve().parents[2]
NET = """use std.{{SpikeInput, LIF, LeakyIntegrate, Exponential}}
network g {{
    input  x   = SpikeInput(3)
    hidden h   = LIF(4)
    output out = LeakyIntegrate(2, readout = {readout})
    x -> h   : Dense(weight = 1.0), Exponential(tau = 5 ms)
    h -> out : Dense(weight = 1.0), Exponential(tau = 5 ms)
}}
train g {{
    algorithm = {algorithm}
    loss = sparse_categorical_crossentropy
    dt = 1 ms
    duration = 50 ms
}}
"""


def _write(tmp_path: Path, readout: str, algorithm: str = "eprop") -> Path:
    path = tmp_path / "net.snn"
    path.write_text(NET.format(readout=readout, algorithm=algorithm))
    return path


def test_a_window_lowers_to_times_in_ms_and_steps(tmp_path: Path) -> None:
    net = load_file(str(_write(tmp_path, "avg_var(v, start = 0.02 s, stop = 45 ms)")))
    ro = net.populations["out"].readout
    assert ro.kind == "avg_var" and ro.options == {"start": 20.0, "stop": 45.0} and ro.windowed
    assert ro.window_steps(1.0) == (20, 45) and ro.window_steps(0.5) == (40, 90)
    whole = load_file(str(_write(tmp_path, "avg_var(v)"))).populations["out"].readout
    assert not whole.windowed and whole.window_steps(1.0) == (0, None)


@pytest.mark.parametrize(
    "readout, code, message",
    [
        ("avg_var(v, begin = 20 ms)", "E-UNKNOWN-PARAM", "readout avg_var has no option 'begin'"),
        ("var(v, start = 20 ms)", "E-READOUT", "readout var has no time window"),
        ("max_var(v, start = 20 ms)", "E-READOUT", "readout max_var has no time window"),
        ("sum_var(v, start = 20)", "E-DIM", "must be a time"),
        ("sum_var(v, start = -2 ms)", "E-DIM", "must be a time, not negative"),
        ("avg_var(v, start = 30 ms, stop = 30 ms)", "E-VALUE", "start must come before stop"),
        ("avg_var(v, start = 50 ms)", "E-VALUE", "starts at 50 ms, when the trial of 50 ms has ended"),
    ],
)
def test_bad_window_options_are_located_diagnostics(
    tmp_path: Path, readout: str, code: str, message: str
) -> None:
    found = [
        (d.code, d.span.line, d.message)
        for d in check_file(str(_write(tmp_path, readout)))
        if d.severity == "error"
    ]
    assert len(found) == 1 and found[0][0] == code and found[0][1] == 5 and message in found[0][2], found


@pytest.mark.parametrize("readout", ["avg_var(v, start = 20 ms)", "avg_var_exp_weight(v, start = 20 ms)"])
def test_eventprop_accepts_a_windowed_readout_at_the_command_line(tmp_path: Path, readout: str) -> None:
    """EventProp differentiates the window (tests/runtime/test_gradients.py checks it against finite
    differences), so `snnc check` passes it."""
    path = _write(tmp_path, readout, algorithm="eventprop")
    res = subprocess.run(
        [sys.executable, "-m", "snnc", "check", str(path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=120,
    )
    out = res.stdout + res.stderr
    assert res.returncode == 0 and "ok" in out, out


def test_eprop_refuses_an_exp_weighted_readout_at_its_location(tmp_path: Path) -> None:
    """e-prop takes no avg_var_exp_weight, windowed or not: refused where the readout is written."""
    from snnc.ir.diagnostics import DiagnosticError

    from snnc.api import lower

    with pytest.raises(DiagnosticError) as err:
        lower(str(_write(tmp_path, "avg_var_exp_weight(v, start = 20 ms)")))
    (d,) = err.value.diagnostics
    assert (
        "readout avg_var_exp_weight of 'out'" in d.message
        and "eprop" in d.message
        and d.span is not None
        and d.span.line == 5
    )
