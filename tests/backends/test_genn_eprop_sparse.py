"""Sparse e-prop on GeNN against the C kernel's dense e-prop as the reference.

GeNN's sparse (CSR) e-prop is checked against a reference that needs no sparse code: e-prop's weight update ΔW_ij = Σ_t L_j,t ē_ij,t does not read W_ij itself (the eligibility
trace is the pre-synaptic trace times the post neuron's pseudo-derivative), so a dense network whose
absent synapses hold weight 0 runs the same dynamics and has, at every synapse that exists, the sparse
network's gradient. GeNN's sparse gradients must equal the C dense ones there.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from snnc.backends.c.backend import build_eprop_network
from snnc.backends.c.eprop_loader import EpropArtefact
from snnc.backends.genn import have_pygenn, load_genn

from snnc.api import lower
from tests.backends.eprop_pair import gradients_on_both

SRC = """
use std.{SpikeInput, LIF, LI, Delta}
network sp {
    input  x   = SpikeInput(8)
    hidden h   = LIF(12, tau_mem = 20 ms, relative_reset = 1)
    output out = LI(3, tau_mem = 20 ms, readout = var)
    x -> h   : KIND(weight = Normal(mean = 0.0, sd = 3.0)), Delta()
    h -> h   : KIND(weight = Normal(mean = 0.0, sd = 0.3)), Delta()
    h -> out : Dense(weight = Normal(mean = 0.0, sd = 0.3)), Delta()
}
train sp {
    algorithm  = eprop(c_reg = 0.01, f_target = 10 Hz, tau_reg = 500 ms)
    loss       = mse
    dt         = 1 ms
    duration   = 60 ms
    batch_size = 2
    seed       = 3
}
"""
SPARSE = ("x_to_h", "h_to_h")


@pytest.mark.genn
@pytest.mark.skipif(not have_pygenn(), reason="pygenn is not installed (optional extra 'genn')")
def test_sparse_eprop_gradients_equal_the_dense_reference_at_existing_synapses(tmp_path: Path) -> None:
    batch = 2
    genn = load_genn(
        lower(SRC.replace("KIND(", "Sparse(p = 0.5, ")),
        out_dir=tmp_path,
        backend="single_threaded_cpu",
        batch_size=batch,
    )
    init = np.load(tmp_path / "sp_genn_init.npz")  # the module's CSR structure, as pre/post pairs
    built = build_eprop_network(lower(SRC.replace("KIND(", "Dense(")), cache_dir=tmp_path / "c")
    c = EpropArtefact(built.library, built.manifest, built.static, batch)

    sparse_w = genn.get_weights()
    dense_w = dict(sparse_w)
    synapses = {}
    for name in SPARSE:
        synapses[name] = (init[f"{name}.pre"], init[f"{name}.post"])
        w = np.zeros(c.get_weights()[name].shape)
        w[synapses[name]] = sparse_w[name]
        dense_w[name] = w
        assert 0 < sparse_w[name].size < w.size  # really sparse
    c.set_weights(dense_w)

    g_genn, g_c = gradients_on_both(genn, c, batch, 8, 3, 200)

    assert set(g_genn) == set(g_c)
    for name, g in g_c.items():
        want = g[synapses[name]] if name in synapses else g
        top = np.abs(want).max()
        assert top > 0, name  # the hidden layer spiked, so every gradient carries signal
        np.testing.assert_allclose(g_genn[name], want, rtol=1e-4, atol=1e-4 * top, err_msg=name)
    for name, (pre, post) in synapses.items():  # absent synapses would have learned: the mask matters
        absent = np.ones(g_c[name].shape, bool)
        absent[pre, post] = False
        assert np.abs(g_c[name][absent]).max() > 0, name
