"""The generated pygenn module run by GeNN itself (CPU backend), against the C backend.

Needs pygenn (an optional extra); skipped with a visible reason where it does not import.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest
from snnc.backends.genn import have_pygenn, load_genn
from snnc.runtime.artefact import RecordRequest

from snnc.api import lower

from .genn_check import ttfs_regularised_source

pytestmark = [
    pytest.mark.genn,
    pytest.mark.skipif(not have_pygenn(), reason="pygenn is not installed (optional extra 'genn')"),
]

ROOT = Path(__file__).resolve().parents[2]
BATCH = 1  # GeNN's CPU backend simulates one trial at a time


def _network(train: bool):  # noqa: ANN202
    network = lower(ROOT / "examples" / "yinyang_eventprop.snn", duration=10.0)
    return network if train else dataclasses.replace(network, training=None)


def _inputs() -> dict:
    rng = np.random.default_rng(3)
    rows = []
    for _ in range(BATCH):
        ids = np.repeat(np.arange(4), 3)
        times = np.sort(rng.uniform(0.0, 6.0, ids.size))
        rows.append((times, ids))
    return {"x": rows}


def _c_artefact(network):  # noqa: ANN001, ANN202
    from snnc.backends.c import build_network
    from snnc.backends.c.loader import NativeArtefact

    built = build_network(network)
    return NativeArtefact(built.library, built.manifest, built.static, BATCH)


def test_inference_matches_the_c_backend(tmp_path: Path) -> None:
    network = _network(train=False)
    genn = load_genn(network, out_dir=tmp_path, backend="single_threaded_cpu", batch_size=BATCH)
    c = _c_artefact(network)
    genn.set_weights(c.get_weights())
    request = RecordRequest.of(spikes=["h"], vars=[("out", "v")])
    got, want = genn.run(_inputs(), request), c.run(_inputs(), request)
    assert want.spikes["h"].any(), "the test input should make hidden neurons spike"
    np.testing.assert_array_equal(got.spikes["h"], want.spikes["h"])
    np.testing.assert_allclose(got.vars[("out", "v")], want.vars[("out", "v")], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(got.readouts["out"], want.readouts["out"], rtol=1e-4, atol=1e-6)


def test_eventprop_gradients_match_the_c_backend(tmp_path: Path) -> None:
    network = _network(train=True)
    genn = load_genn(network, out_dir=tmp_path, backend="single_threaded_cpu", batch_size=BATCH)
    c = _c_artefact(network)
    genn.set_weights(c.get_weights())
    dl_dy = {"out": np.random.default_rng(0).normal(size=(BATCH, 3))}
    genn.run(_inputs())
    c.run(_inputs())
    got, want = genn.backward(dl_dy), c.backward(dl_dy)
    assert set(got) == set(want)
    for name in want:
        assert np.abs(want[name]).max() > 0
        np.testing.assert_allclose(got[name], want[name], rtol=1e-3, atol=1e-6 * np.abs(want[name]).max())


@pytest.mark.parametrize("kind", ["avg_var", "avg_var_exp_weight"])
def test_eventprop_with_a_readout_window_matches_the_c_backend(tmp_path: Path, kind: str) -> None:
    """avg_var (or its exp-weighted form) over [4 ms, 8 ms) of the 10 ms trial: the forward sum and
    the backward drive both look at the step, on GeNN (its q_kb) as in the C kernel."""
    source = (ROOT / "examples" / "yinyang_eventprop.snn").read_text()
    assert "readout = avg_var_exp_weight" in source
    network = lower(
        source.replace("readout = avg_var_exp_weight", f"readout = {kind}(v, start = 4 ms, stop = 8 ms)"),
        duration=10.0,
    )
    genn = load_genn(network, out_dir=tmp_path, backend="single_threaded_cpu", batch_size=BATCH)
    c = _c_artefact(network)
    genn.set_weights(c.get_weights())
    dl_dy = {"out": np.random.default_rng(0).normal(size=(BATCH, 3))}
    np.testing.assert_allclose(
        genn.run(_inputs()).readouts["out"], c.run(_inputs()).readouts["out"], rtol=1e-4
    )
    got, want = genn.backward(dl_dy), c.backward(dl_dy)
    for name in want:
        assert np.abs(want[name]).max() > 0
        np.testing.assert_allclose(got[name], want[name], rtol=1e-3, atol=1e-6 * np.abs(want[name]).max())


LAYERS = """
use std.{SpikeInput, LIF, LeakyIntegrate, Exponential, Delta}
network layers {
    input  x   = SpikeInput((8, 8, 1))
    hidden c   = LIF((6, 6, 4), tau_refrac = 2 ms, v_thresh = 0.3)
    hidden p   = LIF((3, 3, 4), v_thresh = 0.2)
    hidden s   = LIF(36, v_thresh = 0.2)
    hidden o2o = LIF(36, v_thresh = 0.2)
    output out = LeakyIntegrate(3, readout = max_var)
    x -> c   : Conv2D(filters = 4, kernel = 3, weight = Uniform(low = 0.0, high = 1.0)), Exponential(tau = 5 ms)
    c -> p   : AvgPool2D(pool = 2), Exponential(tau = 5 ms)
    p -> s   : Sparse(p = 0.5, weight = Uniform(low = 0.5, high = 1.5)), Delta()
    s -> o2o : OneToOne(weight = Constant(value = 1.5)), Exponential(tau = 5 ms)
    s -> s   : Dense(weight = Normal(mean = 0.0, sd = 0.1), delay = 2 ms), Delta()
    o2o -> out : Dense(weight = Normal(mean = 0.9, sd = 0.1)), Exponential(tau = 5 ms)
}
"""


def test_every_connectivity_matches_the_c_backend(tmp_path: Path) -> None:
    network = lower(LAYERS, duration=40.0)
    genn = load_genn(network, out_dir=tmp_path, backend="single_threaded_cpu", batch_size=BATCH)
    c = _c_artefact(network)
    genn.set_weights(c.get_weights())
    rng = np.random.default_rng(5)
    ids = rng.integers(0, 64, 200)
    inputs = {"x": [(np.sort(rng.uniform(0.0, 20.0, ids.size)), ids)]}
    pops = ["c", "p", "s", "o2o"]
    request = RecordRequest.of(spikes=pops, vars=[("out", "v")])
    got, want = genn.run(inputs, request), c.run(inputs, request)
    for pop in pops:
        assert want.spikes[pop].any(), f"no spikes in {pop}: the test would prove little"
        np.testing.assert_array_equal(got.spikes[pop], want.spikes[pop], err_msg=pop)
    np.testing.assert_allclose(got.vars[("out", "v")], want.vars[("out", "v")], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(got.readouts["out"], want.readouts["out"], rtol=1e-4, atol=1e-5)


def test_eprop_output_gradient_matches_numpy_from_the_forward_pass(tmp_path: Path) -> None:
    """dW_jk = sum_s E_k(s) eps_jk(s), eps from the IR's propagate rule on the hidden spikes and E
    the softmax error of the output's v: checks GeNN's step pairing of E and eligibility."""
    import sympy
    from snnc.ir import names
    from snnc.passes.specialise import specialise

    network = lower(ROOT / "examples" / "eprop_digits.snn")
    art = load_genn(network, out_dir=tmp_path, backend="single_threaded_cpu", batch_size=BATCH)
    k_steps, meta = art.num_steps, art.module.POPULATIONS
    rng = np.random.default_rng(0)
    ids = rng.integers(0, meta["x"]["size"], 400)
    inputs = {"x": [(np.sort(rng.uniform(0, k_steps * art.dt * 0.8, ids.size)), ids)]}
    art.set_weights({"x_to_h": np.abs(art.get_weights()["x_to_h"]) * 4.0})  # make h spike
    label = 3
    y = np.zeros((1, k_steps, meta["out"]["size"]))
    y[:, :, label] = 1.0
    fwd = art.run(inputs, RecordRequest.of(spikes=["h"], vars=[("out", "v")]))
    grads = art.eprop_batch(inputs, {"out": y})
    z = fwd.spikes["h"][0].astype(float)  # [steps, hidden]
    assert z.any(), "hidden neurons must spike for the check to mean something"
    v = fwd.vars[("out", "v")][0]  # [steps, out]
    e = np.exp(v - v.max(axis=1, keepdims=True))
    err = e / e.sum(axis=1, keepdims=True) - y[0]
    pe = network.training.projections["h_to_out"]
    rule = pe.propagate[0].expr
    specialised = specialise(network).specialised.populations["out"].values
    values = {k: float(v) for k, v in specialised if sympy.sympify(v).is_number}
    step = sympy.lambdify(
        [sympy.Symbol(pe.eligibilities[0].name, real=True), sympy.Symbol(names.Z_PRE, real=True)],
        rule.xreplace({s: values[s.name] for s in rule.free_symbols if s.name in values}),
    )
    eps = np.zeros_like(z[0])
    want = np.zeros((z.shape[1], err.shape[1]))
    for s in range(k_steps):
        z_pre = z[s - 1] if s > 0 else np.zeros_like(z[0])
        eps = step(eps, z_pre)
        want += np.outer(eps, err[s])
    np.testing.assert_allclose(grads["h_to_out"], want, rtol=2e-3, atol=1e-5 * np.abs(want).max())


def test_eventprop_first_spike_time_with_regulariser_matches_the_c_backend(tmp_path: Path) -> None:
    src = ttfs_regularised_source()
    network = lower(src, duration=10.0)
    assert network.training.populations["h"].regularisation is not None
    genn = load_genn(network, out_dir=tmp_path, backend="single_threaded_cpu", batch_size=BATCH)
    from snnc.backends.c import build_network
    from snnc.backends.c.loader import NativeArtefact

    built = build_network(network, event_buffer=50)
    c = NativeArtefact(built.library, built.manifest, built.static, BATCH)
    w = c.get_weights()
    w = {"x_to_h": np.abs(w["x_to_h"]) * 2.0, "h_to_out": np.abs(w["h_to_out"]) * 3.0}  # make out spike
    genn.set_weights(w)
    c.set_weights(w)
    got, want = genn.run(_inputs()), c.run(_inputs())
    assert np.isfinite(want.readouts["out"]).all(), "every output neuron should spike"
    np.testing.assert_allclose(got.readouts["out"], want.readouts["out"], rtol=1e-5)
    dl_dy = {"out": np.random.default_rng(1).normal(size=(BATCH, 3))}
    g_genn, g_c = genn.backward(dl_dy), c.backward(dl_dy)
    for name in g_c:
        assert np.abs(g_c[name]).max() > 0
        np.testing.assert_allclose(g_genn[name], g_c[name], rtol=1e-3, atol=1e-6 * np.abs(g_c[name]).max())


@pytest.mark.parametrize("example, scale", [("eprop_digits", 1.0), ("eprop_pattern", 4.0)])
def test_eprop_trainer_protocol_matches_the_c_backend(tmp_path: Path, example: str, scale: float) -> None:
    """set_targets -> run -> backward, as the trainer drives it: a padded batch (2 real rows of 3), a
    plain run before it (whose regulariser terms must not leak in), a non-zero trained output bias.
    Spikes, readouts and every gradient, the bias's included, agree with the C e-prop kernel."""
    from snnc.backends.c.backend import build_eprop_network
    from snnc.backends.c.eprop_loader import EpropArtefact

    batch, real = 3, 2
    network = lower(ROOT / "examples" / f"{example}.snn")
    genn = load_genn(network, out_dir=tmp_path, backend="single_threaded_cpu", batch_size=batch)
    built = build_eprop_network(network)
    c = EpropArtefact(built.library, built.manifest, built.static, batch)
    w = c.get_weights()
    w["x_to_h"] = np.abs(w["x_to_h"]) * scale  # make h spike
    w["bias_out"] = np.linspace(-0.5, 0.5, w["bias_out"].size)
    c.set_weights(w)
    genn.set_weights(w)
    for name, value in genn.get_weights().items():
        np.testing.assert_allclose(value, w[name], rtol=1e-6, err_msg=name)
    steps, n_in, n_out = c.num_steps, c.manifest["populations"]["x"]["size"], w["bias_out"].size
    rng = np.random.default_rng(0)
    rows = []
    for _ in range(real):
        ids = rng.integers(0, n_in, 400)
        rows.append((np.sort(rng.uniform(0, steps * c.dt * 0.8, ids.size)), ids))
    inputs = {"x": rows}
    if c.eprop["outputs"]["out"]["loss"] == "sparse_categorical_crossentropy":
        targets = {"out": rng.integers(0, n_out, real)}
    else:
        targets = {"out": rng.normal(size=(real, steps, n_out))}
    request = RecordRequest.of(spikes=["h"])
    plain_genn, plain_c = genn.run(inputs), c.run(inputs)  # evaluation: per-step mse readouts too
    np.testing.assert_allclose(plain_genn.readouts["out"], plain_c.readouts["out"], rtol=1e-4, atol=1e-6)
    genn.set_targets(targets)
    got = genn.run(inputs, request)
    g_genn = genn.backward({})
    c.set_targets(targets)
    want = c.run(inputs, request)
    g_c = c.backward({})
    assert want.spikes["h"].any()
    np.testing.assert_array_equal(got.spikes["h"], want.spikes["h"])
    np.testing.assert_allclose(got.readouts["out"], want.readouts["out"], rtol=1e-4, atol=1e-6)
    assert set(g_genn) == set(g_c)
    for name in g_c:
        top = np.abs(g_c[name]).max()
        if name in ("bias_out", "h_to_out"):
            assert top > 0, name
        np.testing.assert_allclose(g_genn[name], g_c[name], rtol=1e-4, atol=1e-4 * top, err_msg=name)


