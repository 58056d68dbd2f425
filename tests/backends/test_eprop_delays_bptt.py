"""e-prop through fixed synaptic delays (C backend, float64) against truncated BPTT in numpy.

The feed-forward network of `test_eprop_bptt.py` with a delay of dx steps on `x -> h` and do steps
on `h -> out`: a spike emitted at step k reaches its post neuron at step k + 1 + d. e-prop's
eligibility of a delayed projection reads the presynaptic spikes of step k - 1 - d (the kernel's
`zpre` phases), and its learning signal still pairs the hidden spikes with the readout errors they
cause, now do steps later. For a feed-forward layer with the reset's gradient stopped the
factorisation stays exact, so the two agree to rounding. The BPTT below is written out
independently, with the delays in its forward pass and its reverse pass.
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

from .test_eprop_bptt import (
    DT,
    GAMMA,
    N_H,
    N_OUT,
    SRC,
    TAU_M,
    TAU_OUT,
    VTH,
    K,
    _softmax,
    _spikes,
    bptt,
    make_example,
    make_weights,
)

CASES = {"input-2": (2, 0), "input-1": (1, 0)}  # id: (dx, do) in steps of 1 ms, delays into the layer
DELAYED_READOUT = {"readout-3": (0, 3), "both": (1, 2)}  # and into the readout


def shifted(a: np.ndarray, steps: int) -> np.ndarray:
    """Row k of the result is row k - steps of `a` (zero before the first)."""
    return np.vstack([np.zeros((steps, a.shape[1])), a[: len(a) - steps]])


def forward(w: dict[str, np.ndarray], x: np.ndarray, dx: int, do: int) -> dict[str, np.ndarray]:
    """The forward pass, keeping each step's pre-reset membrane, spikes, readout and the inputs
    that reach the layer and the readout at each step."""
    al, kap = np.exp(-DT / TAU_M), np.exp(-DT / TAU_OUT)
    x_in = shifted(x, 1 + dx)  # the input spikes that arrive at step k
    v, vo = np.zeros(N_H), np.zeros(N_OUT)
    pre_v, zs, vos, z_in = [], [], [], []
    for k in range(K):
        v = al * v + (1 - al) * (x_in[k] @ w["w_in"])
        arriving = zs[k - 1 - do] if k - 1 - do >= 0 else np.zeros(N_H)
        vo = kap * vo + (1 - kap) * (arriving @ w["w_out"] + w["bias"])
        z = (v >= VTH).astype(float)
        pre_v.append(v.copy()), zs.append(z), vos.append(vo.copy()), z_in.append(arriving)
        v = v - VTH * z  # reset; BPTT treats this z as a constant (gradient stopped)
    return {
        "pre_v": np.array(pre_v),
        "z": np.array(zs),
        "vo": np.array(vos),
        "x_in": x_in,
        "z_in": np.array(z_in),
    }


def bptt_delayed(
    w: dict[str, np.ndarray], ex: dict[str, np.ndarray], dx: int, do: int, lag: int | None = None
) -> dict[str, np.ndarray]:
    """dL/dW (per-step softmax cross-entropy) by reverse-mode through the recorded trajectory. A
    hidden spike of step k reaches the readout at k + 1 + do, so its credit comes from the readout's
    error there: `lag` = `do` (the default) is the true gradient; `lag` = 0 takes it from step k + 1
    instead, which is e-prop's online pairing of this step's errors with the last step's traces."""
    lag = do if lag is None else lag
    al, kap = np.exp(-DT / TAU_M), np.exp(-DT / TAU_OUT)
    rec = forward(w, ex["x"], dx, do)
    dl_dvo = np.array([_softmax(vo) for vo in rec["vo"]]) - np.eye(N_OUT)[ex["label"]]
    psi = GAMMA / VTH * np.maximum(0.0, 1.0 - np.abs(rec["pre_v"] - VTH) / VTH)
    drive = np.zeros((K, N_OUT))  # dL/d(input of the readout at step k)
    g_vo = np.zeros(N_OUT)
    for k in reversed(range(K)):
        g_vo = dl_dvo[k] + kap * g_vo
        drive[k] = (1 - kap) * g_vo
    g = {"w_out": rec["z_in"].T @ drive, "bias": drive.sum(0), "w_in": np.zeros_like(w["w_in"])}
    g_v = np.zeros(N_H)  # of the pre-reset v_k
    for k in reversed(range(K)):
        g_z = w["w_out"] @ drive[k + 1 + lag] if k + 1 + lag < K else np.zeros(N_H)  # z_k arrives at k+1+do
        g_v = psi[k] * g_z + al * g_v
        g["w_in"] += np.outer(rec["x_in"][k], (1 - al) * g_v)
    return g


