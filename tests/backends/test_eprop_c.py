"""e-prop in the C backend against Bellec's equations written out in numpy.

The reference (`bellec`, `simulate`, `make_data`) lives in tests/passes/test_eprop_numeric.py, where
it is also checked against the IR itself; here the compiled C kernel (float64) must reproduce the
accumulated ΔW of a tiny recurrent LIF/ALIF network, symmetric and random feedback, over a batch of
examples with different inputs and labels plus one padded row without a target.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from snnc.backends.c.backend import build_eprop_network, build_network
from snnc.backends.c.eprop_loader import EpropArtefact
from snnc.backends.c.loader import NativeArtefact
from snnc.frontend import load_source
from snnc.ir.diagnostics import DiagnosticError
from snnc.passes.discretise import discretise
from snnc.passes.eprop import eprop

from tests.passes.test_eprop_numeric import HIDDEN, SRC, bellec, make_data, simulate

NAMES = {"x_to_h": "x_to_h", "h_to_h": "h_to_h", "h_to_out": "h_to_out", "bias": "bias_out"}


def _net(kind: str, feedback: str, src: str = SRC):
    return eprop(discretise(load_source(src.format(hidden=HIDDEN[kind], fb=feedback), "n.snn")))


def _artefact(net, tmp: Path, batch: int, precision: str = "double") -> EpropArtefact:
    built = build_eprop_network(net, precision=precision, cache_dir=tmp)
    return EpropArtefact(built.library, built.manifest, built.static, batch)


def _spikes(x: np.ndarray):
    k, i = np.nonzero(x)
    return (k * 1.0, i)


def _load(art: EpropArtefact, d: dict, feedback: str) -> None:
    art.set_weights(
        {"x_to_h": d["w_in"], "h_to_h": d["w_rec"], "h_to_out": d["w_out"], "bias_out": d["bias"]}
    )
    if feedback == "random":
        art.feedback["h_to_out"][...] = d["b_rand"]


@pytest.mark.parametrize("feedback", ["symmetric", "random"])
@pytest.mark.parametrize("kind", ["lif", "alif"])
def test_c_eprop_matches_bellec(kind, feedback, tmp_path):
    adaptive = kind == "alif"
    d = make_data(seed=3)
    rows = [d, {**d, "x": make_data(seed=11)["x"], "label": 0}]
    art = _artefact(_net(kind, feedback), tmp_path, batch=3)  # row 2: padding, no target
    art.set_threads(2)
    _load(art, d, feedback)
    art.set_targets({"out": np.array([r["label"] for r in rows])})
    art.run({"x": [_spikes(r["x"]) for r in rows]})
    got = art.backward({})
    ref = {name: 0.0 for name in NAMES}
    for r in rows:
        rec = simulate(r, adaptive)
        assert rec["z"].sum() >= 3, "the test network should spike"
        for name, g in bellec(r, rec, adaptive, feedback).items():
            ref[name] = ref[name] + g
    for name, key in NAMES.items():
        assert np.abs(ref[name]).max() > 1e-3, name
        assert got[key].shape == np.shape(ref[name])
        np.testing.assert_allclose(got[key], ref[name], rtol=1e-5, atol=1e-9, err_msg=name)


def test_learning_does_not_change_the_forward_pass(tmp_path):
    net = _net("alif", "symmetric")
    d = make_data(seed=3)
    art = _artefact(net, tmp_path, batch=1)
    _load(art, d, "symmetric")
    plain = art.run({"x": [_spikes(d["x"])]}).readouts["out"]
    art.set_targets({"out": np.array([1])})
    learning = art.run({"x": [_spikes(d["x"])]}).readouts["out"]
    np.testing.assert_array_equal(plain, learning)
    # and the forward kernel of the model (bias compiled in as 0) agrees when the bias is 0
    built = build_network(net, precision="double", cache_dir=tmp_path)
    fwd = NativeArtefact(built.library, built.manifest, built.static, 1)
    fwd.set_weights({"x_to_h": d["w_in"], "h_to_h": d["w_rec"], "h_to_out": d["w_out"]})
    art.set_weights({"bias_out": np.zeros(2)})
    np.testing.assert_allclose(
        art.run({"x": [_spikes(d["x"])]}).readouts["out"], fwd.run({"x": [_spikes(d["x"])]}).readouts["out"]
    )
    # the readout of the reference simulation: sum_var of v over the steps
    rec = simulate({**d, "bias": np.zeros(2)}, True)
    np.testing.assert_allclose(fwd.run({"x": [_spikes(d["x"])]}).readouts["out"][0], rec["vo"].sum(axis=0))


def test_backward_needs_targets(tmp_path):
    art = _artefact(_net("lif", "symmetric"), tmp_path, batch=1)
    art.run({"x": [_spikes(make_data(seed=3)["x"])]})
    with pytest.raises(RuntimeError, match="set_targets"):
        art.backward({})
    with pytest.raises(KeyError):
        art.set_targets({"h": np.array([0])})


def test_gradients_are_per_batch_sums_and_reset_between_runs(tmp_path):
    d = make_data(seed=3)
    art = _artefact(_net("lif", "symmetric"), tmp_path, batch=2)
    _load(art, d, "symmetric")
    art.set_targets({"out": np.array([1])})
    art.run({"x": [_spikes(d["x"])]})
    one = art.backward({})
    art.set_targets({"out": np.array([1, 1])})
    art.run({"x": [_spikes(d["x"]), _spikes(d["x"])]})
    two = art.backward({})
    for key in one:
        np.testing.assert_allclose(two[key], 2 * one[key], rtol=1e-12, atol=1e-15)


def test_a_one_to_one_trainable_projection_is_a_diagnostic(tmp_path):
    src = SRC.replace("h -> h : Dense(weight", "h -> h : OneToOne(weight")
    net = _net("lif", "symmetric", src)
    with pytest.raises(DiagnosticError) as err:
        build_eprop_network(net, cache_dir=tmp_path)
    assert err.value.diagnostics[0].code == "E-BACKEND-UNSUPPORTED"


@pytest.mark.parametrize("feedback", ["symmetric", "random"])
def test_feedback_through_an_untrained_sparse_projection_matches_bellec(feedback, tmp_path):
    """The learning signal travels back through h_to_out even when it is not trained: through its
    stored synapses (symmetric), or through the dense random B whatever its structure (random)."""
    src = SRC.replace(
        "h -> out : Dense(weight = Normal(mean = 0.0, sd = 1.0))",
        "h -> out : Sparse(p = 0.5, weight = Normal(mean = 0.0, sd = 1.0), trainable = false)",
    )
    d = make_data(seed=3)
    art = _artefact(_net("lif", feedback, src), tmp_path, batch=1)
    conn = art.connectivity("h_to_out")
    pairs = np.repeat(np.arange(conn["row_ptr"].size - 1), np.diff(conn["row_ptr"])), conn["col_idx"]
    assert 0 < pairs[0].size < d["w_out"].size
    w_out = np.zeros_like(d["w_out"])
    w_out[pairs] = d["w_out"][pairs]
    d = {**d, "w_out": w_out}
    art.set_weights(
        {"x_to_h": d["w_in"], "h_to_h": d["w_rec"], "h_to_out": w_out[pairs], "bias_out": d["bias"]}
    )
    if feedback == "random":
        art.feedback["h_to_out"][...] = d["b_rand"]
    art.set_targets({"out": np.array([d["label"]])})
    art.run({"x": [_spikes(d["x"])]})
    got = art.backward({})
    rec = simulate(d, False)
    assert rec["z"].sum() >= 3, "the test network should spike"
    ref = bellec(d, rec, False, feedback)
    assert "h_to_out" not in got
    for name in ("x_to_h", "h_to_h", "bias"):
        assert np.abs(ref[name]).max() > 1e-3, name
        np.testing.assert_allclose(got[NAMES[name]], ref[name], rtol=1e-5, atol=1e-9, err_msg=name)


MSE_SRC = SRC.replace("readout = sum_var(v)", "readout = var(v)").replace(
    "loss = sparse_categorical_crossentropy", "loss = mse"
)


@pytest.mark.parametrize("kind", ["lif", "alif"])
def test_c_eprop_mse_matches_bellec(kind, tmp_path, monkeypatch):
    """mse on a `var` readout: E = v - target; Bellec's reference with the identity in place of softmax."""
    import tests.passes.test_eprop_numeric as ref_mod

    monkeypatch.setattr(ref_mod, "softmax", lambda v: v)
    adaptive = kind == "alif"
    d = make_data(seed=3)
    art = _artefact(_net(kind, "symmetric", MSE_SRC), tmp_path, batch=1)
    _load(art, d, "symmetric")
    art.set_targets({"out": np.eye(2)[[d["label"]]]})  # [n, N]: the same target every step
    art.run({"x": [_spikes(d["x"])]})
    got = art.backward({})
    ref = bellec(d, simulate(d, adaptive), adaptive, "symmetric")
    for name, key in NAMES.items():
        assert np.abs(ref[name]).max() > 1e-3, name
        np.testing.assert_allclose(got[key], ref[name], rtol=1e-5, atol=1e-9, err_msg=name)