def test_eprop_softmax_error_from_a_later_step_matches_the_c_backend(tmp_path: Path) -> None:
    """eprop(error_start = 5 ms) on the digits softmax: the error reads the step and the output's
    reductions, so GeNN computes it in a custom update that takes the step from the neurons' var
    `q_step`; every gradient agrees with the C kernel's."""
    from snnc.backends.c.backend import build_eprop_network
    from snnc.backends.c.eprop_loader import EpropArtefact

    batch = 2
    src = (ROOT / "examples" / "eprop_digits.snn").read_text().replace("eprop(", "eprop(error_start = 5 ms, ")
    network = lower(src)
    genn = load_genn(network, out_dir=tmp_path, backend="single_threaded_cpu", batch_size=batch)
    assert "q_step >= 5" in Path(genn.module.__file__).read_text()
    built = build_eprop_network(network)
    c = EpropArtefact(built.library, built.manifest, built.static, batch)
    genn.set_weights(c.get_weights())
    rng = np.random.default_rng(0)
    rows = []
    for _ in range(batch):
        ids = rng.integers(0, 64, 400)
        rows.append((np.sort(rng.uniform(0, 16, ids.size)), ids))
    targets = {"out": rng.integers(0, 10, batch)}
    genn.set_targets(targets)
    genn.run({"x": rows})
    c.set_targets(targets)
    c.run({"x": rows})
    g_genn, g_c = genn.backward({}), c.backward({})
    assert set(g_genn) == set(g_c)
    for name in g_c:
        top = np.abs(g_c[name]).max()
        assert top > 0, name
        np.testing.assert_allclose(g_genn[name], g_c[name], rtol=1e-4, atol=1e-4 * top, err_msg=name)


