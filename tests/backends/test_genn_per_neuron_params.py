"""Per-neuron params that are not trained (`tau_mem = Uniform(10 ms, 30 ms)`, `bias = Normal(...)`)
on GeNN (CPU) against the C backend: vars of the neurons, drawn as C draws them and filed like the
weights, their derived params computed once per trial (as for trained params,
tests/backends/test_genn_eventprop_params.py). The same EventProp gradients in double precision,
and the same e-prop gradients with a per-neuron output bias."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from snnc.backends import check_supported
from snnc.backends.genn import have_pygenn

from snnc.api import lower
from tests.backends.test_genn_eventprop_params import both

pytestmark = [
    pytest.mark.genn,
    pytest.mark.skipif(not have_pygenn(), reason="pygenn is not installed (optional extra 'genn')"),
]

EVENTPROP = """use std.{SpikeInput, LIF, LeakyIntegrate, Exponential}
network g {
    input  x   = SpikeInput(3)
    hidden h   = LIF(5, tau_mem = Uniform(10 ms, 30 ms), v_thresh = Trainable(1.0))
    output out = LeakyIntegrate(2, bias = Normal(0.0, 0.1), readout = avg_var)
    x -> h   : Dense(weight = Normal(mean = 2.0, sd = 0.5)), Exponential(tau = Uniform(4 ms, 6 ms))
    h -> out : Dense(weight = Normal(mean = 0.5, sd = 0.5)), Exponential(tau = 5 ms)
}
train g {
    algorithm = eventprop(max_spikes = 100)
    loss = sparse_categorical_crossentropy
    seed = 4
}
"""


def test_eventprop_with_untrained_per_neuron_params_gives_the_c_gradients(tmp_path: Path) -> None:
    network = lower(EVENTPROP, dt=0.1, duration=25.0)
    assert check_supported(network, "genn") == []
    (rc, gc, weights), (rg, gg, _) = both(network, "avg_var", tmp_path)
    for key, size in (("tau_mem_h", 5), ("tau_x_to_h", 5), ("bias_out", 2)):  # filed, drawn apart
        assert weights[key].shape == (size,) and np.ptp(weights[key]) > 0, key
    assert rc.spikes["h"].sum(axis=1).mean() >= 2, "several spikes per hidden neuron"
    np.testing.assert_array_equal(rg.spikes["h"], rc.spikes["h"])
    np.testing.assert_allclose(rg.readouts["out"], rc.readouts["out"], rtol=1e-12, atol=1e-14)
    assert set(gg) == set(gc) == {"x_to_h", "h_to_out", "v_thresh_h"}  # no gradient of untrained ones
    for name, g in gc.items():
        scale = np.abs(g).max()
        assert scale > 0, name
        np.testing.assert_allclose(gg[name], g, rtol=1e-9, atol=1e-12 * scale, err_msg=name)


def test_eprop_with_a_per_neuron_output_bias_gives_the_c_gradients(tmp_path: Path) -> None:
    """e-prop trains an output bias; its initial values may differ between neurons."""
    from snnc.backends.c.backend import build_eprop_network
    from snnc.backends.c.eprop_loader import EpropArtefact
    from snnc.backends.genn import load_genn

    from tests.backends.eprop_pair import gradients_on_both
    from tests.backends.test_genn_eprop_params import SRC

    fixed = "LI(3, tau_mem = 20 ms, readout = var)"
    assert fixed in SRC
    network = lower(SRC.replace(fixed, "LI(3, tau_mem = 20 ms, bias = Normal(0.0, 0.3), readout = var)"))
    assert check_supported(network, "genn") == []
    genn = load_genn(network, out_dir=tmp_path, backend="single_threaded_cpu", batch_size=2)
    built = build_eprop_network(network, cache_dir=tmp_path / "c")
    c = EpropArtefact(built.library, built.manifest, built.static, 2)
    start = c.get_weights()
    assert np.ptp(start["bias_out"]) > 0
    np.testing.assert_allclose(genn.get_weights()["bias_out"], start["bias_out"], rtol=1e-6)
    g_genn, g_c = gradients_on_both(genn, c, 2, 8, 3, 200)
    assert set(g_genn) == set(g_c) and "bias_out" in g_c
    for name, g in g_c.items():  # float, as test_genn_eprop_params
        top = np.abs(g).max()
        assert top > 0, name
        np.testing.assert_allclose(g_genn[name], g, rtol=1e-4, atol=1e-4 * top, err_msg=name)
