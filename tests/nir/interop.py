"""Helpers for the tests against other libraries' NIR exporters: run an imported `.snn` in snnc and
compare spike trains the way the issue states it (each spike matched within one step)."""

from __future__ import annotations

import importlib
import importlib.util
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from snnc.runtime.artefact import RecordRequest


def needs(module: str) -> ModuleType:
    """Import `module`, one of the interop extra's libraries (README: `.[test,interop]`).

    The test module skips, naming the extra, only when the library is not installed at all: a user who
    installed `.[test]` alone sees why. An installed library that fails to import (a broken torch, a
    nirtorch that does not fit Norse) raises, so CI, which installs the extra, fails instead of
    skipping (`pytest.importorskip` would skip on any ImportError)."""
    top = module.split(".")[0]
    if importlib.util.find_spec(top) is None:
        pytest.skip(f"needs {top}: pip install -e '.[test,interop]'", allow_module_level=True)
    return importlib.import_module(module)


def snnc_run(
    snn: Path, source: str, target: str, x: np.ndarray, dt_ms: float, layers: int = 1
) -> tuple[np.ndarray, np.ndarray]:
    """Spikes x[step, input] into `source`; the raster and membrane of `target`, [step, neuron].

    snnc delivers a spike one step after it is emitted, where a discrete-time library passes it
    through every layer in the step it happens: row t here is row t + `layers` of snnc's run."""
    from snnc.api import compile_network

    steps = x.shape[0] + layers
    net = compile_network(str(snn), dt=dt_ms, duration=steps * dt_ms, batch_size=1, precision="double")
    t, ids = np.nonzero(x)
    res = net.run({source: [(t * dt_ms, ids)]}, RecordRequest.of(spikes=[target], vars=[(target, "v")]))
    return res.spikes[target][0][layers:steps], res.vars[(target, "v")][0][layers:steps]


def matched(a: np.ndarray, b: np.ndarray) -> float:
    """The fraction of spikes in raster `a` that `b` has too, on the same neuron within one step."""
    hits = [b[max(t - 1, 0) : t + 2, n].any() for t, n in zip(*np.nonzero(a), strict=True)]
    return float(np.mean(hits)) if hits else 1.0


def poisson(steps: int, n: int, rate: float, seed: int = 1) -> np.ndarray:
    return (np.random.default_rng(seed).random((steps, n)) < rate).astype(np.float32)
