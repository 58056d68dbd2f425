"""EventProp through a trained convolution and an average pool, against finite differences.

The conv2d weights are shared by every output position, so dL/dw sums the arrivals of a spike at
every output whose window holds it; the pool has no weights, but λ must still flow back through it
(the transmission `D` of the conv layer's spikes) for the conv gradient to be right.
"""

from __future__ import annotations

import numpy as np
import pytest
from gradcheck import compare, compile_double, fd_gradients
from snnc.runtime.losses import get_loss

SOURCE = """
use std.{SpikeInput, LIF, LeakyIntegrate, Exponential}
network cp {
    input  x   = SpikeInput((4, 4, 1))
    hidden c   = LIF((2, 2, 2), tau_mem = 10 ms)
    hidden p   = LIF((1, 1, 2), tau_mem = 10 ms, v_thresh = 0.3)
    output out = LeakyIntegrate(2, tau_mem = 10 ms, readout = avg_var)
    x -> c   : Conv2D(filters = 2, kernel = 3, weight = Normal(mean = 1.2, sd = 0.4)), Exponential(tau = 5 ms)
    c -> p   : AvgPool2D(pool = 2), Exponential(tau = 5 ms)
    p -> out : Dense(weight = Normal(mean = 0.5, sd = 0.5)), Exponential(tau = 5 ms)
}
train cp {
    algorithm = eventprop(max_spikes = 100)
    loss = sparse_categorical_crossentropy
    seed = 2
}
"""


def test_conv_and_pool_gradients_match_finite_differences() -> None:
    art = compile_double(SOURCE, dt=0.001, duration=20.0, batch_size=4)
    rng = np.random.default_rng(2)
    x = [(np.sort(rng.uniform(1.0, 10.0, 8)), rng.integers(0, 16, 8)) for _ in range(4)]
    labels = np.array([0, 1, 1, 0])
    loss = get_loss("sparse_categorical_crossentropy")

    def run():  # noqa: ANN202
        return art.run({"x": x})

    def value(res):  # noqa: ANN001, ANN202
        return loss(res.readouts["out"], labels)

    _, dl = value(run())
    grads = art.backward({"out": dl})
    assert grads["x_to_c"].shape == (3, 3, 1, 2)  # one gradient per shared kernel weight
    fd = fd_gradients(art, value, run, h=0.02, points=9)
    for proj in ("x_to_c", "p_to_out"):
        cos, rel = compare(grads[proj], fd[proj])
        assert np.linalg.norm(fd[proj]) > 0, f"{proj}: the loss does not depend on these weights here"
        assert cos >= 0.99 and rel <= 0.05, f"{proj}: cos {cos:.4f}, rel {rel:.4f}"


PADDED = """
use std.{SpikeInput, LIF, LeakyIntegrate, Exponential}
network cp {
    input  x   = SpikeInput((5, 5, 1))
    hidden c   = LIF((3, 3, 2), tau_mem = 10 ms)
    output out = LeakyIntegrate(2, tau_mem = 10 ms, readout = avg_var)
    x -> c   : Conv2D(filters = 2, kernel = 3, stride = 2, padding = 1, weight = Normal(mean = 1.2, sd = 0.4)), Exponential(tau = 5 ms)
    c -> out : Dense(weight = Normal(mean = 0.5, sd = 0.5)), Exponential(tau = 5 ms)
}
train cp {
    algorithm = eventprop(max_spikes = 100)
    loss = sparse_categorical_crossentropy
    seed = 2
}
"""


@pytest.mark.slow  # ~12 s of CPU: compiles and runs 19 simulations
def test_padded_strided_conv_gradients_match_finite_differences() -> None:
    """Conv2D with numbers for padding (PyTorch/NIR style): the zero border changes which input
    reaches which output, and the gradient must follow the same windows."""
    art = compile_double(PADDED, dt=0.001, duration=20.0, batch_size=4)
    rng = np.random.default_rng(3)
    x = [(np.sort(rng.uniform(1.0, 10.0, 10)), rng.integers(0, 25, 10)) for _ in range(4)]
    labels = np.array([0, 1, 1, 0])
    loss = get_loss("sparse_categorical_crossentropy")

    def run():  # noqa: ANN202
        return art.run({"x": x})

    def value(res):  # noqa: ANN001, ANN202
        return loss(res.readouts["out"], labels)

    _, dl = value(run())
    grads = art.backward({"out": dl})
    assert grads["x_to_c"].shape == (3, 3, 1, 2)
    fd = fd_gradients(art, value, run, h=0.02, points=9)
    for proj in ("x_to_c", "c_to_out"):
        cos, rel = compare(grads[proj], fd[proj])
        assert np.linalg.norm(fd[proj]) > 0, f"{proj}: the loss does not depend on these weights here"
        assert cos >= 0.99 and rel <= 0.05, f"{proj}: cos {cos:.4f}, rel {rel:.4f}"


DILATED_GROUPED = """
use std.{SpikeInput, LIF, LeakyIntegrate, Exponential}
network cp {
    input  x   = SpikeInput((5, 5, 2))
    hidden c   = LIF((3, 2, 4), tau_mem = 10 ms)
    output out = LeakyIntegrate(2, tau_mem = 10 ms, readout = avg_var)
    x -> c   : Conv2D(filters = 4, kernel = 2, stride = 2, padding = 1, dilation = (2, 3), groups = 2,
                      weight = Normal(mean = 1.5, sd = 0.4)), Exponential(tau = 5 ms)
    c -> out : Dense(weight = Normal(mean = 0.5, sd = 0.5), trainable = false), Exponential(tau = 5 ms)
}
train cp {
    algorithm = eventprop(max_spikes = 100)
    loss = sparse_categorical_crossentropy
    seed = 4
}
"""


def test_dilated_grouped_conv_gradients_match_finite_differences() -> None:
    """Conv2D with dilation and groups: each kernel weight [ky, kx, c % (C/G), f] is shared by the
    taps ky * dh, kx * dw of every output of filter f, and only the channels of f's group reach it;
    the EventProp gradient must sum exactly those arrivals."""
    art = compile_double(DILATED_GROUPED, dt=0.001, duration=20.0, batch_size=4)
    rng = np.random.default_rng(5)
    x = [(np.sort(rng.uniform(1.0, 10.0, 40)), rng.integers(0, 50, 40)) for _ in range(4)]
    labels = np.array([0, 1, 1, 0])
    loss = get_loss("sparse_categorical_crossentropy")

    def run():  # noqa: ANN202
        return art.run({"x": x})

    def value(res):  # noqa: ANN001, ANN202
        return loss(res.readouts["out"], labels)

    _, dl = value(run())
    grads = art.backward({"out": dl})
    assert grads["x_to_c"].shape == (2, 2, 1, 4)  # [kh, kw, C / groups, F]
    assert "c_to_out" not in grads  # fixed: only the kernel is differenced
    fd = fd_gradients(art, value, run, h=0.02, points=9, projections=("x_to_c",))
    cos, rel = compare(grads["x_to_c"], fd["x_to_c"])
    assert np.all(np.abs(fd["x_to_c"]) > 1e-6), "every kernel weight should move the loss here"
    assert cos >= 0.99 and rel <= 0.05, f"cos {cos:.4f}, rel {rel:.4f}"
