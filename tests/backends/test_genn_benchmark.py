"""`benchmarks/genn_gpu.py` end to end on a tiny run (GeNN's CPU backend where there is no GPU), and
its one-sentence exit where pygenn is missing."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from snnc.backends.genn import have_pygenn

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "genn_gpu.py"


def _run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], capture_output=True, text=True, cwd=ROOT, timeout=600
    )


@pytest.mark.skipif(have_pygenn(), reason="pygenn is installed: the missing-pygenn exit cannot occur")
def test_without_pygenn_the_benchmark_exits_1_with_one_sentence() -> None:
    result = _run("--batches", "1")
    assert result.returncode == 1
    assert "needs pygenn" in result.stderr and "genn extra" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.genn
@pytest.mark.skipif(not have_pygenn(), reason="pygenn is not installed (optional extra 'genn')")
def test_the_benchmark_prints_seconds_per_epoch_for_both_backends() -> None:
    result = _run("--batches", "2", "--warmup", "0", "--batch-size", "2", "--threads", "1")
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["genn_backend"] in ("cuda", "single_threaded_cpu")
    assert summary["batches_measured"] == 2 and len(summary["genn_batch_s"]) == 2
    assert summary["batches_per_epoch"] == 4078  # ceil(8156 / 2)
    for side in ("genn", "c"):
        per_batch = summary[f"{side}_s_per_batch"]
        assert per_batch > 0
        assert summary[f"{side}_s_per_epoch"] == pytest.approx(per_batch * 4078)
    # the same network, weights and data: the training losses track each other
    assert summary["max_loss_difference"] < 1e-2
    assert set(summary["weight_differences"]) == {"x_to_h", "h_to_h", "h_to_out"}


@pytest.mark.genn
@pytest.mark.skipif(not have_pygenn(), reason="pygenn is not installed (optional extra 'genn')")
def test_the_benchmark_trains_the_shd_delays_example_to_the_c_backends_params() -> None:
    """`--example examples/shd_delays.snn --precision double`: per-neuron tau_mem and trainable
    delays, trained the same on both sides (double precision: equal to rounding)."""
    example = str(ROOT / "examples" / "shd_delays.snn")
    result = _run(
        "--batches", "1", "--warmup", "0", "--batch-size", "2", "--threads", "1",
        "--example", example, "--precision", "double",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-2000:]
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert (summary["example"], summary["precision"]) == (example, "double")
    differences = summary["weight_differences"]
    assert {"tau_mem_h", "delay_x_to_h", "delay_h_to_h"} <= set(differences)
    assert max(differences.values()) < 1e-9, differences
    assert summary["max_loss_difference"] < 1e-12
