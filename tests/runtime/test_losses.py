import re

import numpy as np
import pytest
from snnc.runtime.errors import RuntimeConfigError
from snnc.runtime.losses import (
    MeanSquareError,
    RelativeMeanSquareError,
    SparseCategoricalCrossentropy,
    SpikeCountRegulariser,
    TimeToFirstSpikeCrossentropy,
    get_loss,
)


def numeric_grad(f, y, eps=1e-6):
    g = np.zeros_like(y)
    for i in np.ndindex(y.shape):
        up, down = y.copy(), y.copy()
        up[i] += eps
        down[i] -= eps
        g[i] = (f(up) - f(down)) / (2 * eps)
    return g


RNG = np.random.default_rng(3)


@pytest.mark.parametrize(
    "loss",
    [
        SparseCategoricalCrossentropy(),
        SparseCategoricalCrossentropy(temperature=0.3),
        TimeToFirstSpikeCrossentropy(tau0=0.5, tau1=6.4, alpha=0.003),
        TimeToFirstSpikeCrossentropy(tau0=2.0, alpha=0.0),
        RelativeMeanSquareError(delta=1.0),
    ],
)
def test_classification_loss_gradient_matches_finite_differences(loss):
    y = RNG.uniform(1.0, 6.0, (5, 3))
    labels = np.array([0, 2, 1, 1, 0])
    value, grad = loss(y, labels)
    assert grad.shape == y.shape
    assert np.isfinite(value) and value > 0
    np.testing.assert_allclose(grad, numeric_grad(lambda z: loss(z, labels)[0], y), rtol=1e-5, atol=1e-8)


def test_mse_gradient_per_timestep():
    loss = MeanSquareError()
    y = RNG.normal(size=(2, 7, 3))
    target = RNG.normal(size=(2, 7, 3))
    value, grad = loss(y, target)
    assert value == pytest.approx(np.mean((y - target) ** 2))
    np.testing.assert_allclose(grad, numeric_grad(lambda z: loss(z, target)[0], y), rtol=1e-5, atol=1e-9)


def test_crossentropy_value_and_temperature():
    y = np.array([[2.0, 0.0, -1.0]])
    value, _ = SparseCategoricalCrossentropy()(y, [0])
    assert value == pytest.approx(-np.log(np.exp(2) / np.exp([2, 0, -1]).sum()))
    hot, _ = SparseCategoricalCrossentropy(temperature=0.5)(y, [0])
    assert hot < value  # a lower temperature sharpens the already-correct softmax


def test_ttfs_never_spiking_neurons_get_no_gradient_and_finite_loss():
    t = np.array([[1.0, np.inf, 3.0], [np.inf, np.inf, np.inf]])
    loss = TimeToFirstSpikeCrossentropy(tau0=1.0, alpha=0.01, t_nospike=30.0)
    value, grad = loss(t, [0, 1])
    assert np.isfinite(value)
    assert grad[0, 1] == 0 and np.all(grad[1] == 0)
    # descending the gradient moves the correct neuron earlier and the wrong one later
    assert grad[0, 0] > 0 and grad[0, 2] < 0


def test_relative_mse_value_by_hand():
    t = np.array([[2.0, 4.0, 2.5]])
    value, grad = RelativeMeanSquareError(delta=1.0)(t, [0])
    assert value == pytest.approx(0.5 * ((4.0 - 2.0 - 1.0) ** 2 + (2.5 - 2.0 - 1.0) ** 2))
    np.testing.assert_allclose(grad, [[-(1.0 - 0.5), 1.0, -0.5]])


def test_spike_count_regulariser():
    reg = SpikeCountRegulariser(upper=2.0, lower=1.0, nu_upper=3.0, nu_lower=1.0)
    counts = RNG.integers(0, 7, (4, 5)).astype(float)
    value, grad = reg(counts)
    mean = counts.mean(axis=0)
    expected = np.sum(np.maximum(mean - 3, 0) ** 2) + 0.5 * np.sum(np.maximum(1 - mean, 0) ** 2)
    assert value == pytest.approx(expected)
    np.testing.assert_allclose(grad, numeric_grad(lambda c: reg(c)[0], counts), atol=1e-6)
    quiet_value, quiet_grad = reg(np.full((4, 5), 2.0))  # inside the band
    assert quiet_value == 0 and not quiet_grad.any()


@pytest.mark.parametrize(
    "args, said",
    [
        ({"upper": -1.0}, "upper must be at least 0"),
        ({"lower": -0.5}, "lower must be at least 0"),
        ({"nu_lower": -1.0}, "nu_lower must be at least 0"),
        ({"upper": float("nan")}, "upper must be at least 0"),
        ({"nu_upper": 1.0, "nu_lower": 2.0}, "nu_upper (1.0) must be at least nu_lower (2.0)"),
    ],
)
def test_spike_count_regulariser_refuses_strengths_and_bands_against_their_meaning(args, said):
    """Through the Python API (`net.train(..., regularisers=...)`): a negative strength pushed the
    counts away from their band, an upside-down band both ways at once."""
    with pytest.raises(ValueError, match=re.escape(said)):
        SpikeCountRegulariser(**args)


def test_get_loss_from_snn_names_and_errors():
    assert isinstance(get_loss("relative_mse", {"delta": 2.0}), RelativeMeanSquareError)
    with pytest.raises(RuntimeConfigError) as e:
        get_loss("relative_mes")
    assert "did you mean 'relative_mse'" in e.value.diagnostics[0].hint
    assert isinstance(e.value, ValueError)
    with pytest.raises(RuntimeConfigError, match="no argument 'detla'"):
        get_loss("relative_mse", {"detla": 1.0})


def test_labels_out_of_range_are_rejected():
    with pytest.raises(ValueError, match="labels"):
        SparseCategoricalCrossentropy()(np.zeros((2, 3)), [0, 3])


def test_fractional_labels_are_refused_not_truncated():
    """A label 1.5 used to become class 1 silently; whole-number floats are still class indices."""
    loss = SparseCategoricalCrossentropy()
    y = np.zeros((2, 3))
    value, _ = loss(y, np.array([1.0, 2.0]))
    assert np.isclose(value, np.log(3))
    with pytest.raises(ValueError, match="whole numbers .* got 1.5"):
        loss(y, np.array([1.5, 2.0]))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\); got 0..5"):
        loss(y, np.array([0, 5]))
