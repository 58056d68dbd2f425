"""The small delayed networks the trainable-delay tests share (C against finite differences in
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


#: Yin-Yang with trainable input delays, one short epoch: trained the same by both backends
TRAIN = """use std.{SpikeInput, LIF, LeakyIntegrate, Exponential}
network small {
    input  x   = SpikeInput(4)
    hidden h   = LIF(12)
    output out = LeakyIntegrate(3, readout = avg_var_exp_weight)
    x -> h   : Dense(weight = Normal(mean = 1.5, sd = 0.78),
                     delay = Trainable(Uniform(0 ms, 4 ms), max = 5 ms, lr = 20)), Exponential(tau = 5 ms)
    h -> out : Dense(weight = Normal(mean = 0.93, sd = 0.1)), Exponential(tau = 5 ms)
}
train small {
    algorithm  = eventprop(max_spikes = 100)
    loss       = sparse_categorical_crossentropy
    optimizer  = adam(lr = 0.003)
    data       = yinyang(train = 32, test = 16, t_min = 2 ms, t_max = 27 ms)
    dt         = 0.5 ms
    duration   = 30 ms
    batch_size = 16
    epochs     = 1
    seed       = 1
}
"""
