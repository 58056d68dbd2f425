"""vs_mlgenn.py's snnc side of `--compare-gradients --reference-dt`, and its exit without mlGeNN."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import vs_mlgenn  # noqa: E402


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    a, b = a.ravel(), b.ravel()
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def test_the_fine_step_reference_starts_from_the_given_weights() -> None:
    """The reference gradient (dt 0.05 ms, double) is of the weights given, not of the example's own
    draw: from seed 2's weights its output-weight gradient points where the dt = 0.1 ms one does, and
    away from the one of the example's default weights (seed 1)."""
    from snnc.runtime.session import load_data, xy

    import snnc

    theirs = snnc.compile(str(vs_mlgenn.EXAMPLE), batch_size=1, seed=2)
    data = load_data(theirs.network)
    x, y = xy(theirs.network, data.train)
    weights = {k: np.array(v, dtype=np.float32) for k, v in theirs.weights.items()}
    coarse = vs_mlgenn.snnc_gradients(x, y, weights, 2)
    fine = vs_mlgenn.snnc_gradients(x, y, weights, 2, dt=0.05)
    default = snnc.compile(str(vs_mlgenn.EXAMPLE), batch_size=1).weights
    own = vs_mlgenn.snnc_gradients(x, y, {k: np.array(v, np.float32) for k, v in default.items()}, 2)
    for n in range(2):
        assert set(fine[n]) == set(coarse[n]) == {"x_to_h", "h_to_out"}
        assert _cosine(fine[n]["h_to_out"], coarse[n]["h_to_out"]) > 0.999
        assert _cosine(own[n]["h_to_out"], coarse[n]["h_to_out"]) < 0.99


def test_without_mlgenn_it_says_so_and_exits_0() -> None:
    try:
        import ml_genn  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("ml_genn is installed here: the benchmark would run")
    args = [
        sys.executable,
        str(ROOT / "benchmarks" / "vs_mlgenn.py"),
        "--compare-gradients",
        "1",
        "--reference-dt",
        "0.01",
    ]
    done = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "skipped" in json.loads(done.stdout.strip().splitlines()[-1])


def test_reference_dt_needs_compare_gradients() -> None:
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "vs_mlgenn.py"), "--reference-dt", "0.01"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2 and "--reference-dt goes with --compare-gradients" in done.stderr
