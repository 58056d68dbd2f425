"""The artefact's own loss and optimiser step (passes/schedule_learning.py, runtime/kernel_loop.py)
against the trainer's numpy loop, which stays the reference: same network, same data, same start.

In float64 the two differ only by rounding (the kernel's exp/log against numpy's, operand order),
so weights, optimiser moments, losses and accuracies agree to 1e-10 relative after several batches.
"""

from __future__ import annotations

import numpy as np
import pytest
from kernel_learning_check import SRC, check_label_range_refused, check_nan_gradient_stops_before_the_step
from kernel_learning_check import assert_same as _assert_same
from kernel_learning_check import data as _data
from kernel_learning_check import train as _train
from snnc.runtime.callbacks import Callback
from snnc.runtime.optimisers import SGD, Adam
from snnc.runtime.trainer import Trainer

from snnc.api import compile_network


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    path = tmp_path_factory.mktemp("kl") / "k.snn"
    path.write_text(SRC)
    return str(path)


@pytest.fixture(scope="module")
def sgd_source(tmp_path_factory):
    path = tmp_path_factory.mktemp("kl") / "k.snn"
    path.write_text(SRC.replace("adam(lr = 0.01)", "sgd(lr = 0.5)"))
    return str(path)


def test_the_kernel_computes_loss_and_adam_as_the_trainer_does(source):
    reference = _train(source, Adam(lr=0.05), kernel=False)
    fused = _train(source, Adam(lr=0.05), kernel=True)
    assert fused[2] and all(fused[2])  # the kernel's path ran (10 examples: a short last batch)
    moved = (
        fused[0].get_weights()["x_to_h"]
        - compile_network(source, precision="double").artefact.get_weights()["x_to_h"]
    )
    assert np.abs(moved).max() > 1e-3, "the test network must learn something"
    _assert_same(reference, fused)


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_sgd_with_momentum_and_bounds_as_the_trainer_does(sgd_source, momentum):
    source = sgd_source

    def make():
        return SGD(lr=0.5, momentum=momentum, clamp={"h_to_out": (-0.2, 1.0)})

    reference = _train(source, make(), kernel=False)
    fused = _train(source, make(), kernel=True)
    assert all(fused[2])
    w = fused[0].get_weights()["h_to_out"]
    assert w.min() >= -0.2 and w.max() <= 1.0 and (w == 1.0).any(), "the bound must have acted"
    _assert_same(reference, fused)


def test_a_summed_batch_as_the_trainer_does(source):
    reference = _train(source, Adam(lr=0.05, reduction="sum"), kernel=False)
    fused = _train(source, Adam(lr=0.05, reduction="sum"), kernel=True)
    _assert_same(reference, fused)


class _Watch(Callback):
    def on_forward(self, batch, result, example_indices):
        self.seen = True


@pytest.mark.parametrize(
    "case",
    ["temperature", "watcher", "optimiser kind"],
)
def test_what_the_kernel_does_not_compute_keeps_the_trainers_loop(source, case):
    from snnc.runtime.losses import SparseCategoricalCrossentropy

    kw = {}
    loss, optimiser = "sparse_categorical_crossentropy", Adam(lr=0.01)
    if case == "temperature":
        loss = SparseCategoricalCrossentropy(temperature=2.0)
    elif case == "watcher":
        kw["callbacks"] = [_Watch()]
    else:
        optimiser = SGD(lr=0.1)  # the kernel was compiled for the train block's adam
    _, trainer, used = _train(source, optimiser, kernel=True, epochs=1, loss=loss, **kw)
    assert used == [False]
    assert trainer.history[-1]["train"]["loss"] > 0


def test_a_label_out_of_range_is_refused_before_the_kernel_reads_it(source):
    check_label_range_refused(source)


def test_a_non_finite_gradient_stops_before_the_weights_move(source):
    check_nan_gradient_stops_before_the_step(source, "x_to_h")


def test_spike_times_read_after_kernel_batches_hold_no_stale_values(source):
    """Kernel batches leave the forward spike-time buffer unfilled (nothing reads it there); a later
    `run` refills it whole, so its padding past each neuron's count is the initial value, even where
    the kernel wrote further than an earlier `run` had."""
    net = compile_network(source, precision="double", batch_size=3, threads=1)
    art = net.artefact
    x, y = _data()
    trainer = Trainer(art, "sparse_categorical_crossentropy", Adam(lr=0.01), 3)
    quiet = [(np.array([1.0]), np.array([0]))]  # one input spike: few hidden spikes
    art.run({"x": quiet})
    before = int(art.run({"x": quiet}).events["h"][1].max())
    trainer.train(x, y, 1, callbacks=())
    res = art.run({"x": quiet})
    times, counts = res.events["h"]
    assert int(art.run({"x": [x["x"][i] for i in range(3)]}).events["h"][1].max()) > before
    padding = np.arange(times.shape[-1]) >= counts[..., None]
    assert padding.any() and np.all(times[padding] == 0.0)
