"""e-prop through fixed synaptic delays on GeNN (CPU) against the C backend, in double precision.

e-prop's eligibility of a delayed projection reads the presynaptic spikes of step k - 1 - d (the
kernel's `zpre` phases, `Spikes(pre, k - 1 - d)`). GeNN's neuron code sees only the previous step's
spike flag, so the pre population keeps the flag's history (`q_flag__d1 ...`, shifted at the start
of every step), and a delayed projection delivers through GeNN's dendritic delay buffer, so that its
learning synapse code reads its pre neurons' vars as they are now (`backends/genn/learn_printer.py`).
C's e-prop through delays is checked against truncated BPTT in `test_eprop_delays_bptt.py` (exact
into the hidden layer; e-prop's online pairing through a delayed readout); GeNN prints the same
kernel IR, so its spikes, readouts and gradients, and the weights after a few batches of training,
must equal C's to rounding: feed-forward, recurrent, and recurrent through a sparse projection with
a trained per-neuron tau on the delayed input synapse.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from snnc.backends import check_supported
from snnc.backends.genn import have_pygenn
from snnc.runtime.artefact import RecordRequest

from snnc.api import lower
from tests.backends.genn_pair import assert_same_gradients, c_then_genn, trained_alike

BATCH = 2
SRC = """
use std.{{SpikeInput, LIF, LI, Delta}}
network sp {{
    input  x   = SpikeInput(8)
    hidden h   = LIF(12, tau_mem = 20 ms, relative_reset = 1)
    output out = LI(3, tau_mem = 20 ms, readout = var)
    x -> h   : Dense(weight = Normal(mean = 1.0, sd = 3.0), delay = {x_to_h}), Delta()
{recurrent}    h -> out : Dense(weight = Normal(mean = 0.0, sd = 0.3), delay = {h_to_out}), Delta()
}}
train sp {{
    algorithm  = eprop(c_reg = 0.01, f_target = 10 Hz, tau_reg = 500 ms)
    loss       = mse
    dt         = 1 ms
    duration   = 60 ms
    batch_size = {batch}
    seed       = 3
}}
"""
RECURRENT = "    h -> h   : Dense(weight = Normal(mean = 0.0, sd = 0.3), delay = 2 ms), Delta()\n"
CASES = {  # id: the delays (x_to_h, h_to_out) and whether h is recurrent (its own delay 2 ms)
    "feedforward": ("2 ms", "3 ms", False),
    "recurrent": ("1 ms", "0 ms", True),
}


#: a third: the recurrent case with a sparse recurrent projection, and a tau per neuron trained on
#: the delayed input synapse (its derived params computed once per trial, derived_printer.py)
SPARSE_TAU = "sparse-recurrent-trained-tau"


def source(case: str) -> str:
    if case == SPARSE_TAU:
        return (
            source("recurrent")
            .replace("h -> h   : Dense(", "h -> h   : Sparse(p = 0.5, ")
            .replace(
                "delay = 1 ms), Delta()",
                "delay = 1 ms), Exponential(tau = Trainable(4 ms, per_neuron = true))",
            )
            .replace("{SpikeInput, LIF, LI, Delta}", "{SpikeInput, LIF, LI, Delta, Exponential}")
        )
    x_to_h, h_to_out, recurrent = CASES[case]
    return SRC.format(x_to_h=x_to_h, h_to_out=h_to_out, recurrent=RECURRENT if recurrent else "", batch=BATCH)


def batch_data(rows: int, seed: int) -> tuple[dict, np.ndarray]:
    """Input spike rows (200 spikes each over the first 80 % of the trial) and per-step targets."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(rows):
        ids = rng.integers(0, 8, 200)
        out.append((np.sort(rng.uniform(0.0, 48.0, ids.size)), ids))
    return {"x": out}, rng.normal(size=(rows, 60, 3))


@pytest.mark.parametrize("case", sorted(CASES))
def test_genn_checks_eprop_through_delays(case: str) -> None:
    network = lower(source(case))
    delayed = [p for p in network.projections.values() if p.delay]
    assert len(delayed) == 2
    assert check_supported(network, "genn") == []


@pytest.mark.genn
@pytest.mark.skipif(not have_pygenn(), reason="pygenn is not installed (optional extra 'genn')")
@pytest.mark.parametrize("case", [*sorted(CASES), SPARSE_TAU])
def test_eprop_gradients_through_delays_equal_the_c_ones(case: str, tmp_path: Path) -> None:
    network = lower(source(case))
    x, targets = batch_data(BATCH, 0)
    out, start = [], None
    for _, net in c_then_genn(network, tmp_path, batch_size=BATCH):
        art = net.artefact
        if start is None:
            start = art.get_weights()
        art.set_weights(start)
        art.set_targets({"out": targets})
        res = art.run(x, RecordRequest.of(spikes=["h"]))
        out.append((res, art.backward({})))
    (rc, gc), (rg, gg) = out
    assert rc.spikes["h"].sum(axis=1).mean() >= 3, "several spikes per hidden neuron"
    np.testing.assert_array_equal(rg.spikes["h"], rc.spikes["h"])
    np.testing.assert_allclose(rg.readouts["out"], rc.readouts["out"], rtol=1e-12, atol=1e-12)
    assert set(gg) == set(gc)
    recurrent = case == SPARSE_TAU or CASES[case][2]
    into_h = {p for p in gc if p in network.projections and p.endswith("_to_h")}
    assert into_h == ({"x_to_h", "h_to_h"} if recurrent else {"x_to_h"})
    assert ("tau_x_to_h" in gc) == (case == SPARSE_TAU)
    assert_same_gradients(gg, gc)


@pytest.mark.genn
@pytest.mark.skipif(not have_pygenn(), reason="pygenn is not installed (optional extra 'genn')")
def test_a_few_batches_of_training_through_delays_move_the_weights_as_on_c(tmp_path: Path) -> None:
    network = lower(source("recurrent"))
    x, targets = batch_data(3 * BATCH, 7)
    y = {"out": targets}
    train = lambda net: net.train(x, y, 2, shuffle=False, callbacks=[], batch_size=BATCH, seed=0)  # noqa: E731
    start, c, genn = trained_alike(network, tmp_path, train, batch_size=BATCH)
    assert set(genn) == set(c) == {"x_to_h", "h_to_h", "h_to_out", "bias_out"}
    for name in c:
        assert np.abs(c[name] - start[name]).max() > 1e-4, f"{name} did not move"
        np.testing.assert_allclose(genn[name], c[name], rtol=1e-9, atol=1e-12, err_msg=name)
