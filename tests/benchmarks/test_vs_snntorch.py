"""The snnTorch comparison's data generator and both training sides, at toy sizes."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import _synthetic_shd as shd  # noqa: E402


def test_batches_are_deterministic_and_differ_between_indices():
    r0, y0 = shd.make_batch(0, 4, seed=3, steps=200)
    r0b, y0b = shd.make_batch(0, 4, seed=3, steps=200)
    r1, _ = shd.make_batch(1, 4, seed=3, steps=200)
    assert np.array_equal(r0, r0b) and np.array_equal(y0, y0b)
    assert not np.array_equal(r0, r1)
    assert r0.shape == (4, 200, shd.N_CHANNELS) and r0.dtype == bool


def test_firing_is_a_few_percent_and_class_dependent():
    r, y = shd.make_batch(0, 32, seed=0)
    assert 0.01 < r.mean() < 0.05
    assert y.min() >= 0 and y.max() < shd.N_CLASSES
    # examples of the same class share channel bands: their channel profiles correlate more
    prof = r.mean(axis=1)
    c = np.corrcoef(prof)
    same = [c[i, j] for i in range(32) for j in range(i + 1, 32) if y[i] == y[j]]
    diff = [c[i, j] for i in range(32) for j in range(i + 1, 32) if y[i] != y[j]]
    assert same and np.mean(same) > np.mean(diff) + 0.2


def test_times_ids_round_trip():
    r, _ = shd.make_batch(2, 2, seed=1, steps=50)
    (t, i), _ = shd.raster_to_times_ids(r, dt=1.0)
    back = np.zeros((50, shd.N_CHANNELS), bool)
    back[t.astype(int), i] = True
    assert np.array_equal(back, r[0])


def _args(**kw) -> argparse.Namespace:
    base = dict(batches=1, warmup=0, batch_size=2, threads=1, seed=0, forward_only=False)
    return argparse.Namespace(**{**base, **kw})


def test_snntorch_side_trains():
    pytest.importorskip("snntorch")
    import vs_snntorch

    res = vs_snntorch.run_snntorch(_args(batches=2))
    assert res["mode"] == "bptt" and len(res["batch_s"]) == 2
    assert all(np.isfinite(res["losses"]))
    assert 0.0 < res["hidden_rate_per_step"][0] < 0.5  # the scaled initialisers make it fire


def test_snnc_side_runs():
    import vs_snntorch

    res = vs_snntorch.run_snnc(_args())
    assert res["mode"] in ("eventprop", "eventprop-nonfinite", "forward-only") and len(res["batch_s"]) == 1
    assert np.isfinite(res["losses"][0])


def test_snnc_source_drops_only_the_regulariser():
    import vs_snntorch

    text = vs_snntorch.snn_source()
    assert "regularisation" not in text and "eventprop(" in text and "h -> h" in text
