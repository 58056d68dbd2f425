"""Two spikes of one input neuron in one time step are delivered once (README, "Data sets")."""

from __future__ import annotations

import numpy as np
from snnc.runtime.artefact import RecordRequest

from snnc.api import compile_network

SOURCE = """
use std.{SpikeInput, LeakyIntegrate, Exponential}
network two {
    input x = SpikeInput(1)
    output out = LeakyIntegrate(1, tau_mem = 1000 ms, readout = max_var)
    x -> out : Dense(weight = Constant(1.0)), Exponential(tau = 1000 ms)
}
"""


def test_a_second_spike_in_the_same_step_is_dropped_not_delayed(tmp_path):
    src = tmp_path / "two.snn"
    src.write_text(SOURCE)
    net = compile_network(src, batch_size=1, dt=1.0, duration=10.0)

    def trace(*times: float) -> np.ndarray:
        x = [(np.array(times), np.zeros(len(times), dtype=int))]
        return net.run({"x": x}, RecordRequest.of(vars=[("out", "v")])).vars[("out", "v")].ravel()

    once = trace(2.2)
    assert once[-1] > 0
    np.testing.assert_array_equal(trace(2.2, 2.7), once)  # same step [2, 3): one spike
    np.testing.assert_array_equal(trace(2.2, 2.2), once)
    later = trace(2.2, 3.2)  # the next step: two spikes
    assert later[-1] > 1.5 * once[-1]
