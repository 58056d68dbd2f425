"""Trainable params under EventProp: dL/dp (∫ λ·∂f/∂p dt plus the spike terms, derived by
passes/param_gradient.py) against central finite differences of the simulated loss in float64
(cos >= 0.99, rel. err. <= 5 %, as tests/runtime/test_gradients.py), shared and per neuron; v_thresh
also against the exact invariance of scaling a neuron's threshold and input weights together; and the
optimiser's bounds and learning-rate scales. The output bias runs by default, the rest under -m slow."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from gradcheck import compare, fd_gradients
from snnc.runtime.losses import get_loss
from snnc.runtime.optimisers import SGD, Adam, apply_trainable_params

from snnc.api import compile_network

SOURCE = """use std.{SpikeInput, LIF, LeakyIntegrate, Exponential}
network g {
    input  x   = SpikeInput(3)
    hidden h   = LIF(4, tau_mem = TAU_MEM, v_thresh = V_THRESH)
    output out = LeakyIntegrate(2, bias = BIAS, readout = avg_var)
    x -> h   : Dense(weight = Normal(mean = 4.0, sd = 0.5)), Exponential(tau = TAU_SYN)
    h -> out : Dense(weight = Normal(mean = 0.5, sd = 0.5)), Exponential(tau = 5 ms)
}
train g {
    algorithm = eventprop(max_spikes = 100)
    loss = sparse_categorical_crossentropy
    seed = 4
}
"""
PER_NEURON = {
    "TAU_MEM": "Trainable(20 ms, per_neuron = true, min = 2 ms)",
    "V_THRESH": "Trainable(1.0, per_neuron = true)",
    "BIAS": "Trainable(Normal(0.0, 0.1))",
    "TAU_SYN": "Trainable(Uniform(4 ms, 6 ms))",
}
SHARED = {
    "TAU_MEM": "Trainable(20 ms)",
    "V_THRESH": "Trainable(1.0)",
    "BIAS": "Trainable(0.0)",
    "TAU_SYN": "Trainable(5 ms)",
}
FIXED = {"TAU_MEM": "20 ms", "V_THRESH": "1.0", "BIAS": "0.0", "TAU_SYN": "5 ms"}
TARGET = np.array([0, 1, 1, 0])


def _compile(tmp_path: Path, values: dict[str, str], dt: float):
    text = SOURCE
    for key, value in values.items():
        text = text.replace(key, value)
    path = tmp_path / f"net{abs(hash(text))}.snn"
    path.write_text(text)
    return compile_network(str(path), precision="double", dt=dt, duration=20.0, batch_size=4).artefact


def _case(art):  # noqa: ANN001, ANN202
    rng = np.random.default_rng(4)
    x = [(np.sort(rng.uniform(1.0, 12.0, 3)), rng.integers(0, 3, 3)) for _ in range(4)]
    loss = get_loss("sparse_categorical_crossentropy")

    def run():
        return art.run({"x": x})

    def value(res):
        return loss(res.readouts["out"], TARGET)

    grads = art.backward({"out": value(run())[1]})
    return run, value, grads


class _Only:
    """The artefact with only `keys` visible as weights (the FD harness perturbs those)."""

    def __init__(self, art, keys: tuple[str, ...]) -> None:  # noqa: ANN001
        self.art, self.keys, self._arrays, self.manifest = art, keys, art._arrays, art.manifest

    def get_weights(self) -> dict[str, np.ndarray]:
        return {k: v for k, v in self.art.get_weights().items() if k in self.keys}

    def set_weights(self, weights: dict[str, np.ndarray]) -> None:
        self.art.set_weights(weights)


def _check_fd(art, run, value, grads, key: str, h: float) -> None:  # noqa: ANN001
    fd = fd_gradients(_Only(art, (key,)), value, run, h=h, points=21, shrink=5)[key]
    cos, rel = compare(grads[key], fd)
    assert np.linalg.norm(fd) > 0, f"{key}: the loss does not depend on it here"
    assert cos >= 0.99 and rel <= 0.05, f"{key}: cos {cos:.4f}, rel {rel:.4f}"


def test_output_bias_gradient_matches_finite_differences(tmp_path: Path) -> None:
    art = _compile(tmp_path, {**FIXED, "BIAS": PER_NEURON["BIAS"]}, dt=0.05)
    run, value, grads = _case(art)
    assert grads["bias_out"].shape == (2,)
    _check_fd(art, run, value, grads, "bias_out", 0.05)


@pytest.mark.slow
@pytest.mark.parametrize(("key", "h"), [("tau_mem_h", 1.0), ("v_thresh_h", 0.03), ("tau_x_to_h", 0.3)])
def test_per_neuron_param_gradients_match_finite_differences(tmp_path: Path, key: str, h: float) -> None:
    art = _compile(tmp_path, PER_NEURON, dt=0.0005)
    run, value, grads = _case(art)
    assert grads[key].shape == (4,)
    _check_fd(art, run, value, grads, key, h)


@pytest.mark.slow
def test_threshold_gradient_obeys_the_scaling_invariance(tmp_path: Path) -> None:
    """v(t) is linear in a LIF neuron's input weights (reset to 0): scaling its threshold and its
    input weights by c changes nothing, so ϑ_j ∂L/∂ϑ_j = −Σ_i w_ij ∂L/∂w_ij, per neuron and, for a
    shared threshold, summed over the neurons (the weight gradients are checked by FD elsewhere)."""
    for values in (PER_NEURON, SHARED):
        art = _compile(tmp_path, values, dt=0.001)
        _, _, grads = _case(art)
        w = art.get_weights()
        threshold = w["v_thresh_h"] * grads["v_thresh_h"]
        inputs = (w["x_to_h"] * grads["x_to_h"]).sum(axis=0)
        if threshold.shape == (1,):
            inputs = inputs.sum(keepdims=True)
        assert np.abs(threshold).max() > 1e-4
        assert np.allclose(threshold, -inputs, rtol=1e-3, atol=1e-7), (threshold, inputs)


@pytest.mark.slow
def test_a_shared_param_gets_the_sum_of_its_neurons_gradients(tmp_path: Path) -> None:
    shared = _case(_compile(tmp_path, SHARED, dt=0.001))[2]
    per_neuron = dict(
        PER_NEURON, BIAS="Trainable(0.0, per_neuron = true)", TAU_SYN="Trainable(5 ms, per_neuron = true)"
    )
    each = _case(_compile(tmp_path, per_neuron, dt=0.001))[2]
    for key in ("tau_mem_h", "v_thresh_h", "bias_out", "tau_x_to_h"):
        assert shared[key].shape == (1,)
        assert np.allclose(shared[key], each[key].sum(), rtol=1e-9, atol=1e-15), key


@pytest.mark.slow
def test_shared_param_gradients_match_finite_differences(tmp_path: Path) -> None:
    """A shared param moves every neuron at once: its loss curves sooner, so the FD interval is
    smaller (at ±2.5 h the cubic fit's curvature bias alone reaches 6-9 %)."""
    art = _compile(tmp_path, SHARED, dt=0.0005)
    run, value, grads = _case(art)
    for key, h in (("tau_mem_h", 0.125), ("v_thresh_h", 0.005), ("tau_x_to_h", 0.075)):
        assert grads[key].shape == (1,)
        _check_fd(art, run, value, grads, key, h)


def test_bounds_clip_after_each_step_and_lr_scales_per_param() -> None:
    manifest = {
        "trainable_params": {
            "tau_mem_h": {"min": 2.0, "max": 30.0, "lr_scale": 1.0},
            "v_thresh_h": {"min": None, "max": None, "lr_scale": 0.1},
        }
    }
    for opt in (SGD(lr=10.0), Adam(lr=10.0)):
        apply_trainable_params(opt, manifest)
        params = {"tau_mem_h": np.array([3.0, 29.0]), "v_thresh_h": np.array([1.0]), "w": np.array([0.0])}
        grads = {"tau_mem_h": np.array([1.0, -1.0]), "v_thresh_h": np.array([1.0]), "w": np.array([1.0])}
        opt.step(params, grads)
        assert params["tau_mem_h"].tolist() == [2.0, 30.0]  # clipped to [min, max]
        assert np.isclose(params["v_thresh_h"][0] - 1.0, 0.1 * params["w"][0])  # a tenth of the step


@pytest.mark.slow
def test_snnc_train_reports_checkpoints_and_resumes_the_params(tmp_path: Path) -> None:
    import subprocess
    import sys

    example = (Path(__file__).resolve().parents[2] / "examples" / "yinyang_eventprop.snn").read_text()
    source = (
        example.replace(
            "LIF(100, tau_mem = 20 ms", "LIF(20, tau_mem = Trainable(20 ms, per_neuron = true, max = 19 ms)"
        )
        .replace("train = 5000, test = 1000", "train = 64, test = 32")
        .replace("epochs     = 40", "epochs     = 2")
    )
    assert "Trainable" in source
    path = tmp_path / "yy.snn"
    path.write_text(source)
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "snnc", "train", str(path), "--out", str(out), "--quiet"]
    first = subprocess.run(cmd, capture_output=True, text=True)
    assert first.returncode == 0, first.stderr
    assert "params: tau_mem_h " in first.stdout
    saved = np.load(out / "epoch-0001.npz")
    assert saved["weights/tau_mem_h"].shape == (20,) and "optimiser/m/tau_mem_h" in saved
    assert saved["weights/tau_mem_h"].max() <= 19.0 < 20.0  # started at 20 ms, clipped to max
    again = subprocess.run([*cmd, "--epochs", "3", "--resume"], capture_output=True, text=True)
    assert again.returncode == 0, again.stderr
    assert "epoch 3/3" in again.stdout and "params: tau_mem_h" in again.stdout


