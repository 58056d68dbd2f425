"""e-prop on sparse (CSR) projections in the C kernel, against the same kernel's dense e-prop.

e-prop's ΔW_ij = Σ_t L_j,t ē_ij,t does not read W_ij itself, so a Dense network whose absent
synapses hold weight 0 runs the same dynamics and has, at every synapse that exists, the sparse
network's gradient (`test_genn_eprop_sparse.py` uses the same reference for GeNN). The sparse
kernel keeps one eligibility, trace and gradient per stored synapse ([batch, nnz]); random
feedback stays dense over every (hidden, output) pair whatever the output projection's structure.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from snnc.backends.c.backend import build_eprop_network
from snnc.backends.c.eprop_loader import EpropArtefact

from snnc.api import lower
from tests.backends.eprop_pair import gradients_on_both
from tests.backends.test_genn_eprop_sparse import SRC


def _pairs(art: EpropArtefact, name: str) -> tuple[np.ndarray, np.ndarray]:
    """(pre, post) of every stored synapse of a CSR projection, in weight order."""
    conn = art.connectivity(name)
    return np.repeat(np.arange(conn["row_ptr"].size - 1), np.diff(conn["row_ptr"])), conn["col_idx"].copy()


@pytest.mark.parametrize("feedback", ["", "symmetric", "random"])
def test_sparse_eprop_gradients_equal_the_dense_ones_at_existing_synapses(
    tmp_path: Path, feedback: str
) -> None:
    src = SRC
    if feedback:  # the output projection sparse too, with either feedback
        src = src.replace("h -> out : Dense(", "h -> out : KIND(")
        src = src.replace("eprop(", f"eprop(feedback = {feedback}, ")
    batch = 2
    built = build_eprop_network(lower(src.replace("KIND(", "Sparse(p = 0.5, ")), cache_dir=tmp_path / "s")
    sparse = EpropArtefact(built.library, built.manifest, built.static, batch)
    built = build_eprop_network(lower(src.replace("KIND(", "Dense(")), cache_dir=tmp_path / "d")
    dense = EpropArtefact(built.library, built.manifest, built.static, batch)
    weights = sparse.get_weights()
    dense_w, synapses = dict(weights), {}
    for name in ("x_to_h", "h_to_h", "h_to_out"):
        if "col_idx" in sparse.connectivity(name):
            synapses[name] = _pairs(sparse, name)
            w = np.zeros(dense.get_weights()[name].shape)
            w[synapses[name]] = weights[name]
            dense_w[name] = w
            assert 0 < weights[name].size < w.size  # really sparse
    assert len(synapses) == (3 if feedback else 2)
    dense.set_weights(dense_w)

    g_sparse, g_dense = gradients_on_both(sparse, dense, batch, 8, 3, 200)

    assert set(g_sparse) == set(g_dense)
    for name, g in g_dense.items():
        want = g[synapses[name]] if name in synapses else g
        assert np.abs(want).max() > 0, name  # the hidden layer spiked: every gradient carries signal
        np.testing.assert_allclose(
            g_sparse[name], want, rtol=1e-5, atol=1e-6 * np.abs(want).max(), err_msg=name
        )


def test_genn_refuses_random_feedback_through_a_sparse_projection_at_its_line(tmp_path: Path) -> None:
    """GeNN's learning code reaches B only at the stored synapses, so it cannot sum it over every
    (hidden, output) pair; the C kernel above does."""
    from snnc.backends import check_supported
    from snnc.backends.capabilities import CODE

    path = tmp_path / "random.snn"
    src = SRC.replace("KIND(", "Dense(").replace("h -> out : Dense(", "h -> out : Sparse(p = 0.5, ")
    path.write_text(src.replace("eprop(", "eprop(feedback = random, "))
    network = lower(path)
    assert check_supported(network, "c") == []
    (d,) = check_supported(network, "genn")
    assert d.code == CODE and "random feedback" in d.message and "'h_to_out'" in d.message
    assert (d.span.file, d.span.line, d.span.col) == (str(path), 9, 5)
    symmetric = lower(src.replace("eprop(", "eprop(feedback = symmetric, "))
    assert check_supported(symmetric, "genn") == []
