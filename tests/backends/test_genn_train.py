"""Training through GeNN against training through the C backend.

Needs pygenn (an optional extra); skipped with a visible reason where it does not import. GeNN's
CPU backend builds batch-1 models only, so the genn runtime runs a batch there as consecutive
trials; these tests check that this gives the C backend's batch semantics.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from snnc.backends.genn import have_pygenn
from snnc.runtime.artefact import RecordRequest

from snnc.api import build_compiled, lower

pytestmark = [
    pytest.mark.genn,
    pytest.mark.skipif(not have_pygenn(), reason="pygenn is not installed (optional extra 'genn')"),
]

ROOT = Path(__file__).resolve().parents[2]
YINYANG = ROOT / "examples" / "yinyang_eventprop.snn"
DIGITS = ROOT / "examples" / "eprop_digits.snn"


def _batch_inputs(n: int, seed: int) -> dict:
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        ids = np.repeat(np.arange(5), 2)
        rows.append((np.sort(rng.uniform(0.0, 8.0, ids.size)), ids))
    return {"x": rows}


def test_a_cpu_batch_runs_as_consecutive_trials_with_c_batch_gradients(tmp_path: Path) -> None:
    """Batch 3 on GeNN's CPU backend (3 batch-1 trials; backward reruns forward passes) against the
    C backend's batch of 3: the same readouts, spikes and summed gradients."""
    network = lower(YINYANG, duration=10.0)
    genn = build_compiled(network, backend="genn", batch_size=3, seed=1, cache_dir=tmp_path).artefact
    c = build_compiled(network, backend="c", batch_size=3, seed=1).artefact
    assert genn.sequential and genn.batch_size == 3
    genn.set_weights(c.get_weights())
    inputs = _batch_inputs(3, seed=7)
    request = RecordRequest.of(spikes=["h"])
    got, want = genn.run(inputs, request), c.run(inputs, request)
    assert want.spikes["h"].shape[0] == 3 and want.spikes["h"].any()
    counts = want.spikes["h"].sum(axis=(1, 2))
    assert len(set(counts.tolist())) > 1, "the three examples should differ for the test to mean something"
    np.testing.assert_array_equal(got.spikes["h"], want.spikes["h"])
    np.testing.assert_allclose(got.readouts["out"], want.readouts["out"], rtol=1e-4, atol=1e-6)
    dl_dy = {"out": np.random.default_rng(2).normal(size=(3, 3))}
    g_genn, g_c = genn.backward(dl_dy), c.backward(dl_dy)
    assert set(g_genn) == set(g_c)
    for name in g_c:
        assert np.abs(g_c[name]).max() > 0
        np.testing.assert_allclose(
            g_genn[name], g_c[name], rtol=1e-3, atol=1e-6 * np.abs(g_c[name]).max(), err_msg=name
        )


def _train(example: Path, backend: str, weights: dict | None, cache_dir: Path) -> tuple[float, dict, float]:
    """3 epochs of the example as written (its data, batch size and seed): test accuracy."""
    from snnc.runtime.session import load_data, xy

    network = lower(example)
    data = load_data(network)
    options = {"cache_dir": cache_dir} if backend == "genn" else {}
    net = build_compiled(network, backend=backend, seed=1, **options)
    if weights is not None:
        net.set_weights(weights)
    initial = net.weights
    x, y = xy(network, data.train)
    start = time.perf_counter()
    net.train(x, y, 3, callbacks=[])
    tx, ty = xy(network, data.test)
    accuracy = net.evaluate(tx, ty)["out"]["accuracy"]
    return accuracy, initial, time.perf_counter() - start


@pytest.mark.slow
def test_yinyang_three_epochs_reach_the_c_backend_accuracy(tmp_path: Path) -> None:
    """The issue's check: the same network, initial weights, data order and seed trained for 3 epochs
    on both backends ends within 1 percentage point of test accuracy."""
    acc_c, weights, t_c = _train(YINYANG, "c", None, tmp_path / "c")
    acc_genn, initial, t_genn = _train(YINYANG, "genn", weights, tmp_path / "genn")
    for name, w in weights.items():
        np.testing.assert_array_equal(initial[name], w.astype(initial[name].dtype))
    print(f"yinyang 3 epochs: C {acc_c:.4f} ({t_c:.1f} s), genn CPU {acc_genn:.4f} ({t_genn:.1f} s)")
    assert acc_c > 0.6, (
        f"C backend reached only {acc_c:.3f}: training too weak for the comparison to mean much"
    )
    assert abs(acc_genn - acc_c) <= 0.01


@pytest.mark.slow
def test_eprop_digits_three_epochs_reach_the_c_backend_accuracy(tmp_path: Path) -> None:
    """e-prop through the trainer (set_targets, run, backward) on both backends, output bias trained:
    3 epochs of scikit-learn digits end within 1 percentage point of test accuracy."""
    acc_c, weights, t_c = _train(DIGITS, "c", None, tmp_path / "c")
    assert "bias_out" in weights
    acc_genn, initial, t_genn = _train(DIGITS, "genn", weights, tmp_path / "genn")
    for name, w in weights.items():
        np.testing.assert_array_equal(initial[name], w.astype(initial[name].dtype))
    print(f"digits e-prop 3 epochs: C {acc_c:.4f} ({t_c:.1f} s), genn CPU {acc_genn:.4f} ({t_genn:.1f} s)")
    assert acc_c > 0.6, f"C backend reached only {acc_c:.3f}: too weak for the comparison to mean much"
    assert abs(acc_genn - acc_c) <= 0.01
