"""Python API values that used to be accepted silently: no input data, a negative or fractional
epoch count, a run of no steps."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import snnc

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "yinyang_eventprop.snn"


@pytest.fixture(scope="module")
def net_and_data():  # noqa: ANN201
    from snnc.runtime.session import load_data, xy

    net = snnc.compile(str(EXAMPLE), batch_size=4)
    x, y = xy(net.network, load_data(net.network).train)
    return net, {k: v.subset(range(8)) for k, v in x.items()}, {k: v[:8] for k, v in y.items()}


def test_training_without_input_data_is_refused(net_and_data) -> None:
    net, _, y = net_and_data
    with pytest.raises(ValueError, match=r"no input data: give x for the input population\(s\) \['x'\]"):
        net.train({}, y, num_epochs=1, callbacks=[])


@pytest.mark.parametrize("bad", [-1, 1.5])
def test_a_negative_or_fractional_epoch_count_is_refused(net_and_data, bad) -> None:
    net, x, y = net_and_data
    with pytest.raises(ValueError, match="num_epochs must be a whole number, 0 or more"):
        net.train(x, y, num_epochs=bad, callbacks=[])
    with pytest.raises(ValueError, match="start_epoch must be a whole number, 0 or more"):
        net.train(x, y, num_epochs=1, start_epoch=bad, callbacks=[])


def test_zero_epochs_train_nothing(net_and_data) -> None:
    net, x, y = net_and_data
    before = {k: np.array(v) for k, v in net.weights.items()}
    net.train(x, y, num_epochs=0, callbacks=[])
    assert all(np.array_equal(before[k], v) for k, v in net.weights.items())


@pytest.mark.parametrize("bad", [0, -1, 2.5])
def test_a_run_of_no_or_part_steps_is_refused(net_and_data, bad) -> None:
    net, x, _ = net_and_data
    batch = {k: v.subset(range(4)) for k, v in x.items()}
    with pytest.raises(ValueError, match="num_steps must be a whole number of steps, at least 1"):
        net.run(batch, num_steps=bad)
    assert net.run(batch, num_steps=7).num_steps == 7
