"""e-prop's gradients of trained synapse params (C backend, float64) against truncated BPTT in numpy.

Inputs -> one LIF layer (relative reset) -> leaky readouts, as `test_eprop_param_bptt.py`, with
Exponential synapses whose `tau` is trained: per post neuron on `x -> h` (hidden: e-prop) and shared
on `x -> out` (output: the exact gradient). snnc's exact step of an Exponential synapse is
`i⁺ = i + Σ w z_pre` (delivery), input `s(τ) i⁺` with `s = τ(1 − ρ)/dt` (the step's average), then
`i ← ρ i⁺` with `ρ = exp(−dt/τ)`; so τ reaches the membrane twice, through the synapse's decay and
through its output's scale. The BPTT is written out independently, as reverse-mode through the
recorded trajectory with the reset's z stopped (v ← v − ϑ·sg(z)); for a feed-forward layer e-prop's
factorisation is then exact (∂L/∂τ = Σ_t L_t ē_τ,t−1), so the two agree to rounding.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from snnc.backends.c.backend import build_eprop_network
from snnc.backends.c.eprop_loader import EpropArtefact
from snnc.frontend import load_source
from snnc.passes.discretise import discretise
from snnc.passes.eprop import eprop

from .test_eprop_param_bptt import (
    DT,
    GAMMA,
    N_H,
    N_IN,
    N_OUT,
    TAU_OUT,
    K,
    _softmax,
    _spikes,
    central_differences,
    make_example,
)

TAU_MEM, VTH = 20.0, 1.0

SRC = """
use std.{LIF, LeakyIntegrate, SpikeInput, Delta, Exponential}
network ff {
    input x = SpikeInput(5)
    hidden h = LIF(12, tau_mem = 20 ms, relative_reset = 1)
    output out = LeakyIntegrate(3, tau_mem = 15 ms, readout = sum_var(v))
    x -> h : Dense(weight = Normal(mean = 0.0, sd = 1.0)), Exponential(tau = Trainable(5 ms,
             per_neuron = true, min = 1 ms, max = 50 ms))
    x -> out : Dense(weight = Normal(mean = 0.0, sd = 1.0)), Exponential(tau = Trainable(8 ms))
    h -> out : Dense(weight = Normal(mean = 0.0, sd = 1.0)), Delta
}
train ff {
    algorithm = eprop(c_reg = 0.0)
    loss = sparse_categorical_crossentropy
    dt = 1 ms
    duration = 60 ms
}
"""

KEYS = {
    "w_in": "x_to_h",
    "w_xo": "x_to_out",
    "w_out": "h_to_out",
    "bias": "bias_out",
    "tau1": "tau_x_to_h",
    "tau2": "tau_x_to_out",
}


def make_params(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "w_in": rng.normal(1.0, 1.5, (N_IN, N_H)) * 2.0,
        "w_xo": rng.normal(0.0, 0.5, (N_IN, N_OUT)),
        "w_out": rng.normal(0.0, 1.0, (N_H, N_OUT)),
        "bias": rng.normal(0.0, 0.5, N_OUT),
        "tau1": rng.uniform(2.0, 10.0, N_H),  # per post neuron
        "tau2": np.array([6.0]),  # shared
    }


def _synapse(tau: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """ρ, s and their derivatives in τ for snnc's exact Exponential step."""
    rho = np.exp(-DT / tau)
    s = tau * (1 - rho) / DT
    drho = rho * DT / tau**2
    ds = (1 - rho) / DT - rho / tau
    return rho, s, drho, ds


