"""EventProp through synaptic delays, fixed and trainable, on GeNN (CPU) against the C backend: the
same readouts, spikes and gradients (weights' and delays'), in double precision, for feed-forward
and recurrent networks under two readouts, dense and sparse; and one epoch of training.

The C backend's delay gradients are checked against finite differences (tests/runtime/
test_gradients_delays.py, test_trainable_delays.py); GeNN prints the same kernel IR, delivering
through its dendritic delay buffer and reading the post neuron's adjoints at each arrival step
through heterogeneously delayed var refs (`a_v[d]`, `a_v[l_delay_steps]`), so its gradients must
equal C's to rounding.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from snnc.backends.genn import have_pygenn
from snnc.runtime.artefact import RecordRequest
from snnc.runtime.losses import get_loss

from snnc.api import build_compiled, lower
from tests.backends.genn_pair import c_then_genn, trained_alike
from tests.runtime.delay_nets import LOSS, TRAIN, delay_source

pytestmark = [
    pytest.mark.genn,
    pytest.mark.skipif(not have_pygenn(), reason="pygenn is not installed (optional extra 'genn')"),
]

ROOT = Path(__file__).resolve().parents[2]
BATCH = 3


def source(readout: str, delays: dict[str, str], recurrent: bool) -> str:
    """The delay tests' network, 5 hidden neurons and weights of its own (more spikes per neuron)."""
    return delay_source(readout, delays, recurrent, hidden=5, w_in=2.0, w_rec=(0.2, 0.4), w_out_spiking=2.0)


def inputs(batch: int = BATCH) -> dict:
    rng = np.random.default_rng(5)
    rows = []
    for _ in range(batch):
        ids = rng.integers(0, 3, 12)
        rows.append((np.sort(rng.uniform(0.5, 14.0, ids.size)), ids))
    return {"x": rows}


def both(network, readout: str, tmp_path: Path) -> tuple:  # noqa: ANN001
    """Readouts and gradients of one batch on C and on GeNN, from the same weights (and delays)."""
    loss = get_loss(LOSS[readout])
    if hasattr(loss, "t_nospike"):
        loss.t_nospike = network.duration
    target = np.arange(BATCH) % 2
    out = []
    weights = None
    for _, net in c_then_genn(network, tmp_path, batch_size=BATCH):
        art = net.artefact
        if weights is None:
            weights = art.get_weights()
        else:
            art.set_weights(weights)
        res = art.run(inputs(), RecordRequest.of(spikes=["h"]))
        _, dy = loss(res.readouts["out"], target)
        out.append((res, art.backward({"out": dy})))
    return out


def assert_same(c, genn, projections: tuple[str, ...]) -> None:  # noqa: ANN001
    (rc, gc), (rg, gg) = c, genn
    per_neuron = rc.spikes["h"].sum(axis=1)  # [batch, neuron]: spikes of each hidden neuron per trial
    assert per_neuron.mean() >= 2, "several spikes per hidden neuron, so that the jumps chain"
    np.testing.assert_array_equal(rg.spikes["h"], rc.spikes["h"])
    np.testing.assert_allclose(rg.readouts["out"], rc.readouts["out"], rtol=1e-12, atol=1e-14)
    assert set(gg) == set(gc)
    for name in projections:
        assert np.abs(gc[name]).max() > 0, f"{name}: no gradient here, the comparison would mean nothing"
    for name in gc:
        scale = np.abs(gc[name]).max()
        np.testing.assert_allclose(gg[name], gc[name], rtol=1e-9, atol=1e-12 * scale, err_msg=name)


