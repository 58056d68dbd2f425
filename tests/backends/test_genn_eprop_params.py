"""Trained neuron params under e-prop on GeNN (CPU) against the C backend: the same gradients of a
per-neuron tau_mem, a shared v_thresh and the weights of a recurrent LIF layer, after the params
were set through the artefact (a shared param is one value, held by every GeNN neuron's var)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from snnc.backends import check_supported
from snnc.backends.c.backend import build_eprop_network
from snnc.backends.c.eprop_loader import EpropArtefact
from snnc.backends.genn import have_pygenn, load_genn

from snnc.api import lower
from tests.backends.eprop_pair import gradients_on_both

SRC = """
use std.{SpikeInput, LIF, LI, Delta}
network sp {
    input  x   = SpikeInput(8)
    hidden h   = LIF(12, tau_mem = Trainable(Uniform(10 ms, 30 ms), min = 5 ms),
                  v_thresh = Trainable(1.0, max = 2.0), relative_reset = 1)
    output out = LI(3, tau_mem = 20 ms, readout = var)
    x -> h   : Dense(weight = Normal(mean = 0.0, sd = 3.0)), Delta()
    h -> h   : Dense(weight = Normal(mean = 0.0, sd = 0.3)), Delta()
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


def test_genn_checks_eprop_params() -> None:
    assert check_supported(lower(SRC), "genn") == []


@pytest.mark.genn
@pytest.mark.skipif(not have_pygenn(), reason="pygenn is not installed (optional extra 'genn')")
def test_genn_eprop_param_gradients_equal_the_c_ones(tmp_path: Path) -> None:
    batch = 2
    genn = load_genn(lower(SRC), out_dir=tmp_path, backend="single_threaded_cpu", batch_size=batch)
    built = build_eprop_network(lower(SRC), cache_dir=tmp_path / "c")
    c = EpropArtefact(built.library, built.manifest, built.static, batch)
    start = genn.get_weights()
    assert start["tau_mem_h"].shape == (12,) and start["v_thresh_h"].shape == (1,)
    for name, value in c.get_weights().items():  # both start from the same draws
        np.testing.assert_allclose(start[name].reshape(value.shape), value, rtol=1e-6, err_msg=name)
    assert genn.manifest["trainable_params"]["v_thresh_h"]["max"] == 2.0
    assert genn.manifest["trainable_params"]["tau_mem_h"]["min"] == 5.0
    params = {"v_thresh_h": np.array([0.8]), "tau_mem_h": np.linspace(8.0, 30.0, 12)}
    genn.set_weights(params)
    c.set_weights(params)
    np.testing.assert_allclose(genn.get_weights()["v_thresh_h"], [0.8], rtol=1e-6)

    g_genn, g_c = gradients_on_both(genn, c, batch, 8, 3, 200)
    assert set(g_genn) == set(g_c) and {"tau_mem_h", "v_thresh_h"} <= set(g_c)
    for name, g in g_c.items():
        top = np.abs(g).max()
        assert top > 0, name
        assert np.shape(g_genn[name]) == g.shape, name
        np.testing.assert_allclose(g_genn[name], g, rtol=1e-4, atol=1e-4 * top, err_msg=name)


@pytest.mark.genn
@pytest.mark.skipif(not have_pygenn(), reason="pygenn is not installed (optional extra 'genn')")
def test_load_genn_refuses_what_genn_cannot_train_as_snnc_check_does(tmp_path: Path) -> None:
    """A per-timestep loss has no GeNN form: `load_genn` says so in the words of `snnc check
    --backend genn`, before any printing (it used to fail inside the printer)."""
    from snnc.ir.diagnostics import DiagnosticError

    network = lower(
        SRC.replace("eprop(c_reg = 0.01, f_target = 10 Hz, tau_reg = 500 ms)", "eventprop")
        .replace("Delta()", "Exponential(tau = 5 ms)")
        .replace("{SpikeInput, LIF, LI, Delta}", "{SpikeInput, LIF, LI, Exponential}")
        .replace("loss       = mse", "loss       = sparse_categorical_crossentropy(per_timestep = true)")
        .replace("readout = var", "readout = sum_var")
    )
    expected = [d.message for d in check_supported(network, "genn")]
    assert any("per-timestep loss" in m for m in expected), expected
    with pytest.raises(DiagnosticError) as err:
        load_genn(network, out_dir=tmp_path, backend="single_threaded_cpu", batch_size=2)
    assert [d.message for d in err.value.diagnostics] == expected
    assert not list(tmp_path.iterdir()), "nothing was written"
