"""e-prop's gradients of trained neuron params (C backend, float64) against truncated BPTT in numpy.

The network of `test_eprop_bptt.py` (inputs -> one LIF layer with a relative reset -> leaky
readouts), with the hidden layer's `tau_mem` trained per neuron and its `v_thresh` shared. For a
feed-forward layer e-prop's factorisation is exact once BPTT stops the gradient through the reset's
z (v ← v − ϑ·sg(z)): with ε_p = dv/dp along the trajectory (ε ← α ε + ∂α/∂τ (v − I) for τ; the reset
adds −z for ϑ), e_p = ψ (ε_p + ∂θ/∂p) (∂θ/∂ϑ = −1), and ∂L/∂p = Σ_t L_t ē_p,t−1 with L scaled by
the readout's 1 − κ, the pairing the weights use. The BPTT here is written independently: it
records the forward pass and runs reverse-mode through it with ψ = γ/ϑ · max(0, 1 − |v − ϑ|/ϑ) for
dz/dv (and −ψ for dz/dϑ). A readout's `tau_mem`, trained per neuron, gets the exact gradient.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from snnc.backends.c.backend import build_eprop_network
from snnc.backends.c.eprop_loader import EpropArtefact
from snnc.frontend import load_source
from snnc.passes.discretise import discretise
from snnc.passes.eprop import eprop

K, N_IN, N_H, N_OUT, DT, GAMMA, TAU_OUT = 60, 5, 12, 3, 1.0, 0.3, 15.0

SRC = """
use std.{LIF, LeakyIntegrate, SpikeInput, Delta}
network ff {
    input x = SpikeInput(5)
    hidden h = LIF(12, tau_mem = Trainable(20 ms, per_neuron = true, min = 2 ms),
                   v_thresh = Trainable(1.0), relative_reset = 1)
    output out = LeakyIntegrate(3, tau_mem = 15 ms, readout = sum_var(v))
    x -> h : Dense(weight = Normal(mean = 0.0, sd = 1.0)), Delta
    h -> out : Dense(weight = Normal(mean = 0.0, sd = 1.0)), Delta
}
train ff {
    algorithm = eprop(c_reg = 0.0)
    loss = sparse_categorical_crossentropy
    dt = 1 ms
    duration = 60 ms
}
"""


def make_example(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {"x": (rng.random((K, N_IN)) < 0.3).astype(float), "label": np.array(rng.integers(N_OUT))}


def make_params(seed: int) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "w_in": rng.normal(1.0, 1.5, (N_IN, N_H)) * 4.0,
        "w_out": rng.normal(0.0, 1.0, (N_H, N_OUT)),
        "bias": rng.normal(0.0, 0.5, N_OUT),
        "tau": rng.uniform(10.0, 30.0, N_H),  # per neuron
        "vth": np.array([0.8]),  # shared
    }


def forward(p: dict[str, np.ndarray], x: np.ndarray) -> dict[str, np.ndarray]:
    """The forward pass, keeping each step's pre- and post-reset membrane, spikes and readout."""
    al, kap, vth = np.exp(-DT / p["tau"]), np.exp(-DT / TAU_OUT), p["vth"][0]
    v, vo = np.zeros(N_H), np.zeros(N_OUT)
    z_prev, x_prev = np.zeros(N_H), np.zeros(N_IN)
    pre_v, post_v, zs, vos = [], [], [], []
    for k in range(K):
        v = al * v + (1 - al) * (x_prev @ p["w_in"])
        vo = kap * vo + (1 - kap) * (z_prev @ p["w_out"] + p["bias"])
        z = (v >= vth).astype(float)
        pre_v.append(v.copy()), zs.append(z), vos.append(vo.copy())
        v = v - vth * z  # reset; BPTT treats this z as a constant (gradient stopped)
        post_v.append(v.copy())
        z_prev, x_prev = z, x[k]
    return {"pre_v": np.array(pre_v), "post_v": np.array(post_v), "z": np.array(zs), "vo": np.array(vos)}


def _softmax(v: np.ndarray) -> np.ndarray:
    e = np.exp(v - v.max())
    return e / e.sum()


