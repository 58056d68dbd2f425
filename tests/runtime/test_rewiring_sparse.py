"""Deep R on sparse (CSR) projections (runtime/rewiring.py): every stored synapse is active, each
row keeps its length, and a dormant synapse moves its column index within its row.

Unit checks of the rule on hand-made CSR rows, then networks compiled by the C backend: after
rewiring, the sparse network's gradient equals that of the Dense network holding its dense
equivalent, under EventProp and e-prop; `snnc train` keeps the structure's invariants at every
epoch, resumes exactly, and evaluates a checkpoint with its rewired structure.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from snnc.runtime.optimisers import Adam
from snnc.runtime.rewiring import DeepR

N_PRE, N_POST, ROW = 12, 20, 5


def _structure(seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    cols = np.concatenate([np.sort(rng.choice(N_POST, ROW, replace=False)) for _ in range(N_PRE)])
    return {"row_ptr": np.arange(0, N_PRE * ROW + 1, ROW, dtype=np.int32), "col_idx": cols.astype(np.int32)}


def _start(seed: int = 3) -> tuple[DeepR, dict[str, np.ndarray], dict[str, np.ndarray]]:
    weights = {"s": np.random.default_rng(1).normal(size=N_PRE * ROW)}
    live = _structure()
    rule = DeepR(("s",), None, l1=0.1, seed=seed, sparse={"s": N_POST})
    rule.start(weights, {"s": live})
    return rule, weights, live


def _rows_are_sets(live: dict[str, np.ndarray]) -> bool:
    rp, ci = live["row_ptr"], live["col_idx"]
    return all(np.unique(ci[rp[i] : rp[i + 1]]).size == rp[i + 1] - rp[i] for i in range(rp.size - 1))


def test_start_keeps_every_stored_synapse_with_its_initial_sign():
    rule, weights, live = _start()
    np.testing.assert_array_equal(rule.columns["s"], live["col_idx"])
    np.testing.assert_array_equal(rule.inhibitory["s"], weights["s"] < 0)
    out = rule.gradients({"s": np.ones(N_PRE * ROW)})["s"]  # all active: only the L1 pull
    np.testing.assert_allclose(out, np.where(weights["s"] < 0, 0.9, 1.1))


def test_a_crossed_synapse_moves_within_its_row_with_weight_zero_and_fresh_moments():
    rule, weights, live = _start()
    opt = Adam(lr=0.1)
    opt.step(weights, {"s": np.ones(N_PRE * ROW)})  # creates the moments
    before_cols, before_signs = live["col_idx"].copy(), rule.inhibitory["s"].copy()
    excitatory = np.flatnonzero(~before_signs)[:6]
    weights["s"][excitatory] = -0.5  # these six crossed zero against their sign
    crossed = (weights["s"] < 0) != before_signs
    rule.rewire(weights, opt, step=1)
    assert rule.last["s"] == crossed.sum() >= 6
    np.testing.assert_array_equal(live["row_ptr"], _structure()["row_ptr"])  # rows keep their length
    assert _rows_are_sets(live)  # no pair twice
    np.testing.assert_array_equal(live["col_idx"], rule.columns["s"])  # the artefact sees the move
    for q in np.flatnonzero(crossed):  # moved to a post neuron the row did not reach
        r = q // ROW
        kept = before_cols[r * ROW : (r + 1) * ROW][~crossed[r * ROW : (r + 1) * ROW]]
        assert live["col_idx"][q] not in kept
    assert np.all(weights["s"][crossed] == 0)
    np.testing.assert_array_equal(live["col_idx"][~crossed], before_cols[~crossed])
    np.testing.assert_array_equal(rule.inhibitory["s"][~crossed], before_signs[~crossed])  # signs kept
    for buf in (opt.m["s"], opt.v["s"]):
        assert np.all(buf[crossed] == 0) and np.all(buf[~crossed] != 0)


def test_the_draws_are_keyed_by_the_step_so_a_resumed_run_rewires_alike():
    outcomes = []
    for _ in range(2):
        rule, weights, _ = _start()
        weights["s"][~rule.inhibitory["s"]] = -1.0  # every excitatory one dormant
        state = DeepR(("s",), None, 0.1, seed=3, sparse={"s": N_POST})
        state.load_state_dict(rule.state_dict())  # as a checkpoint carries it
        fresh = _structure()  # a new artefact: the drawn structure, which start() overwrites
        state.start(weights, {"s": fresh})
        state.rewire(weights, Adam(), step=7)
        outcomes.append(fresh["col_idx"].copy())
    np.testing.assert_array_equal(*outcomes)
    other, weights, live = _start()
    weights["s"][~other.inhibitory["s"]] = -1.0
    other.rewire(weights, Adam(), step=8)
    assert not np.array_equal(live["col_idx"], outcomes[0])  # another step draws otherwise


def test_a_full_row_rewires_onto_the_columns_it_freed():
    weights = {"s": np.array([1.0, -1.0, 1.0, 2.0])}
    live = {"row_ptr": np.array([0, 4], np.int32), "col_idx": np.array([3, 0, 2, 1], np.int32)}
    rule = DeepR(("s",), None, seed=0, sparse={"s": 4})
    rule.start(weights, {"s": live})
    weights["s"][[0, 1]] = [-0.1, 0.1]
    rule.rewire(weights, Adam(), step=1)
    assert sorted(live["col_idx"]) == [0, 1, 2, 3] and rule.last["s"] == 2


def test_a_moved_synapse_lands_uniformly_on_the_columns_its_row_does_not_keep():
    """Over many steps, a row's two leaving synapses take every free column about equally often
    (never a kept one, never both the same), also when the row is nearly full (the draws that
    proposals keep missing finish row by row)."""
    for posts, kept_cols in ((20, [3, 7, 11]), (6, [0, 1, 2])):
        counts = np.zeros(posts, int)
        for step in range(3000):
            weights = {"s": np.array([1.0, 1.0, -1.0, 2.0, 3.0])}
            live = {
                "row_ptr": np.array([0, 5], np.int32),
                "col_idx": np.array([*kept_cols, 15 % posts, 4], np.int32),
            }
            rule = DeepR(("s",), None, seed=5, sparse={"s": posts})
            rule.start(weights, {"s": live})
            weights["s"][[3, 4]] = -0.1  # the last two cross zero
            rule.rewire(weights, Adam(), step=step)
            new = live["col_idx"][3:]
            assert new[0] != new[1] and not set(new) & set(kept_cols)
            counts[new] += 1
        free = np.setdiff1d(np.arange(posts), kept_cols)
        assert counts[kept_cols].sum() == 0
        expected = 2 * 3000 / free.size
        chi2 = float((((counts[free] - expected) ** 2) / expected).sum())
        assert chi2 < 3 * (free.size - 1) + 10, (counts, chi2)  # far beyond chance only if skewed


# compiled networks --------------------------------------------------------------------------------
EVENTPROP = """
use std.{SpikeInput, LIF, LeakyIntegrate, Exponential}
network g {
    input  x   = SpikeInput(6)
    hidden h   = LIF(12, tau_mem = 10 ms)
    output out = LeakyIntegrate(2, tau_mem = 10 ms, readout = avg_var)
    x -> h   : KIND(weight = Normal(mean = 2.0, sd = 1.0)), Exponential(tau = 5 ms)
    h -> h   : KIND(weight = Normal(mean = 0.0, sd = 0.5)), Exponential(tau = 5 ms)
    h -> out : Dense(weight = Normal(mean = 0.5, sd = 0.5)), Exponential(tau = 5 ms)
}
train g {
    algorithm = eventprop(max_spikes = 100)
    loss = sparse_categorical_crossentropy
    seed = 3
}
"""
SPARSE = ("x_to_h", "h_to_h")


def _pairs(art, name: str) -> tuple[np.ndarray, np.ndarray]:  # noqa: ANN001
    conn = art.connectivity(name)
    return np.repeat(np.arange(conn["row_ptr"].size - 1), np.diff(conn["row_ptr"])), conn["col_idx"].copy()


def _rewire(art, n_post: int) -> dict[str, np.ndarray]:  # noqa: ANN001
    """Turn a third of each sparse projection's synapses against their sign and rewire them; returns
    the column indices before."""
    before = {name: art.connectivity(name)["col_idx"].copy() for name in SPARSE}
    rule = DeepR(SPARSE, None, seed=5, sparse=dict.fromkeys(SPARSE, n_post))
    weights = art.weights  # live
    rule.start(weights, {name: art.connectivity(name) for name in SPARSE})
    for name in SPARSE:
        w = weights[name]
        w[::3] = np.where(rule.inhibitory[name][::3], 0.3, -0.3)
        w[1::3] *= 1.5  # and the rest of the weights move too
    rule.rewire(weights, Adam(), step=1)
    for name in SPARSE:
        assert rule.last[name] == before[name][::3].size
        assert (art.connectivity(name)["col_idx"] != before[name]).sum() >= rule.last[name] // 2
    return before


def _dense_twin(art, dense) -> None:  # noqa: ANN001
    """Give `dense` the dense equivalent of `art`'s (rewired) sparse weights, and delays if it has
    trainable ones (a connection's delay goes where its weight goes)."""
    weights, shapes = dict(art.get_weights()), dense.get_weights()
    for name in SPARSE:
        for key in (name, f"delay_{name}"):
            if key in weights:
                m = np.zeros(shapes[key].shape)
                m[_pairs(art, name)] = weights[key]
                weights[key] = m
    dense.set_weights(weights)


def _rewired_like_dense(source: str, before: bool = False) -> None:
    """`source` (EVENTPROP or a variant) compiled sparse and dense: after a rewiring of the sparse
    one (`before`: run once first, so that everything computed from the old structure exists), its
    forward pass and every gradient equal the dense twin's."""
    from gradcheck import compile_double
    from snnc.runtime.losses import get_loss

    loss = get_loss("sparse_categorical_crossentropy")
    rng = np.random.default_rng(3)
    x = [(np.sort(rng.uniform(1.0, 15.0, 12)), rng.integers(0, 6, 12)) for _ in range(4)]
    labels = np.array([0, 1, 1, 0])
    sparse = compile_double(source.replace("KIND(", "Sparse(p = 0.4, "), dt=0.01, duration=25.0, batch_size=4)
    dense = compile_double(source.replace("KIND(", "Dense("), dt=0.01, duration=25.0, batch_size=4)
    if before:
        sparse.run({"x": x})
    _rewire(sparse, 12)
    _dense_twin(sparse, dense)
    got, want = sparse.run({"x": x}), dense.run({"x": x})
    np.testing.assert_allclose(got.readouts["out"], want.readouts["out"], rtol=1e-12)
    assert got.events["h"][1].sum() >= 3 * 4 * 12 // 4  # the hidden layer spikes
    _, dl = loss(got.readouts["out"], labels)
    g_sparse, g_dense = sparse.backward({"out": dl}), dense.backward({"out": dl})
    assert set(g_sparse) == set(g_dense) >= {*SPARSE, "h_to_out"}
    for name, g in g_sparse.items():
        base = name.removeprefix("delay_")
        d = g_dense[name][_pairs(sparse, base)] if base in SPARSE else g_dense[name]
        assert np.abs(d).max() > 0, name
        np.testing.assert_allclose(g, d, rtol=1e-9, atol=1e-12 * np.abs(d).max(), err_msg=name)


def test_after_rewiring_eventprop_gradients_equal_the_dense_equivalents():
    _rewired_like_dense(EVENTPROP)


def test_after_rewiring_trainable_delays_arrive_at_the_moved_synapses_new_post_neuron():
    """A moved synapse keeps its delay and takes it to its new column: the ring offsets (slot x post
    + column) are recomputed from the rewired structure before the next batch, so forward pass and
    gradients (weights and delays) equal those of the Dense network holding the same weights and
    delays. Stale offsets would deliver a moved synapse's weight to its old post neuron."""
    delayed = EVENTPROP.replace(
        "x -> h   : KIND(weight = Normal(mean = 2.0, sd = 1.0))",
        "x -> h   : KIND(weight = Normal(mean = 2.0, sd = 1.0), delay = Trainable(Uniform(0 ms, 4 ms), max = 6 ms))",
    ).replace(
        "h -> h   : KIND(weight = Normal(mean = 0.0, sd = 0.5))",
        "h -> h   : KIND(weight = Normal(mean = 0.0, sd = 0.5), delay = Trainable(Uniform(0 ms, 3 ms), max = 5 ms))",
    )
    assert delayed.count("Trainable(Uniform") == 2
    _rewired_like_dense(delayed, before=True)


def test_after_rewiring_eprop_gradients_equal_the_dense_equivalents(tmp_path):
    from snnc.backends.c.backend import build_eprop_network
    from snnc.backends.c.eprop_loader import EpropArtefact

    from snnc.api import lower
    from tests.backends.eprop_pair import gradients_on_both
    from tests.backends.test_genn_eprop_sparse import SRC

    arts = {}
    for kind, conn in (("sparse", "Sparse(p = 0.5, "), ("dense", "Dense(")):
        built = build_eprop_network(
            lower(SRC.replace("KIND(", conn)), precision="double", cache_dir=tmp_path / kind
        )
        arts[kind] = EpropArtefact(built.library, built.manifest, built.static, 2)
    _rewire(arts["sparse"], 12)
    _dense_twin(arts["sparse"], arts["dense"])
    g_sparse, g_dense = gradients_on_both(arts["sparse"], arts["dense"], 2, 8, 3, 200)
    for name, g in g_dense.items():
        d = g[_pairs(arts["sparse"], name)] if name in SPARSE else g
        assert np.abs(d).max() > 0, name
        np.testing.assert_allclose(g_sparse[name], d, rtol=1e-9, atol=1e-12 * np.abs(d).max(), err_msg=name)


# snnc train ---------------------------------------------------------------------------------------
TRAIN = """
use std.{SpikeInput, LIF, LeakyIntegrate, Exponential}
network small {
    input  x   = SpikeInput(5)
    hidden h   = LIF(40, tau_mem = 20 ms, v_thresh = 1.0, tau_refrac = 0 ms)
    output out = LeakyIntegrate(3, tau_mem = 20 ms, readout = avg_var_exp_weight)
    x -> h   : Dense(weight = Normal(mean = 2.5, sd = 1.0)), Exponential(tau = 5 ms)
    h -> h   : Sparse(p = 0.2, weight = Normal(mean = 0.0, sd = 0.1)), Exponential(tau = 5 ms)
    h -> out : Sparse(p = 0.5, weight = Normal(mean = 0.93, sd = 0.3)), Exponential(tau = 5 ms)
}
train small {
    algorithm  = eventprop(max_spikes = 100)
    loss       = sparse_categorical_crossentropy
    optimizer  = adam(lr = 0.01)
    data       = yinyang(train = 512, test = 128, t_min = 2 ms, t_max = 27 ms, bias = true)
    rewiring   = deep_r(projections = (h_to_h, h_to_out), l1 = 1e-4)
    dt         = 0.5 ms
    duration   = 30 ms
    batch_size = 16
    epochs     = 4
    seed       = 1
}
"""
REWIRED = ("h_to_h", "h_to_out")
ROOT = Path(__file__).resolve().parents[2]


def _snnc(*args: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "snnc", *args]
    return subprocess.run(cmd, capture_output=True, text=True, cwd=ROOT, timeout=600)


def test_training_keeps_the_rows_and_signs_resumes_exactly_and_evaluates_the_rewired_structure(tmp_path):
    from snnc.api import compile_network

    path = tmp_path / "sparse_dr.snn"
    path.write_text(TRAIN)
    whole = _snnc("train", str(path), "--out", str(tmp_path / "whole"), "--quiet")
    assert whole.returncode == 0, whole.stderr
    drawn = compile_network(path, cache_dir=tmp_path / "cache").artefact  # the structure as drawn
    moved = dict.fromkeys(REWIRED, 0)
    for epoch in range(4):
        ck = np.load(tmp_path / "whole" / f"epoch-{epoch:04d}.npz")
        for name in REWIRED:
            rows, cols = drawn.connectivity(name)["row_ptr"], ck[f"optimiser/rewiring/columns/{name}"]
            assert cols.shape == drawn.connectivity(name)["col_idx"].shape  # as many synapses as drawn
            assert _rows_are_sets({"row_ptr": rows, "col_idx": cols})
            w, inhibitory = ck[f"weights/{name}"], ck[f"optimiser/rewiring/inhibitory/{name}"].astype(bool)
            assert np.all(np.where(inhibitory, w <= 0, w >= 0)), name  # every synapse keeps its sign
            moved[name] += int((cols != drawn.connectivity(name)["col_idx"]).sum())
    assert moved["h_to_h"] > 0  # synapses did move
    metrics = json.loads((tmp_path / "whole" / "metrics.json").read_text())
    assert metrics["test"]["accuracy"] >= 0.55  # it learns (the classes are about a third each)

    first = _snnc("train", str(path), "--out", str(tmp_path / "part"), "--quiet", "--epochs", "2")
    assert first.returncode == 0, first.stderr
    rest = _snnc("train", str(path), "--out", str(tmp_path / "part"), "--quiet", "--resume")
    assert rest.returncode == 0, rest.stderr
    a, b = np.load(tmp_path / "whole" / "epoch-0003.npz"), np.load(tmp_path / "part" / "epoch-0003.npz")
    for key in a.files:
        if key != "meta.json":
            np.testing.assert_array_equal(a[key], b[key], err_msg=key)

    checkpoint = str(tmp_path / "whole" / "epoch-0003.npz")
    evaluated = _snnc("evaluate", str(path), "--checkpoint", checkpoint, "--quiet")
    assert evaluated.returncode == 0, evaluated.stderr
    assert f"accuracy {metrics['test']['accuracy']:.4f}" in evaluated.stdout + evaluated.stderr


def test_the_genn_backend_refuses_sparse_rewiring_at_the_call(tmp_path):
    path = tmp_path / "sparse_dr.snn"
    path.write_text(TRAIN)
    run = _snnc("check", str(path), "--backend", "genn")
    assert run.returncode == 1 and "Traceback" not in run.stderr
    assert (
        f"{path}:16:18: error: the genn backend cannot rewire sparse projections with deep_r ('h_to_h')"
        in run.stderr
    )
    assert _snnc("check", str(path)).returncode == 0


@pytest.mark.parametrize(
    ("setting", "message"),
    [
        (
            "deep_r(projections = (h_to_h, h_to_out), connectivity = 0.2)",
            "connectivity applies to Dense projections, and every one named is sparse",
        ),
        (
            "deep_r(projections = (h_to_h, x_to_h))",
            "connectivity = … is needed for the Dense projection(s) x_to_h",
        ),
    ],
)
def test_a_bad_sparse_rewiring_is_a_located_error(tmp_path, setting, message):
    path = tmp_path / "bad.snn"
    path.write_text(TRAIN.replace("deep_r(projections = (h_to_h, h_to_out), l1 = 1e-4)", setting))
    run = _snnc("train", str(path), "--out", str(tmp_path / "run"), "--quiet")
    assert run.returncode == 1 and "Traceback" not in run.stderr, run.stderr
    assert f"{path}:16:18:" in run.stderr and message in run.stderr, run.stderr


EPROP = (
    (ROOT / "examples" / "eprop_pattern.snn")
    .read_text()
    .replace("LIF(256", "LIF(64")
    .replace(
        "h -> h   : Dense(weight = Normal(mean = 0.0, sd = 0.0625))",
        "h -> h   : Sparse(p = 0.2, weight = Normal(mean = 0.0, sd = 0.125))",
    )
    .replace("duration   = 1000 ms", "duration   = 300 ms")
    .replace("duration = 1000 ms", "duration = 300 ms")
    .replace("epochs     = 500", "epochs     = 30")
    .replace(
        "    dt         = 1 ms",
        "    rewiring   = deep_r(projections = (h_to_h), l1 = 1e-5)\n    dt         = 1 ms",
    )
)


def test_eprop_trains_a_rewired_sparse_recurrent_layer(tmp_path):
    assert "Sparse(p = 0.2" in EPROP and "deep_r(" in EPROP and "epochs     = 30" in EPROP
    path = tmp_path / "pattern.snn"
    path.write_text(EPROP)
    run = _snnc("train", str(path), "--out", str(tmp_path / "run"), "--quiet")
    assert run.returncode == 0, run.stderr
    first, last = (np.load(tmp_path / "run" / f"epoch-{e:04d}.npz") for e in (0, 29))
    key = "optimiser/rewiring/columns/h_to_h"
    assert first[key].shape == last[key].shape and (first[key] != last[key]).sum() > 0
    epochs = json.loads((tmp_path / "run" / "metrics.json").read_text())["epochs"]
    assert epochs[-1]["train"]["loss"] < 0.75 * epochs[0]["train"]["loss"]


def test_eprop_gradients_follow_a_rewiring_between_batches(tmp_path):
    """The C kernel learns post-major on an order it sorts from the CSR arrays once per batch: after
    a batch, a rewiring and another batch, the gradients are still the dense equivalents'."""
    from snnc.backends.c.backend import build_eprop_network
    from snnc.backends.c.eprop_loader import EpropArtefact

    from snnc.api import lower
    from tests.backends.eprop_pair import gradients_on_both
    from tests.backends.test_genn_eprop_sparse import SRC

    arts = {}
    for kind, conn in (("sparse", "Sparse(p = 0.5, "), ("dense", "Dense(")):
        built = build_eprop_network(
            lower(SRC.replace("KIND(", conn)), precision="double", cache_dir=tmp_path / kind
        )
        arts[kind] = EpropArtefact(built.library, built.manifest, built.static, 2)
    for rewired in (False, True):
        if rewired:
            _rewire(arts["sparse"], 12)
        _dense_twin(arts["sparse"], arts["dense"])
        g_sparse, g_dense = gradients_on_both(arts["sparse"], arts["dense"], 2, 8, 3, 200)
        for name in SPARSE:
            d = g_dense[name][_pairs(arts["sparse"], name)]
            assert np.abs(d).max() > 0, name
            np.testing.assert_allclose(
                g_sparse[name], d, rtol=1e-9, atol=1e-12 * np.abs(d).max(), err_msg=f"{name} {rewired}"
            )
