"""`snnc train` and `snnc evaluate` as a user runs them: exit codes, metrics.json, clear errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]

SMALL = """
use std.{SpikeInput, LIF, LeakyIntegrate, Exponential}

network small {
    input  x   = SpikeInput(4)
    hidden h   = LIF(HIDDEN, tau_mem = 20 ms, v_thresh = 1.0, tau_refrac = 0 ms)
    output out = LeakyIntegrate(3, tau_mem = 20 ms, readout = avg_var_exp_weight)
    x -> h   : Dense(weight = Normal(mean = 1.5, sd = 0.78)), Exponential(tau = 5 ms)
    h -> out : Dense(weight = Normal(mean = 0.93, sd = 0.1)), Exponential(tau = 5 ms)
}

train small {
    algorithm  = eventprop(max_spikes = 100)
    loss       = sparse_categorical_crossentropy
    optimizer  = adam(lr = 0.003)
    data       = DATA
    dt         = 0.5 ms
    duration   = 30 ms
    batch_size = 16
    epochs     = 2
    seed       = 1
}
"""
YINYANG = "yinyang(train = 64, test = 48, t_min = 2 ms, t_max = 27 ms)"


def write(tmp_path: Path, name: str = "small.snn", hidden: int = 20, data: str = YINYANG) -> Path:
    path = tmp_path / name
    path.write_text(SMALL.replace("HIDDEN", str(hidden)).replace("DATA", data))
    return path


def snnc(*args: str, cwd: Path | None = None, timeout: int = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "snnc", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=cwd or ROOT,
        timeout=timeout,
    )


def assert_user_error(result: subprocess.CompletedProcess, *words: str) -> None:
    assert result.returncode == 1, (result.stdout, result.stderr)
    assert "Traceback" not in result.stderr + result.stdout
    for w in words:
        assert w in result.stderr, result.stderr


def checkpoint_of(path: Path, out: Path) -> Path:
    """A checkpoint of the compiled model's initial weights, as training would write it."""
    from snnc.runtime.checkpoint import save_checkpoint

    from snnc.api import compile_network

    net = compile_network(path)
    meta = {"epoch": 0, "next_epoch": 1, "model_hash": net.manifest["ir_hash"]}
    return save_checkpoint(out, net.weights, meta=meta)


def test_missing_data_file_is_a_clear_error(tmp_path):
    path = write(tmp_path, data='npz(path = "nowhere.npz")')
    result = snnc("train", path, "--out", tmp_path / "run", "--quiet")
    assert_user_error(result, "no data file", "nowhere.npz")


def test_network_without_train_block_cannot_train(tmp_path):
    path = tmp_path / "plain.snn"
    path.write_text(SMALL.split("train small")[0].replace("HIDDEN", "20"))
    assert_user_error(snnc("train", path, "--quiet"), "no train block")


def test_bad_epochs_and_backend(tmp_path):
    path = write(tmp_path)
    assert_user_error(snnc("train", path, "--epochs", "0", "--quiet"), "--epochs must be at least 1")
    usage = snnc("train", path, "--backend", "nosuch", "--quiet")
    assert usage.returncode == 2 and "invalid choice" in usage.stderr


def test_evaluate_a_checkpoint(tmp_path):
    path = write(tmp_path)
    ckpt = checkpoint_of(path, tmp_path / "run" / "epoch-0000.npz")
    result = snnc("evaluate", path, "--checkpoint", tmp_path / "run", "--quiet")
    assert result.returncode == 0, result.stderr
    assert "epoch-0000.npz (epoch 0): test loss " in result.stdout and "accuracy" in result.stdout
    accuracy = float(result.stdout.split("accuracy ")[1].split()[0])
    assert 0.0 <= accuracy <= 1.0
    # a file path works as well as its folder, and gives the same numbers
    again = snnc("evaluate", path, "--checkpoint", ckpt, "--quiet")
    assert again.returncode == 0 and again.stdout == result.stdout


def test_evaluate_rejects_bad_checkpoints(tmp_path):
    path = write(tmp_path)
    corrupt = tmp_path / "corrupt.npz"
    corrupt.write_bytes(b"\x00" * 100)
    assert_user_error(snnc("evaluate", path, "--checkpoint", corrupt), "corrupt")
    other = checkpoint_of(write(tmp_path, "wide.snn", hidden=30), tmp_path / "wide.npz")
    assert_user_error(snnc("evaluate", path, "--checkpoint", other), "another model")
    assert_user_error(snnc("evaluate", path, "--checkpoint", tmp_path / "missing.npz"), "no checkpoint")
    empty = tmp_path / "empty"
    empty.mkdir()
    assert_user_error(snnc("evaluate", path, "--checkpoint", empty), "no checkpoint")


def test_train_writes_metrics_and_checkpoints(tmp_path):
    path = write(tmp_path)
    out = tmp_path / "run"
    result = snnc("train", path, "--epochs", "2", "--out", out, "--quiet")
    if result.returncode == 3 and "compiled without a gradient pass" in result.stderr:
        pytest.xfail("the C backend's EventProp backward pass has not landed yet")
    assert result.returncode == 0, result.stderr
    doc = json.loads((out / "metrics.json").read_text())
    assert [e["epoch"] for e in doc["epochs"]] == [0, 1]
    for e in doc["epochs"]:
        assert np.isfinite(e["train"]["loss"]) and 0.0 <= e["train"]["accuracy"] <= 1.0
    assert 0.0 <= doc["test"]["accuracy"] <= 1.0 and doc["test"]["examples"] == 48
    assert (out / "epoch-0001.npz").is_file()
    lines = result.stdout.splitlines()
    assert lines[0].startswith("epoch 1/2  train: loss") and lines[1].startswith("epoch 2/2")
    # evaluating the last checkpoint gives the reported test accuracy
    ev = snnc("evaluate", path, "--checkpoint", out, "--quiet")
    assert ev.returncode == 0, ev.stderr
    assert float(ev.stdout.split("accuracy ")[1].split()[0]) == pytest.approx(
        doc["test"]["accuracy"], abs=1e-4
    )
    # resuming to 3 epochs runs only the third
    more = snnc("train", path, "--epochs", "3", "--out", out, "--quiet", "--resume")
    assert more.returncode == 0, more.stderr
    assert [e["epoch"] for e in json.loads((out / "metrics.json").read_text())["epochs"]] == [0, 1, 2]
    assert "epoch 1/3" not in more.stdout and "epoch 3/3" in more.stdout


@pytest.mark.slow
def test_yinyang_example_reaches_93_percent(tmp_path):
    """The main job: examples/yinyang_eventprop.snn as written trains to >= 93 % test accuracy."""
    out = tmp_path / "yinyang"
    result = snnc("train", ROOT / "examples" / "yinyang_eventprop.snn", "--out", out, "--quiet", timeout=900)
    assert result.returncode == 0, result.stderr
    doc = json.loads((out / "metrics.json").read_text())
    assert len(doc["epochs"]) == 40
    assert doc["test"]["accuracy"] >= 0.93, doc["test"]


def test_threads_must_be_positive(tmp_path):
    path = write(tmp_path)
    assert_user_error(snnc("train", path, "--threads", "0", "--quiet"), "--threads must be at least 1")
