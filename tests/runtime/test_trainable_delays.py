"""Trainable per-connection delays under EventProp (C backend, passes/schedule_delays.py).

Forward: a trainable delay with a constant initial value runs exactly as the same fixed delay, and
its weight gradients equal the fixed-delay ones (same spikes, same λ at the same arrivals).

Gradient: dL/dd_q = λ⁺·(f(x) − f(x + w e)) at connection q's arrival, derived from the post model by
passes/eventprop.py. The forward pass rounds d to whole steps, so the simulated loss is a staircase in
d with steps of dt; the gradient describes the time-continuous loss, whose slope the FD harness
(tests/runtime/gradcheck.py) recovers as the linear coefficient of a cubic least-squares fit over
offsets in [-h, h] with h = 0.05 ms = 50-100 steps (dt = 0.001 or 0.0005 ms): each offset realises the shifted arrival to within
dt/2, an error the fit over 21 points averages out. Where an arrival crosses a spike of its post
neuron within ±h the loss has a kink no gradient describes (the spike counts stay the same, so the
harness cannot see it); the initial delays here are drawn clear of that. That is the quantity compared, per delay array:
cos >= 0.99 and rel. err. <= 5 %, as for weights.
"""

from __future__ import annotations

import numpy as np
import pytest
from delay_nets import LOSS, TRAIN, delay_source
from gradcheck import compare, compile_double, fd_gradients
from snnc.runtime.losses import get_loss


def _case(art, readout: str, duration: float):  # noqa: ANN001, ANN202
    rng = np.random.default_rng(4)
    x = [(np.sort(rng.uniform(1.0, 10.0, 3)), rng.integers(0, 3, 3)) for _ in range(4)]
    target = np.array([0, 1, 1, 0])
    loss = get_loss(LOSS[readout])
    if hasattr(loss, "t_nospike"):
        loss.t_nospike = duration

    def run():
        return art.run({"x": x})

    def value(res):
        return loss(res.readouts["out"], target)

    res = run()
    return run, value, res, art.backward({"out": value(res)[1]})


class _Only:
    """The artefact with only `keys` visible as weights (the FD harness perturbs those)."""

    def __init__(self, art, keys: tuple[str, ...]) -> None:  # noqa: ANN001
        self.art, self.keys, self._arrays, self.manifest = art, keys, art._arrays, art.manifest

    def get_weights(self) -> dict[str, np.ndarray]:
        return {k: v for k, v in self.art.get_weights().items() if k in self.keys}

    def set_weights(self, weights: dict[str, np.ndarray]) -> None:
        self.art.set_weights(weights)


FIXED = {"x_to_h": "1.5 ms", "h_to_h": "2 ms", "h_to_out": "3 ms"}
LEARNABLE = {k: f"Trainable({v}, max = 5 ms)" for k, v in FIXED.items()}


@pytest.mark.parametrize("readout", ["avg_var", "first_spike_time"])
def test_a_trainable_delay_runs_as_the_same_fixed_delay(readout: str) -> None:
    """Same readouts and weight gradients, recurrent included (its D reads the rings)."""
    outs = []
    for delays in (FIXED, LEARNABLE):
        art = compile_double(
            delay_source(readout, delays, recurrent=True), dt=0.05, duration=25.0, batch_size=4
        )
        _, _, res, grads = _case(art, readout, 25.0)
        outs.append((res.readouts["out"], grads))
    (y0, g0), (y1, g1) = outs
    assert np.isfinite(y0).any() and np.array_equal(y0, y1)
    for proj in ("x_to_h", "h_to_h", "h_to_out"):
        assert np.abs(g0[proj]).max() > 0
        np.testing.assert_allclose(g1[proj], g0[proj], rtol=1e-10, atol=1e-14)
        assert g1[f"delay_{proj}"].shape == g1[proj].shape
    assert set(g0) == {"x_to_h", "h_to_h", "h_to_out"}


