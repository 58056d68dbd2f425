"""e-prop's loss and optimiser step inside the artefact (passes/schedule_learning.py on the e-prop
kernel, runtime/kernel_loop.py) against the trainer's numpy loop, which stays the reference.

e-prop accumulates its gradients during the forward pass (`eprop_run`) from the labels, so the
kernel's learning batch writes the labels first and has no backward pass; the loss phase only
scores the readout. In float64 the two paths run the same forward pass and the same gradient sums
(trial order), so the weights, the optimiser's moments, the losses and the accuracies agree to
rounding (the kernel's exp/log against numpy's) after two epochs with a short last batch.
"""

from __future__ import annotations

from pathlib import Path

import kernel_learning_check as check
import numpy as np
import pytest
from kernel_learning_check import check_label_range_refused, check_nan_gradient_stops_before_the_step
from kernel_learning_check import data as _data
from kernel_learning_check import train as _train
from snnc.runtime.callbacks import Callback
from snnc.runtime.optimisers import SGD, Adam

from snnc.api import compile_network

SRC = """
use std.{SpikeInput, ALIF, LI, Delta}
network k {
    input  x   = SpikeInput(4)
    hidden h   = ALIF(12, tau_mem = 20 ms, tau_adapt = 200 ms, beta = 0.02)
    output out = LI(3, tau_mem = 20 ms, readout = avg_var)
    x -> h   : Dense(weight = Normal(mean = 0.0, sd = 12.0)), Delta()
    h -> h   : Dense(weight = Normal(mean = 0.0, sd = 0.3)), Delta()
    h -> out : Dense(weight = Normal(mean = 0.0, sd = 0.3)), Delta()
}
train k {
    algorithm  = eprop(c_reg = 0.001, f_target = 10 Hz, tau_reg = 500 ms)
    loss       = sparse_categorical_crossentropy
    optimizer  = adam(lr = 0.01)
    dt         = 1 ms
    duration   = 20 ms
    batch_size = 3
    seed       = 2
}
"""

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    path = tmp_path_factory.mktemp("kle") / "k.snn"
    path.write_text(SRC)
    return str(path)


@pytest.fixture(scope="module")
def sgd_source(tmp_path_factory):
    path = tmp_path_factory.mktemp("kle") / "k.snn"
    path.write_text(SRC.replace("adam(lr = 0.01)", "sgd(lr = 0.5)"))
    return str(path)


def _assert_same(a, b, rtol=1e-10):
    check.assert_same(a, b, rtol, keys={"x_to_h", "h_to_h", "h_to_out", "bias_out"})
    assert len(a[1].history) == len(b[1].history) == 2


def _moved(source, art, key="x_to_h") -> float:
    start = compile_network(source, precision="double").artefact.get_weights()[key]
    return float(np.abs(art.get_weights()[key] - start).max())


def test_the_kernel_steps_eprop_with_adam_as_the_trainer_does(source):
    reference = _train(source, Adam(lr=0.05), kernel=False)
    fused = _train(source, Adam(lr=0.05), kernel=True)
    assert fused[2] == [True, True], "the kernel's path must have run both epochs"
    for key in ("x_to_h", "h_to_h", "h_to_out", "bias_out"):
        assert _moved(source, fused[0], key) > 1e-3, f"the test network must learn {key}"
    _assert_same(reference, fused)


def test_the_kernel_steps_eprop_on_sparse_projections_as_the_trainer_does(tmp_path):
    """Sparse input and recurrent weights: the kernel's step reads [batch, nnz] gradients."""
    path = tmp_path / "sparse.snn"
    sparse = SRC.replace("x -> h   : Dense(", "x -> h   : Sparse(p = 0.5, ")
    path.write_text(sparse.replace("h -> h   : Dense(", "h -> h   : Sparse(p = 0.5, "))
    reference = _train(str(path), Adam(lr=0.05), kernel=False)
    fused = _train(str(path), Adam(lr=0.05), kernel=True)
    assert fused[2] == [True, True], "the kernel's path must have run both epochs"
    assert fused[0].get_weights()["h_to_h"].ndim == 1  # stored synapses, not a matrix
    for key in ("x_to_h", "h_to_h"):
        assert _moved(str(path), fused[0], key) > 1e-3, f"the test network must learn {key}"
    _assert_same(reference, fused)


