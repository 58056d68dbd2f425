"""Threads of the C backend: passive waiting by default, and the thread count never changes results."""

from __future__ import annotations

import numpy as np
import pytest
from snnc.backends.c.build import prefer_passive_wait


def test_openmp_threads_sleep_unless_the_user_chose(monkeypatch):
    monkeypatch.delenv("OMP_WAIT_POLICY", raising=False)
    prefer_passive_wait()
    import os

    assert os.environ["OMP_WAIT_POLICY"] == "passive"
    monkeypatch.setenv("OMP_WAIT_POLICY", "active")
    prefer_passive_wait()
    assert os.environ["OMP_WAIT_POLICY"] == "active"


def test_threads_option_is_checked_before_compiling():
    from snnc.api import compile_network

    with pytest.raises(ValueError, match="threads must be at least 1"):
        compile_network("examples/nowhere.snn", threads=0)


def test_gradients_do_not_depend_on_threads():
    """guided scheduling hands trials to threads in an order that depends on timing; each trial's
    arrays are its own, so gradients and readouts are bitwise the same for 1, 2 and 3 threads."""
    from snnc.runtime.session import load_data, xy

    from snnc.api import compile_network

    net = compile_network("examples/yinyang_eventprop.snn", batch_size=5)
    x, _ = xy(net.network, load_data(net.network).train)
    batch = {k: [v[i] for i in range(5)] for k, v in x.items()}
    results = []
    for threads in (1, 2, 3):
        net.set_threads(threads)
        res = net.artefact.run(batch)
        grads = net.artefact.backward({"out": np.ones((5, 3))})
        results.append((res.readouts["out"], grads))
    for readouts, grads in results[1:]:
        np.testing.assert_array_equal(readouts, results[0][0])
        for k, g in grads.items():
            np.testing.assert_array_equal(g, results[0][1][k])
