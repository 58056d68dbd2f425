"""EventProp's Euler backward step (non-linear dynamics) on GeNN (CPU) against the C backend: the
same gradients in double precision, with a trained param, a recurrent projection, fixed and
trainable delays, and a non-linear spiking output.

The C backend's Euler gradients are checked against finite differences (tests/runtime/
test_gradients.py: QuadLIF, CondLIF, from tests/runtime/nonlinear_models.py). The Euler step reads the forward trajectory: GeNN's neuron
code reads it from its extra global params, and synapse code (the transmission g, which reads the
post neuron's states at the spike's step) from a var the post neuron's code stages each step.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from snnc.backends import check_supported
from snnc.backends.genn import have_pygenn

from snnc.api import lower
from tests.backends.test_genn_eventprop_params import both
from tests.runtime.nonlinear_models import CONDUCTANCE, QUADRATIC

pytestmark = [
    pytest.mark.genn,
    pytest.mark.skipif(not have_pygenn(), reason="pygenn is not installed (optional extra 'genn')"),
]

NETWORK = """use std.{SpikeInput, LIF, LeakyIntegrate, Exponential}
HIDDEN_MODEL
network g {
    input  x   = SpikeInput(3)
    hidden h   = HIDDEN
    output out = OUTPUT
    x -> h   : Dense(weight = Normal(mean = W_IN, sd = 0.5)), Exponential(tau = 5 ms)
    h -> h   : Dense(weight = Normal(mean = 0.0, sd = 0.3), delay = RECURRENT_DELAY), Exponential(tau = 5 ms)
    h -> out : Dense(weight = Normal(mean = W_OUT, sd = 0.5), delay = OUTPUT_DELAY), Exponential(tau = 5 ms)
}
train g {
    algorithm = eventprop(max_spikes = 100)
    loss = LOSS
    seed = 4
}
"""
CASES = {  # id: hidden, output, recurrent delay, output delay, input and output weights
    "quadratic-avg_var": (
        "QuadLIF(5, tau_m = Trainable(Uniform(8 ms, 12 ms)))",
        "LeakyIntegrate(2, readout = avg_var)",
        "1 ms",
        "0 ms",
        "2.0",
        "0.5",
    ),
    "conductance-first_spike_time": (
        "CondLIF(5)",
        "CondLIF(2, readout = first_spike_time)",
        "Trainable(Uniform(0.5 ms, 2 ms), max = 3 ms)",
        "1.5 ms",
        "1.0",
        "0.3",
    ),
}


def source(case: str) -> str:
    hidden, output, recurrent, out_delay, w_in, w_out = CASES[case]
    spiking = "first_spike_time" in output
    values = {
        "HIDDEN_MODEL": QUADRATIC + CONDUCTANCE,
        "HIDDEN": hidden,
        "OUTPUT": output,
        "RECURRENT_DELAY": recurrent,
        "OUTPUT_DELAY": out_delay,
        "W_IN": w_in,
        "W_OUT": w_out,
        "LOSS": "ttfs_crossentropy" if spiking else "sparse_categorical_crossentropy",
    }
    text = NETWORK
    for key in sorted(values, key=len, reverse=True):  # HIDDEN_MODEL before HIDDEN
        text = text.replace(key, values[key])
    return text


@pytest.mark.parametrize("case", sorted(CASES))
def test_euler_gradients_equal_the_c_ones(case: str, tmp_path: Path) -> None:
    readout = "first_spike_time" if "first_spike_time" in case else "avg_var"
    network = lower(source(case), dt=0.1, duration=25.0)
    non_linear = [name for name, pg in network.training.populations.items() if pg.method != "exact"]
    assert "h" in non_linear and (readout != "first_spike_time" or "out" in non_linear), non_linear
    assert check_supported(network, "genn") == []
    (rc, gc, _), (rg, gg, _) = both(network, readout, tmp_path)
    assert rc.spikes["h"].sum(axis=1).mean() >= 2, "several spikes per hidden neuron"
    np.testing.assert_array_equal(rg.spikes["h"], rc.spikes["h"])
    np.testing.assert_allclose(rg.readouts["out"], rc.readouts["out"], rtol=1e-12, atol=1e-14)
    assert set(gg) == set(gc) and {"x_to_h", "h_to_h", "h_to_out"} <= set(gc)
    for name, g in gc.items():
        scale = np.abs(g).max()
        assert scale > 0, f"{name}: no gradient here, the comparison would mean nothing"
        np.testing.assert_allclose(gg[name], g, rtol=1e-9, atol=1e-12 * scale, err_msg=name)
