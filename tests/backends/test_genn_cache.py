"""`--backend genn` keeps its files in snnc's cache (or where asked), never in the current folder."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from snnc.backends.genn import have_pygenn

from snnc.api import build_compiled, lower

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "yinyang_eventprop.snn"


def compile_genn(cwd: Path, cache: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "snnc", "compile", str(EXAMPLE), "--backend", "genn", "--timings"],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=120,
        env={**os.environ, "SNNC_CACHE_DIR": str(cache)},
    )


def test_compile_writes_the_module_into_the_cache_and_reuses_it(tmp_path: Path) -> None:
    cwd, cache = tmp_path / "work", tmp_path / "cache"
    cwd.mkdir()
    first = compile_genn(cwd, cache)
    assert first.returncode == 0, first.stderr
    (module,) = (cache / "genn").glob("*/*/yinyang_genn.py")
    assert f"built {module}" in first.stdout
    assert "backend genn (compiled)" in first.stderr
    assert (module.parent / "yinyang_genn_init.npz").is_file()
    second = compile_genn(cwd, cache)
    assert second.returncode == 0, second.stderr
    assert "backend genn (cached)" in second.stderr and f"built {module}" in second.stdout
    assert list(cwd.iterdir()) == []  # no ./.snnc-genn/


def test_an_unwritable_cache_is_a_user_error(tmp_path: Path) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    result = compile_genn(tmp_path, blocker / "cache")
    assert result.returncode == 1, result.stderr
    assert "Traceback" not in result.stderr
    assert f"cannot write GeNN models into {blocker / 'cache'}" in result.stderr
    assert "SNNC_CACHE_DIR" in result.stderr


@pytest.mark.genn
@pytest.mark.skipif(not have_pygenn(), reason="pygenn is not installed (optional extra 'genn')")
def test_genns_generated_code_goes_to_the_cache_too(tmp_path: Path, monkeypatch) -> None:
    """GeNN builds `<name>_CODE/` beside the module: in the cache, not in the current folder."""
    cwd, cache = tmp_path / "work", tmp_path / "cache"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    monkeypatch.setenv("SNNC_CACHE_DIR", str(cache))
    monkeypatch.setenv("SNNC_GENN_BACKEND", "single_threaded_cpu")
    network = dataclasses.replace(lower(EXAMPLE, duration=5.0), training=None)
    net = build_compiled(network, backend="genn", batch_size=1)
    x = [(np.array([1.0, 2.0]), np.array([0, 3]))]
    net.run({"x": x})
    assert list(cwd.iterdir()) == []
    codes = [p for p in (cache / "genn").glob("*/*/*") if p.is_dir() and p.name.endswith("_CODE")]
    assert codes, sorted(str(p) for p in cache.rglob("*"))[:20]
