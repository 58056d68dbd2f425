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
    codes = [p for p in (cache / "genn").glob("*/*/*/*") if p.is_dir() and p.name.endswith("_CODE")]
    assert codes, sorted(str(p) for p in cache.rglob("*"))[:20]
    # one build folder per GeNN backend and device batch (the CPU backend runs trials one by one)
    assert [p.parent.name for p in codes] == ["single_threaded_cpu-batch1"]


RUN_ONE = """
import dataclasses, sys
import numpy as np
from snnc.api import build_compiled, lower
network = dataclasses.replace(lower(sys.argv[1], duration=5.0), training=None)
net = build_compiled(network, backend="genn", batch_size=1)
out = net.run({"x": [(np.array([1.0, 2.0]), np.array([0, 3]))]})
print(repr(np.asarray(out.readouts["out"]).round(6).tolist()))
"""


@pytest.mark.genn
@pytest.mark.skipif(not have_pygenn(), reason="pygenn is not installed (optional extra 'genn')")
def test_processes_that_build_the_same_genn_model_at_once_take_turns(tmp_path: Path) -> None:
    """Ranks of an MPI run (or two runs) loading one cached module build GeNN's code in the same
    folder: a lock makes them take turns, so both load a whole build and compute the same thing."""
    env = {
        **os.environ,
        "SNNC_CACHE_DIR": str(tmp_path / "cache"),
        "SNNC_GENN_BACKEND": "single_threaded_cpu",
    }
    subprocess.run(  # the module (not GeNN's build) exists before the race, as after rank 0's compile
        [sys.executable, "-m", "snnc", "compile", str(EXAMPLE), "--backend", "genn"],
        env=env,
        check=True,
        capture_output=True,
        timeout=300,
    )
    procs = [
        subprocess.Popen([sys.executable, "-c", RUN_ONE, str(EXAMPLE)], env=env, cwd=tmp_path,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]  # fmt: skip
    outs = [p.communicate(timeout=600) for p in procs]
    for p, (_, err) in zip(procs, outs, strict=True):
        assert p.returncode == 0, err
    readouts = [out.strip().splitlines()[-1] for out, _ in outs]  # GeNN's make talks before it
    assert readouts[0] == readouts[1] and readouts[0].startswith("[[")