CASES = {  # id: (readout, recurrent)
    "feedforward-avg_var": ("avg_var", False),
    "feedforward-ttfs": ("first_spike_time", False),
    "recurrent-avg_var": ("avg_var", True),
    "recurrent-ttfs": ("first_spike_time", True),
}
FAST = {"feedforward-ttfs"}
DT, H = 0.001, 0.05
#: quantised hidden spike times put 5 % of FD noise on recurrent-avg_var's h_to_h at dt = 0.001 (the
#: fit then moves by 10 % with h); at dt = 0.0005 it agrees to 1.5 %
CASE_DT = {"recurrent-avg_var": 0.0005}


@pytest.mark.parametrize(
    "case", [c if c in FAST else pytest.param(c, marks=pytest.mark.slow) for c in sorted(CASES)]
)
def test_delay_gradients_match_finite_differences(case: str) -> None:
    readout, recurrent = CASES[case]
    duration = 25.0 if readout == "first_spike_time" else 20.0
    delays = {
        "x_to_h": "Trainable(Uniform(0.5 ms, 2 ms), max = 5 ms)",
        "h_to_h": "Trainable(Uniform(1 ms, 3 ms), max = 5 ms)",
        "h_to_out": "Trainable(Uniform(1 ms, 3 ms), max = 5 ms)",
    }
    art = compile_double(
        delay_source(readout, delays, recurrent), dt=CASE_DT.get(case, DT), duration=duration, batch_size=4
    )
    run, value, _, grads = _case(art, readout, duration)
    keys = tuple(k for k in grads if k.startswith("delay_"))
    assert len(keys) == (3 if recurrent else 2)
    fd = fd_gradients(_Only(art, keys), value, run, h=H, points=21, shrink=4)
    for key in keys:
        cos, rel = compare(grads[key], fd[key])
        print(f"{case} {key}: cos {cos:.5f} rel {rel:.4f}")
        assert np.linalg.norm(fd[key]) > 0, f"{key}: the loss does not depend on these delays here"
        assert cos >= 0.99 and rel <= 0.05, f"{key}: cos {cos:.4f}, rel {rel:.4f}"