def test_eprop_readout_window_matches_the_c_backend(tmp_path: Path) -> None:
    """The digits example read in a window (`avg_var(v, start = 5 ms, stop = 15 ms)`): the readout
    sums those steps only and the e-prop error is zero outside them, on GeNN as in the C kernel."""
    from snnc.backends.c.backend import build_eprop_network
    from snnc.backends.c.eprop_loader import EpropArtefact

    batch = 2
    src = (ROOT / "examples" / "eprop_digits.snn").read_text()
    src = src.replace("readout = avg_var)", "readout = avg_var(v, start = 5 ms, stop = 15 ms))")
    network = lower(src)
    genn = load_genn(network, out_dir=tmp_path, backend="single_threaded_cpu", batch_size=batch)
    built = build_eprop_network(network)
    c = EpropArtefact(built.library, built.manifest, built.static, batch)
    genn.set_weights(c.get_weights())
    rng = np.random.default_rng(0)
    rows = []
    for _ in range(batch):
        ids = rng.integers(0, 64, 400)
        rows.append((np.sort(rng.uniform(0, 16, ids.size)), ids))
    targets = {"out": rng.integers(0, 10, batch)}
    genn.set_targets(targets)
    c.set_targets(targets)
    request = RecordRequest.of(vars=[("out", "v")])
    got, want = genn.run({"x": rows}, request), c.run({"x": rows}, request)
    window = want.vars[("out", "v")][:, 5:15].mean(1)
    np.testing.assert_allclose(want.readouts["out"], window, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got.readouts["out"], want.readouts["out"], rtol=1e-4, atol=1e-6)
    g_genn, g_c = genn.backward({}), c.backward({})
    assert set(g_genn) == set(g_c)
    for name in g_c:
        top = np.abs(g_c[name]).max()
        assert top > 0, name
        np.testing.assert_allclose(g_genn[name], g_c[name], rtol=1e-4, atol=1e-4 * top, err_msg=name)


