"""Issue 8's "done means": SIGKILL a real `snnc train` in the middle of an epoch, `--resume` it, and
get bit-for-bit the final weights (and per-epoch metrics) of an uninterrupted run with the same seed.

The training file exercises every piece of state a resume must restore: Adam's moments and step
count, an exponential learning-rate schedule, per-epoch augmentation (shift, blend) and shuffling,
and a validation split. The kill is timed from `--log-json -`: the "epoch" record of epoch 1 is
written once epoch 1's checkpoint and metrics.json are on disk, so the process is then starting
epoch 2; we wait a tenth of epoch 1's measured time (a few of epoch 2's ~90 batches), check that
epoch 2's checkpoint does not exist yet and kill. Epochs take 0.3-2 s (3,000 Yin-Yang examples,
depending on the machine's load): long enough to land inside one, short enough for a quick test.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from snnc.runtime.checkpoint import checkpoint_path, latest_checkpoint, load_checkpoint

ROOT = Path(__file__).resolve().parents[2]
EPOCHS = 4
KILL_AFTER = 1  # the "epoch" record of this epoch (0-based) triggers the kill, inside the next one

SOURCE = """
use std.{SpikeInput, LIF, LeakyIntegrate, Exponential}

network yy {
    input  x   = SpikeInput(5)
    hidden h   = LIF(40, tau_mem = 20 ms, v_thresh = 1.0, tau_refrac = 0 ms)
    output out = LeakyIntegrate(3, tau_mem = 20 ms, readout = avg_var_exp_weight)
    x -> h   : Dense(weight = Normal(mean = 2.5, sd = 1.0)), Exponential(tau = 5 ms)
    h -> out : Dense(weight = Normal(mean = 0.93, sd = 0.1)), Exponential(tau = 5 ms)
}

train yy {
    algorithm  = eventprop(max_spikes = 200)
    loss       = sparse_categorical_crossentropy
    optimizer  = adam(lr = 0.01)
    schedule   = exponential_decay(gamma = 0.9)
    augment    = (shift(max = 1), blend(n = 2, p = 0.5))
    data       = yinyang(train = 3000, test = 100, t_min = 2 ms, t_max = 27 ms, bias = true)
    validation_split = 0.1
    dt         = 0.1 ms
    duration   = 30 ms
    batch_size = 32
    epochs     = EPOCHS
    seed       = 3
}
""".replace("EPOCHS", str(EPOCHS))


def command(path: Path, out: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "snnc",
        "train",
        str(path),
        "--out",
        str(out),
        "--seed",
        "5",
        "--quiet",
        *extra,
    ]


def run(path: Path, out: Path, *extra: str) -> subprocess.CompletedProcess:
    result = subprocess.run(command(path, out, *extra), capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert result.returncode == 0, result.stderr
    return result


def final_weights(out: Path) -> dict[str, np.ndarray]:
    path = checkpoint_path(out, EPOCHS - 1)
    with np.load(path, allow_pickle=False) as f:
        return {k: f[k] for k in f.files if k.startswith(("weights/", "optimiser/"))}


def without_times(epochs: list[dict]) -> list[dict]:
    return [{k: v for k, v in e.items() if k != "seconds"} for e in epochs]


def kill_inside_epoch(path: Path, out: Path) -> dict:
    """Start training, SIGKILL it early in epoch KILL_AFTER + 1; returns the last epoch record."""
    proc = subprocess.Popen(
        command(path, out, "--log-json", "-"),
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        cwd=ROOT,
    )
    try:
        for line in proc.stdout:
            record = json.loads(line)
            if record["event"] == "epoch" and record["epoch"] == KILL_AFTER:
                assert Path(record["checkpoint"]).is_file()
                time.sleep(0.1 * record["seconds"])
                assert proc.poll() is None, "training ended before it could be killed"
                assert not checkpoint_path(out, KILL_AFTER + 1).exists(), "epoch 2 ended before the kill"
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=30)
                return record
        pytest.fail(f"training ended (exit {proc.wait()}) without reaching epoch {KILL_AFTER}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()


def test_sigkill_mid_epoch_then_resume_equals_uninterrupted(tmp_path):
    path = tmp_path / "yy.snn"
    path.write_text(SOURCE)

    killed = tmp_path / "killed"
    record = kill_inside_epoch(path, killed)
    # killed inside the next epoch: its checkpoint was never written, the last complete one is intact
    assert latest_checkpoint(killed) == checkpoint_path(killed, KILL_AFTER)
    assert record["checkpoint"] == str(checkpoint_path(killed, KILL_AFTER))
    with np.load(latest_checkpoint(killed), allow_pickle=False) as f:
        assert any(k.startswith("weights/") for k in f.files)
    assert load_checkpoint(latest_checkpoint(killed)).epoch == KILL_AFTER
    before = json.loads((killed / "metrics.json").read_text())
    assert [e["epoch"] for e in before["epochs"]] == list(range(KILL_AFTER + 1))

    resumed = run(path, killed, "--resume")
    assert f"at epoch {KILL_AFTER + 1}" in resumed.stdout
    run(path, tmp_path / "straight")

    got, want = final_weights(killed), final_weights(tmp_path / "straight")
    assert set(got) == set(want) and any(k.startswith("optimiser/") for k in got)
    for key in want:
        np.testing.assert_array_equal(got[key], want[key], err_msg=key)

    metrics = json.loads((killed / "metrics.json").read_text())
    reference = json.loads((tmp_path / "straight" / "metrics.json").read_text())
    assert [e["epoch"] for e in metrics["epochs"]] == list(range(EPOCHS))  # every epoch exactly once
    assert without_times(metrics["epochs"]) == without_times(reference["epochs"])
    assert metrics["test"] == reference["test"]
    assert not [p.name for p in killed.iterdir() if p.name.endswith(".tmp") or ".tmp" in p.name]