def test_the_delayed_reference_without_delays_is_the_plain_one() -> None:
    w, ex = make_weights(1), make_example(2)
    plain, delayed = bptt(w, ex, "crossentropy"), bptt_delayed(w, ex, 0, 0)
    for name in plain:
        np.testing.assert_allclose(delayed[name], plain[name], rtol=1e-12, atol=1e-14, err_msg=name)


def _gradients(dx: int, do: int, tmp: Path) -> tuple[dict, dict, list]:
    """C's e-prop gradients of a batch of three examples, the weights and the examples."""
    src = SRC.format(readout="sum_var(v)", loss="sparse_categorical_crossentropy")
    for proj, d in (("x -> h", dx), ("h -> out", do)):
        old = f"{proj} : Dense(weight = Normal(mean = 0.0, sd = 1.0))"
        assert old in src
        src = src.replace(old, old[:-1] + f", delay = {d} ms)")
    w = make_weights(1)
    batch = [make_example(s) for s in (2, 3, 4)]
    net = eprop(discretise(load_source(src, "ff.snn")))
    built = build_eprop_network(net, precision="double", cache_dir=tmp)
    art = EpropArtefact(built.library, built.manifest, built.static, len(batch))
    art.set_weights({"x_to_h": w["w_in"], "h_to_out": w["w_out"], "bias_out": w["bias"]})
    art.set_targets({"out": np.array([ex["label"] for ex in batch])})
    res = art.run({"x": [_spikes(ex["x"]) for ex in batch]})
    recs = [forward(w, ex["x"], dx, do) for ex in batch]
    np.testing.assert_allclose(res.readouts["out"], [r["vo"].sum(0) for r in recs], rtol=1e-9, atol=1e-12)
    for r in recs:  # the hidden layer spikes, and often sits where ψ > 0 without spiking
        assert r["z"].sum() >= 10
        assert ((r["pre_v"] > 0.1) & (r["pre_v"] < VTH)).sum() >= 20
    got = art.backward({})
    return {"w_in": got["x_to_h"], "w_out": got["h_to_out"], "bias": got["bias_out"]}, w, batch


@pytest.mark.parametrize("case", sorted(CASES))
def test_eprop_through_a_delay_into_the_layer_equals_bptt(case: str, tmp_path: Path) -> None:
    dx, do = CASES[case]
    got, w, batch = _gradients(dx, do, tmp_path)
    ref = {name: sum(bptt_delayed(w, ex, dx, do)[name] for ex in batch) for name in w}
    plain = sum(bptt(w, ex, "crossentropy")["w_in"] for ex in batch)
    assert not np.allclose(plain, ref["w_in"], rtol=1e-3)  # the delay changes the gradient
    for name in w:
        assert np.abs(ref[name]).max() > 1e-3, name
        np.testing.assert_allclose(got[name], ref[name], rtol=1e-6, atol=1e-9, err_msg=name)


@pytest.mark.parametrize("case", sorted(DELAYED_READOUT))
def test_eprop_through_a_delayed_readout_pairs_this_steps_errors_with_the_last_steps_traces(
    case: str, tmp_path: Path
) -> None:
    """Through a delay of do steps into the readout, the readout's gradients stay exact, but e-prop's
    learning signal (this step's errors) meets the hidden traces of the last step, not those of the
    step whose spikes caused the errors (do steps earlier): the hidden weights' gradient is e-prop's
    online approximation, equal to that pairing written out in the BPTT (`lag = 0`) and a few per cent
    off the true gradient, in almost the same direction. Exact would need do more steps of every
    synapse's filtered trace."""
    dx, do = DELAYED_READOUT[case]
    got, w, batch = _gradients(dx, do, tmp_path)
    true = {name: sum(bptt_delayed(w, ex, dx, do)[name] for ex in batch) for name in w}
    online = {name: sum(bptt_delayed(w, ex, dx, do, lag=0)[name] for ex in batch) for name in w}
    for name in ("w_out", "bias"):
        np.testing.assert_allclose(got[name], true[name], rtol=1e-6, atol=1e-9, err_msg=name)
    np.testing.assert_allclose(got["w_in"], online["w_in"], rtol=1e-6, atol=1e-9)
    a, b = got["w_in"].ravel(), true["w_in"].ravel()
    off = np.linalg.norm(a - b) / np.linalg.norm(b)
    assert 0.01 < off < 0.2 and a @ b / (np.linalg.norm(a) * np.linalg.norm(b)) > 0.999, off