def test_the_trajectory_a_param_gradient_reads_is_kept_between_batches(tmp_path: Path) -> None:
    """tau_mem's gradient reads the recorded trajectory of h's states, which the loader keeps from
    batch to batch instead of allocating it anew; a second batch's gradients still equal a fresh
    artefact's, and a record the caller asked for is never written by a later batch."""
    from snnc.runtime.artefact import RecordRequest

    rng = np.random.default_rng(9)
    batches = [
        [(np.sort(rng.uniform(1.0, 12.0, 3)), rng.integers(0, 3, 3)) for _ in range(4)] for _ in range(2)
    ]
    loss = get_loss("sparse_categorical_crossentropy")

    def gradients(art, x):  # noqa: ANN001, ANN202
        res = art.run({"x": x})
        return art.backward({"out": loss(res.readouts["out"], TARGET)[1]})

    art = _compile(tmp_path, PER_NEURON, dt=0.1)
    own = art._ep["trajectory"]["h"]
    assert own, "tau_mem's gradient must read a trajectory"
    gradients(art, batches[0])
    kept = {n: art._arrays[n] for n in own}
    second = gradients(art, batches[1])
    assert all(art._arrays[n] is kept[n] for n in own), "the trajectory arrays were allocated anew"
    fresh = gradients(_compile(tmp_path, PER_NEURON, dt=0.1), batches[1])
    for key in fresh:
        np.testing.assert_array_equal(second[key], fresh[key], err_msg=key)

    asked = RecordRequest.of(vars=[("h", "v")])
    mine = art.run({"x": batches[0]}, asked).vars[("h", "v")]
    snapshot = mine.copy()
    gradients(art, batches[1])
    np.testing.assert_array_equal(mine, snapshot)
