"""Ground truth for signs: the derived EventProp gradient versus finite differences.

The forward reference is an exact, event-driven simulation of a tiny LIF + exponential-synapse network
in continuous time, written here in plain numpy (closed-form membrane solution, bisection for threshold
crossings) and independent of snnc. The backward pass evaluates only the expressions the `eventprop`
pass derived (propagator, jump, transmission g, weight gradient), via `sympy.lambdify`, between events
(the exact propagator takes any interval as `dt`). Loss: first-spike-time MSE of the two outputs.
"""

from __future__ import annotations

import numpy as np
import sympy
from snnc.ir import names as N
from snnc.ir.symbols import sym
from snnc.passes.eventprop import eventprop

try:  # the folder may or may not be a package, depending on the checkout's __init__ files
    from .eventprop_models import network
except ImportError:
    from eventprop_models import network

TAU_M, TAU_S, THETA, T_END = 20.0, 5.0, 1.0, 40.0
IN_SPIKES = [np.array([1.0, 4.0, 9.0]), np.array([2.0, 6.0, 13.0])]
TARGET = np.array([12.0, 16.0])
PARAMS = {"tau_mem": TAU_M, "v_thresh": THETA, "tau__x_to_h": TAU_S, "tau__h_to_out": TAU_S}


def _lif_spikes(inputs: list[tuple[float, float]]) -> list[float]:
    """Exact spike times of a LIF neuron (reset to 0) driven by exponential-synapse inputs (t_j, w_j)."""
    k = (1 / TAU_M) / (1 / TAU_M - 1 / TAU_S)
    tj = np.array([t for t, _ in inputs])
    wj = np.array([w for _, w in inputs])

    def v(t, t_r: float):
        t = np.atleast_1d(np.asarray(t, dtype=float))[:, None]
        a = np.maximum(t_r, tj)[None, :]
        term = np.exp(-(t - tj) / TAU_S) - np.exp(-(t - a) / TAU_M) * np.exp(-(a - tj) / TAU_S)
        return np.sum(np.where(tj <= t, wj * k * term, 0.0), axis=1)

    spikes, t_r = [], 0.0
    grid = np.arange(0.0, T_END, 0.005)
    while True:
        cand = grid[grid > t_r + 1e-9]
        vals = v(cand, t_r)
        above = np.nonzero(vals >= THETA)[0]
        if len(above) == 0:
            return spikes
        hi = cand[above[0]]
        lo = cand[above[0] - 1] if above[0] > 0 else t_r
        for _ in range(80):
            mid = 0.5 * (lo + hi)
            lo, hi = (lo, mid) if v(mid, t_r)[0] >= THETA else (mid, hi)
        spikes.append(hi)
        t_r = hi


def forward(w1: np.ndarray, w2: np.ndarray) -> tuple[list[list[float]], list[list[float]]]:
    hid = [_lif_spikes([(t, w1[j, n]) for j in range(2) for t in IN_SPIKES[j]]) for n in range(w1.shape[1])]
    out = [_lif_spikes([(t, w2[n, o]) for n in range(len(hid)) for t in hid[n]]) for o in range(w2.shape[1])]
    return hid, out


def loss(w1: np.ndarray, w2: np.ndarray) -> float:
    _, out = forward(w1, w2)
    first = np.array([s[0] if s else T_END for s in out])
    return 0.5 * float(np.sum((first - TARGET) ** 2))


def _fn(expr: sympy.Expr, args: list[str], extra: dict | None = None):
    expr = expr.xreplace({sym(k): v for k, v in (extra or {}).items()}).xreplace(
        {sym(k): v for k, v in PARAMS.items()}
    )
    return sympy.lambdify([sym(a) for a in args], expr, "numpy")


