"""The C EventProp artefact under the backend-independent trainer: the yinyang example learns."""

from __future__ import annotations

import numpy as np
from snnc.runtime.datasets.yinyang import encode_yinyang, yinyang_points
from snnc.runtime.optimisers import get_optimiser
from snnc.runtime.trainer import Trainer

from snnc.api import compile_network

# mlGeNN's yin_yang network (4-100-3), kept here so that tuning the shipped example changes nothing
SOURCE = """
use std.{SpikeInput, LIF, LeakyIntegrate, Exponential}
network yinyang {
    input  x   = SpikeInput(4)
    hidden h   = LIF(100, tau_mem = 20 ms, v_thresh = 1.0, tau_refrac = 0 ms)
    output out = LeakyIntegrate(3, tau_mem = 20 ms, readout = avg_var_exp_weight)
    x -> h   : Dense(weight = Normal(mean = 1.5, sd = 0.78)), Exponential(tau = 5 ms)
    h -> out : Dense(weight = Normal(mean = 0.93, sd = 0.1)), Exponential(tau = 5 ms)
}
train yinyang {
    algorithm  = eventprop(max_spikes = 500)
    loss       = sparse_categorical_crossentropy
    dt         = 0.1 ms
    duration   = 30 ms
    batch_size = 32
    seed       = 1
}
"""


def test_yinyang_example_trains_with_the_c_backward_pass() -> None:
    art = compile_network(SOURCE).artefact  # float32, dt = 0.1 ms, 300 steps, batch 32
    art.set_threads(1)  # tiny batches: threads only add synchronisation on 2 shared cores
    features, labels = yinyang_points(2048, 42)
    x = {"x": encode_yinyang(features, 2.0, 27.0)}
    y = {"out": labels}
    trainer = Trainer(
        art, "sparse_categorical_crossentropy", get_optimiser("adam", {"lr": 0.003}), batch_size=32
    )
    first, _ = trainer.train(x, y, 1, callbacks=())
    acc0 = float(first["out"].result)
    trainer.train(x, y, 7, start_epoch=1, callbacks=())
    losses = [h["train"]["loss"] for h in trainer.history]
    last = trainer.history[-1]["train"]
    print("yinyang losses", [round(v, 4) for v in losses], "accuracy", acc0, "->", last["accuracy"])
    assert all(b < a for a, b in zip(losses, losses[1:], strict=False)), losses
    assert last["accuracy"] > max(acc0, 0.36) + 0.14, (acc0, last)  # chance is 1/3
    assert np.isfinite(list(art.get_weights().values())[0]).all()
