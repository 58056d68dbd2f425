"""EventProp in the C backend: batching, padding, bounded spike records, overflow, errors."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
from snnc.backends.c import loader as native
from snnc.runtime.losses import get_loss

from snnc.api import compile_network

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "runtime"))
from gradcheck import compare, fd_gradients  # noqa: E402

SOURCE = """
use std.{SpikeInput, LIF, LeakyIntegrate, Exponential}
network g {
    input  x   = SpikeInput(3)
    hidden h   = LIF(5, tau_mem = 10 ms)
    output out = LeakyIntegrate(2, tau_mem = 10 ms, readout = avg_var)
    x -> h   : Dense(weight = Normal(mean = 3.0, sd = 0.5)), Exponential(tau = 5 ms)
    h -> h   : Sparse(p = 0.5, weight = Normal(mean = 0.3, sd = 0.2), delay = 1 ms), Exponential(tau = 5 ms)
    h -> out : Dense(weight = Normal(mean = 0.5, sd = 0.5)), Exponential(tau = 5 ms)
}
train g {
    algorithm = eventprop(max_spikes = %d)
    loss = sparse_categorical_crossentropy
    seed = 4
}
"""
LABELS = np.array([0, 1, 1, 0])


def inputs(n: int = 4, seed: int = 4):
    rng = np.random.default_rng(seed)
    return [(np.sort(rng.uniform(1.0, 12.0, 3)), rng.integers(0, 3, 3)) for _ in range(n)]


def artefact(batch: int, max_spikes: int = 100, dt: float = 0.01, duration: float = 20.0):
    net = compile_network(SOURCE % max_spikes, precision="double", dt=dt, duration=duration, batch_size=batch)
    return net.artefact


def grads(art, x, labels):  # noqa: ANN001, ANN201
    res = art.run({"x": x})
    n = len(labels)
    _, dl = get_loss("sparse_categorical_crossentropy")(res.readouts["out"][:n], labels)
    full = np.zeros((art.batch_size, 2))
    full[:n] = dl
    return art.backward({"out": full})


def test_batch_gradient_is_the_sum_of_per_example_gradients() -> None:
    x = inputs()
    batched = artefact(4)
    g = grads(batched, x, LABELS)
    single = artefact(1)
    total = {k: np.zeros_like(v) for k, v in g.items()}
    for b in range(4):
        # the batch loss is a mean over 4 examples; one example alone is a mean over 1
        for k, v in grads(single, [x[b]], LABELS[b : b + 1]).items():
            total[k] += v / 4
    assert set(g) == {"x_to_h", "h_to_h", "h_to_out"}
    assert g["h_to_h"].shape == batched.weight_shapes()["h_to_h"]  # sparse: one gradient per synapse
    for k in g:
        assert np.abs(g[k]).max() > 0
        np.testing.assert_allclose(g[k], total[k], rtol=1e-9, atol=1e-14)


def test_padded_last_batch_rows_contribute_nothing() -> None:
    x = inputs(3)
    padded = artefact(4)
    g = grads(padded, x, LABELS[:3])  # row 3 is padding: no spikes, dL/dy = 0
    exact = artefact(3)
    ref = grads(exact, x, LABELS[:3])
    for k in g:
        np.testing.assert_allclose(g[k], ref[k], rtol=1e-9, atol=1e-14)


def test_recurrent_sparse_delayed_gradient_matches_finite_differences() -> None:
    art = artefact(4, dt=0.001)
    x = inputs()
    loss = get_loss("sparse_categorical_crossentropy")

    def run():  # noqa: ANN202
        return art.run({"x": x})

    def value(res):  # noqa: ANN001, ANN202
        return loss(res.readouts["out"], LABELS)

    _, dl = value(run())
    g = art.backward({"out": dl})
    fd = fd_gradients(art, value, run, h=0.02)
    for proj in g:
        cos, rel = compare(g[proj], fd[proj])
        assert cos >= 0.99 and rel <= 0.05, f"{proj}: cos {cos:.4f}, rel {rel:.4f}"


def test_record_memory_follows_the_spikes_not_the_trial_length_or_max_spikes() -> None:
    short = artefact(4, duration=20.0)
    long = artefact(4, duration=2000.0)  # 100x the steps
    assert long.num_steps == 100 * short.num_steps
    assert short.record_bytes() == long.record_bytes()  # before a run: the same small lists
    assert artefact(4, max_spikes=200).record_bytes() == short.record_bytes()
    # the long trial runs and differentiates; its lists grew to what its rows needed, no more
    g = grads(long, inputs(), LABELS)
    assert np.isfinite(g["x_to_h"]).all()
    for pop, names in long._ep["lists"].items():
        need = int(long._arrays[names["ln"]].max())
        size = int(long.manifest["populations"][pop]["size"])
        assert need <= long._log_cap[pop] <= max(need + need // 4 + 16, size * native.INITIAL_LOG_SPIKES)


def test_growing_spike_lists_rerun_the_batch_and_give_the_same_gradients(monkeypatch) -> None:  # noqa: ANN001
    monkeypatch.setattr(native, "INITIAL_LOG_SPIKES", 1)
    small = artefact(4)
    monkeypatch.setattr(native, "INITIAL_LOG_SPIKES", 10_000)
    big = artefact(4)  # room for max_spikes per neuron from the start
    start = dict(small._log_cap)
    g_small, g_big = grads(small, inputs(), LABELS), grads(big, inputs(), LABELS)
    assert any(small._log_cap[p] > start[p] for p in start)  # some list had to grow
    for proj in g_big:
        np.testing.assert_array_equal(g_small[proj], g_big[proj])


def test_overflow_is_counted_and_reported() -> None:
    art = artefact(4, max_spikes=1)
    g = None
    res = art.run({"x": inputs()})
    over = art.spike_overflow()
    counts = art._arrays[art.manifest["eventprop"]["lists"]["h"]["cnt"]]  # by role, not by name
    assert over["h"].sum() == np.maximum(counts - 1, 0).sum() > 0
    _, dl = get_loss("sparse_categorical_crossentropy")(res.readouts["out"], LABELS)
    with pytest.warns(RuntimeWarning, match="max_spikes = 1"):
        g = art.backward({"out": dl})
    assert np.isfinite(g["x_to_h"]).all()
    art.on_overflow = "error"
    with pytest.raises(RuntimeError, match="dropped"):
        art.backward({"out": dl})
    art.on_overflow = "ignore"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        art.backward({"out": dl})


def test_backward_needs_a_gradient_pass_and_a_forward_run() -> None:
    plain = compile_network(
        (SOURCE % 10).split("train g")[0], precision="double", dt=0.1, duration=10.0, batch_size=2
    ).artefact
    with pytest.raises(NotImplementedError, match="without a gradient pass"):
        plain.backward({"out": np.zeros((2, 2))})
    art = artefact(2, dt=0.1)
    with pytest.raises(RuntimeError, match="run"):
        art.backward({"out": np.zeros((2, 2))})
    art.run({"x": inputs(2)})
    with pytest.raises(KeyError, match="nope"):
        art.backward({"nope": np.zeros((2, 2))})


def test_regularisation_alone_pushes_input_weights_down() -> None:
    src = (SOURCE % 100).replace(
        "seed = 4", "seed = 4\n    regularisation = spike_count(strength = 1e-3, nu = 0)"
    )
    art = compile_network(src, precision="double", dt=0.01, duration=20.0, batch_size=4).artefact
    art.run({"x": inputs()})
    g = art.backward({"out": np.zeros((4, 2))})
    # with no loss, the upper regulariser only asks for fewer hidden spikes: larger input weights
    # make earlier and more spikes, so descent must lower them
    assert g["x_to_h"].sum() > 0
    assert np.abs(g["h_to_out"]).max() == 0


def test_trainer_spike_count_gradient_acts_like_the_ir_regulariser() -> None:
    """The trainer's dL/d(count) key, used as r per example and neuron, gives exactly the gradient of
    the TrainingIR's regulariser when it carries the same numbers (s·(N − ν·B)/B²)."""
    strength = 1e-3
    reg_src = (SOURCE % 100).replace(
        "seed = 4", f"seed = 4\n    regularisation = spike_count(strength = {strength}, nu = 0)"
    )
    with_ir = compile_network(reg_src, precision="double", dt=0.01, duration=20.0, batch_size=4).artefact
    plain = artefact(4)
    x = inputs()
    with_ir.run({"x": x})
    g_ir = with_ir.backward({"out": np.zeros((4, 2))})
    plain.run({"x": x})
    n_sum = plain._arrays[plain.manifest["eventprop"]["lists"]["h"]["cnt"]].sum(axis=0)
    r = np.broadcast_to(strength * n_sum / 4**2, (4, 5))
    g_key = plain.backward({"out": np.zeros((4, 2)), "h.spike_count": r})
    assert np.abs(g_key["x_to_h"]).max() > 0
    for k in g_ir:
        np.testing.assert_allclose(g_key[k], g_ir[k], rtol=1e-9, atol=1e-15)
    with pytest.raises(KeyError, match="out.spike_count"):
        plain.backward({"out.spike_count": np.zeros((4, 2))})


