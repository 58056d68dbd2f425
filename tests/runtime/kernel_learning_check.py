"""The harness both kernel-learning test files use: train one network twice from the same start, once
on the artefact's own loss and optimiser step and once on the trainer's numpy loop, and compare.

`train` records, per epoch, whether the trainer found the kernel path (`kernel_loop.kernel_learning`
returned a plan) and, with `kernel=False`, keeps the numpy loop even where the kernel path exists.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pytest
from snnc.runtime import kernel_loop
from snnc.runtime.encoding import latency_encode
from snnc.runtime.numerics import NumericalFaultError
from snnc.runtime.trainer import Trainer

from snnc.api import compile_network

#: the EventProp network both kernel-learning test files train (Yin-Yang-like, small)
SRC = """
use std.{SpikeInput, LIF, LeakyIntegrate, Exponential}
network k {
    input  x   = SpikeInput(4)
    hidden h   = LIF(12, tau_mem = 20 ms, v_thresh = 1.0, tau_refrac = 0 ms)
    output out = LeakyIntegrate(3, tau_mem = 20 ms, readout = avg_var_exp_weight)
    x -> h   : Dense(weight = Normal(mean = 2.5, sd = 1.0)), Exponential(tau = 5 ms)
    h -> out : Dense(weight = Normal(mean = 0.9, sd = 0.3)), Exponential(tau = 5 ms)
}
train k {
    algorithm  = eventprop(max_spikes = 100)
    loss       = sparse_categorical_crossentropy
    optimizer  = adam(lr = 0.01)
    dt         = 0.1 ms
    duration   = 20 ms
    batch_size = 3
    seed       = 2
}
"""

BATCH = 3
N = 10  # three batches of 3 and a short last batch of 1


def data(n: int = N) -> tuple[dict[str, Any], dict[str, Any]]:
    rng = np.random.default_rng(5)
    return {"x": latency_encode(rng.random((n, 4)), 1.0, 15.0)}, {"out": rng.integers(0, 3, n)}


def train(
    source: str,
    optimiser: Any,
    kernel: bool,
    epochs: int = 2,
    loss: str = "sparse_categorical_crossentropy",
    **kw: Any,
):  # noqa: ANN201, E501
    """(artefact, trainer, [kernel path found, per epoch]) after `epochs` epochs of `data()`."""
    net = compile_network(source, precision="double", batch_size=BATCH, threads=1)
    art = net.artefact
    trainer = Trainer(art, loss, optimiser, BATCH)
    x, y = data()
    used: list[bool] = []
    chosen = kernel_loop.kernel_learning

    def spy(*args: Any) -> Any:
        found = chosen(*args)
        used.append(found is not None)
        return found if kernel else None

    kernel_loop.kernel_learning = spy
    try:
        trainer.train(x, y, epochs, callbacks=kw.pop("callbacks", ()), **kw)
    finally:
        kernel_loop.kernel_learning = chosen
    return art, trainer, used


def assert_same(a: tuple, b: tuple, rtol: float = 1e-10, keys: Iterable[str] | None = None) -> None:
    """Weights (of exactly `keys`, when given), optimiser state, accuracies and losses agree."""
    (art_a, tr_a, _), (art_b, tr_b, _) = a, b
    weights_a, weights_b = art_a.get_weights(), art_b.get_weights()
    assert set(weights_a) == set(weights_b)
    if keys is not None:
        assert set(weights_a) == set(keys)
    for key, w in weights_a.items():
        np.testing.assert_allclose(weights_b[key], w, rtol=rtol, atol=1e-13, err_msg=key)
    state_a, state_b = tr_a.optimiser.state_dict(), tr_b.optimiser.state_dict()
    assert set(state_a) == set(state_b)
    for key in state_a:
        np.testing.assert_allclose(state_b[key], state_a[key], rtol=rtol, atol=1e-13, err_msg=key)
    for ha, hb in zip(tr_a.history, tr_b.history, strict=True):
        assert ha["train"]["accuracy"] == hb["train"]["accuracy"]
        assert hb["train"]["loss"] == pytest.approx(ha["train"]["loss"], rel=rtol)


def check_label_range_refused(source: str) -> None:
    """A label out of range is refused before the kernel indexes the readout with it."""
    net = compile_network(source, precision="double", batch_size=BATCH)
    trainer = Trainer(net.artefact, "sparse_categorical_crossentropy", "adam", BATCH)
    x, y = data()
    y["out"][4] = 3
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\)"):
        trainer.train(x, y, 1, callbacks=())


def check_nan_gradient_stops_before_the_step(source: str, key: str) -> None:
    """A NaN in the gathered gradient of `key` stops the batch before any weight moves."""
    net = compile_network(source, precision="double", batch_size=BATCH)
    art = net.artefact
    learning = art.learning
    forward_backward = learning.forward_backward

    def poisoned(*args: Any) -> Any:
        outcome = forward_backward(*args)
        outcome.grads[key][0, 0] = np.nan
        return outcome

    learning.forward_backward = poisoned
    before = art.get_weights()
    trainer = Trainer(art, "sparse_categorical_crossentropy", "adam", BATCH)
    with pytest.raises(NumericalFaultError, match=key):
        trainer.train(*data(), 1, callbacks=())
    for name, w in art.get_weights().items():
        np.testing.assert_array_equal(w, before[name])