def test_snnc_train_trains_checkpoints_and_resumes_the_delays(tmp_path) -> None:  # noqa: ANN001
    """The delays are filed beside the weights (`delay_<projection>`), move with their own learning
    rate, stay in [min, max] and come back with `--resume`."""
    import subprocess
    import sys

    from snnc.api import compile_network

    path = tmp_path / "small.snn"
    path.write_text(TRAIN)
    initial = compile_network(str(path)).artefact.get_weights()["delay_x_to_h"]
    assert initial.shape == (4, 12) and 0.0 <= initial.min() and initial.max() <= 4.0
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "snnc", "train", str(path), "--out", str(out), "--quiet"]
    first = subprocess.run(cmd, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    saved = np.load(out / "epoch-0000.npz")
    trained = saved["weights/delay_x_to_h"]
    assert "optimiser/m/delay_x_to_h" in saved
    assert trained.shape == (4, 12) and not np.array_equal(trained, initial)
    assert 0.0 <= trained.min() and trained.max() <= 5.0
    again = subprocess.run([*cmd, "--epochs", "2", "--resume"], capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert "epoch 2/2" in again.stdout and "epoch 1/2" not in again.stdout
    resumed = np.load(out / "epoch-0001.npz")["weights/delay_x_to_h"]
    assert not np.array_equal(resumed, trained) and resumed.max() <= 5.0


@pytest.mark.parametrize(
    ("delay", "words"),
    [
        ("Trainable(Uniform(0 ms, 4 ms))", "a trainable delay needs a maximum"),
        ("Trainable(2 ms, min = 2 ms, max = 1 ms)", "0 <= min <= max"),
        ("Trainable(2 ms, min = -1 ms, max = 5 ms)", "0 <= min <= max"),
        ("Trainable(2.0, max = 5 ms)", "must be a time"),
        ("Trainable(2 ms, max = 5 ms, per_neuron = true)", "no argument 'per_neuron'"),
    ],
)
def test_bad_trainable_delays_are_located_errors(delay: str, words: str) -> None:
    from snnc.ir.diagnostics import DiagnosticError

    from snnc.api import load_network

    text = delay_source("avg_var", dict(FIXED, x_to_h=delay))
    with pytest.raises(DiagnosticError) as err:
        load_network(text)
    (d,) = err.value.diagnostics
    assert words in d.message and d.span is not None and d.span.line == 6


def test_a_delay_ring_past_32_bit_offsets_is_a_located_error() -> None:
    """The rings are indexed with 32-bit offsets (slot times post size, plus the post neuron): 501
    slots (5 ms at dt = 0.01 ms) of 5 million post neurons do not fit, and the message says why."""
    from snnc.ir.diagnostics import DiagnosticError
    from snnc.passes.schedule import schedule

    from snnc.api import lower

    text = (
        delay_source("avg_var", LEARNABLE)
        .replace("hidden h   = LIF(4)", "hidden h   = LIF(5000000)")
        .replace("    algorithm = eventprop", "    dt = 0.01 ms\n    algorithm = eventprop")
    )
    with pytest.raises(DiagnosticError) as err:
        schedule(lower(text))
    (d,) = err.value.diagnostics
    assert "projection 'x_to_h': its delay ring (2505000000 elements" in d.message
    assert d.span is not None and d.span.line == 6 and "max" in d.hint


@pytest.mark.parametrize(
    ("backend", "algorithm", "words"),
    [("c", "eprop", "e-prop does not train"), ("genn", "eprop", "e-prop does not train")],
)
def test_trainable_delays_are_refused_where_not_derived(backend: str, algorithm: str, words: str) -> None:
    from snnc.ir.diagnostics import DiagnosticError

    from snnc.api import check_backend, lower

    text = delay_source("avg_var", LEARNABLE).replace("eventprop(max_spikes = 100)", algorithm)
    with pytest.raises(DiagnosticError) as err:
        check_backend(lower(text), backend)
    d = err.value.diagnostics[0]
    assert words in d.message and d.span is not None and d.span.line == 6


def _write_shd(path, n: int, seed: int) -> None:  # noqa: ANN001
    """A small file in SHD's layout (vlen times in s, vlen units 0..699, labels 0..19)."""
    import h5py

    rng = np.random.default_rng(seed)
    with h5py.File(path, "w") as f:
        t = f.create_dataset("spikes/times", (n,), dtype=h5py.vlen_dtype(np.float32))
        u = f.create_dataset("spikes/units", (n,), dtype=h5py.vlen_dtype(np.uint16))
        for i in range(n):
            k = int(rng.integers(4000, 6000))  # about as dense as SHD
            t[i] = np.sort(rng.uniform(0, 0.6, k)).astype(np.float32)
            u[i] = rng.integers(0, 700, k).astype(np.uint16)
        f.create_dataset("labels", data=(np.arange(n) % 20).astype(np.uint8))


def test_the_shd_delays_example_trains_a_batch_of_synthetic_shd(tmp_path) -> None:  # noqa: ANN001
    """examples/shd_delays.snn as written (SHD needs a download): one epoch of one batch of
    SHD-format data drawn here; its delays move and stay within their bounds."""
    import subprocess
    import sys
    from pathlib import Path

    pytest.importorskip("h5py")
    example = Path(__file__).resolve().parents[2] / "examples" / "shd_delays.snn"
    data = tmp_path / "data"
    data.mkdir()
    _write_shd(data / "shd_train.h5", 8, 0)
    _write_shd(data / "shd_test.h5", 4, 1)
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "snnc", "train", str(example), "--data-dir", str(data), "--out", str(out)]
    result = subprocess.run([*cmd, "--epochs", "1", "--quiet"], capture_output=True, text=True, timeout=900)
    assert result.returncode == 0, result.stderr
    saved = np.load(out / "epoch-0000.npz")
    from snnc.api import compile_network

    initial = compile_network(str(example)).artefact.get_weights()
    for key, high in (("delay_x_to_h", 60.0), ("delay_h_to_h", 30.0)):
        d = saved[f"weights/{key}"]
        assert d.shape == ((700, 256) if key == "delay_x_to_h" else (256, 256))
        assert 0.0 <= d.min() and d.max() <= high and not np.array_equal(d, initial[key])
    assert saved["weights/tau_mem_h"].shape == (256,)


WIDE = """use std.{SpikeInput, LIF, LeakyIntegrate, Exponential}
network wide {
    input  x   = SpikeInput(20)
    hidden h   = LIF(37, tau_mem = 10 ms, v_thresh = 0.5)
    output out = LeakyIntegrate(3, tau_mem = 10 ms, readout = avg_var)
    x -> h   : Dense(weight = Normal(mean = 0.3, sd = 0.2),
                     delay = Trainable(Uniform(0 ms, 4 ms), max = 5 ms)), Exponential(tau = 5 ms)
    h -> h   : Dense(weight = Normal(mean = 0.0, sd = 0.1),
                     delay = Trainable(Uniform(0 ms, 3 ms), max = 4 ms)), Exponential(tau = 5 ms)
    h -> out : Dense(weight = Normal(mean = 0.2, sd = 0.3)), Exponential(tau = 5 ms)
}
train wide {
    algorithm = eventprop(max_spikes = 200)
    loss = sparse_categorical_crossentropy
    seed = 3
}
"""


def test_vectorised_delay_delivery_matches_a_scalar_build(monkeypatch, tmp_path) -> None:  # noqa: ANN001
    """The delay buffer's scatter loop is marked independent (kernel IR) and printed with `ivdep`,
    which lets the compiler vectorise it with gathers and scatters; a build with vectorisation
    switched off must give the same spikes, readouts and gradients, bit for bit (each buffer element
    still sums its arrivals in spike order). 37 post neurons: full vectors and a remainder."""
    from snnc.api import compile_network

    monkeypatch.setenv("SNNC_CACHE_DIR", str(tmp_path))
    rng = np.random.default_rng(7)
    x = [(np.sort(rng.uniform(0.0, 40.0, 60)), rng.integers(0, 20, 60)) for _ in range(3)]
    results = []
    for cflags in ("", "-fno-tree-vectorize"):
        monkeypatch.setenv("SNNC_CFLAGS", cflags)
        net = compile_network(WIDE, dt=0.5, duration=50.0, batch_size=3)
        art = net.artefact
        res = art.run({"x": x})
        _, dy = get_loss("sparse_categorical_crossentropy")(res.readouts["out"], np.array([0, 1, 2]))
        results.append((art, res, art.backward({"out": dy})))
    (vec, r0, g0), (_, r1, g1) = results
    source = next(vec.library.parent.glob("*.c")).read_text()
    assert source.count("#pragma GCC ivdep") == 2, "both delayed projections' scatter loops are marked"
    assert r0.readouts["out"].std() > 0
    np.testing.assert_array_equal(r0.readouts["out"], r1.readouts["out"])
    assert set(g0) == set(g1) and {"delay_x_to_h", "delay_h_to_h"} <= set(g0)
    for key in g0:
        np.testing.assert_array_equal(g0[key], g1[key], err_msg=key)
    assert np.abs(g0["delay_h_to_h"]).max() > 0


def test_sparse_trainable_delays_train_as_the_same_dense_ones() -> None:
    """A Sparse(p = 1) projection holds every connection, in the dense order: with the same weights
    and delays its gradients are the Dense projection's. (Its delay gradient is filed under its own
    key, `delay_<projection>`; the loader once gave it no 'nnz' size and the backward pass wrote past
    a zero-length buffer.)"""
    outs = []
    for conn in ("Dense(", "Sparse(p = 1.0, "):
        text = delay_source("avg_var", dict(FIXED, x_to_h="Trainable(Uniform(0.5 ms, 2 ms), max = 5 ms)"))
        art = compile_double(
            text.replace("x -> h   : Dense(", f"x -> h   : {conn}"), dt=0.1, duration=25.0, batch_size=4
        )
        if outs:
            art.set_weights({k: v.ravel() for k, v in outs[0][0].items()})
        outs.append((art.get_weights(), _case(art, "avg_var", 25.0)[3]))
    (_, dense), (_, sparse) = outs
    assert set(sparse) == set(dense) and np.abs(dense["delay_x_to_h"]).max() > 0
    for key in dense:
        np.testing.assert_allclose(
            sparse[key].ravel(), dense[key].ravel(), rtol=1e-12, atol=1e-15, err_msg=key
        )