def test_c_eprop_mse_per_step_targets_give_exact_output_gradients(tmp_path):
    d = make_data(seed=5)
    targets = np.random.default_rng(0).normal(0.0, 1.0, (30, 2))
    art = _artefact(_net("lif", "symmetric", MSE_SRC), tmp_path, batch=1)
    _load(art, d, "symmetric")
    art.set_targets({"out": targets[None]})  # [n, steps, N]
    art.run({"x": [_spikes(d["x"])]})
    got = art.backward({})

    def loss(dd):
        return 0.5 * ((simulate(dd, False)["vo"] - targets) ** 2).sum()

    h = 1e-6
    for key, name in (("w_out", "h_to_out"), ("bias", "bias_out")):
        fd = np.zeros_like(d[key])
        for idx in np.ndindex(d[key].shape):
            plus, minus = {**d, key: d[key].copy()}, {**d, key: d[key].copy()}
            plus[key][idx] += h
            minus[key][idx] -= h
            fd[idx] = (loss(plus) - loss(minus)) / (2 * h)
        assert np.abs(fd).max() > 1e-3
        np.testing.assert_allclose(got[name], fd, rtol=1e-4, atol=1e-7, err_msg=name)


def test_trainer_hands_targets_to_the_forward_pass(tmp_path):
    """One SGD batch through `Trainer`: the update is -lr times the ΔW of that batch's targets."""
    from snnc.runtime.optimisers import SGD
    from snnc.runtime.trainer import Trainer

    d = make_data(seed=3)
    rows = [d, {**d, "x": make_data(seed=11)["x"], "label": 0}]
    x = {"x": [_spikes(r["x"]) for r in rows]}
    y = {"out": np.array([r["label"] for r in rows])}
    art = _artefact(_net("alif", "symmetric"), tmp_path, batch=2)
    _load(art, d, "symmetric")
    before = art.get_weights()
    art.set_targets(y)
    art.run(x)
    expected = art.backward({})
    trainer = Trainer(art, "sparse_categorical_crossentropy", SGD(lr=0.01), batch_size=2)
    trainer.train(x, y, num_epochs=1, shuffle=False, callbacks=[])
    after = art.get_weights()
    for key, g in expected.items():
        np.testing.assert_allclose(after[key], before[key] - 0.01 * g, rtol=1e-9, atol=1e-12, err_msg=key)


@pytest.mark.slow
def test_eprop_digits_example_reaches_90_percent():
    """examples/eprop_digits.snn as written (20 epochs, float32): ≥ 90 % on the held-out quarter."""
    pytest.importorskip("sklearn")
    from snnc.runtime import session

    import snnc

    root = Path(__file__).resolve().parents[2]
    net = snnc.compile(str(root / "examples" / "eprop_digits.snn"))
    data = session.load_data(net.network)
    x, y = session.xy(net.network, data.train)
    net.train(x, y, num_epochs=net.network.train.epochs, callbacks=[])
    xt, yt = session.xy(net.network, data.test)
    assert net.evaluate(xt, yt)["out"]["accuracy"] >= 0.90
