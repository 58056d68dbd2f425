"""e-prop from the C backend (float64) against surrogate-gradient BPTT written here in numpy.

For a feed-forward network (inputs -> one LIF layer -> leaky readouts) without adaptation, e-prop's
factorisation of the gradient into eligibility traces and learning signals is exact once BPTT, like
Bellec et al., stops the gradient through the reset (the standard "detached reset" convention). The
BPTT below is independent of the e-prop code: it records the forward pass (same discrete dynamics as
the Discrete IR: one-step synaptic delay, v ← α v + (1 − α) i, spike when v ≥ ϑ, v ← v − ϑ z) and runs
reverse-mode differentiation through time with the same pseudo-derivative
ψ = γ/ϑ · max(0, 1 − |v − ϑ|/ϑ) in place of dz/dv. Loss: per-step softmax cross-entropy (a
`sum_var` readout), or per-step ½‖v − y*‖² (mse on a `var` readout with per-step targets). A
`sum_var(v, start = …, stop = …)` readout sums the steps of its window only, and its per-step
cross-entropy is zero outside it (Bellec et al.'s loss over the recall period).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from snnc.backends.c.backend import build_eprop_network
from snnc.backends.c.eprop_loader import EpropArtefact
from snnc.frontend import load_source
from snnc.passes.discretise import discretise
from snnc.passes.eprop import eprop

K, N_IN, N_H, N_OUT, DT = 60, 5, 12, 3, 1.0
TAU_M, TAU_OUT, VTH, GAMMA = 20.0, 15.0, 1.0, 0.3

SRC = """
use std.{{LIF, LeakyIntegrate, SpikeInput, Delta}}
network ff {{
    input x = SpikeInput(5)
    hidden h = LIF(12, tau_mem = 20 ms, relative_reset = 1)
    output out = LeakyIntegrate(3, tau_mem = 15 ms, readout = {readout})
    x -> h : Dense(weight = Normal(mean = 0.0, sd = 1.0)), Delta
    h -> out : Dense(weight = Normal(mean = 0.0, sd = 1.0)), Delta
}}
train ff {{
    algorithm = eprop(c_reg = 0.0)
    loss = {loss}
    dt = 1 ms
    duration = 60 ms
}}
"""
CASES = {
    "crossentropy": ("sum_var(v)", "sparse_categorical_crossentropy"),
    "mse": ("var(v)", "mse"),
    "windowed": ("sum_var(v, start = 20 ms, stop = 45 ms)", "sparse_categorical_crossentropy"),
}
WINDOW = slice(20, 45)  # the steps k with 20 ms <= k·dt < 45 ms


def make_example(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "x": (rng.random((K, N_IN)) < 0.3).astype(float),
        "label": np.array(rng.integers(N_OUT)),
        "target": rng.normal(0.0, 1.0, (K, N_OUT)),
    }


def make_weights(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "w_in": rng.normal(1.0, 1.5, (N_IN, N_H)) * 4.0,
        "w_out": rng.normal(0.0, 1.0, (N_H, N_OUT)),
        "bias": rng.normal(0.0, 0.5, N_OUT),
    }


def forward(w: dict[str, np.ndarray], x: np.ndarray) -> dict[str, np.ndarray]:
    """The forward pass, keeping each step's pre-reset membrane, spikes and readout."""
    al, kap = np.exp(-DT / TAU_M), np.exp(-DT / TAU_OUT)
    v, vo = np.zeros(N_H), np.zeros(N_OUT)
    z_prev, x_prev = np.zeros(N_H), np.zeros(N_IN)
    pre_v, zs, vos = [], [], []
    for k in range(K):
        v = al * v + (1 - al) * (x_prev @ w["w_in"])
        vo = kap * vo + (1 - kap) * (z_prev @ w["w_out"] + w["bias"])
        z = (v >= VTH).astype(float)
        pre_v.append(v.copy()), zs.append(z), vos.append(vo.copy())
        v = v - VTH * z  # reset; BPTT treats this z as a constant (gradient stopped)
        z_prev, x_prev = z, x[k]
    return {"pre_v": np.array(pre_v), "z": np.array(zs), "vo": np.array(vos)}


def _softmax(v: np.ndarray) -> np.ndarray:
    e = np.exp(v - v.max())
    return e / e.sum()