def forward(p: dict[str, np.ndarray], x: np.ndarray) -> dict[str, np.ndarray]:
    """The forward pass, keeping what the reverse pass reads."""
    al, kap = np.exp(-DT / TAU_MEM), np.exp(-DT / TAU_OUT)
    rho1, s1, _, _ = _synapse(p["tau1"])
    rho2, s2, _, _ = _synapse(p["tau2"][0])
    v, vo, i1, i2 = np.zeros(N_H), np.zeros(N_OUT), np.zeros(N_H), np.zeros(N_OUT)
    z_prev, x_prev = np.zeros(N_H), np.zeros(N_IN)
    rec = {k: [] for k in ("pre_v", "z", "vo", "ia1", "ia2", "x_in", "z_in")}
    for k in range(K):
        ia1, ia2 = i1 + x_prev @ p["w_in"], i2 + x_prev @ p["w_xo"]  # delivery
        v = al * v + (1 - al) * s1 * ia1
        vo = kap * vo + (1 - kap) * (s2 * ia2 + z_prev @ p["w_out"] + p["bias"])
        i1, i2 = rho1 * ia1, rho2 * ia2
        z = (v >= VTH).astype(float)
        for name, value in (("pre_v", v), ("z", z), ("vo", vo), ("ia1", ia1), ("ia2", ia2)):
            rec[name].append(value.copy())
        rec["x_in"].append(x_prev), rec["z_in"].append(z_prev)
        v = v - VTH * z  # reset; BPTT treats this z as a constant (gradient stopped)
        z_prev, x_prev = z, x[k]
    return {k: np.array(v) for k, v in rec.items()}


def bptt(p: dict[str, np.ndarray], ex: dict[str, np.ndarray], paths: tuple[str, ...] = ("decay", "scale")):
    """dL/d(weights and params) by reverse-mode through the recorded trajectory; `paths` picks the
    routes by which τ moves the loss (its decay ρ, its output scale s), to show that each matters."""
    al, kap = np.exp(-DT / TAU_MEM), np.exp(-DT / TAU_OUT)
    rho1, s1, drho1, ds1 = _synapse(p["tau1"])
    rho2, s2, drho2, ds2 = _synapse(p["tau2"][0])
    use_rho, use_s = float("decay" in paths), float("scale" in paths)
    rec = forward(p, ex["x"])
    dl_dvo = np.array([_softmax(vo) for vo in rec["vo"]]) - np.eye(N_OUT)[ex["label"]]
    psi = GAMMA / VTH * np.maximum(0.0, 1.0 - np.abs(rec["pre_v"] - VTH) / VTH)
    g = {name: np.zeros_like(val) for name, val in p.items()}
    g_vo, g_v, g_i1, g_i2, g_z = np.zeros(N_OUT), np.zeros(N_H), np.zeros(N_H), np.zeros(N_OUT), np.zeros(N_H)
    for k in reversed(range(K)):
        g_vo = dl_dvo[k] + kap * g_vo  # of vo_k
        d_in_o = (1 - kap) * g_vo  # of the readout's input at k
        g_ia2 = s2 * d_in_o + rho2 * g_i2  # of i2 after delivery at k (g_i2: of i2_k)
        g["tau2"] += (use_s * ds2 * d_in_o + use_rho * drho2 * g_i2) @ rec["ia2"][k]
        g["w_xo"] += np.outer(rec["x_in"][k], g_ia2)
        g_v = psi[k] * g_z + al * g_v  # of the pre-reset v_k
        d_in_h = (1 - al) * g_v
        g_ia1 = s1 * d_in_h + rho1 * g_i1
        g["tau1"] += (use_s * ds1 * d_in_h + use_rho * drho1 * g_i1) * rec["ia1"][k]
        g["w_in"] += np.outer(rec["x_in"][k], g_ia1)
        g["w_out"] += np.outer(rec["z_in"][k], d_in_o)
        g["bias"] += d_in_o
        g_i1, g_i2 = g_ia1, g_ia2  # i_{k-1} enters i⁺_k unscaled
        g_z = p["w_out"] @ d_in_o  # z_{k-1} reaches the readout at k
    return g


def loss_of(p: dict[str, np.ndarray], ex: dict[str, np.ndarray]) -> float:
    return float(sum(-np.log(_softmax(v)[ex["label"]]) for v in forward(p, ex["x"])["vo"]))


