"""Trained synapse params under e-prop on GeNN (CPU) against the C backend, in double precision.

`Exponential(tau = Trainable(...))`, shared or per post neuron, on a projection into the hidden
layer (e-prop's eligibility) and into the readout (the exact gradient). The synapse's derived params
(its decay `exp(-dt/tau)` and output scale) are computed from the trained tau once per trial, by the
kernel's `derived_params` phase before the steps, which GeNN runs as a custom update of the per-trial
`Reset` group (`backends/genn/derived_printer.py`). C's gradients of these params equal truncated
BPTT (`test_eprop_synapse_param_bptt.py`); GeNN prints the same kernel IR, so its gradients, and the
params after a few batches of training, must equal C's to rounding.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from snnc.backends import check_supported
from snnc.backends.genn import have_pygenn
from snnc.runtime.artefact import RecordRequest

from snnc.api import build_compiled, lower
from tests.backends.genn_pair import assert_same_gradients, c_then_genn, trained_alike
from tests.backends.test_eprop_synapse_param_bptt import SRC

BATCH = 3
PER_NEURON = "Trainable(5 ms,\n             per_neuron = true, min = 1 ms, max = 50 ms)"
H_OUT = "    h -> out : Dense(weight = Normal(mean = 0.0, sd = 1.0)), Delta\n"
#: id -> the network: where the trained taus are, shared or per post neuron
CASES = {
    # per neuron into the hidden layer, shared into the readout (the BPTT test's network)
    "hidden-per-neuron": SRC,
    # shared into the hidden layer, beside a recurrent projection with a tau per neuron of its own (two
    # projections' params and derived params in one population); per neuron into the readout
    "hidden-shared-recurrent": SRC.replace(PER_NEURON, "Trainable(5 ms, min = 1 ms)")
    .replace("Exponential(tau = Trainable(8 ms))", "Exponential(tau = Trainable(8 ms, per_neuron = true))")
    .replace(
        H_OUT,
        H_OUT + "    h -> h : Dense(weight = Normal(mean = 0.0, sd = 0.5)), "
        "Exponential(tau = Trainable(3 ms, per_neuron = true))\n",
    ),
}
PARAMS = {"tau_x_to_h", "tau_x_to_out"}


def inputs(batch: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(batch):
        ids = rng.integers(0, 5, 60)
        rows.append((np.sort(rng.uniform(0.0, 48.0, ids.size)), ids))
    return {"x": rows}


def varied(weights: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The drawn weights with every trained tau moved to values of its own per neuron (a shared one
    to one value), so that a param read at the wrong neuron changes the result, and excitatory
    inputs, so that every hidden neuron spikes several times."""
    out = dict(weights, x_to_h=np.abs(weights["x_to_h"]) * 2.0)
    for name in weights:
        if name.startswith("tau_"):
            n = weights[name].size
            out[name] = np.linspace(2.0, 10.0, n) if n > 1 else np.array([6.0])
    return out


def test_genn_checks_eprop_synapse_params() -> None:
    for src in CASES.values():
        network = lower(src)
        assert {p for p in network.training.params if p.startswith("tau_")} >= PARAMS
        assert check_supported(network, "genn") == []


@pytest.mark.genn
@pytest.mark.skipif(not have_pygenn(), reason="pygenn is not installed (optional extra 'genn')")
@pytest.mark.parametrize("case", sorted(CASES))
def test_synapse_param_gradients_equal_the_c_ones(case: str, tmp_path: Path) -> None:
    network = lower(CASES[case])
    out, start = [], None
    for _, net in c_then_genn(network, tmp_path, batch_size=BATCH):
        art = net.artefact
        drawn = art.get_weights()
        if start is None:
            start = varied(drawn)
        else:  # both drew the same network
            for name, value in drawn.items():
                np.testing.assert_allclose(value.reshape(start[name].shape), out[0][2][name], rtol=1e-12)
        art.set_weights(start)
        art.set_targets({"out": np.arange(BATCH) % 3})
        res = art.run(inputs(BATCH, 0), RecordRequest.of(spikes=["h"]))
        out.append((res, art.backward({}), drawn))
    (rc, gc, _), (rg, gg, _) = out
    assert rc.spikes["h"].sum(axis=1).mean() >= 5, "several spikes per hidden neuron"
    np.testing.assert_array_equal(rg.spikes["h"], rc.spikes["h"])
    np.testing.assert_allclose(rg.readouts["out"], rc.readouts["out"], rtol=1e-12, atol=1e-12)
    assert set(gg) == set(gc) and PARAMS <= set(gc)
    assert_same_gradients(gg, gc)


