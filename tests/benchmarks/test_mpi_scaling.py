"""The scaling model of benchmarks/mpi_scaling.py (the measurement itself is a benchmark, not a test)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import mpi_scaling as ms  # noqa: E402


def test_ring_allreduce_time_is_latency_and_bandwidth_terms_over_2_n_minus_1_steps():
    assert ms.allreduce_seconds(1e6, 1, 1e9, 1e-6) == 0.0
    # 2 nodes: 2 steps of half the buffer each
    assert ms.allreduce_seconds(1e6, 2, 1e9, 1e-6) == pytest.approx(2 * (1e-6 + 0.5e-3))
    # many nodes: the bandwidth term tends to 2·bytes/bandwidth, the latency term grows linearly
    t = ms.allreduce_seconds(1e6, 1000, 1e9, 0.0)
    assert t == pytest.approx(2e-3, rel=1e-2)


def test_efficiency_is_one_without_communication_and_falls_with_it():
    assert ms.efficiency(0.01, 64, 64, 0.0) == pytest.approx(1.0)
    assert ms.efficiency(0.01, 64, 64, 0.01) == pytest.approx(0.5)
    # a batch smaller than the node count leaves nodes idle
    assert ms.efficiency(0.01, 32, 64, 0.0) == pytest.approx(0.5)


@pytest.mark.parametrize(("c", "t_ar"), [(0.01, 5.7e-3), (0.01, 5.7e-4), (0.001, 5.7e-3)])
def test_min_batch_is_the_first_multiple_of_the_nodes_that_reaches_80_percent(c, t_ar):
    b = ms.min_batch(c, 64, t_ar)
    assert b % 64 == 0 and ms.efficiency(c, b, 64, t_ar) >= 0.8 - 1e-12
    if b > 64:
        assert ms.efficiency(c, b - 64, 64, t_ar) < 0.8
