"""The small delayed network the trainable-delay tests share (C against finite differences in
test_trainable_delays.py, GeNN against C in tests/backends/test_genn_delays.py)."""

from __future__ import annotations

LOSS = {"avg_var": "sparse_categorical_crossentropy", "first_spike_time": "ttfs_crossentropy"}


def delay_source(
    readout: str,
    delays: dict[str, str],
    recurrent: bool = False,
    *,
    hidden: int = 4,
    w_in: float = 3.0,
    w_rec: tuple[float, float] = (0.3, 0.3),
    w_out_spiking: float = 2.5,
) -> str:
    """3 inputs -> `hidden` LIF (recurrent if asked) -> 2 outputs, each projection with the delay
    `delays[name]`; a spiking output (LIF) for first_spike_time, else a LeakyIntegrate readout."""
    out = "LIF" if readout == "first_spike_time" else "LeakyIntegrate"
    w_out = w_out_spiking if readout == "first_spike_time" else 0.5
    rec = (
        f"    h -> h   : Dense(weight = Normal(mean = {w_rec[0]}, sd = {w_rec[1]}), "
        f"delay = {delays['h_to_h']}), Exponential(tau = 5 ms)\n"
        if recurrent
        else ""
    )
    return f"""use std.{{SpikeInput, LIF, LeakyIntegrate, Exponential}}
network g {{
    input  x   = SpikeInput(3)
    hidden h   = LIF({hidden})
    output out = {out}(2, readout = {readout})
    x -> h   : Dense(weight = Normal(mean = {w_in}, sd = 0.5), delay = {delays["x_to_h"]}), Exponential(tau = 5 ms)
{rec}    h -> out : Dense(weight = Normal(mean = {w_out}, sd = 0.5), delay = {delays["h_to_out"]}), Exponential(tau = 5 ms)
}}
train g {{
    algorithm = eventprop(max_spikes = 100)
    loss = {LOSS[readout]}
    seed = 4
}}
"""
