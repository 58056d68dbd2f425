"""EventProp's trained params on GeNN (CPU) against the C backend: the same gradients of time
constants, thresholds, output biases and synapse time constants, shared and per neuron, under three
readouts, in double precision; and one epoch of training that ends with the same params.

The C backend's param gradients are checked against finite differences (tests/runtime/
test_trainable_params.py). GeNN prints the same kernel IR: the trajectory the gradients' ∫ λ·∂f/∂p dt
reads is an extra global param per recorded state, written by the forward steps and read back by
the backward ones, so its gradients must equal C's to rounding.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from snnc.backends import check_supported
from snnc.backends.genn import have_pygenn
from snnc.runtime.artefact import RecordRequest
from snnc.runtime.losses import get_loss

from snnc.api import lower
from tests.backends.genn_pair import c_then_genn, trained_alike

pytestmark = [
    pytest.mark.genn,
    pytest.mark.skipif(not have_pygenn(), reason="pygenn is not installed (optional extra 'genn')"),
]

BATCH = 3
SOURCE = """use std.{SpikeInput, LIF, LeakyIntegrate, Exponential}
network g {
    input  x   = SpikeInput(3)
    hidden h   = LIF(5, tau_mem = TAU_MEM, v_thresh = V_THRESH)
    output out = OUTPUT
    x -> h   : Dense(weight = Normal(mean = 2.0, sd = 0.5)), Exponential(tau = TAU_SYN)
    h -> out : Dense(weight = Normal(mean = W_OUT, sd = 0.5)), Exponential(tau = TAU_OUT_SYN)
}
train g {
    algorithm = eventprop(max_spikes = 100)
    loss = LOSS
    seed = 4
}
"""
PER_NEURON = {
    "TAU_MEM": "Trainable(Uniform(15 ms, 25 ms), min = 2 ms)",
    "V_THRESH": "Trainable(Uniform(0.8, 1.2))",
    "TAU_SYN": "Trainable(Uniform(4 ms, 6 ms))",
    "TAU_OUT_SYN": "Trainable(5 ms, per_neuron = true)",
    "OUT_TAU_MEM": "Trainable(Uniform(15 ms, 25 ms))",
    "OUT_PARAM": "Trainable(Normal(0.0, 0.1))",  # the output's bias, or its threshold
}
SHARED = {
    "TAU_MEM": "Trainable(20 ms, min = 2 ms)",
    "V_THRESH": "Trainable(1.0)",
    "TAU_SYN": "Trainable(5 ms)",
    "TAU_OUT_SYN": "Trainable(5 ms)",
    "OUT_TAU_MEM": "Trainable(20 ms)",
    "OUT_PARAM": "Trainable(0.1)",
}
READOUTS = ("avg_var", "sum_var", "first_spike_time")


def source(readout: str, values: dict[str, str]) -> str:
    """5 hidden LIF neurons with trained tau_mem and v_thresh, their input synapse's tau trained; a
    LeakyIntegrate readout with a trained bias, or a spiking (LIF) output with a trained threshold."""
    spiking = readout == "first_spike_time"
    if spiking:
        threshold = values["OUT_PARAM"].replace("0.1", "1.0").replace("0.0", "1.0")
        output = f"LIF(2, tau_mem = OUT_TAU_MEM, v_thresh = {threshold}, readout = first_spike_time)"
    else:
        output = f"LeakyIntegrate(2, tau_mem = OUT_TAU_MEM, bias = OUT_PARAM, readout = {readout})"
    text = SOURCE.replace("OUTPUT", output).replace("W_OUT", "2.5" if spiking else "0.5")
    text = text.replace("LOSS", "ttfs_crossentropy" if spiking else "sparse_categorical_crossentropy")
    for key in sorted(values, key=len, reverse=True):  # OUT_TAU_MEM before TAU_MEM
        text = text.replace(key, values[key])
    return text


def inputs() -> dict:
    rng = np.random.default_rng(5)
    rows = []
    for _ in range(BATCH):
        ids = rng.integers(0, 3, 12)
        rows.append((np.sort(rng.uniform(0.5, 14.0, ids.size)), ids))
    return {"x": rows}


def both(network, readout: str, tmp_path: Path) -> list:  # noqa: ANN001
    """Readouts and gradients of one batch on C and on GeNN, from C's initial weights and params.
    A non-spiking readout's dL/dy is drawn (any dL/dy must give the same gradients; a drawn one does
    not sum to 0 over the outputs, as cross-entropy's does, which a shared bias would not see)."""
    out, weights = [], None
    for _, net in c_then_genn(network, tmp_path, batch_size=BATCH):
        art = net.artefact
        if weights is None:
            weights = art.get_weights()
        else:
            art.set_weights(weights)
        res = art.run(inputs(), RecordRequest.of(spikes=["h"]))
        if readout == "first_spike_time":
            loss = get_loss("ttfs_crossentropy")
            loss.t_nospike = network.duration
            dy = loss(res.readouts["out"], np.arange(BATCH) % 2)[1]
        else:
            dy = np.random.default_rng(7).normal(size=res.readouts["out"].shape)
        out.append((res, art.backward({"out": dy}), weights))
    return out