@pytest.mark.genn
@pytest.mark.skipif(not have_pygenn(), reason="pygenn is not installed (optional extra 'genn')")
@pytest.mark.parametrize("case", sorted(CASES))
def test_a_few_batches_of_training_move_the_taus_as_on_c(case: str, tmp_path: Path) -> None:
    """The trainer steps the taus (with their bounds) from GeNN's gradients: after two epochs of
    three batches both backends hold the same weights, biases and taus, and the taus have moved
    (so the derived params were recomputed from the new taus before every trial)."""
    network = lower(CASES[case])
    x = inputs(3 * BATCH, 7)
    y = {"out": np.arange(3 * BATCH) % 3}
    train = lambda net: net.train(x, y, 2, shuffle=False, callbacks=[], batch_size=BATCH, seed=0)  # noqa: E731
    start, c, genn = trained_alike(network, tmp_path, train, start=varied, batch_size=BATCH)
    assert set(genn) == set(c) and PARAMS <= set(c)
    for name in PARAMS:
        assert np.abs(c[name] - start[name]).max() > 1e-3, f"{name} did not move"
    for name in c:
        np.testing.assert_allclose(genn[name], c[name], rtol=1e-9, atol=1e-12, err_msg=name)


DIGITS = Path(__file__).resolve().parents[2] / "examples" / "eprop_digits.snn"


def digits_with_trained_taus(delay: str = "") -> str:
    """examples/eprop_digits.snn with the README's trained synapse taus: Exponential synapses on the
    input (tau per neuron, 2-20 ms, input weights sd 1.0) and on the recurrent projection (shared,
    lr 10), the recurrent one optionally delayed."""
    src = DIGITS.read_text()
    old_in = "x -> h   : Dense(weight = Normal(mean = 0.0, sd = 4.0)), Delta()"
    old_rec = "h -> h   : Dense(weight = Normal(mean = 0.0, sd = 0.1)), Delta()"
    assert old_in in src and old_rec in src
    new_in = "x -> h   : Dense(weight = Normal(mean = 0.0, sd = 1.0)), "
    new_in += "Exponential(tau = Trainable(5 ms, per_neuron = true, min = 2 ms, max = 20 ms))"
    new_rec = "h -> h   : Dense(weight = Normal(mean = 0.0, sd = 0.1)" + (
        f", delay = {delay}" if delay else ""
    )
    new_rec += "), Exponential(tau = Trainable(5 ms, lr = 10))"
    return src.replace(old_in, new_in).replace(old_rec, new_rec)


@pytest.mark.slow
@pytest.mark.genn
@pytest.mark.skipif(not have_pygenn(), reason="pygenn is not installed (optional extra 'genn')")
@pytest.mark.parametrize("delay", ["", "2 ms"])
def test_digits_with_trained_synapse_taus_train_as_on_c(delay: str, tmp_path: Path) -> None:
    """3 epochs of the digits example with trained input and recurrent taus (and a delayed recurrent
    projection), in double precision, from the same initial weights: the same test accuracy, and
    the same weights and taus to rounding, on GeNN's CPU backend and the C backend."""
    import time

    from snnc.runtime.session import load_data, xy

    network = lower(digits_with_trained_taus(delay))
    data = load_data(network)
    x, y = xy(network, data.train)
    tx, ty = xy(network, data.test)
    results, start = {}, None
    for backend in ("c", "genn"):
        options = {"cache_dir": tmp_path} if backend == "genn" else {}
        net = build_compiled(network, backend=backend, seed=1, precision="double", **options)
        if start is None:
            start = net.weights
        net.set_weights(start)
        began = time.perf_counter()
        net.train(x, y, 3, callbacks=[])
        seconds = time.perf_counter() - began
        results[backend] = (net.evaluate(tx, ty)["out"]["accuracy"], net.weights)
        print(
            f"digits, trained taus{', delay ' + delay if delay else ''}: {backend} "
            f"{results[backend][0]:.4f} test accuracy, 3 epochs in {seconds:.1f} s"
        )
    (acc_c, c), (acc_genn, genn) = results["c"], results["genn"]
    assert acc_c > 0.85 and acc_genn == acc_c
    assert np.abs(c["tau_h_to_h"] - start["tau_h_to_h"]).max() > 1.0  # the recurrent tau grew
    for name in c:
        np.testing.assert_allclose(genn[name], c[name], rtol=1e-9, atol=1e-12, err_msg=name)
