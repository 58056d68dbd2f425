"""Per-neuron params (`tau_mem = Uniform(10 ms, 30 ms)`, `v_thresh = File("th.npy")`): the C kernel
steps each neuron with its own values, the runtime files them like weights (checkpoints, evaluate),
the derived params (`exp(-dt/tau_mem)`) follow the values the artefact holds, and EventProp's weight
gradients stay exact (finite differences) with heterogeneous time constants and thresholds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from gradcheck import compare, fd_gradients
from snnc.runtime.artefact import RecordRequest
from snnc.runtime.losses import get_loss

from snnc.api import compile_network

SOURCE = """use std.{SpikeInput, LIF, LeakyIntegrate, Exponential}
network g {
    input  x   = SpikeInput(3)
    hidden h   = LIF(4, tau_mem = TAU_MEM, v_thresh = V_THRESH)
    output out = LeakyIntegrate(2, bias = BIAS, readout = avg_var)
    x -> h   : Dense(weight = Normal(mean = 3.0, sd = 0.5)), Exponential(tau = TAU_SYN)
    h -> out : Dense(weight = Normal(mean = 0.5, sd = 0.5)), Exponential(tau = 5 ms)
}
train g {
    algorithm = eventprop(max_spikes = 100)
    loss = sparse_categorical_crossentropy
    seed = 4
}
"""
TAUS = [8.0, 12.0, 20.0, 30.0]
DEFAULTS = {"TAU_MEM": "20 ms", "V_THRESH": "1.0", "BIAS": "0.0", "TAU_SYN": "5 ms"}


def _compile(tmp_path: Path, dt: float = 0.05, batch: int = 2, **values: str):
    np.save(tmp_path / "tau.npy", np.array(TAUS))
    np.save(tmp_path / "th.npy", np.array([0.9, 1.0, 1.1, 0.95]))
    np.save(tmp_path / "b.npy", np.array([0.05, -0.05]))
    text = SOURCE
    for key, default in DEFAULTS.items():
        text = text.replace(key, values.get(key, default))
    path = tmp_path / f"net{abs(hash(text))}.snn"
    path.write_text(text)
    return compile_network(str(path), precision="double", dt=dt, duration=20.0, batch_size=batch).artefact


def _inputs(seed: int = 1, batch: int = 2):
    rng = np.random.default_rng(seed)
    return [(np.sort(rng.uniform(1.0, 12.0, 3)), rng.integers(0, 3, 3)) for _ in range(batch)]


REC = RecordRequest.of(vars=[("h", "v")])


def test_each_neuron_steps_with_its_own_time_constant(tmp_path: Path) -> None:
    het = _compile(tmp_path, TAU_MEM='File("tau.npy")')
    v = het.run({"x": _inputs()}, REC).vars[("h", "v")]
    for j in (0, 3):  # the extremes: one compile each
        tau = TAUS[j]
        ref = _compile(tmp_path, TAU_MEM=f"{tau} ms").run({"x": _inputs()}, REC).vars[("h", "v")]
        assert np.array_equal(v[..., j], ref[..., j]), f"neuron {j} (tau_mem {tau} ms)"
    assert np.ptp(v[..., 0] - v[..., 3]) > 0.1  # the neurons do differ


def test_values_are_filed_like_weights_and_derived_params_follow_them(tmp_path: Path) -> None:
    het = _compile(tmp_path, TAU_MEM="Uniform(10 ms, 30 ms)", TAU_SYN="Normal(5 ms, 1 ms)")
    weights = het.get_weights()
    assert weights["tau_mem_h"].shape == (4,) and weights["tau_x_to_h"].shape == (4,)
    assert np.all((weights["tau_mem_h"] >= 10) & (weights["tau_mem_h"] <= 30))
    assert np.ptp(weights["tau_mem_h"]) > 0 and np.ptp(weights["tau_x_to_h"]) > 0
    # writing the values a network was compiled with gives that network's run: exp(-dt/tau) is
    # computed from the array at each trial, not fixed at compile time
    het.set_weights({**weights, "tau_mem_h": np.array(TAUS), "tau_x_to_h": np.full(4, 5.0)})
    ref = _compile(tmp_path, TAU_MEM='File("tau.npy")')
    het.set_weights({"x_to_h": ref.get_weights()["x_to_h"], "h_to_out": ref.get_weights()["h_to_out"]})
    a, b = het.run({"x": _inputs()}, REC), ref.run({"x": _inputs()}, REC)
    assert np.allclose(a.vars[("h", "v")], b.vars[("h", "v")], rtol=0, atol=1e-12)


def test_a_file_of_equal_values_is_the_shared_scalar(tmp_path: Path) -> None:
    np.save(tmp_path / "same.npy", np.full(4, 20.0))
    per_neuron = _compile(tmp_path, TAU_MEM='File("same.npy")', BIAS="Constant(0.0)")
    shared = _compile(tmp_path)
    x = _inputs()
    ra, rb = per_neuron.run({"x": x}), shared.run({"x": x})
    assert np.allclose(ra.readouts["out"], rb.readouts["out"], rtol=1e-12, atol=1e-14)
    loss = get_loss("sparse_categorical_crossentropy")
    ga = per_neuron.backward({"out": loss(ra.readouts["out"], np.array([0, 1]))[1]})
    gb = shared.backward({"out": loss(rb.readouts["out"], np.array([0, 1]))[1]})
    for proj in ("x_to_h", "h_to_out"):
        assert np.allclose(ga[proj], gb[proj], rtol=1e-10, atol=1e-14)


class _Projections:
    """The artefact with only the projections' weights visible (the FD harness perturbs those)."""

    def __init__(self, art) -> None:  # noqa: ANN001
        self.art, self._arrays, self.manifest = art, art._arrays, art.manifest

    def get_weights(self) -> dict[str, np.ndarray]:
        return {k: v for k, v in self.art.get_weights().items() if k in ("x_to_h", "h_to_out")}

    def set_weights(self, weights: dict[str, np.ndarray]) -> None:
        self.art.set_weights(weights)


@pytest.mark.slow
def test_eventprop_weight_gradients_with_per_neuron_params_match_finite_differences(tmp_path: Path) -> None:
    art = _compile(
        tmp_path,
        dt=0.001,
        batch=4,
        TAU_MEM='File("tau.npy")',
        V_THRESH='File("th.npy")',
        BIAS='File("b.npy")',
        TAU_SYN="Uniform(3 ms, 7 ms)",
    )
    x, target = _inputs(4, batch=4), np.array([0, 1, 1, 0])
    loss = get_loss("sparse_categorical_crossentropy")

    def run():
        return art.run({"x": x})

    def value(res):
        return loss(res.readouts["out"], target)

    res = run()
    grads = art.backward({"out": value(res)[1]})
    fd = fd_gradients(_Projections(art), value, run, h=0.02)
    for proj in ("x_to_h", "h_to_out"):
        cos, rel = compare(grads[proj], fd[proj])
        assert np.linalg.norm(fd[proj]) > 0
        assert cos >= 0.99 and rel <= 0.05, f"{proj}: cos {cos:.4f}, rel {rel:.4f}"
