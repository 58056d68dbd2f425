import math

import numpy as np
import pytest
from snnc.runtime.errors import RuntimeConfigError
from snnc.runtime.optimisers import SGD, Adam, get_optimiser


def test_adam_matches_hand_computed_two_steps():
    w = np.array([1.0, -2.0], dtype=np.float32)
    params = {"p": w}
    opt = Adam(lr=0.1, beta1=0.9, beta2=0.999, epsilon=1e-8)
    g1, g2 = np.array([0.5, -1.0]), np.array([-0.25, 2.0])
    opt.step(params, {"p": g1})
    opt.step(params, {"p": g2})
    # by hand, element 0
    m1 = 0.1 * 0.5
    v1 = 0.001 * 0.25
    w0 = 1.0 - 0.1 * (m1 / 0.1) / (math.sqrt(v1 / 0.001) + 1e-8)  # = 1 - 0.1 (first step is lr·sign)
    m2 = 0.9 * m1 + 0.1 * -0.25
    v2 = 0.999 * v1 + 0.001 * 0.0625
    w0 = w0 - 0.1 * (m2 / (1 - 0.9**2)) / (math.sqrt(v2 / (1 - 0.999**2)) + 1e-8)
    assert params["p"] is w  # in place
    assert w.dtype == np.float32
    assert w[0] == pytest.approx(w0, rel=1e-6)
    assert w0 == pytest.approx(0.9 - 0.1 * (0.02 / 0.19) / math.sqrt(0.00031225 / 0.001999), rel=1e-7)


def test_adam_defaults_are_mlgenns():
    opt = Adam()
    assert (opt.lr, opt.beta1, opt.beta2, opt.epsilon) == (0.001, 0.9, 0.999, 1e-8)


def test_clamp_per_projection():
    params = {"a": np.zeros(3, np.float32), "b": np.zeros(3, np.float32)}
    opt = SGD(lr=1.0, clamp={"a": (-0.5, 0.5)})
    opt.step(params, {"a": np.array([-2.0, 0.1, 2.0]), "b": np.array([-2.0, 0.1, 2.0])})
    np.testing.assert_allclose(params["a"], [0.5, -0.1, -0.5], rtol=1e-6)
    np.testing.assert_allclose(params["b"], [2.0, -0.1, -2.0], rtol=1e-6)


def test_sgd_momentum():
    params = {"p": np.zeros(1, np.float32)}
    opt = SGD(lr=0.5, momentum=0.9)
    opt.step(params, {"p": np.array([1.0])})
    opt.step(params, {"p": np.array([1.0])})
    assert params["p"][0] == pytest.approx(-0.5 - 0.5 * 1.9)


def test_state_round_trip_continues_identically():
    rng = np.random.default_rng(0)
    grads = [rng.normal(size=(3, 2)) for _ in range(4)]
    a = {"p": np.ones((3, 2), np.float32)}
    opt_a = Adam(lr=0.01)
    for g in grads:
        opt_a.step(a, {"p": g})
    b = {"p": np.ones((3, 2), np.float32)}
    opt_b = Adam(lr=0.01)
    for g in grads[:2]:
        opt_b.step(b, {"p": g})
    state = {k: np.array(v) for k, v in opt_b.state_dict().items()}
    assert all(isinstance(v, np.ndarray) and v.dtype != object for v in state.values())
    opt_c = Adam(lr=0.5)  # hyperparameters come back from the state too
    opt_c.load_state_dict(state)
    assert opt_c.lr == 0.01 and opt_c.step_count == 2
    for g in grads[2:]:
        opt_c.step(b, {"p": g})
    np.testing.assert_array_equal(a["p"], b["p"])


def test_get_optimiser_names_and_errors():
    opt = get_optimiser("adam", {"lr": 0.003, "beta2": 0.99})
    assert isinstance(opt, Adam) and opt.beta2 == 0.99
    assert get_optimiser("adam", {"alpha": 0.01}).lr == 0.01
    with pytest.raises(RuntimeConfigError, match="unknown optimiser 'adma'"):
        get_optimiser("adma")
    with pytest.raises(RuntimeConfigError, match="no argument 'beta3'"):
        get_optimiser("adam", {"beta3": 0.9})
    with pytest.raises(RuntimeConfigError, match="reduction"):
        Adam(reduction="max")


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="shape"):
        Adam().step({"p": np.zeros(3, np.float32)}, {"p": np.zeros(4)})


@pytest.mark.parametrize(
    "name, args, words",
    [
        ("adam", {"lr": -0.01}, "lr must lie in [0, inf), not -0.01"),
        ("adam", {"beta1": 1}, "beta1 must lie in [0, 1), not 1"),
        ("adam", {"beta2": 2}, "beta2 must lie in [0, 1), not 2"),
        ("adam", {"epsilon": 0}, "epsilon must lie in (0, inf), not 0"),
        ("sgd", {"momentum": -1}, "momentum must lie in [0, 1), not -1"),
    ],
)
def test_hyperparameters_that_make_nan_or_ascend_are_refused(name, args, words):
    """beta = 1 divides by zero in the bias correction, beta2 > 1 roots a negative v, epsilon = 0
    divides 0 by 0 where a weight had no gradient, lr < 0 climbs the loss: all trained without a word."""
    from snnc.ir.diagnostics import Span

    span = Span("net.snn", 15, 18)
    with pytest.raises(RuntimeConfigError) as info:
        get_optimiser(name, args, span)
    assert words in str(info.value) and info.value.diagnostics[0].span == span
