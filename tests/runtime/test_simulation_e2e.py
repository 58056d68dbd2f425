"""End to end: `.snn` text -> frontend -> passes -> C backend -> runtime, against a hand-built twin."""

from __future__ import annotations

import numpy as np
import pytest
from snnc.runtime.artefact import RecordRequest
from snnc.runtime.encoding import latency_encode

from snnc.api import compile_network

SOURCE = """
use std.{LIF, Exponential, SpikeInput}

network e2e {
    input  x   = SpikeInput(4)
    hidden h   = LIF(20, tau_mem = 10 ms)
    output out = LIF(3, readout = spike_count)
    x -> h     : Dense(weight = Normal(mean = 1.5, sd = 0.5)), Exponential(tau = 5 ms)
    h -> out   : Dense(weight = Normal(mean = 0.9, sd = 0.1)), Exponential(tau = 5 ms)
}
"""


def test_source_text_compiles_and_runs_like_a_hand_built_network() -> None:
    pytest.importorskip("snnc.passes.pipeline")
    net = compile_network(SOURCE, batch_size=4, dt=0.5, duration=40.0, seed=1)
    x = latency_encode(np.random.default_rng(0).random((6, 4)), 2.0, 27.0)
    out = net.predict({"x": x})["out"]
    assert out.shape == (6, 3) and out.sum() > 0
    # replay h's recorded spikes through the (hand-computed) output layer in numpy
    w = net.weights
    res = net.run({"x": x[:4]}, RecordRequest.of(spikes=["h", "out"]))
    a, b = np.exp(-0.5 / 20.0), np.exp(-0.5 / 5.0)
    for row in range(4):
        s_h = res.spikes["h"][row].astype(float)
        i = np.zeros(3)
        v = np.zeros(3)
        count = np.zeros(3)
        for k in range(s_h.shape[0]):
            if k >= 1:
                i = i + s_h[k - 1] @ w["h_to_out"]
            v = i + (v - i) * a
            fired = v >= 1.0
            count += fired
            v[fired] = 0.0
            i = i * b
        np.testing.assert_allclose(count, out[row], atol=1)  # float32 vs float64 at the threshold
        np.testing.assert_array_equal(res.spikes["out"][row].sum(axis=0), out[row])