def test_shd_eventprop_spikes_and_gradients_match_the_c_backend(tmp_path: Path) -> None:
    """The SHD example as written (700 -> 256 recurrent -> 20, avg_var_exp_weight readout, spike
    count regulariser), shortened to 100 ms: hidden spike trains and every gradient agree."""
    network = lower(ROOT / "examples" / "shd_eventprop.snn", duration=100.0)
    genn = load_genn(network, out_dir=tmp_path, backend="single_threaded_cpu", batch_size=BATCH)
    c = _c_artefact(network)
    genn.set_weights(c.get_weights())
    rng = np.random.default_rng(4)
    ids = rng.integers(0, 700, 3000)
    inputs = {"x": [(np.sort(rng.uniform(0.0, 90.0, ids.size)), ids)]}
    request = RecordRequest.of(spikes=["h"])
    got, want = genn.run(inputs, request), c.run(inputs, request)
    assert want.spikes["h"].sum() > 50, "the hidden layer should spike for the test to mean something"
    np.testing.assert_array_equal(got.spikes["h"], want.spikes["h"])
    np.testing.assert_allclose(got.readouts["out"], want.readouts["out"], rtol=1e-4, atol=1e-6)
    dl_dy = {"out": np.random.default_rng(1).normal(size=(BATCH, 20))}
    g_genn, g_c = genn.backward(dl_dy), c.backward(dl_dy)
    assert set(g_genn) == set(g_c)
    for name in g_c:
        top = np.abs(g_c[name]).max()
        assert top > 0, name
        np.testing.assert_allclose(g_genn[name], g_c[name], rtol=1e-4, atol=1e-4 * top, err_msg=name)


