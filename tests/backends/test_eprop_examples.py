"""The e-prop examples through `snnc train`, the `sine_pattern` data set, and e-prop diagnostics at
the command line (exit 1, the message, no traceback)."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from snnc.runtime.datasets import DatasetError, load_dataset
from snnc.runtime.datasets.pattern import normalised_mse, sine_pattern

ROOT = Path(__file__).resolve().parents[2]


def snnc(*args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "snnc", *map(str, args)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=timeout,
    )


# --------------------------------------------------------------------------------------------------
# sine_pattern
# --------------------------------------------------------------------------------------------------
def test_sine_pattern_is_seeded_frozen_and_shaped_for_per_step_mse():
    a = sine_pattern(inputs=7, channels=2, components=3, duration=200.0, dt=0.5, examples=3, seed=4)
    b = sine_pattern(inputs=7, channels=2, components=3, duration=200.0, dt=0.5, examples=3, seed=4)
    c = sine_pattern(inputs=7, channels=2, components=3, duration=200.0, dt=0.5, examples=3, seed=5)
    assert a.train.labels.shape == (3, 400, 2) and a.test.labels.shape == (1, 400, 2)
    assert a.num_inputs == 7 and a.train.num_neurons == 7
    np.testing.assert_array_equal(a.train.labels, b.train.labels)
    np.testing.assert_array_equal(a.train.times, b.train.times)
    assert not np.array_equal(a.train.labels, c.train.labels)
    # one frozen pattern: every training example and the test example are the same spikes and target
    t0, i0 = a.train.example(0)
    for split, n in ((a.train, 3), (a.test, 1)):
        for k in range(n):
            t, i = split.example(k)
            np.testing.assert_array_equal(t, t0)
            np.testing.assert_array_equal(i, i0)
            np.testing.assert_array_equal(split.labels[k], a.train.labels[0])
    assert np.all((t0 >= 0) & (t0 < 200.0)) and np.all(np.isclose(t0 / 0.5, np.round(t0 / 0.5)))


def test_sine_pattern_rate_and_frequencies_follow_the_arguments():
    d = sine_pattern(inputs=50, channels=1, components=1, freq_min=0.001, freq_max=0.001, input_rate=0.02)
    assert d.train.times.size == pytest.approx(50 * 0.02 * 1000, rel=0.1)  # 20 Hz for 1 s
    y = d.train.labels[0, :, 0]
    spectrum = np.abs(np.fft.rfft(y))
    assert np.argmax(spectrum) == 1  # 1 Hz over one second: one period
    assert d.meta["target_variance"] == pytest.approx(float(y.var()))


def test_sine_pattern_from_a_train_block_gets_base_units():
    from snnc.runtime import session

    from snnc.api import lower

    net = lower(str(ROOT / "examples" / "eprop_pattern.snn"))
    data = session.load_data(net)
    steps = round(net.train.duration / net.dt)
    assert data.train.labels.shape == (1, steps, 3)
    assert data.num_inputs == net.populations["x"].size
    # 50 Hz × 20 inputs × 1 s in the example: about 1000 spikes (a ms reading would give ~10⁶)
    assert 700 < data.train.times.size < 1300


def test_sine_pattern_bad_arguments_are_dataset_diagnostics():
    with pytest.raises(DatasetError, match="freq_min"):
        load_dataset("sine_pattern", {"freq_min": 0.01, "freq_max": 0.001})
    with pytest.raises(DatasetError, match="inputs"):
        load_dataset("sine_pattern", {"inputs": 0})
    with pytest.raises(DatasetError) as e:
        load_dataset("sine_pattern", {"chanels": 2})
    assert "channels" in str(e.value) + str(e.value.hint)


def test_normalised_mse_is_relative_to_the_target_variance():
    y = np.sin(np.linspace(0, 6, 100))[None, :, None] * 3.0
    assert normalised_mse(np.full_like(y, y.mean()), y) == pytest.approx(1.0)
    assert normalised_mse(y, y) == 0.0


# --------------------------------------------------------------------------------------------------
# evidence accumulation (the data set itself: tests/datasets/test_evidence.py)
# --------------------------------------------------------------------------------------------------
EVIDENCE = ROOT / "examples" / "eprop_evidence.snn"


def test_evidence_example_reads_its_answer_in_the_recall_period():
    from snnc.api import lower

    net = lower(str(EVIDENCE))
    assert net.train.data.name == "evidence"
    data = load_dataset("evidence", {**net.train.data.args, "train": 20, "test": 4})  # fewer trials
    assert net.train.duration == data.meta["duration"] and net.dt == data.meta["dt"]
    assert data.num_inputs == net.populations["x"].size == 40
    ro = net.populations["out"].readout
    assert ro.kind == "avg_var" and ro.options["start"] == data.meta["recall_start"]
    # rates arrive in base units: 7 cues of 100 ms at 40 Hz from 10 neurons, about 270 spikes a trial
    cue_spikes = np.mean([np.sum(data.train.example(i)[1] < 20) for i in range(20)])
    assert 220 < cue_spikes < 330


def _tiny_evidence(tmp_path: Path) -> Path:
    """The example with 3 cues of 20 ms, a 30 ms delay and a 20 ms recall (110 ms), 16 trials."""
    src = EVIDENCE.read_text()
    src = src.replace(
        "evidence(train = 4096, test = 1024, seed = 1)",
        "evidence(train = 16, test = 8, cues = 3, cue = 20 ms, gap = 10 ms, delay = 30 ms, recall = 20 ms)",
    )
    src = src.replace("duration   = 2250 ms", "duration   = 110 ms").replace(
        "start = 2100 ms", "start = 90 ms"
    )
    src = src.replace("batch_size = 16", "batch_size = 8").replace("epochs     = 8", "epochs     = 2")
    assert "cues = 3" in src and "start = 90 ms" in src and "epochs     = 2" in src
    path = tmp_path / "tiny_evidence.snn"
    path.write_text(src)
    return path


def test_evidence_example_checks_and_trains_a_tiny_version(tmp_path):
    res = snnc("check", EVIDENCE, timeout=120)
    assert res.returncode == 0, res.stdout + res.stderr
    metrics, _ = _train_file(_tiny_evidence(tmp_path), tmp_path / "run")
    assert len(metrics["epochs"]) == 2 and metrics["test"]["examples"] == 8
    assert 0.0 <= metrics["test"]["accuracy"] <= 1.0 and np.isfinite(metrics["epochs"][-1]["train"]["loss"])


# --------------------------------------------------------------------------------------------------
# diagnostics at the command line
# --------------------------------------------------------------------------------------------------
BAD = """
use std.{{SpikeInput, LI, Delta}}
neuron Hidden {{
    param tau_mem = 20 ms
    state v = 0.0
    input i_syn
    dv/dt = {ode}
{spike}
}}
network n {{
    input x = SpikeInput(4)
    hidden h = Hidden(8)
    output out = LI(2, readout = sum_var)
    x -> h : Dense(weight = Normal(mean = 0.0, sd = 1.0)), Delta
    h -> out : Dense(weight = Normal(mean = 0.0, sd = 1.0)), Delta
}}
train n {{
    algorithm = eprop()
    loss = sparse_categorical_crossentropy
    data = sine_pattern(inputs = 4, channels = 2, duration = 20 ms)
    dt = 1 ms
    duration = 20 ms
    epochs = 1
}}
"""
SPIKE = "    spike when v >= 1.0\n    reset { v = 0.0 }"
CASES = {
    "no spike condition": (
        dict(ode="(i_syn - v) / tau_mem", spike=""),
        "E-EPROP-NOSPIKE",
        "has no spike condition",
    ),
    "heaviside in the update": (
        dict(ode="(i_syn - v + heaviside(v - 0.5)) / tau_mem", spike=SPIKE),
        "E-EPROP-NONDIFF",
        "is not differentiable",
    ),
    "threshold without a state": (
        dict(ode="(i_syn - v) / tau_mem", spike=SPIKE.replace("v >= 1.0", "tau_mem >= 1.0 ms")),
        "E-EPROP-THRESHOLD",
        "does not depend on any state",
    ),
}


@pytest.mark.parametrize("case", sorted(CASES))
@pytest.mark.parametrize("command", ["train", "compile", "check"])
def test_underivable_models_are_cli_diagnostics(case, command, tmp_path):
    fields, code, message = CASES[case]
    path = tmp_path / "bad.snn"
    path.write_text(BAD.format(**fields))
    args = [command, path] + (["--out", tmp_path / "run", "--quiet"] if command == "train" else [])
    res = snnc(*args, timeout=120)
    assert res.returncode == 1, res.stderr
    out = res.stdout + res.stderr
    assert message in out and "model 'Hidden'" in out and "population 'h'" in out
    assert "Traceback" not in out and "internal error" not in out
    assert f"{path.name}:3:1" in out  # points at the neuron model
    assert not (tmp_path / "run" / "metrics.json").exists()


# --------------------------------------------------------------------------------------------------
# the examples, trained as users train them (slow)
# --------------------------------------------------------------------------------------------------
def _train(example: str, out: Path, *extra: str) -> tuple[dict, float]:
    return _train_file(ROOT / "examples" / example, out, *extra)


def _train_file(path: Path, out: Path, *extra: str) -> tuple[dict, float]:
    begin = time.perf_counter()
    res = snnc("train", path, "--out", out, "--quiet", *extra)
    seconds = time.perf_counter() - begin
    assert res.returncode == 0, res.stdout[-2000:] + res.stderr[-2000:]
    return json.loads((out / "metrics.json").read_text()), seconds


@pytest.mark.slow
@pytest.mark.parametrize("seed", [1, 2])
def test_eprop_digits_example_clears_90_percent_on_held_out_digits(seed, tmp_path):
    pytest.importorskip("sklearn")
    metrics, seconds = _train("eprop_digits.snn", tmp_path, "--seed", str(seed))
    test = metrics["test"]
    assert test["examples"] == 450  # the held-out quarter of 1797
    assert test["accuracy"] >= 0.90, test
    assert seconds < 600


@pytest.mark.slow
def test_eprop_pattern_example_reaches_normalised_mse_below_0_1(tmp_path):
    from snnc.runtime import session

    from snnc.api import lower

    metrics, seconds = _train("eprop_pattern.snn", tmp_path)
    data = session.load_data(lower(str(ROOT / "examples" / "eprop_pattern.snn")))
    test = metrics["test"]
    assert "mse" in test, test
    assert test["mse"] / data.meta["target_variance"] < 0.1, test
    first = metrics["epochs"][0]["train"]["mse"] / data.meta["target_variance"]
    assert first > 0.5  # it learnt the pattern, it did not start near it
    assert seconds < 600


@pytest.mark.slow
def test_eprop_evidence_example_clears_93_percent_on_held_out_trials(tmp_path):
    """Bellec et al.'s task as the README trains it (40 min wall, 30 min CPU on one busy core)."""
    metrics, _ = _train("eprop_evidence.snn", tmp_path, "--threads", "1")
    test = metrics["test"]
    assert test["examples"] == 1024
    assert test["accuracy"] >= 0.93, test