def test_eprop_synapse_param_gradients_equal_truncated_bptt(tmp_path: Path) -> None:
    p = make_params(1)
    batch = [make_example(s) for s in (2, 3, 4)]
    net = eprop(discretise(load_source(SRC, "ff.snn")))
    assert {"tau_x_to_h", "tau_x_to_out"} <= set(net.training.params)
    built = build_eprop_network(net, precision="double", cache_dir=tmp_path)
    art = EpropArtefact(built.library, built.manifest, built.static, len(batch))
    art.set_weights({KEYS[k]: v for k, v in p.items()})
    art.set_targets({"out": np.array([ex["label"] for ex in batch])})
    res = art.run({"x": [_spikes(ex["x"]) for ex in batch]})
    got = art.backward({})
    recs = [forward(p, ex["x"]) for ex in batch]
    np.testing.assert_allclose(res.readouts["out"], [r["vo"].sum(0) for r in recs], rtol=1e-9, atol=1e-12)
    for r in recs:  # the hidden layer spikes, and often sits where ψ > 0 without spiking
        assert r["z"].sum() >= 10
        assert ((r["pre_v"] > 0.1) & (r["pre_v"] < VTH)).sum() >= 20
    ref = {name: sum(bptt(p, ex)[name] for ex in batch) for name in p}
    for name, key in KEYS.items():
        assert np.abs(ref[name]).max() > 1e-4, name
        assert got[key].shape == p[name].shape, name
        np.testing.assert_allclose(got[key], ref[name], rtol=1e-6, atol=1e-9, err_msg=name)


def test_both_paths_of_a_synapse_time_constant_matter() -> None:
    """τ's decay path and its output-scale path each carry a sizeable share of dL/dτ, so the test
    above fails if the derivation drops either (or the synapse state's eligibility altogether)."""
    p, ex = make_params(1), make_example(2)
    full = bptt(p, ex)
    for paths in (("decay",), ("scale",)):
        part = bptt(p, ex, paths)
        for name in ("tau1", "tau2"):
            off = np.linalg.norm(part[name] - full[name]) / np.linalg.norm(full[name])
            assert off > 0.05, (paths, name, off)


def test_bptt_reference_matches_finite_differences_of_the_readout_synapse() -> None:
    """The numpy BPTT is a real gradient where the loss is smooth: the input -> readout synapse's τ
    and weights (no spike lies on their path)."""
    p, ex = make_params(1), make_example(2)
    g = bptt(p, ex)
    for name in ("tau2", "w_xo", "w_out"):
        fd = central_differences(lambda q: loss_of(q, ex), p, name)
        np.testing.assert_allclose(g[name], fd, rtol=1e-5, atol=1e-8, err_msg=name)


def test_a_shared_synapse_param_of_a_hidden_layer_gets_the_sum_over_its_neurons(tmp_path: Path) -> None:
    src = SRC.replace("Trainable(5 ms,\n             per_neuron = true,", "Trainable(5 ms,")
    assert src.count("per_neuron") == 0
    p = {**make_params(1), "tau1": np.array([4.0])}
    expanded = {**p, "tau1": np.full(N_H, 4.0)}
    batch = [make_example(s) for s in (2, 3)]
    built = build_eprop_network(
        eprop(discretise(load_source(src, "ff.snn"))), precision="double", cache_dir=tmp_path
    )
    art = EpropArtefact(built.library, built.manifest, built.static, len(batch))
    art.set_weights({KEYS[k]: v for k, v in p.items()})
    art.set_targets({"out": np.array([ex["label"] for ex in batch])})
    art.run({"x": [_spikes(ex["x"]) for ex in batch]})
    got = art.backward({})["tau_x_to_h"]
    ref = sum(bptt(expanded, ex)["tau1"] for ex in batch).sum()
    assert got.shape == (1,) and abs(ref) > 1e-4
    np.testing.assert_allclose(got, [ref], rtol=1e-6, atol=1e-9)