@pytest.mark.parametrize("momentum", [0.0, 0.9])
def test_the_kernel_steps_eprop_with_sgd_and_bounds_as_the_trainer_does(sgd_source, momentum):
    def make():
        return SGD(lr=0.5, momentum=momentum, clamp={"h_to_out": (-0.05, 0.05)})

    reference = _train(sgd_source, make(), kernel=False)
    fused = _train(sgd_source, make(), kernel=True)
    assert all(fused[2])
    w = fused[0].get_weights()["h_to_out"]
    assert w.min() >= -0.05 and w.max() <= 0.05 and (np.abs(w) == 0.05).any(), "the bound must have acted"
    _assert_same(reference, fused)


def test_a_summed_batch_as_the_trainer_does(source):
    reference = _train(source, Adam(lr=0.05, reduction="sum"), kernel=False)
    fused = _train(source, Adam(lr=0.05, reduction="sum"), kernel=True)
    assert all(fused[2])
    _assert_same(reference, fused)


class _Watch(Callback):
    def on_forward(self, batch, result, example_indices):
        self.seen = True


@pytest.mark.parametrize("case", ["temperature", "watcher", "optimiser kind", "metric"])
def test_what_the_kernel_does_not_compute_keeps_the_trainers_loop(source, case):
    from snnc.runtime.losses import SparseCategoricalCrossentropy

    kw = {}
    loss, optimiser = "sparse_categorical_crossentropy", Adam(lr=0.01)
    if case == "temperature":
        loss = SparseCategoricalCrossentropy(temperature=2.0)
    elif case == "watcher":
        kw["callbacks"] = [_Watch()]
    elif case == "metric":
        kw["metrics"] = "mean_square_error"
    else:
        optimiser = SGD(lr=0.1)  # the kernel was compiled for the train block's adam
    art, trainer, used = _train(source, optimiser, kernel=True, epochs=1, loss=loss, **kw)
    assert used == [False]
    assert trainer.history[-1]["train"]["loss"] > 0
    assert _moved(source, art) > 0, "the trainer's loop must still learn"


def test_the_mse_example_keeps_the_trainers_loop():
    """A per-step mse readout is not a loss the kernel computes: no learning phases at all."""
    from snnc.passes.schedule import schedule

    from snnc.api import lower

    network = lower(str(EXAMPLES / "eprop_pattern.snn"))
    kernel = schedule(network)
    assert not any(e.name in ("loss", "gather", "step") for e in kernel.entries)


def test_genn_asks_for_the_eprop_kernel_without_learning_phases(source):
    from snnc.passes.schedule import schedule

    from snnc.api import lower

    network = lower(source)
    assert {"loss", "gather", "step"} <= {e.name for e in schedule(network).entries}
    plain = schedule(network, learning=False)
    assert {e.name for e in plain.entries} == {"run", "eprop_run"}
    assert not any(p.kind.value in ("loss", "update") for p in plain.phases)


def test_a_label_out_of_range_is_refused_before_the_kernel_reads_it(source):
    check_label_range_refused(source)


def test_a_non_finite_gradient_stops_before_the_weights_move(source):
    check_nan_gradient_stops_before_the_step(source, "h_to_h")


def test_evaluation_after_kernel_training_runs_without_targets(source):
    """After kernel batches, a forward pass without targets is a plain `run` (labels not read)."""
    art, trainer, used = _train(source, Adam(lr=0.05), kernel=True, epochs=1)
    assert used == [True]
    x, y = _data()
    metrics, _ = trainer.evaluate(x, y, callbacks=())
    reference, ref_trainer, _ = _train(source, Adam(lr=0.05), kernel=False, epochs=1)
    ref_metrics, _ = ref_trainer.evaluate(x, y, callbacks=())
    assert metrics["out"].result == ref_metrics["out"].result
    assert trainer.last_test["loss"] == pytest.approx(ref_trainer.last_test["loss"], rel=1e-10)
