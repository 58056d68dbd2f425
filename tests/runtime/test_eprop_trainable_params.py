"""Trained neuron params under e-prop through `snnc train`: they move, keep their bounds, are
reported, checkpointed beside the weights (with their optimiser moments) and restored by --resume
exactly (two epochs and a resumed third end where three epochs in one run do). The gradients
themselves are checked against BPTT in tests/backends/test_eprop_param_bptt.py."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "eprop_digits.snn"


def _source(tmp_path: Path) -> Path:
    text = EXAMPLE.read_text()
    hidden = "ALIF(100, tau_mem = 20 ms"
    assert hidden in text and "beta = 0.0174)" in text
    text = text.replace(
        hidden, "ALIF(100, tau_mem = Trainable(20 ms, per_neuron = true, min = 5 ms, max = 60 ms)"
    )
    text = text.replace("beta = 0.0174)", "beta = 0.0174, v_thresh = Trainable(1.0, min = 0.5))")
    path = tmp_path / "digits.snn"
    path.write_text(text)
    return path


def _train(path: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "snnc", "train", str(path), "--out", str(out), "--quiet", *extra]
    res = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    return res


@pytest.mark.slow
def test_eprop_trains_reports_checkpoints_and_resumes_neuron_params(tmp_path: Path) -> None:
    path = _source(tmp_path)
    straight = _train(path, tmp_path / "straight", "--epochs", "3")
    assert "params: tau_mem_h " in straight.stdout and "v_thresh_h" in straight.stdout
    saved = np.load(tmp_path / "straight" / "epoch-0002.npz")
    tau, vth = saved["weights/tau_mem_h"], saved["weights/v_thresh_h"]
    assert tau.shape == (100,) and vth.shape == (1,)
    assert "optimiser/m/tau_mem_h" in saved and "optimiser/m/v_thresh_h" in saved
    # the params moved: tau per neuron (apart), the shared threshold (down to its bound)
    assert np.abs(tau - 20.0).max() > 0.1 and tau.std() > 0.01
    assert 5.0 <= tau.min() and tau.max() <= 60.0
    assert vth[0] < 0.99 and vth[0] >= 0.5
    metrics = json.loads((tmp_path / "straight" / "metrics.json").read_text())
    assert metrics["test"]["accuracy"] >= 0.7  # 3 epochs: 0.78 without trained params

    _train(path, tmp_path / "resumed", "--epochs", "2")
    _train(path, tmp_path / "resumed", "--epochs", "3", "--resume")
    again = np.load(tmp_path / "resumed" / "epoch-0002.npz")
    for key in ("weights/tau_mem_h", "weights/v_thresh_h", "weights/x_to_h", "optimiser/v/tau_mem_h"):
        np.testing.assert_array_equal(again[key], saved[key], err_msg=key)


def _synapse_source(tmp_path: Path) -> Path:
    """eprop_digits with Exponential synapses whose tau is trained: per post neuron on the input
    projection, shared (with a tenfold learning rate) on the recurrent one."""
    text = EXAMPLE.read_text()
    inp = "x -> h   : Dense(weight = Normal(mean = 0.0, sd = 4.0)), Delta()"
    rec = "h -> h   : Dense(weight = Normal(mean = 0.0, sd = 0.1)), Delta()"
    assert inp in text and rec in text
    text = text.replace(
        inp,
        "x -> h   : Dense(weight = Normal(mean = 0.0, sd = 1.0)), "
        "Exponential(tau = Trainable(5 ms, per_neuron = true, min = 2 ms, max = 20 ms))",
    )
    text = text.replace(rec, rec.replace("Delta()", "Exponential(tau = Trainable(5 ms, lr = 10))"))
    path = tmp_path / "digits_syn.snn"
    path.write_text(text)
    return path


@pytest.mark.slow
def test_eprop_trains_reports_checkpoints_and_resumes_synapse_params(tmp_path: Path) -> None:
    path = _synapse_source(tmp_path)
    straight = _train(path, tmp_path / "straight", "--epochs", "2")
    assert "params: tau_x_to_h " in straight.stdout and "tau_h_to_h" in straight.stdout
    saved = np.load(tmp_path / "straight" / "epoch-0001.npz")
    tau_in, tau_rec = saved["weights/tau_x_to_h"], saved["weights/tau_h_to_h"]
    assert tau_in.shape == (100,) and tau_rec.shape == (1,)
    assert "optimiser/m/tau_x_to_h" in saved and "optimiser/m/tau_h_to_h" in saved
    assert tau_in.std() > 0.01 and 2.0 <= tau_in.min() and tau_in.max() <= 20.0
    assert abs(tau_rec[0] - 5.0) > 0.5  # lr = 10: ten times Adam's step of 0.01 per batch
    metrics = json.loads((tmp_path / "straight" / "metrics.json").read_text())
    assert metrics["test"]["accuracy"] >= 0.7

    _train(path, tmp_path / "resumed", "--epochs", "1")
    _train(path, tmp_path / "resumed", "--epochs", "2", "--resume")
    again = np.load(tmp_path / "resumed" / "epoch-0001.npz")
    for key in ("weights/tau_x_to_h", "weights/tau_h_to_h", "weights/x_to_h", "optimiser/v/tau_x_to_h"):
        np.testing.assert_array_equal(again[key], saved[key], err_msg=key)