def bptt(w: dict[str, np.ndarray], ex: dict[str, np.ndarray], loss: str) -> dict[str, np.ndarray]:
    """dL/dW by reverse-mode through the recorded trajectory (ψ for dz/dv, reset detached)."""
    al, kap = np.exp(-DT / TAU_M), np.exp(-DT / TAU_OUT)
    rec = forward(w, ex["x"])
    x_in = np.vstack([np.zeros((1, N_IN)), ex["x"][:-1]])  # input that reaches step k
    z_in = np.vstack([np.zeros((1, N_H)), rec["z"][:-1]])  # hidden spikes that reach the readout at k
    if loss == "mse":
        dl_dvo = rec["vo"] - ex["target"]
    else:
        dl_dvo = np.array([_softmax(vo) for vo in rec["vo"]]) - np.eye(N_OUT)[ex["label"]]
    if loss == "windowed":
        inside = np.zeros(K, bool)
        inside[WINDOW] = True
        dl_dvo[~inside] = 0.0
    psi = GAMMA / VTH * np.maximum(0.0, 1.0 - np.abs(rec["pre_v"] - VTH) / VTH)
    g = {name: np.zeros_like(val) for name, val in w.items()}
    g_vo, g_v = np.zeros(N_OUT), np.zeros(N_H)  # adjoints of vo_k and pre-reset v_k
    g_z_next = np.zeros(N_H)  # dL/dz_k through the readout input of step k + 1
    for k in reversed(range(K)):
        g_vo = dl_dvo[k] + kap * g_vo
        g_v = psi[k] * g_z_next + al * g_v  # v_{k+1} = α (v_k − ϑ sg(z_k)) + …
        drive_o = (1 - kap) * g_vo  # dL/d(input of the readout at step k)
        g["w_out"] += np.outer(z_in[k], drive_o)
        g["bias"] += drive_o
        g["w_in"] += np.outer(x_in[k], (1 - al) * g_v)
        g_z_next = w["w_out"] @ drive_o  # z_{k-1} feeds the readout input of step k
    return g


def _artefact(case: str, tmp: Path, batch: int) -> EpropArtefact:
    readout, loss = CASES[case]
    net = eprop(discretise(load_source(SRC.format(readout=readout, loss=loss), "ff.snn")))
    built = build_eprop_network(net, precision="double", cache_dir=tmp)
    return EpropArtefact(built.library, built.manifest, built.static, batch)


def _spikes(x: np.ndarray):
    k, i = np.nonzero(x)
    return (k * DT, i)


def _cosine(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.dot(a.ravel(), b.ravel()) / (np.linalg.norm(a) * np.linalg.norm(b)))


@pytest.mark.parametrize("case", sorted(CASES))
def test_eprop_equals_bptt_for_a_feed_forward_layer(case, tmp_path):
    w = make_weights(1)
    batch = [make_example(s) for s in (2, 3, 4)]
    art = _artefact(case, tmp_path, batch=len(batch))
    art.set_weights({"x_to_h": w["w_in"], "h_to_out": w["w_out"], "bias_out": w["bias"]})
    if case == "mse":
        art.set_targets({"out": np.array([ex["target"] for ex in batch])})
    else:
        art.set_targets({"out": np.array([ex["label"] for ex in batch])})
    res = art.run({"x": [_spikes(ex["x"]) for ex in batch]})
    got = art.backward({})

    recs = [forward(w, ex["x"]) for ex in batch]
    if case == "mse":  # the same dynamics: the C readout trace is the numpy one
        np.testing.assert_allclose(res.readouts["out"], [r["vo"] for r in recs], rtol=1e-9, atol=1e-12)
    if case == "windowed":  # the readout sums the window's steps only
        window_sums = [r["vo"][WINDOW].sum(0) for r in recs]
        np.testing.assert_allclose(res.readouts["out"], window_sums, rtol=1e-9, atol=1e-12)
        assert not np.allclose(window_sums, [r["vo"].sum(0) for r in recs])
    for r in recs:  # the hidden layer spikes, and often sits where ψ > 0 without spiking
        assert r["z"].sum() >= 10
        assert ((r["pre_v"] > 0.1) & (r["pre_v"] < VTH)).sum() >= 20

    ref = {name: sum(bptt(w, ex, case)[name] for ex in batch) for name in w}
    if case == "windowed":  # the window changes the gradient: the comparison below can tell
        whole = sum(bptt(w, ex, "crossentropy")["w_out"] for ex in batch)
        assert not np.allclose(whole, ref["w_out"], rtol=0.1)
    keys = {"w_in": "x_to_h", "w_out": "h_to_out", "bias": "bias_out"}
    for name, key in keys.items():
        assert np.abs(ref[name]).max() > 1e-3, name
        assert got[key].shape == ref[name].shape
        assert _cosine(got[key], ref[name]) >= 0.99, name
        # exact in theory: agreement to rounding, not just in direction
        np.testing.assert_allclose(got[key], ref[name], rtol=1e-6, atol=1e-9, err_msg=name)


def test_bptt_reference_matches_finite_differences_of_the_readout_weights():
    """The numpy BPTT is a real gradient where the loss is smooth (readout weights and bias)."""
    w, ex = make_weights(1), make_example(2)

    def loss(ww):
        vo = forward(ww, ex["x"])["vo"]
        return 0.5 * ((vo - ex["target"]) ** 2).sum()

    g = bptt(w, ex, "mse")
    h = 1e-6
    for name in ("w_out", "bias"):
        fd = np.zeros_like(w[name])
        for idx in np.ndindex(w[name].shape):
            plus, minus = {**w, name: w[name].copy()}, {**w, name: w[name].copy()}
            plus[name][idx] += h
            minus[name][idx] -= h
            fd[idx] = (loss(plus) - loss(minus)) / (2 * h)
        np.testing.assert_allclose(g[name], fd, rtol=1e-5, atol=1e-8, err_msg=name)