@pytest.mark.parametrize("kind", ["per_neuron", "shared"])
@pytest.mark.parametrize("readout", READOUTS)
def test_param_gradients_equal_the_c_ones(readout: str, kind: str, tmp_path: Path) -> None:
    values = PER_NEURON if kind == "per_neuron" else SHARED
    network = lower(source(readout, values), dt=0.1, duration=25.0)
    assert check_supported(network, "genn") == []
    (rc, gc, weights), (rg, gg, _) = both(network, readout, tmp_path)
    out_param = "v_thresh_out" if readout == "first_spike_time" else "bias_out"
    params = {
        "tau_mem_h": 5,
        "v_thresh_h": 5,
        "tau_x_to_h": 5,
        "tau_h_to_out": 2,
        "tau_mem_out": 2,
        out_param: 2,
    }
    for key, size in params.items():  # per neuron: one each, drawn apart; shared: one
        assert weights[key].shape == ((size,) if kind == "per_neuron" else (1,)), key
        if kind == "per_neuron" and key not in ("tau_h_to_out", "bias_out"):
            assert np.ptp(weights[key]) > 0, f"{key}: the neurons' values differ"
    assert rc.spikes["h"].sum(axis=1).mean() >= 2, "several spikes per hidden neuron"
    np.testing.assert_array_equal(rg.spikes["h"], rc.spikes["h"])
    np.testing.assert_allclose(rg.readouts["out"], rc.readouts["out"], rtol=1e-12, atol=1e-14)
    assert set(gg) == set(gc) == {*params, "x_to_h", "h_to_out"}
    for name, g in gc.items():
        scale = np.abs(g).max()
        assert scale > 0, f"{name}: no gradient here, the comparison would mean nothing"
        assert np.shape(gg[name]) == g.shape, name
        np.testing.assert_allclose(gg[name], g, rtol=1e-9, atol=1e-12 * scale, err_msg=name)


TRAIN = """use std.{SpikeInput, LIF, LeakyIntegrate, Exponential}
network small {
    input  x   = SpikeInput(4)
    hidden h   = LIF(12, tau_mem = Trainable(20 ms, per_neuron = true, min = 5 ms),
                  v_thresh = Trainable(1.0, lr = 0.5))
    output out = LeakyIntegrate(3, bias = Trainable(0.0, per_neuron = true), readout = avg_var_exp_weight)
    x -> h   : Dense(weight = Normal(mean = 1.5, sd = 0.78)), Exponential(tau = Trainable(5 ms, max = 8 ms))
    h -> out : Dense(weight = Normal(mean = 0.93, sd = 0.1)), Exponential(tau = 5 ms)
}
train small {
    algorithm  = eventprop(max_spikes = 100)
    loss       = sparse_categorical_crossentropy
    optimizer  = adam(lr = 0.01)
    data       = yinyang(train = 32, test = 16, t_min = 2 ms, t_max = 27 ms)
    dt         = 0.5 ms
    duration   = 30 ms
    batch_size = 16
    epochs     = 1
    seed       = 1
}
"""


