"""Semantic checks that the backends used to make (after the whole pass pipeline, without a location)
now come from `snnc check`, with file:line:col and exit 1; their valid twins get through the
C backend's planning and rendering, where only internal assertions are left."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from snnc.backends.c.backend import generate
from snnc.frontend import load_file
from snnc.passes.pipeline import compile_ir

from tests.frontend.test_checks import _expectation

HERE = Path(__file__).parent
ROOT = HERE.parents[1]
#: fixtures whose mistake plan_network or a backend renderer reported before
FORMERLY_BACKEND = (
    "refractory_not_constant",  # E-REFRACTORY
    "target_missing_input",  # E-TARGET
    "one_to_one_shape",  # E-ONE-TO-ONE
    "conv2d_shape",  # E-CONV-SHAPE
    "conv2d_stride",  # E-CONV-SHAPE: the frontend accepted unequal strides
    "avgpool_stride_default",  # E-CONV-SHAPE: a non-square pool's default stride
    "conv2d_pre_shape",  # E-CONV-SHAPE
    "avgpool_window_too_large",
    "unknown_connectivity",  # E-CONNECTIVITY
    "unknown_generator",  # E-GENERATOR (C renderer)
    "readout_var_not_state",  # E-READOUT (C and GeNN renderers)
    "first_spike_time_compound",  # E-READOUT (C and GeNN renderers)
    "weight_file_shape",  # E-WEIGHT-FILE (when the weights were drawn)
)


@pytest.mark.parametrize("name", FORMERLY_BACKEND)
def test_snnc_check_reports_it_with_a_location(name: str) -> None:
    path = HERE / "invalid" / f"{name}.snn"
    code, line, col, fragment = _expectation(path)
    result = subprocess.run(
        [sys.executable, "-m", "snnc", "check", str(path)], capture_output=True, text=True, cwd=ROOT
    )
    out = result.stdout + result.stderr
    assert result.returncode == 1, out
    assert f"{path}:{line}:{col}: error: " in out and fragment in out, out
    assert "Traceback" not in out


@pytest.mark.parametrize("name", FORMERLY_BACKEND)
def test_valid_twin_plans_draws_and_renders(name: str) -> None:
    network, _ = compile_ir(load_file(str(HERE / "valid" / f"{name}.snn")))
    rendered, static, plan = generate(network, seed=3)
    for pname, pp in plan.projections.items():
        assert pp.weight_shape == (() if pp.kind == "avg_pool2d" else static[f"w_{pname}"].shape)
    assert "snnc_run" in rendered.code
