"""Train-block options outside what they mean (a negative regularisation strength, a switch given a
number, spikes before the trial's start) are E-VALUE at the value, from `snnc check` on."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from snnc.frontend import check_file

ROOT = Path(__file__).resolve().parents[2]
YINYANG = (ROOT / "examples" / "yinyang_eventprop.snn").read_text()
EPROP = (ROOT / "examples" / "eprop_digits.snn").read_text()
DATA = "yinyang(train = 5000, test = 1000, t_min = 2 ms, t_max = 27 ms, bias = true)"
ALGO = "eventprop(max_spikes = 500)"
EPROP_ALGO = "eprop(c_reg = 0.001, f_target = 10 Hz, tau_reg = 500 ms)"
TTFS = YINYANG.replace(
    "LeakyIntegrate(3, tau_mem = 20 ms, readout = avg_var_exp_weight)", "LIF(3, readout = first_spike_time)"
).replace("= sparse_categorical_crossentropy", "= relative_mse")
SHD = (ROOT / "examples" / "shd_eventprop.snn").read_text()
SHD_DATA = 'shd(path = "shd")'


def _errors(tmp_path: Path, text: str, old: str, new: str) -> list[tuple[str, str, str]]:
    """(code, the text under the error's span, message) of each error after replacing `old`."""
    assert old in text
    path = tmp_path / "net.snn"
    path.write_text(text.replace(old, new))
    lines = path.read_text().splitlines()
    out = []
    for d in check_file(str(path)):
        if d.severity == "error":
            line = lines[d.span.line - 1]
            out.append((d.code, line[d.span.col - 1 : d.span.end_col - 1], d.message))
    return out


BAD = [
    # (file, written, replaced by, the value the error points at, message fragment)
    (YINYANG, "seed       = 1", "seed = 1; regularisation = spike_count(strength = -1)", "-1", "strength"),
    (
        YINYANG,
        "seed       = 1",
        "seed = 1; regularisation = spike_count(nu = -2)",
        "-2",
        "target spike count",
    ),
    (YINYANG, ALGO, "eventprop(reg_lambda_upper = -1e-3)", "-1e-3", "regularisation strength"),
    (YINYANG, ALGO, "eventprop(reg_nu_upper = -1)", "-1", "at least 0"),
    (YINYANG, DATA, DATA.replace("bias = true", "bias = 3"), "3", "must be true or false"),
    (YINYANG, DATA, DATA.replace("bias = true", "bias = 1"), "1", "must be true or false"),
    (YINYANG, DATA, DATA.replace("t_min = 2 ms", "t_min = -5 ms"), "-5 ms", "earliest input spike"),
    (
        YINYANG,
        "= sparse_categorical_crossentropy",
        "= sparse_categorical_crossentropy(per_timestep = 2)",
        "2",
        "true or false",
    ),
    (YINYANG, "gamma = 0.97", "gamma = -1", "-1", "a factor on the learning rate"),
    (YINYANG, "exponential_decay(gamma = 0.97)", "step_decay(step_size = 2, gamma = -0.5)", "-0.5", "factor"),
    (YINYANG, "duration   = 30 ms", "duration = 15 ms", "27 ms", "but a trial lasts 15 ms"),
    (EPROP, "duration   = 20 ms", "duration = 10 ms", "20 ms", "digits(t_max = 20 ms) puts input spikes"),
    (TTFS, "= relative_mse", "= relative_mse(delta = -1 ms)", "-1 ms", "(a negative one: earlier)"),
    (TTFS, "= relative_mse", "= ttfs_crossentropy(alpha = -0.1)", "-0.1", "towards early spikes"),
    (TTFS, "= relative_mse", "= relative_mse(t_nospike = -1 ms)", "-1 ms", "does not spike"),
    (EPROP, EPROP_ALGO, "eprop(c_reg = -0.001)", "-0.001", "regularisation strength"),
    (EPROP, EPROP_ALGO, "eprop(f_target = -10 Hz)", "-10 Hz", "target firing rate"),
    (EPROP, EPROP_ALGO, "eprop(reset_state = 0.5)", "0.5", "true or false"),
    (EPROP, "data       = digits(", "data = digits(t_min = -1 ms, ", "-1 ms", "at least 0"),
    (SHD, SHD_DATA, 'shd(path = "shd", bin = 0 ms)', "0 ms", "above 0"),
    (SHD, SHD_DATA, 'shd(path = "shd", max_time = -1 ms)', "-1 ms", "spikes are dropped"),
]


@pytest.mark.parametrize("text, old, new, at, fragment", BAD, ids=[b[2] for b in BAD])
def test_option_outside_its_range_is_located(tmp_path, text, old, new, at, fragment):
    errors = _errors(tmp_path, text, old, new)
    assert [(c, s) for c, s, _ in errors] == [("E-VALUE", at)], errors
    assert fragment in errors[0][2]


GOOD = [
    (YINYANG, "seed       = 1", "seed = 1; regularisation = spike_count(strength = 0, target = 0)"),
    (YINYANG, ALGO, "eventprop(reg_lambda_upper = 1e-9, reg_lambda_lower = 0, reg_nu_upper = 14)"),
    (YINYANG, DATA, DATA.replace("bias = true", "bias = false").replace("2 ms", "0 ms")),
    (YINYANG, "gamma = 0.97", "gamma = 1"),
    (YINYANG, "duration   = 30 ms", "duration = 27 ms"),
    (TTFS, "= relative_mse", "= relative_mse(delta = 0.5 ms, t_nospike = 30 ms)"),
    (TTFS, "= relative_mse", "= ttfs_crossentropy(alpha = 0.01, tau0 = 0.5 ms, tau1 = 6.4 ms)"),
    (EPROP, "encoding = latency, t_max = 20 ms", "encoding = rate, t_max = 50 ms"),
    (EPROP, EPROP_ALGO, "eprop(c_reg = 0, f_target = 0 Hz, reset_state = false, error_start = 0 ms)"),
    (SHD, SHD_DATA, 'shd(path = "shd", bin = 0.5 ms, max_time = 1000 ms)'),
]


@pytest.mark.parametrize("text, old, new", GOOD, ids=[g[2] for g in GOOD])
def test_option_inside_its_range_is_accepted(tmp_path, text, old, new):
    assert _errors(tmp_path, text, old, new) == []


@pytest.mark.parametrize(
    "old, new, said",
    [
        ("bias = true", "bias = 3", "yinyang(bias = 3): bias is whether a bias neuron"),
        (
            "seed       = 1",
            "seed = 1; regularisation = spike_count(strength = -1)",
            "spike_count(strength = -1): strength is",
        ),
    ],
)
def test_the_cli_exits_1_without_a_traceback(tmp_path, old, new, said):
    path = tmp_path / "net.snn"
    path.write_text(YINYANG.replace(old, new))
    for command in (["check"], ["train", "--epochs", "1", "--out", str(tmp_path / "run")]):
        result = subprocess.run(
            [sys.executable, "-m", "snnc", *command, str(path)], capture_output=True, text=True, cwd=ROOT
        )
        out = result.stdout + result.stderr
        assert result.returncode == 1, out
        assert f"error: {said}" in out and "Traceback" not in out


@pytest.mark.parametrize(
    "text, old, new, at",
    [
        (TTFS, "= relative_mse", "= relative_mse(delta = 2 mV)", "2 mV"),
        (EPROP, EPROP_ALGO, "eprop(error_start = 5 mV)", "5 mV"),
    ],
)
def test_time_options_of_losses_and_eprop_need_a_time(tmp_path, text, old, new, at):
    """`delta` and `error_start` are times: a voltage was read as that many ms (option_dims.py)."""
    errors = _errors(tmp_path, text, old, new)
    assert [(c, s) for c, s, _ in errors] == [("E-DIM", at)], errors
