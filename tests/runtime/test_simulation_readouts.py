"""Readouts, Poisson inputs, recorders and batching (closed forms and numpy recurrences)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from snnc.ir.model import Connectivity, Initialiser, Readout
from snnc.runtime.encoding import latency_encode, preprocess_spikes
from snnc.runtime.recording import SpikeRecorder, VarRecorder

from snnc.api import build_compiled
from tests.backends.netbuild import exponential, lif, network, source
from tests.runtime.test_simulation import bias_lif

TAU, I_DRIVE, DT, STEPS = 20.0, 1.5, 0.5, 100


def readout_net(kind: str, thresh: float = 100.0):  # noqa: ANN201
    ro = Readout(kind, None if kind in ("spike_count", "first_spike_time") else "v")
    return network(
        [("out", "BiasLIF", "output", (2,), {"params": {"I": I_DRIVE, "v_thresh": thresh}, "readout": ro})],
        [],
        [bias_lif()],
        dt_ms=DT,
        duration=STEPS * DT,
    )


def v_trace() -> np.ndarray:
    alpha = math.exp(-DT / TAU)
    return I_DRIVE * (1 - alpha ** np.arange(1, STEPS + 1))  # value after the update of step k


@pytest.mark.parametrize(
    ("kind", "expected"),
    [
        ("var", lambda v: v[-1]),
        ("avg_var", lambda v: v.mean()),
        ("sum_var", lambda v: v.sum()),
        ("max_var", lambda v: v.max()),
        ("avg_var_exp_weight", lambda v: np.sum(np.exp(-np.arange(STEPS) * DT / (STEPS * DT)) * v) / STEPS),
    ],
)
def test_state_readouts(kind, expected) -> None:  # noqa: ANN001
    net = build_compiled(readout_net(kind), batch_size=1, precision="double")
    out = net.run({}).readouts["out"]
    np.testing.assert_allclose(out[0], expected(v_trace()), rtol=1e-12)


def test_spike_count_and_first_spike_time() -> None:
    period = TAU * math.log(I_DRIVE / (I_DRIVE - 1.0))
    count = build_compiled(readout_net("spike_count", 1.0), batch_size=1).run({}).readouts["out"][0]
    first = (
        build_compiled(readout_net("first_spike_time", 1.0), batch_size=1, precision="double")
        .run({})
        .readouts["out"][0]
    )
    step_time = math.floor(period / DT) * DT  # start of the step in which v crosses
    assert count[0] == count[1] == int(STEPS * DT / (math.ceil(period / DT) * DT))
    # interpolation within the step: much closer than the step's start
    assert abs(first[0] - period) < 0.05 * DT
    assert abs(first[0] - period) < abs(step_time - period)


def test_first_spike_time_is_inf_without_spikes() -> None:
    out = build_compiled(readout_net("first_spike_time", 100.0), batch_size=1).run({}).readouts["out"]
    assert np.all(np.isinf(out))


def poisson_net():  # noqa: ANN201
    return network(
        [
            ("x", "Poisson", "input", (50,), {}),
            ("h", "LIF", "hidden", (10,), {"readout": Readout("spike_count")}),
        ],
        [
            (
                "x_to_h",
                "x",
                "h",
                Connectivity("dense"),
                Initialiser("normal", {"mean": 0.2, "sd": 0.1}),
                "Exponential",
                {},
            )
        ],
        [lif(), exponential(), source("poisson", "Poisson")],
        dt_ms=1.0,
        duration=500.0,
    )


def test_poisson_rate_and_thread_independence() -> None:
    net = build_compiled(poisson_net(), batch_size=4, seed=3)
    rates = np.full((4, 50), 40.0)
    rates[1] = 0.0
    from snnc.runtime.artefact import RecordRequest

    net.artefact.set_threads(1)
    r1 = net.run({"x": rates}, RecordRequest.of(spikes=["x", "h"]))
    net.artefact.set_threads(2)
    r2 = net.run({"x": rates}, RecordRequest.of(spikes=["x", "h"]))
    np.testing.assert_array_equal(r1.spikes["x"], r2.spikes["x"])
    np.testing.assert_array_equal(r1.readouts["h"], r2.readouts["h"])
    p = r1.spikes["x"][0].mean()
    assert abs(p - 0.04) < 4 * math.sqrt(0.04 * 0.96 / (500 * 50))
    assert r1.spikes["x"][1].sum() == 0
    # different examples (rows) draw different trains
    assert not np.array_equal(r1.spikes["x"][0], r1.spikes["x"][2])


def test_predict_pads_the_last_batch_and_recorders_filter() -> None:
    rng = np.random.default_rng(4)
    net_ir = network(
        [
            ("x", "SpikeSource", "input", (16,), {}),
            ("out", "LIF", "output", (4,), {"readout": Readout("spike_count")}),
        ],
        [
            (
                "x_to_out",
                "x",
                "out",
                Connectivity("dense"),
                Initialiser("normal", {"mean": 0.5, "sd": 0.5}),
                "Exponential",
                {},
            )
        ],
        [lif(), exponential(), source()],
        dt_ms=1.0,
        duration=50.0,
    )
    data = [preprocess_spikes(rng.uniform(0, 40, 60), rng.integers(0, 16, 60), 16) for _ in range(5)]
    net = build_compiled(net_ir, batch_size=2, seed=2)
    single = build_compiled(net_ir, batch_size=1, seed=2)
    spikes = SpikeRecorder("out", example_filter=[1, 4], neuron_filter=[0, 2])
    volts = VarRecorder("out", "v", example_filter=3)
    with net:
        out = net.predict({"x": data}, callbacks=[spikes, volts])["out"]
    assert out.shape == (5, 4)
    for e in range(5):
        np.testing.assert_array_equal(out[e], single.predict({"x": [data[e]]})["out"][0])
    assert spikes.examples == [1, 4] and volts.examples == [3]
    for (times, ids), e in zip(spikes.spikes, spikes.examples, strict=True):
        assert set(ids) <= {0, 2}
        # a recorded spike count per neuron equals the readout
        assert np.sum(ids == 0) == out[e, 0] and np.sum(ids == 2) == out[e, 2]
        assert np.all((times >= 0) & (times < 50))
    assert volts.data[0].shape == (50, 4)
    labels = np.argmax(out, axis=1)
    metrics = net.evaluate({"x": data}, {"out": labels})
    assert metrics["out"]["accuracy"] == 1.0
    metrics = net.evaluate({"x": data}, {"out": (labels + 1) % 4})
    assert metrics["out"]["accuracy"] < 1.0


def test_latency_encode_higher_values_spike_earlier() -> None:
    enc = latency_encode(np.array([[0.0, 0.25, 1.0, 0.5]]), t_min=2.0, t_max=27.0)
    times, ids = enc[0].to_times_ids()
    assert list(ids) == [1, 2, 3]  # value 0 (<= thresh) never spikes
    np.testing.assert_allclose(times, [2.0 + 0.75 * 25, 2.0, 2.0 + 0.5 * 25])


def test_preprocess_spikes_layout() -> None:
    pre = preprocess_spikes([3.0, 1.0, 2.0, 0.5], [2, 0, 2, 0], 4)
    assert list(pre.end_spikes) == [2, 2, 4, 4]
    np.testing.assert_allclose(pre.spike_times, [0.5, 1.0, 2.0, 3.0])
    with pytest.raises(ValueError):
        preprocess_spikes([1.0], [4], 4)
