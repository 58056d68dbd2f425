"""EventProp through axonal delays (C backend) against central finite differences, float64.

A spike of pre neuron n emitted at t_s reaches post neuron m at t_s + d; its jump, its weight gradient
λ_m(t_s + d)·e and its share w·g_m(t_s + d) of the pre neuron's D all read the post adjoints at the
arrival, not at the emission (passes/schedule_eventprop.py walks the pre spikes of step k - delay).
Same harness and thresholds as tests/runtime/test_gradients.py (cos >= 0.99, rel. err. <= 5 %).
"""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck import check_against_fd, compile_double
from snnc.runtime.losses import get_loss

DT, H = 0.001, 0.02


def _source(recurrent: bool, readout: str, loss: str) -> str:
    rec = (
        "    h -> h   : Dense(weight = Normal(mean = 0.3, sd = 0.3), delay = 2 ms), Exponential(tau = 5 ms)\n"
        if recurrent
        else ""
    )
    out = "LIF" if readout == "first_spike_time" else "LeakyIntegrate"
    w_out = 2.5 if readout == "first_spike_time" else 0.5
    return f"""use std.{{SpikeInput, LIF, LeakyIntegrate, Exponential}}
network g {{
    input  x   = SpikeInput(3)
    hidden h   = LIF(4)
    output out = {out}(2, readout = {readout})
    x -> h   : Dense(weight = Normal(mean = 3.0, sd = 0.5), delay = 1.5 ms), Exponential(tau = 5 ms)
{rec}    h -> out : Dense(weight = Normal(mean = {w_out}, sd = 0.5), delay = 3 ms), Exponential(tau = 5 ms)
}}
train g {{
    algorithm = eventprop(max_spikes = 100)
    loss = {loss}
    seed = 4
}}
"""


CASES = {  # id: (recurrent, readout, loss)
    "feedforward-avg_var": (False, "avg_var", "sparse_categorical_crossentropy"),
    "recurrent-avg_var": (True, "avg_var", "sparse_categorical_crossentropy"),
    "feedforward-ttfs": (False, "first_spike_time", "ttfs_crossentropy"),
    "recurrent-ttfs": (True, "first_spike_time", "ttfs_crossentropy"),
}
FAST = {"recurrent-avg_var", "feedforward-ttfs"}


@pytest.mark.parametrize(
    "case", [c if c in FAST else pytest.param(c, marks=pytest.mark.slow) for c in sorted(CASES)]
)
def test_gradients_through_fixed_delays_match_finite_differences(case: str) -> None:
    recurrent, readout, loss_name = CASES[case]
    # the ttfs cases run longer: their output spikes come late, after the 3 ms of h -> out
    duration = 25.0 if readout == "first_spike_time" else 20.0
    art = compile_double(_source(recurrent, readout, loss_name), dt=DT, duration=duration, batch_size=4)
    rng = np.random.default_rng(4)
    x = [(np.sort(rng.uniform(1.0, 10.0, 3)), rng.integers(0, 3, 3)) for _ in range(4)]
    target = np.array([0, 1, 1, 0])
    loss = get_loss(loss_name)
    if hasattr(loss, "t_nospike"):
        loss.t_nospike = duration

    check_against_fd(art, x, target, loss, H, case)
