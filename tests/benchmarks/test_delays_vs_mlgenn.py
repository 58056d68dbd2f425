"""benchmarks/delays_vs_mlgenn.py: the two snnc texts it times differ by exactly the two learnable
delays, and without mlGeNN it says so and exits 0."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from snnc.api import lower

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))

import delays_vs_mlgenn  # noqa: E402


def test_the_delayed_variant_is_the_shd_example_with_two_learnable_delays() -> None:
    texts = delays_vs_mlgenn.sources()
    plain, delayed = (lower(texts[k]) for k in ("snnc", "snnc_delays"))
    assert all(p.delay_trainable is None for p in plain.projections.values())
    learnable = {n for n, p in delayed.projections.items() if p.delay_trainable is not None}
    assert learnable == set(delays_vs_mlgenn.DELAYS) == {"x_to_h", "h_to_h"}
    assert plain.populations.keys() == delayed.populations.keys()
    assert plain.projections.keys() == delayed.projections.keys()
    assert plain.train.regularisation.args == delayed.train.regularisation.args
    # the text differs only where a delay was added
    stripped = texts["snnc_delays"]
    for _, trainable, _ in delays_vs_mlgenn.DELAYS.values():
        stripped = stripped.replace(f",\n{' ' * 21}delay = {trainable}", "")
    assert stripped == texts["snnc"]


def test_without_mlgenn_it_says_so_and_exits_0() -> None:
    try:
        import ml_genn  # noqa: F401
        import pygenn  # noqa: F401
    except ImportError:
        pass
    else:
        pytest.skip("ml_genn and pygenn are installed here: the benchmark would run")
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "delays_vs_mlgenn.py")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert "skipped" in json.loads(done.stdout.strip().splitlines()[-1])