def test_float32_gradients_agree_with_float64() -> None:
    """The default precision: same network, same weights, gradients within float32 noise."""
    x = inputs()
    arts = {
        p: compile_network(SOURCE % 100, precision=p, dt=0.01, duration=20.0, batch_size=4).artefact
        for p in ("float", "double")
    }
    arts["float"].set_weights(arts["double"].get_weights())
    g = {p: grads(a, x, LABELS) for p, a in arts.items()}
    assert all(v.dtype == np.float64 for v in g["float"].values())
    for k in g["double"]:
        cos, rel = compare(g["float"][k], g["double"][k])
        assert cos > 0.999 and rel < 0.02, (k, cos, rel)


def test_a_short_batch_with_a_regulariser_is_the_exact_batch() -> None:
    """The regulariser's batch mean divides by the real rows of a short last batch (the trainer
    passes their example ids), not by the allocated batch: the padded artefact's gradients equal
    those of an artefact allocated for exactly those rows."""
    source = SOURCE.replace("seed = 4", "seed = 4\n    regularisation = spike_count(strength = 0.05, nu = 1)")

    def art(batch: int):  # noqa: ANN202
        return compile_network(
            source % 100, precision="double", dt=0.01, duration=20.0, batch_size=batch
        ).artefact

    x, labels = inputs(3), LABELS[:3]

    def regularised_grads(a):  # noqa: ANN001, ANN202
        res = a.run({"x": x}, example_ids=[0, 1, 2])
        _, dl = get_loss("sparse_categorical_crossentropy")(res.readouts["out"][:3], labels)
        full = np.zeros((a.batch_size, 2))
        full[:3] = dl
        return a.backward({"out": full})

    padded, exact = regularised_grads(art(4)), regularised_grads(art(3))
    assert padded["x_to_h"].any()
    for k in exact:
        np.testing.assert_allclose(padded[k], exact[k], rtol=1e-9, atol=1e-14)