def test_an_epoch_of_training_moves_the_params_as_on_c(tmp_path: Path) -> None:
    """The trainer's optimiser steps the params with their own learning rates and bounds (from the
    manifest) from GeNN's gradients: after an epoch both backends hold the same weights and params."""
    from snnc.runtime.session import load_data, xy

    network = lower(TRAIN)
    x, y = xy(network, load_data(network).train)
    start, c, genn = trained_alike(network, tmp_path, lambda net: net.train(x, y, 1, callbacks=[]))
    params = {"tau_mem_h", "v_thresh_h", "bias_out", "tau_x_to_h"}
    assert set(genn) == set(c) == {"x_to_h", "h_to_out", *params}
    for name in params:
        assert np.abs(c[name] - start[name]).max() > 1e-3, f"{name} moved"
    for name in c:
        np.testing.assert_allclose(genn[name], c[name], rtol=1e-9, atol=1e-12, err_msg=name)


def test_the_shd_delays_example_shrunk_trains_as_on_c(tmp_path: Path) -> None:
    """examples/shd_delays.snn (per-neuron tau_mem, trainable delays into and within the hidden
    layer, a spike-count regulariser) at a tenth of its size, on synthetic SHD-shaped data
    (benchmarks/_synthetic_shd.py): two batches of training end with the same weights, delays and
    time constants on both backends."""
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    import _synthetic_shd as shd

    text = (Path(__file__).resolve().parents[2] / "examples" / "shd_delays.snn").read_text()
    for full, shrunk in (("SpikeInput(700)", "SpikeInput(70)"), ("LIF(256", "LIF(24"), ("LI(20", "LI(5")):
        assert full in text
        text = text.replace(full, shrunk)
    network = lower(text, duration=200.0)
    assert check_supported(network, "genn") == []
    raster, labels = shd.make_batch(0, 8, seed=3, steps=200, n_channels=70, n_classes=5)
    x, y = {"x": shd.raster_to_times_ids(raster)}, {"out": labels}
    train = lambda net: net.train(x, y, 1, callbacks=[], batch_size=4)  # noqa: E731
    start, c, genn = trained_alike(network, tmp_path, train, batch_size=4)
    assert (
        set(genn) == set(c) == {"x_to_h", "h_to_h", "h_to_out", "delay_x_to_h", "delay_h_to_h", "tau_mem_h"}
    )
    assert c["tau_mem_h"].shape == (24,) and np.abs(c["tau_mem_h"] - start["tau_mem_h"]).max() > 1e-3
    for name in c:
        np.testing.assert_allclose(genn[name], c[name], rtol=1e-9, atol=1e-12, err_msg=name)


def test_a_network_with_trained_params_simulates_as_on_c(tmp_path: Path) -> None:
    """Compiled for simulation only (no gradient pass), the trained params are still GeNN vars set
    like weights, their derived params computed once per trial: the same spikes and readouts as C
    after the params moved as training would move them."""
    import dataclasses
    import io

    from snnc.passes.pipeline import compile_ir

    from snnc.api import load_network

    network = dataclasses.replace(load_network(source("avg_var", PER_NEURON)), dt=0.1, duration=25.0)
    network, _ = compile_ir(network, gradients=False, out=io.StringIO())
    network = dataclasses.replace(network, training=None)
    assert check_supported(network, "genn") == []
    results, weights = [], None
    for _, net in c_then_genn(network, tmp_path, batch_size=BATCH):
        art = net.artefact
        if weights is None:
            weights = art.get_weights()
            weights["tau_mem_h"] = np.linspace(8.0, 30.0, 5)
            weights["tau_x_to_h"] = np.linspace(3.0, 7.0, 5)
            weights["v_thresh_h"] = np.linspace(0.7, 1.3, 5)
        art.set_weights(weights)
        np.testing.assert_allclose(art.get_weights()["tau_mem_h"], weights["tau_mem_h"], rtol=1e-12)
        results.append(art.run(inputs(), RecordRequest.of(spikes=["h"])))
    c, genn = results
    assert c.spikes["h"].sum() > 0
    np.testing.assert_array_equal(genn.spikes["h"], c.spikes["h"])
    np.testing.assert_allclose(genn.readouts["out"], c.readouts["out"], rtol=1e-12, atol=1e-14)