FIXED = {"x_to_h": "1.5 ms", "h_to_h": "2 ms", "h_to_out": "3 ms"}
CASES = {  # id: (readout, recurrent)
    "feedforward-avg_var": ("avg_var", False),
    "feedforward-ttfs": ("first_spike_time", False),
    "recurrent-avg_var": ("avg_var", True),
    "recurrent-ttfs": ("first_spike_time", True),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_fixed_delays_give_the_c_gradients(case: str, tmp_path: Path) -> None:
    readout, recurrent = CASES[case]
    network = lower(source(readout, FIXED, recurrent), dt=0.1, duration=25.0)
    c, genn = both(network, readout, tmp_path)
    assert_same(c, genn, ("x_to_h", "h_to_out") + (("h_to_h",) if recurrent else ()))


def test_the_sparse_delayed_recurrent_golden_network_gives_the_c_gradients(tmp_path: Path) -> None:
    """tests/golden/sources/sparse_delay_recurrent.snn: a Sparse recurrent projection with a delay."""
    network = lower(ROOT / "tests" / "golden" / "sources" / "sparse_delay_recurrent.snn")
    c, genn = both(network, "avg_var", tmp_path)
    assert_same(c, genn, ("x_to_h", "h_to_h", "h_to_out"))


#: heterogeneous initial delays (each connection its own), bounded by max
LEARNABLE = {
    "x_to_h": "Trainable(Uniform(0.5 ms, 2 ms), max = 5 ms)",
    "h_to_h": "Trainable(Uniform(1 ms, 3 ms), max = 5 ms)",
    "h_to_out": "Trainable(Uniform(1 ms, 3 ms), max = 5 ms, lr = 10)",
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_trainable_delays_give_the_c_gradients(case: str, tmp_path: Path) -> None:
    """Each connection's delay and weight gradients, and the transmission through the recurrent
    projection, read at its own arrival step (C: rings of per-post values; GeNN: the post adjoints
    read back by the connection's delay)."""
    readout, recurrent = CASES[case]
    network = lower(source(readout, LEARNABLE, recurrent), dt=0.1, duration=25.0)
    c, genn = both(network, readout, tmp_path)
    projections = ("x_to_h", "h_to_out") + (("h_to_h",) if recurrent else ())
    assert set(c[1]) == {*projections, *(f"delay_{p}" for p in projections)}
    assert_same(c, genn, projections + tuple(f"delay_{p}" for p in projections))


def test_genn_draws_files_and_bounds_the_delays_as_c_does(tmp_path: Path) -> None:
    """The initial delays are C's draws; they are read and set like weights (`delay_<projection>`),
    and the manifest gives the optimiser their bounds and learning-rate scale."""
    network = lower(source("avg_var", LEARNABLE, True), dt=0.1, duration=25.0)
    c = build_compiled(network, backend="c", batch_size=1, seed=1, precision="double").artefact
    genn = build_compiled(
        network, backend="genn", batch_size=1, seed=1, precision="double", cache_dir=tmp_path
    ).artefact
    want, got = c.get_weights(), genn.get_weights()
    assert set(got) == set(want)
    for name in want:
        np.testing.assert_array_equal(got[name], want[name], err_msg=name)
    assert len(np.unique(got["delay_x_to_h"])) == got["delay_x_to_h"].size  # one delay per connection
    bounds = genn.manifest["trainable_params"]
    assert bounds["delay_h_to_out"] == c.manifest["trainable_params"]["delay_h_to_out"]
    assert bounds["delay_h_to_out"]["max"] == 5.0 and bounds["delay_h_to_out"]["lr_scale"] == 10.0
    moved = {"delay_x_to_h": np.full((3, 5), 4.0)}
    genn.set_weights(moved)
    np.testing.assert_array_equal(genn.get_weights()["delay_x_to_h"], moved["delay_x_to_h"])


SPARSE = """use std.{SpikeInput, LIF, LeakyIntegrate, Exponential}
network g {
    input  x   = SpikeInput(3)
    hidden h   = LIF(6, tau_mem = 10 ms)
    output out = LeakyIntegrate(2, tau_mem = 10 ms, readout = avg_var)
    x -> h   : Dense(weight = Normal(mean = 3.0, sd = 0.5)), Exponential(tau = 5 ms)
    h -> h   : Sparse(p = 0.5, weight = Normal(mean = 0.3, sd = 0.2),
                      delay = Trainable(Uniform(0.5 ms, 3 ms), max = 4 ms)), Exponential(tau = 5 ms)
    h -> out : Dense(weight = Normal(mean = 0.5, sd = 0.5)), Exponential(tau = 5 ms)
}
train g {
    algorithm = eventprop(max_spikes = 100)
    loss      = sparse_categorical_crossentropy
    seed      = 4
}
"""


def test_trainable_delays_of_a_sparse_recurrent_projection_give_the_c_gradients(tmp_path: Path) -> None:
    network = lower(SPARSE, dt=0.5, duration=20.0)
    c, genn = both(network, "avg_var", tmp_path)
    assert_same(c, genn, ("x_to_h", "h_to_h", "delay_h_to_h", "h_to_out"))


def test_an_epoch_of_training_moves_weights_and_delays_as_on_c(tmp_path: Path) -> None:
    """The trainer's optimiser steps the delays with their own learning rate and bounds (from the
    manifest) from GeNN's gradients: after an epoch both backends hold the same weights and delays."""
    from snnc.runtime.session import load_data, xy

    network = lower(TRAIN)
    x, y = xy(network, load_data(network).train)
    start, c, genn = trained_alike(network, tmp_path, lambda net: net.train(x, y, 1, callbacks=[]))
    assert set(genn) == set(c) == {"x_to_h", "h_to_out", "delay_x_to_h"}
    assert np.abs(c["delay_x_to_h"] - start["delay_x_to_h"]).max() > 0.05  # the delays moved
    for name in c:
        np.testing.assert_allclose(genn[name], c[name], rtol=1e-9, atol=1e-12, err_msg=name)


def test_trainable_delays_of_a_one_to_one_recurrent_projection_give_the_c_gradients(tmp_path: Path) -> None:
    dense = "h -> h   : Dense(weight = Normal(mean = 0.2, sd = 0.4),"
    text = source("avg_var", LEARNABLE, True)
    assert dense in text
    text = text.replace(dense, "h -> h   : OneToOne(weight = Normal(mean = 0.5, sd = 0.4),")
    c, genn = both(lower(text, dt=0.1, duration=25.0), "avg_var", tmp_path)
    assert c[1]["delay_h_to_h"].size == 5  # one connection per hidden neuron
    assert_same(c, genn, ("x_to_h", "h_to_h", "delay_h_to_h", "h_to_out"))


def test_a_network_with_trainable_delays_simulates_as_on_c(tmp_path: Path) -> None:
    """Compiled for simulation only (no gradient pass), the delays still deliver through GeNN's
    dendritic buffer, set like weights: the same spikes and readouts as C."""
    import dataclasses
    import io

    from snnc.passes.pipeline import compile_ir

    from snnc.api import load_network

    network = dataclasses.replace(load_network(source("avg_var", LEARNABLE, True)), dt=0.1, duration=25.0)
    network, _ = compile_ir(network, gradients=False, out=io.StringIO())
    network = dataclasses.replace(network, training=None)
    results, weights = [], None
    for _, net in c_then_genn(network, tmp_path, batch_size=BATCH):
        art = net.artefact
        if weights is None:
            weights = art.get_weights()
            weights["delay_h_to_h"] = np.full_like(weights["delay_h_to_h"], 4.0)  # moved, as training would
        art.set_weights(weights)
        results.append(art.run(inputs(), RecordRequest.of(spikes=["h"])))
    c, genn = results
    assert c.spikes["h"].sum() > 0
    np.testing.assert_array_equal(genn.spikes["h"], c.spikes["h"])
    np.testing.assert_allclose(genn.readouts["out"], c.readouts["out"], rtol=1e-12, atol=1e-14)
