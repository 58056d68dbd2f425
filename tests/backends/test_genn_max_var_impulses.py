"""A max_var readout of a variable that hidden spikes jump (impulse synapses), through GeNN's CPU
backend against the C backend: the term that moves each maximum with the arrival that makes it
(`Transmission.arrival`, passes/eventprop.py `_max_follows`) is printed from the same kernel IR by
both (GeNN reads the readout's argmax step, an int, through a post var reference). Its gradients
are checked against finite differences in tests/runtime/test_gradients_delta.py."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import sympy
from snnc.backends.genn import have_pygenn

from snnc.api import build_compiled, lower

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "runtime"))
from test_gradients_delta import _source  # noqa: E402

pytestmark = [
    pytest.mark.genn,
    pytest.mark.skipif(not have_pygenn(), reason="pygenn is not installed (optional extra 'genn')"),
]


def _gradients(network, backend: str, tmp_path: Path) -> dict[str, np.ndarray]:  # noqa: ANN001
    options = {"cache_dir": tmp_path / backend} if backend == "genn" else {}
    art = build_compiled(network, backend=backend, batch_size=2, seed=1, **options).artefact
    rng = np.random.default_rng(4)
    art.run({"x": [(np.sort(rng.uniform(1.0, 15.0, 12)), rng.integers(0, 3, 12)) for _ in range(2)]})
    return art.backward({"out": np.array([[0.3, -0.3], [-0.2, 0.2]])})


def test_genn_prints_the_max_var_arrival_term_as_c_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    network = lower(_source("max_var", False), duration=20.0)
    assert any(t.arrival != 0 for t in network.training.transmissions.values())
    g_genn, g_c = _gradients(network, "genn", tmp_path), _gradients(network, "c", tmp_path)
    for name, g in g_c.items():
        assert np.abs(g).max() > 0, name
        np.testing.assert_allclose(g_genn[name], g, rtol=1e-4, atol=1e-6 * np.abs(g).max(), err_msg=name)
    from snnc.passes import eventprop

    monkeypatch.setattr(eventprop, "_max_follows", lambda *args: sympy.S.Zero)
    monkeypatch.setenv("SNNC_CACHE_DIR", str(tmp_path / "without"))
    without = _gradients(lower(_source("max_var", False), duration=20.0), "c", tmp_path)
    moved = np.linalg.norm(without["x_to_h"] - g_c["x_to_h"]) / np.linalg.norm(g_c["x_to_h"])
    assert moved > 0.1, moved  # the term is at work in this network
