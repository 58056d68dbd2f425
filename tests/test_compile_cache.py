"""The compile cache (`snnc/compile_cache.py`): a hit skips the frontend and the passes, the CLI and the
API share entries, and a damaged or stale entry is rebuilt."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import snnc.api as api
from snnc import compile_cache

ROOT = Path(__file__).resolve().parents[1]

LIB = """
neuron Leaky {
    param tau = TAU
    state v = 0.0
    input i_syn
    dv/dt = (i_syn - v) / tau
    spike when v >= 1.0
    reset { v = 0.0 }
}
"""
NET = """
use "lib.snn"
use std.{SpikeInput, Exponential}

network tiny {
    input  x   = SpikeInput(3)
    output out = Leaky(2, readout = spike_count)
    x -> out : Dense(weight = Constant(value = 2.0)), Exponential(tau = 5 ms)
}
"""


def _write(tmp_path: Path, tau: str = "10 ms") -> Path:
    (tmp_path / "lib.snn").write_text(LIB.replace("TAU", tau))
    path = tmp_path / "tiny.snn"
    path.write_text(NET)
    return path


def _key(path: Path) -> str:
    return api._cache_key(path, "c", {}, dict(api.BUILD_DEFAULTS))


def _no_lowering(monkeypatch) -> None:
    def refuse(*args, **kwargs):
        raise AssertionError("a cache hit ran the frontend and the passes")

    monkeypatch.setattr(api, "lower", refuse)


def _spikes(net) -> np.ndarray:  # noqa: ANN001
    x = [(np.array([1.0, 2.0, 3.0]), np.array([0, 1, 2]))]
    return net.predict({"x": x})["out"]


def test_a_hit_skips_lowering_and_gives_the_same_network(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    path = _write(tmp_path)
    first = api.compile_network(path, cache_dir=cache)
    assert compile_cache.lookup(_key(path), cache) is not None
    _no_lowering(monkeypatch)
    second = api.compile_network(str(path), cache_dir=cache)
    assert second.network.name == "tiny" and [p.name for p in second.network.outputs()] == ["out"]
    assert second.manifest["ir_hash"] == first.manifest["ir_hash"]
    np.testing.assert_array_equal(_spikes(second), _spikes(first))
    assert _spikes(first).sum() > 0


def test_damaged_entries_and_libraries_are_rebuilt(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    path = _write(tmp_path)
    reference = _spikes(api.compile_network(path, cache_dir=cache))
    entry = next((cache / "compiled").rglob("*.json"))
    for damage in (
        b"",
        b"not json",
        b'{"d": "os:system", "v": {}}',
        entry.read_bytes()[: entry.stat().st_size // 2],
    ):
        entry.write_bytes(damage)
        assert compile_cache.lookup(_key(path), cache) is None
        np.testing.assert_array_equal(_spikes(api.compile_network(path, cache_dir=cache)), reference)
        assert compile_cache.lookup(_key(path), cache) is not None  # written again, whole
    arrays = entry.with_suffix(".npz")
    arrays.write_bytes(arrays.read_bytes()[:100])  # the initial weights beside the entry
    assert compile_cache.lookup(_key(path), cache) is None
    assert compile_cache.lookup(_key(path), cache, arrays=False) is not None  # what `snnc compile` reads
    np.testing.assert_array_equal(_spikes(api.compile_network(path, cache_dir=cache)), reference)
    library = compile_cache.lookup(_key(path), cache).built.library
    os.unlink(library)
    assert compile_cache.lookup(_key(path), cache) is None
    np.testing.assert_array_equal(_spikes(api.compile_network(path, cache_dir=cache)), reference)


def test_a_changed_imported_file_or_option_is_a_miss(tmp_path):
    cache = tmp_path / "cache"
    path = _write(tmp_path)
    api.compile_network(path, cache_dir=cache)
    assert compile_cache.lookup(_key(path), cache) is not None
    assert (
        compile_cache.lookup(api._cache_key(path, "c", {}, {**api.BUILD_DEFAULTS, "seed": 3}), cache) is None
    )
    assert (
        compile_cache.lookup(api._cache_key(path, "c", {"dt": 0.5}, dict(api.BUILD_DEFAULTS)), cache) is None
    )
    _write(tmp_path, tau="30 ms")  # the model the network uses lives in lib.snn
    assert compile_cache.lookup(_key(path), cache) is None
    slower = api.compile_network(path, cache_dir=cache)
    assert compile_cache.lookup(_key(path), cache) is not None
    assert _spikes(slower).sum() < _spikes(api.compile_network(_write(tmp_path), cache_dir=cache)).sum()


@pytest.mark.slow
def test_the_cli_and_the_api_share_an_entry(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    path = _write(tmp_path)
    env = {**os.environ, "SNNC_CACHE_DIR": str(cache)}
    run = [sys.executable, "-m", "snnc", "compile", str(path), "--timings"]
    cold = subprocess.run(run, capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert cold.returncode == 0, cold.stderr
    assert "frontend (compile cache)" not in cold.stderr
    warm = subprocess.run(run, capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert warm.returncode == 0 and "frontend (compile cache)" in warm.stderr, warm.stderr
    assert warm.stdout == cold.stdout  # the same library
    monkeypatch.setenv("SNNC_CACHE_DIR", str(cache))
    _no_lowering(monkeypatch)
    assert _spikes(api.compile_network(path)).sum() > 0


def test_a_cached_compile_imports_neither_numpy_nor_sympy(tmp_path):
    """A cached `snnc compile` only says where the library is: no numpy (its weights stay unread,
    and the MPI module, which imports it, is not needed), no sympy, no parser."""
    path = _write(tmp_path)
    env = {**os.environ, "SNNC_CACHE_DIR": str(tmp_path / "cache")}
    run = [sys.executable, "-X", "importtime", "-m", "snnc", "compile", str(path)]
    cold = subprocess.run(run, capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert cold.returncode == 0, cold.stderr
    warm = subprocess.run(run, capture_output=True, text=True, env=env, cwd=ROOT, timeout=300)
    assert warm.returncode == 0 and warm.stdout == cold.stdout, warm.stderr
    imported = [line.split("|")[-1].strip() for line in warm.stderr.splitlines() if "import time" in line]
    assert "snnc.compile_cache" in imported  # the import log is complete
    assert not [m for m in imported if m.split(".")[0] in ("numpy", "sympy", "lark", "jinja2")]


@pytest.mark.slow
def test_a_cached_train_never_imports_sympy(tmp_path):
    """The issue's goal: a cached `snnc train` reaches its first batch (and its end) without sympy."""
    text = (ROOT / "examples" / "yinyang_eventprop.snn").read_text()
    path = tmp_path / "yy.snn"
    path.write_text(text.replace("yinyang(train = 5000, test = 1000", "yinyang(train = 32, test = 16"))
    env = {**os.environ, "SNNC_CACHE_DIR": str(tmp_path / "cache")}

    def train(out: str, *flags: str) -> subprocess.CompletedProcess:
        cmd = [sys.executable, *flags, "-m", "snnc", "train", str(path), "--epochs", "1", "--quiet"]
        return subprocess.run(
            [*cmd, "--out", str(tmp_path / out)], capture_output=True, text=True, env=env, timeout=600
        )

    cold = train("cold")
    assert cold.returncode == 0, cold.stderr
    warm = train("warm", "-X", "importtime")
    assert warm.returncode == 0, warm.stderr
    imported = [line.split("|")[-1].strip() for line in warm.stderr.splitlines() if "import time" in line]
    assert "numpy" in imported  # the import log is complete
    assert not [m for m in imported if m.split(".")[0] in ("sympy", "lark", "jinja2")]
    assert warm.stdout.splitlines()[0].split("(")[0] == cold.stdout.splitlines()[0].split("(")[0]