def test_a_short_regularised_batch_on_genn_is_the_c_backends_exact_batch(tmp_path: Path) -> None:
    """The compiled spike-count regulariser's batch mean counts the real rows of a short last batch
    (run's example_ids), as the C loader does: GeNN allocated for 3 with 2 real rows gives the C
    backend's gradients of exactly those 2 rows (GeNN once divided by its allocated batch, and on
    the CPU backend summed each trial's own counts only)."""
    from snnc.backends.c import build_network
    from snnc.backends.c.loader import NativeArtefact

    # strong enough that the regulariser moves dL/dw(x_to_h) by far more than the tolerance
    source = ttfs_regularised_source().replace("reg_lambda_upper = 1e-9", "reg_lambda_upper = 1e-4")
    network = lower(source, duration=10.0)
    genn = load_genn(network, out_dir=tmp_path, backend="single_threaded_cpu", batch_size=3)
    built = build_network(network, event_buffer=50)
    c = NativeArtefact(built.library, built.manifest, built.static, 2)
    w = c.get_weights()
    w = {"x_to_h": np.abs(w["x_to_h"]) * 2.0, "h_to_out": np.abs(w["h_to_out"]) * 3.0}
    genn.set_weights(w)
    c.set_weights(w)
    rng = np.random.default_rng(6)
    rows = []
    for _ in range(2):
        ids = np.repeat(np.arange(4), 3)
        rows.append((np.sort(rng.uniform(0.0, 6.0, ids.size)), ids))
    inputs = {"x": rows}
    got, want = genn.run(inputs, example_ids=[0, 1]), c.run(inputs, example_ids=[0, 1])
    np.testing.assert_allclose(got.readouts["out"][:2], want.readouts["out"], rtol=1e-5)
    dl = np.random.default_rng(1).normal(size=(2, 3))
    g_genn = genn.backward({"out": np.concatenate([dl, np.zeros((1, 3))])})
    g_c = c.backward({"out": dl})
    for name in g_c:
        assert np.abs(g_c[name]).max() > 0
        np.testing.assert_allclose(g_genn[name], g_c[name], rtol=1e-3, atol=1e-6 * np.abs(g_c[name]).max())


def test_eventprop_through_impulses_into_a_spiking_layer_matches_the_c_backend(tmp_path: Path) -> None:
    """Pulse (Delta-like) synapses into a spiking layer, input and recurrent: the impulse-caused
    spikes' jump and their hand-over to the arrivals (passes/adjoint.py `impulse_spike`) run as GeNN
    neuron and synapse code, and give the C kernel's gradients."""
    import sys

    sys.path.insert(0, str(ROOT / "tests" / "runtime"))
    from test_gradients_delta_spiking import source

    network = lower(source("avg_var", "Pulse", dt=0.01), dt=0.01, duration=30.0)
    genn = load_genn(network, out_dir=tmp_path, backend="single_threaded_cpu", batch_size=BATCH)
    c = _c_artefact(network)
    genn.set_weights(c.get_weights())
    rng = np.random.default_rng(4)
    inputs = {"x": [(np.sort(rng.uniform(1.0, 25.0, 6)), rng.integers(0, 3, 6)) for _ in range(BATCH)]}
    request = RecordRequest.of(spikes=["h"])
    got_run, want_run = genn.run(inputs, request), c.run(inputs, request)
    np.testing.assert_array_equal(got_run.spikes["h"], want_run.spikes["h"])
    dl_dy = {"out": np.random.default_rng(0).normal(size=(BATCH, 2))}
    got, want = genn.backward(dl_dy), c.backward(dl_dy)
    assert set(got) == set(want) == {"x_to_h", "h_to_h", "h_to_out"}
    for name in want:
        assert np.abs(want[name]).max() > 0
        np.testing.assert_allclose(got[name], want[name], rtol=1e-3, atol=1e-6 * np.abs(want[name]).max())
