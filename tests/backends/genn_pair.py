"""One network built on the C backend and on GeNN from the same start, for tests that compare them.

Every C-against-GeNN test builds the network twice (double precision, seed 1; GeNN's build under
the test's tmp_path), starts GeNN from C's drawn weights and params, and asserts the same outcome;
these helpers hold that loop once."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np

from snnc.api import build_compiled


def c_then_genn(network: Any, tmp_path: Path, **options: Any) -> Iterator[tuple[str, Any]]:
    """(backend, compiled network) for C, then GeNN, each built from `network` with `options`."""
    for backend in ("c", "genn"):
        where = {"cache_dir": tmp_path} if backend == "genn" else {}
        yield (
            backend,
            build_compiled(network, backend=backend, seed=1, precision="double", **options, **where),
        )


def trained_alike(
    network: Any,
    tmp_path: Path,
    train: Callable[[Any], None],
    start: Callable[[dict], dict] = lambda drawn: drawn,
    **options: Any,
) -> tuple[dict, dict, dict]:
    """(start weights, C's weights, GeNN's weights) after `train(net)` on each backend; both start
    from `start(C's drawn weights and params)`."""
    begin, trained = None, []
    for _, net in c_then_genn(network, tmp_path, **options):
        if begin is None:
            begin = start(net.weights)
        net.set_weights(begin)
        train(net)
        trained.append(net.weights)
    return begin, trained[0], trained[1]


def assert_same_gradients(genn: dict, c: dict, rtol: float = 1e-9) -> None:
    """The same keys, shapes and values; every C gradient non-zero (else the check means nothing)."""
    assert set(genn) == set(c)
    for name, g in c.items():
        scale = np.abs(g).max()
        assert scale > 0, f"{name}: no gradient, the comparison would mean nothing"
        assert np.shape(genn[name]) == np.shape(g), name
        np.testing.assert_allclose(genn[name], g, rtol=rtol, atol=1e-12 * scale, err_msg=name)