def bptt(p: dict[str, np.ndarray], ex: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """dL/d(weights and params) by reverse-mode through the recorded trajectory."""
    al, kap, vth = np.exp(-DT / p["tau"]), np.exp(-DT / TAU_OUT), p["vth"][0]
    dal = al * DT / p["tau"] ** 2  # dα/dτ
    rec = forward(p, ex["x"])
    x_in = np.vstack([np.zeros((1, N_IN)), ex["x"][:-1]])  # input that reaches step k
    z_in = np.vstack([np.zeros((1, N_H)), rec["z"][:-1]])  # hidden spikes that reach the readout at k
    drive = x_in @ p["w_in"]  # I_k
    v_before = np.vstack([np.zeros((1, N_H)), rec["post_v"][:-1]])  # v_{k-1} after its reset
    dl_dvo = np.array([_softmax(vo) for vo in rec["vo"]]) - np.eye(N_OUT)[ex["label"]]
    psi = GAMMA / vth * np.maximum(0.0, 1.0 - np.abs(rec["pre_v"] - vth) / vth)
    g = {name: np.zeros_like(val) for name, val in p.items()}
    g_vo, g_v = np.zeros(N_OUT), np.zeros(N_H)  # adjoints of vo_k and pre-reset v_k
    g_z = np.zeros(N_H)  # dL/dz_k through the readout input of step k + 1
    for k in reversed(range(K)):
        g_vo = dl_dvo[k] + kap * g_vo
        g["vth"] += -(psi[k] * g_z).sum()  # z_k = H(v_k − ϑ)
        g["vth"] += -(al * g_v * rec["z"][k]).sum()  # v_{k+1} = α (v_k − ϑ sg(z_k)) + …
        g_v = psi[k] * g_z + al * g_v
        g["tau"] += g_v * dal * (v_before[k] - drive[k])
        g["w_out"] += np.outer(z_in[k], (1 - kap) * g_vo)
        g["bias"] += (1 - kap) * g_vo
        g["w_in"] += np.outer(x_in[k], (1 - al) * g_v)
        g_z = p["w_out"] @ ((1 - kap) * g_vo)
    return g


def loss_of(p: dict[str, np.ndarray], ex: dict[str, np.ndarray]) -> float:
    vo = forward(p, ex["x"])["vo"]
    return float(sum(-np.log(_softmax(v)[ex["label"]]) for v in vo))


KEYS = {
    "w_in": "x_to_h",
    "w_out": "h_to_out",
    "bias": "bias_out",
    "tau": "tau_mem_h",
    "vth": "v_thresh_h",
}


def central_differences(
    loss: Callable[[dict[str, np.ndarray]], float], p: dict[str, np.ndarray], name: str, h: float = 1e-6
) -> np.ndarray:
    """dloss/dp[name] by central differences, one element at a time."""
    fd = np.zeros_like(p[name])
    for idx in np.ndindex(p[name].shape):
        plus, minus = {**p, name: p[name].copy()}, {**p, name: p[name].copy()}
        plus[name][idx] += h
        minus[name][idx] -= h
        fd[idx] = (loss(plus) - loss(minus)) / (2 * h)
    return fd


def artefact(tmp: Path, batch: int) -> EpropArtefact:
    net = eprop(discretise(load_source(SRC, "ff.snn")))
    built = build_eprop_network(net, precision="double", cache_dir=tmp)
    return EpropArtefact(built.library, built.manifest, built.static, batch)


def _spikes(x: np.ndarray):
    k, i = np.nonzero(x)
    return (k * DT, i)


def test_eprop_param_gradients_equal_truncated_bptt(tmp_path: Path) -> None:
    p = make_params(1)
    batch = [make_example(s) for s in (2, 3, 4)]
    art = artefact(tmp_path, len(batch))
    art.set_weights({KEYS[k]: v for k, v in p.items()})
    art.set_targets({"out": np.array([ex["label"] for ex in batch])})
    res = art.run({"x": [_spikes(ex["x"]) for ex in batch]})
    got = art.backward({})
    recs = [forward(p, ex["x"]) for ex in batch]
    np.testing.assert_allclose(res.readouts["out"], [r["vo"].sum(0) for r in recs], rtol=1e-9, atol=1e-12)
    for r in recs:  # the hidden layer spikes, and often sits where ψ > 0 without spiking
        assert r["z"].sum() >= 10
        assert ((r["pre_v"] > 0.1) & (r["pre_v"] < p["vth"][0])).sum() >= 20
    ref = {name: sum(bptt(p, ex)[name] for ex in batch) for name in p}
    for name, key in KEYS.items():
        assert np.abs(ref[name]).max() > 1e-4, name
        assert got[key].shape == p[name].shape, name
        # exact in theory: agreement to rounding
        np.testing.assert_allclose(got[key], ref[name], rtol=1e-6, atol=1e-9, err_msg=name)


def test_the_reset_term_of_a_trained_threshold_matters() -> None:
    """Leaving out the reset's −z for ϑ (or the direct −ψ) moves dL/dϑ far off: the test above can tell."""
    p, ex = make_params(1), make_example(2)
    full = bptt(p, ex)["vth"][0]
    rec = forward(p, ex["x"])
    al = np.exp(-DT / p["tau"])
    # the reset's share alone, recomputed: a sizeable part of the total
    g_vo, g_v, g_z, share = np.zeros(N_OUT), np.zeros(N_H), np.zeros(N_H), 0.0
    kap, vth = np.exp(-DT / TAU_OUT), p["vth"][0]
    dl_dvo = np.array([_softmax(vo) for vo in rec["vo"]]) - np.eye(N_OUT)[ex["label"]]
    psi = GAMMA / vth * np.maximum(0.0, 1.0 - np.abs(rec["pre_v"] - vth) / vth)
    for k in reversed(range(K)):
        g_vo = dl_dvo[k] + kap * g_vo
        share += -(al * g_v * rec["z"][k]).sum()
        g_v = psi[k] * g_z + al * g_v
        g_z = p["w_out"] @ ((1 - kap) * g_vo)
    assert abs(share) > 0.05 * abs(full)


def test_bptt_reference_matches_finite_differences_of_the_readout_params() -> None:
    """The numpy BPTT is a real gradient where the loss is smooth (the readout weights and bias)."""
    p, ex = make_params(1), make_example(2)
    g = bptt(p, ex)
    for name in ("w_out", "bias"):
        fd = central_differences(lambda q: loss_of(q, ex), p, name)
        np.testing.assert_allclose(g[name], fd, rtol=1e-5, atol=1e-8, err_msg=name)


def test_a_trained_readout_param_gets_the_exact_gradient(tmp_path: Path) -> None:
    """An output population's param other than through the built-in bias: the readout's `bias`
    as a Trainable with train_output_bias = false takes the generic path (E · dv/dp)."""
    src = SRC.replace("eprop(c_reg = 0.0)", "eprop(c_reg = 0.0, train_output_bias = false)").replace(
        "tau_mem = 15 ms,", "tau_mem = 15 ms, bias = Trainable(0.0, per_neuron = true),"
    )
    assert src.count("Trainable") == 3
    net = eprop(discretise(load_source(src, "ff.snn")))
    assert "bias_out" in net.training.params and not any(o.bias for o in net.training.outputs.values())
    built = build_eprop_network(net, precision="double", cache_dir=tmp_path)
    p = make_params(1)
    batch = [make_example(s) for s in (2, 3)]
    art = EpropArtefact(built.library, built.manifest, built.static, len(batch))
    art.set_weights({KEYS[k]: v for k, v in p.items()})
    art.set_targets({"out": np.array([ex["label"] for ex in batch])})
    art.run({"x": [_spikes(ex["x"]) for ex in batch]})
    got = art.backward({})
    ref = sum(bptt(p, ex)["bias"] for ex in batch)
    assert np.abs(ref).max() > 1e-3
    np.testing.assert_allclose(got["bias_out"], ref, rtol=1e-6, atol=1e-9)


ALIF_SRC = SRC.replace("use std.{LIF,", "use std.{ALIF,").replace(
    """LIF(12, tau_mem = Trainable(20 ms, per_neuron = true, min = 2 ms),
                   v_thresh = Trainable(1.0), relative_reset = 1)""",
    """ALIF(12, tau_mem = Trainable(20 ms, per_neuron = true), v_thresh = Trainable(1.0),
                    tau_adapt = Trainable(200 ms), beta = Trainable(0.2, per_neuron = true))""",
)
ALIF_KEYS = {**KEYS, "tau_a": "tau_adapt_h", "beta": "beta_h"}


def alif_bptt(p: dict[str, np.ndarray], ex: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The std ALIF layer (v ← α v + (1 − α) I, a ← ρ a, spike when v ≥ ϑ + β a, then v ← v − ϑ,
    a ← a + 1): reverse-mode through the recorded trajectory with v's reset z stopped and a's kept."""
    al, rho, kap, vth = (
        np.exp(-DT / p["tau"]),
        np.exp(-DT / p["tau_a"][0]),
        np.exp(-DT / TAU_OUT),
        p["vth"][0],
    )
    v, a, vo = np.zeros(N_H), np.zeros(N_H), np.zeros(N_OUT)
    z_prev, x_prev = np.zeros(N_H), np.zeros(N_IN)
    rec = {k: [] for k in ("v_prev", "a_prev", "drive", "pre_a", "psi", "z", "vo", "x_in", "z_in")}
    for k in range(K):
        drive = x_prev @ p["w_in"]
        rec["v_prev"].append(v.copy()), rec["a_prev"].append(a.copy()), rec["drive"].append(drive)
        v = al * v + (1 - al) * drive
        a = rho * a
        vo = kap * vo + (1 - kap) * (z_prev @ p["w_out"] + p["bias"])
        theta = v - vth - p["beta"] * a
        z = (theta >= 0).astype(float)
        rec["pre_a"].append(a.copy()), rec["z"].append(z), rec["vo"].append(vo.copy())
        rec["psi"].append(GAMMA / vth * np.maximum(0.0, 1.0 - np.abs(theta) / vth))
        rec["x_in"].append(x_prev), rec["z_in"].append(z_prev)
        v, a = v - vth * z, a + z
        z_prev, x_prev = z, ex["x"][k]
    dl_dvo = np.array([_softmax(y) for y in rec["vo"]]) - np.eye(N_OUT)[ex["label"]]
    g = {name: np.zeros_like(val) for name, val in p.items()}
    g_vo, gv, ga, g_z = np.zeros(N_OUT), np.zeros(N_H), np.zeros(N_H), np.zeros(N_H)
    for k in reversed(range(K)):
        g_vo = dl_dvo[k] + kap * g_vo
        psi, z = rec["psi"][k], rec["z"][k]
        dz = g_z + ga  # z_k reaches the readout at k + 1 and a_k's reset
        dv = gv + psi * dz  # of the pre-reset v_k
        da = ga - p["beta"] * psi * dz  # of the pre-reset a_k
        g["vth"] += -(psi * dz).sum() - (gv * z).sum()
        g["beta"] += -psi * dz * rec["pre_a"][k]
        g["tau"] += dv * al * DT / p["tau"] ** 2 * (rec["v_prev"][k] - rec["drive"][k])
        g["tau_a"] += (da * rho * DT / p["tau_a"][0] ** 2 * rec["a_prev"][k]).sum()
        g["w_in"] += np.outer(rec["x_in"][k], (1 - al) * dv)
        g["w_out"] += np.outer(rec["z_in"][k], (1 - kap) * g_vo)
        g["bias"] += (1 - kap) * g_vo
        gv, ga = al * dv, rho * da
        g_z = p["w_out"] @ ((1 - kap) * g_vo)
    return g


def test_eprop_alif_param_gradients_equal_truncated_bptt(tmp_path: Path) -> None:
    """Params in the adaptation (tau_adapt shared, beta per neuron) and the threshold of an ALIF
    layer, whose eligibility keeps the spike's path into a (Bellec et al.'s ε_a) and jumps at a spike."""
    p = {**make_params(1), "tau_a": np.array([150.0]), "beta": np.linspace(0.1, 0.5, N_H)}
    batch = [make_example(s) for s in (2, 3, 4)]
    net = eprop(discretise(load_source(ALIF_SRC, "ff.snn")))
    built = build_eprop_network(net, precision="double", cache_dir=tmp_path)
    art = EpropArtefact(built.library, built.manifest, built.static, len(batch))
    art.set_weights({ALIF_KEYS[k]: v for k, v in p.items()})
    art.set_targets({"out": np.array([ex["label"] for ex in batch])})
    art.run({"x": [_spikes(ex["x"]) for ex in batch]})
    got = art.backward({})
    ref = {name: sum(alif_bptt(p, ex)[name] for ex in batch) for name in p}
    for name, key in ALIF_KEYS.items():
        assert np.abs(ref[name]).max() > 1e-4, name
        np.testing.assert_allclose(got[key], ref[name], rtol=1e-6, atol=1e-9, err_msg=name)