def gradient(w1: np.ndarray, w2: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    tr = eventprop(network()).training
    pops = {}
    for name, proj in (("h", "x_to_h"), ("out", "h_to_out")):
        pg = tr.populations[name]
        lam = [N.adjoint(s) for s in pg.states]
        derived = {n: e for n, e in pg.derived}
        step = [
            _fn(a.expr.xreplace({sym(n): e for n, e in derived.items()}), [*lam, "dt"]) for a in pg.backward
        ]
        jumps = {a.target: _fn(a.expr, [*lam, "i_syn", N.D, N.DLP_DTS]) for a in pg.jump}
        pops[name] = (lam, step, jumps, pg.dlp_dts, proj)
    g_fn = _fn(tr.transmissions["h_to_out"].g, [N.adjoint("v"), N.adjoint("i__h_to_out")])
    grad_in = _fn(tr.weight_gradients["x_to_h"].expr, [N.adjoint("i__x_to_h")])
    grad_out = _fn(tr.weight_gradients["h_to_out"].expr, [N.adjoint("i__h_to_out")])

    hid, out = forward(w1, w2)
    lam = {"h": np.zeros((w1.shape[1], 2)), "out": np.zeros((w2.shape[1], 2))}
    events = [(t, "x", j) for j in range(2) for t in IN_SPIKES[j]]
    events += [(t, "h", n) for n in range(len(hid)) for t in hid[n]]
    events += [(t, "out", o) for o in range(len(out)) for t in out[o]]
    g1, g2 = np.zeros_like(w1), np.zeros_like(w2)
    now = T_END
    for t, kind, idx in sorted(events, reverse=True):
        for name in lam:  # propagate every adjoint back to the event: λ(t) = P(now - t)^T λ(now)
            _, step, *_ = pops[name]
            old = lam[name].copy()
            lam[name] = np.stack([f(old[:, 0], old[:, 1], now - t) * np.ones(len(old)) for f in step], axis=1)
        now = t
        if kind == "x":
            g1[idx] += grad_in(lam["h"][:, 1])
            continue
        if kind == "h":
            lo = lam["out"]
            g2[idx] += grad_out(lo[:, 1])
            d = float(np.sum(w2[idx] * g_fn(lo[:, 0], lo[:, 1])))
            i_syn = sum(
                w1[j, idx] * np.exp(-(t - s) / TAU_S) for j in range(2) for s in IN_SPIKES[j] if s < t
            )
            dlp = 0.0
        else:
            d = 0.0
            i_syn = sum(
                w2[n, idx] * np.exp(-(t - s) / TAU_S) for n in range(len(hid)) for s in hid[n] if s < t
            )
            first = out[idx][0] == t
            dlp = float(
                pops["out"][3].subs(
                    {sym(N.DL_DY): out[idx][0] - TARGET[idx], sym(N.IS_FIRST_SPIKE): int(first)}
                )
            )
        names, _, jumps, *_ = pops[kind]
        before = lam[kind][idx].copy()
        for col, nm in enumerate(names):
            if nm in jumps:
                lam[kind][idx, col] = jumps[nm](before[0], before[1], i_syn, d, dlp)
    return g1, g2


def test_gradient_matches_finite_differences() -> None:
    w1 = np.array([[2.2, 1.6, 2.0], [1.5, 2.4, 1.8]])
    w2 = np.array([[1.8, 1.2], [1.5, 1.9], [1.4, 1.7]])
    hid, out = forward(w1, w2)
    assert all(len(s) >= 1 for s in hid) and all(len(s) >= 1 for s in out), (hid, out)
    g1, g2 = gradient(w1, w2)
    eps = 1e-5
    fd1, fd2 = np.zeros_like(w1), np.zeros_like(w2)
    for fd, w, other, first in ((fd1, w1, w2, True), (fd2, w2, w1, False)):
        for idx in np.ndindex(w.shape):
            plus, minus = w.copy(), w.copy()
            plus[idx] += eps
            minus[idx] -= eps
            lp = loss(plus, other) if first else loss(other, plus)
            lm = loss(minus, other) if first else loss(other, minus)
            fd[idx] = (lp - lm) / (2 * eps)
    a, b = np.concatenate([g1.ravel(), g2.ravel()]), np.concatenate([fd1.ravel(), fd2.ravel()])
    cos = a @ b / (np.linalg.norm(a) * np.linalg.norm(b))
    assert np.linalg.norm(b) > 1e-3
    assert cos >= 0.99, (cos, a, b)
    np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-4 * np.abs(b).max())
