"""`feedback = random`: the C and GeNN backends start the same network, the same B included.

Both backends take B from `snnc.backends.eprop_init`. Without pygenn the GeNN side is the emitted
module built against the recording stand-in (`fake_pygenn`): the B it hands to GeNN as the initial
`b_fb` of the output synapses must be the C kernel's. With a real pygenn, the gradients of a learning
run, which depend on B through the hidden learning signal, must be the C kernel's too.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
from snnc.backends.c.backend import build_eprop_network, generate_eprop
from snnc.backends.c.eprop_loader import EpropArtefact
from snnc.backends.genn import emit_genn, generate, have_pygenn, load_genn

from snnc.api import lower
from tests.backends.eprop_pair import gradients_on_both

ROOT = Path(__file__).resolve().parents[2]

#: two hidden populations, each with its own random B into the same readout
TWO_HIDDEN = """
use std.{SpikeInput, LIF, LI, Delta}
network two {
    input  x   = SpikeInput(5)
    hidden h1  = LIF(6)
    hidden h2  = LIF(4)
    output out = LI(3, readout = avg_var)
    x -> h1   : Dense(weight = Normal(mean = 0.0, sd = 1.0)), Delta()
    x -> h2   : Dense(weight = Normal(mean = 0.0, sd = 1.0)), Delta()
    h1 -> out : Dense(weight = Normal(mean = 0.0, sd = 0.1)), Delta()
    h2 -> out : Dense(weight = Normal(mean = 0.0, sd = 0.1)), Delta()
}
train two {
    algorithm  = eprop(feedback = random)
    loss       = sparse_categorical_crossentropy
    dt         = 1 ms
    duration   = 20 ms
    batch_size = 2
    seed       = 7
}
"""


def _random(example: str):  # noqa: ANN202
    src = (ROOT / "examples" / f"{example}.snn").read_text().replace("eprop(", "eprop(feedback = random, ")
    return lower(src)


def _c_feedback(network) -> dict[str, np.ndarray]:  # noqa: ANN001
    """B per projection as the C kernel starts with it (manifest arrays of kind "feedback")."""
    _, manifest, static, _ = generate_eprop(network)
    return {a["owner"]: static[a["name"]] for a in manifest["arrays"] if a["kind"] == "feedback"}


def _genn_feedback(network, tmp_path: Path) -> dict[str, np.ndarray]:  # noqa: ANN001
    """B per projection as the emitted GeNN module loads it (`<proj>.feedback` of its npz)."""
    module, npz, _ = emit_genn(network, tmp_path)
    code = module.read_text()
    out = {}
    with np.load(npz) as data:
        for key in data.files:
            proj, _, kind = key.partition(".")
            if kind == "feedback":
                assert f'weights["{key}"]' in code, f"the module does not load {key}"
                pp = network.projections[proj]
                shape = (network.populations[pp.pre].size, network.populations[pp.post].size)
                out[proj] = data[key].reshape(shape)
    return out


def _wired_feedback(network, tmp_path: Path, monkeypatch) -> dict[str, np.ndarray]:  # noqa: ANN001
    """B per projection as the module hands it to GeNN: the output synapses' initial `b_fb`,
    built against the recording stand-in."""
    from . import fake_pygenn as fake

    fake.install(monkeypatch)
    path = emit_genn(network, tmp_path)[0]
    spec = importlib.util.spec_from_file_location(f"genn_feedback_{network.name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    model = module.build_model(batch_size=1)[0]
    return {
        name: np.asarray(sg.wum[3]["b_fb"]).reshape(sg.pre.size, sg.post.size)
        for name, sg in model.synapses.items()
        if "b_fb" in sg.wum[3]
    }


def _network(name: str):  # noqa: ANN202
    return lower(TWO_HIDDEN) if name == "two_hidden" else _random(name)


NETWORKS = ["eprop_digits", "eprop_pattern", "two_hidden"]


@pytest.mark.parametrize("name", NETWORKS)
def test_random_feedback_is_the_same_matrix_on_c_and_genn(name: str, tmp_path: Path) -> None:
    net = _network(name)
    c = _c_feedback(net)
    genn = _genn_feedback(net, tmp_path)
    assert set(c) == set(genn) == {t.projection for he in net.training.hidden.values() for t in he.learning}
    for proj, b in c.items():
        np.testing.assert_array_equal(genn[proj], b, err_msg=proj)
        pre = net.populations[net.projections[proj].pre].size
        assert b.shape == (pre, net.populations["out"].size)
        assert 0.5 / np.sqrt(pre) < b.std() < 2.0 / np.sqrt(pre), "drawn with the pass's sd 1/sqrt(pre)"
    if len(c) > 1:  # one stream per matrix: the first rows of two matrices still differ
        assert not np.allclose(c["h1_to_out"][:4], c["h2_to_out"])


@pytest.mark.parametrize("name", NETWORKS)
def test_the_module_hands_genn_the_c_feedback(name: str, tmp_path: Path, monkeypatch) -> None:  # noqa: ANN001
    if have_pygenn():
        pytest.skip("the real pygenn is installed; the stand-in would shadow it")
    net = _network(name)
    c = _c_feedback(net)
    wired = _wired_feedback(net, tmp_path, monkeypatch)
    assert set(wired) == set(c)
    for proj, b in c.items():
        np.testing.assert_array_equal(wired[proj], b, err_msg=proj)


def test_random_feedback_is_fixed_by_the_seed_and_not_the_weights() -> None:
    net = _random("eprop_pattern")
    _, arrays, _ = generate(net)
    _, again, _ = generate(net)
    _, other, _ = generate(net, seed=2)
    np.testing.assert_array_equal(arrays["h_to_out.feedback"], again["h_to_out.feedback"])
    assert not np.allclose(arrays["h_to_out.feedback"], other["h_to_out.feedback"])
    assert not np.allclose(arrays["h_to_out.feedback"], arrays["h_to_out"])


@pytest.mark.genn
@pytest.mark.skipif(not have_pygenn(), reason="pygenn is not installed (optional extra 'genn')")
def test_random_feedback_gradients_match_the_c_backend(tmp_path: Path) -> None:
    """A learning run of each backend from its own initial arrays (weights only scaled so that h
    spikes): the hidden gradients, which reach h through B, agree, so B is the same."""
    batch = 2
    network = _random("eprop_pattern")
    genn = load_genn(network, out_dir=tmp_path, backend="single_threaded_cpu", batch_size=batch)
    built = build_eprop_network(network)
    c = EpropArtefact(built.library, built.manifest, built.static, batch)
    b_fb = genn.syns["h_to_out"].vars["b_fb"]  # B as GeNN holds it, against the C kernel's
    b_fb.pull_from_device()
    want = c.feedback["h_to_out"]
    np.testing.assert_array_equal(np.asarray(b_fb.values).reshape(want.shape), want)
    w = c.get_weights()
    w["x_to_h"] = np.abs(w["x_to_h"]) * 4.0
    c.set_weights(w)
    genn.set_weights(w)
    n_in, n_out = c.manifest["populations"]["x"]["size"], w["bias_out"].size
    g_genn, g_c = gradients_on_both(genn, c, batch, n_in, n_out, 400)
    assert set(g_genn) == set(g_c)
    for name in ("x_to_h", "h_to_h"):
        assert np.abs(g_c[name]).max() > 0, name
    for name in g_c:
        top = np.abs(g_c[name]).max()
        np.testing.assert_allclose(g_genn[name], g_c[name], rtol=1e-4, atol=1e-4 * top, err_msg=name)
