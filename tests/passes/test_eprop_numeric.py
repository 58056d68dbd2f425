"""The derived e-prop IR, evaluated step by step with lambdify, against Bellec's equations in numpy.

A tiny recurrent network (3 inputs, 4 hidden LIF or ALIF, 2 leaky readouts, 30 steps, random input
spikes) is simulated once in numpy. Two independent gradient computations then run on that trajectory:
`bellec` writes Bellec et al.'s eligibility equations by hand, `evaluate_ir` executes the pass's
statements in the order documented in `snnc.passes.eprop`. Output weights and bias are also checked
against finite differences of the loss (they are exact gradients).
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy
from snnc.frontend import load_source
from snnc.ir import names as N
from snnc.ir.symbols import sym
from snnc.passes.discretise import discretise
from snnc.passes.eprop import eprop

K, N_IN, N_H, N_OUT, DT = 30, 3, 4, 2, 1.0
TAU_M, TAU_A, TAU_OUT, BETA, VTH, GAMMA = 20.0, 25.0, 15.0, 0.5, 1.0, 0.3
C_REG, F_TARGET, TAU_REG = 0.05, 0.02, 100.0

SRC = """
use std.{{LIF, ALIF, LeakyIntegrate, SpikeInput, Delta}}
network n {{
    input x = SpikeInput(3)
    hidden h = {hidden}
    output out = LeakyIntegrate(2, tau_mem = 15 ms, readout = sum_var(v))
    x -> h : Dense(weight = Normal(mean = 0.0, sd = 1.0)), Delta
    h -> h : Dense(weight = Normal(mean = 0.0, sd = 1.0)), Delta
    h -> out : Dense(weight = Normal(mean = 0.0, sd = 1.0)), Delta
}}
train n {{
    algorithm = eprop(feedback = {fb}, c_reg = 0.05, f_target = 20 Hz, tau_reg = 100 ms)
    loss = sparse_categorical_crossentropy
    dt = 1 ms
    duration = 30 ms
}}
"""
HIDDEN = {"lif": "LIF(4, relative_reset = 1)", "alif": f"ALIF(4, beta = {BETA}, tau_adapt = {TAU_A} ms)"}


def make_data(seed: int):
    rng = np.random.default_rng(seed)
    return dict(
        x=(rng.random((K, N_IN)) < 0.4).astype(float),
        w_in=rng.normal(1.2, 1.0, (N_IN, N_H)) * 3.0,
        w_rec=rng.normal(0.0, 1.0, (N_H, N_H)),
        w_out=rng.normal(0.0, 1.0, (N_H, N_OUT)),
        bias=rng.normal(0.0, 0.5, N_OUT),
        b_rand=rng.normal(0.0, 1.0, (N_H, N_OUT)),
        label=1,
    )


def simulate(d, adaptive: bool):
    """The network's forward pass (Discrete IR semantics), recording what gradients need."""
    al, rho, kap = np.exp(-DT / TAU_M), np.exp(-DT / TAU_A), np.exp(-DT / TAU_OUT)
    beta = BETA if adaptive else 0.0
    v, a, vo = np.zeros(N_H), np.zeros(N_H), np.zeros(N_OUT)
    z_prev, x_prev = np.zeros(N_H), np.zeros(N_IN)
    rec = {k: [] for k in ("start_v", "start_a", "i_h", "pre_v", "pre_a", "z", "vo", "i_o", "start_vo")}
    for k in range(K):
        i_h = x_prev @ d["w_in"] + z_prev @ d["w_rec"]
        i_o = z_prev @ d["w_out"]
        rec["start_v"].append(v.copy()), rec["start_a"].append(a.copy()), rec["i_h"].append(i_h)
        rec["start_vo"].append(vo.copy()), rec["i_o"].append(i_o)
        v = al * v + (1 - al) * i_h
        a = rho * a if adaptive else a
        vo = kap * vo + (1 - kap) * (i_o + d["bias"])
        z = (v >= VTH + beta * a).astype(float)
        (
            rec["pre_v"].append(v.copy()),
            rec["pre_a"].append(a.copy()),
            rec["z"].append(z),
            rec["vo"].append(vo.copy()),
        )
        v = v - VTH * z
        a = a + z if adaptive else a
        z_prev, x_prev = z, d["x"][k]
    return {k: np.array(val) for k, val in rec.items()}


def softmax(v):
    e = np.exp(v - v.max())
    return e / e.sum()


def loss(vo_steps, label):
    return sum(-np.log(softmax(vo)[label]) for vo in vo_steps)


def bellec(d, rec, adaptive: bool, feedback: str):
    """Bellec et al. 2020 eq. (e-prop) for this network, written out by hand."""
    al, rho, kap = np.exp(-DT / TAU_M), np.exp(-DT / TAU_A), np.exp(-DT / TAU_OUT)
    c, c_out, beta = 1 - al, 1 - kap, BETA if adaptive else 0.0
    alpha_reg = np.exp(-DT / TAU_REG)
    B = d["w_out"] if feedback == "symmetric" else d["b_rand"]
    y_star = np.eye(N_OUT)[d["label"]]
    grads = {}
    for name, pre_spikes, n_pre in (("x_to_h", d["x"], N_IN), ("h_to_h", rec["z"], N_H)):
        zbar = np.zeros(n_pre)
        eps_a = np.zeros((n_pre, N_H))  # d a_t / dW, a_t the (pre-reset) adaptation in the threshold
        ebar, dw = np.zeros((n_pre, N_H)), np.zeros((n_pre, N_H))
        f_avg, psi_prev, eps_v_prev = np.zeros(N_H), np.zeros(N_H), np.zeros((n_pre, N_H))
        for k in range(K):
            zbar = al * zbar + (pre_spikes[k - 1] if k > 0 else 0.0)
            eps_v = c * np.repeat(zbar[:, None], N_H, axis=1)
            if adaptive and k > 0:
                eps_a = rho * (eps_a + psi_prev * (eps_v_prev - beta * eps_a))
            thr = VTH + beta * rec["pre_a"][k]
            psi = GAMMA / VTH * np.maximum(0.0, 1 - np.abs(rec["pre_v"][k] - thr) / VTH)
            e = psi * (eps_v - beta * eps_a)
            err = softmax(rec["vo"][k]) - y_star
            learning = c_out * (B @ err)
            f_avg = alpha_reg * f_avg + (1 - alpha_reg) * rec["z"][k]
            dw += learning * ebar + C_REG * (f_avg - F_TARGET * DT) * e
            ebar = kap * ebar + e
            psi_prev, eps_v_prev = psi, eps_v
        grads[name] = dw
    zbar_o, eps_b = np.zeros(N_H), np.zeros(N_OUT)
    grads["h_to_out"], grads["bias"] = np.zeros((N_H, N_OUT)), np.zeros(N_OUT)
    for k in range(K):
        zbar_o = kap * zbar_o + (rec["z"][k - 1] if k > 0 else 0.0)
        eps_b = kap * eps_b + (1 - kap)
        err = softmax(rec["vo"][k]) - y_star
        grads["h_to_out"] += c_out * zbar_o[:, None] * err[None, :]
        grads["bias"] += eps_b * err
    return grads


_MODULES = [{"Max": np.maximum, "Min": np.minimum}, "numpy"]


def _fn(expr: sympy.Expr):
    names = sorted(s.name for s in expr.free_symbols)
    f = sympy.lambdify([sym(n) for n in names], expr, modules=_MODULES)
    return lambda env: f(*[env[n] for n in names]) + 0.0 * np.zeros(())


def constants(net) -> dict[str, float]:
    """Params and derived params of the hidden and output populations (each evaluated separately)."""
    out = {}
    for pop in ("h", "out"):
        p = net.populations[pop]
        values = {sym(k): val for k, val in p.params.items()} | {sym("dt"): net.dt}
        env = {k: float(val) for k, val in p.params.items()}
        for name, expr in net.discrete[p.model].derived:
            values[sym(name)] = float(expr.xreplace(values))
            env[name] = values[sym(name)]
        out[pop] = env | {"dt": net.dt}
    return out


def evaluate_ir(net, d, rec, feedback: str):
    """Execute the EpropIR statements in the order the pass's docstring prescribes."""
    ir = net.training
    const = constants(net)
    he, oe = ir.hidden["h"], ir.outputs["out"]
    pres = {"x_to_h": (d["x"], N_IN), "h_to_h": (rec["z"], N_H), "h_to_out": (rec["z"], N_H)}
    state = {}
    for name, pe in ir.projections.items():
        n_pre = pres[name][1]
        n_post = N_H if pe.role == "hidden" else N_OUT
        for e in pe.eligibilities:
            state[e.name] = np.zeros((n_pre, n_post))
        state[pe.gradient] = np.zeros((n_pre, n_post))
        state[pe.filtered_name] = np.zeros((n_pre, n_post))
    bias = oe.bias
    for e in bias.eligibilities:
        state[e.name] = np.zeros(N_OUT)
    state[bias.gradient] = np.zeros(N_OUT)
    f_avg = np.zeros(N_H)
    y_true = np.eye(N_OUT)[d["label"]]
    B = d["w_out"] if feedback == "symmetric" else d["b_rand"]
    for k in range(K):
        # 2. update: propagate, start-of-step values
        new = {}
        for name, pe in ir.projections.items():
            pre_sp = pres[name][0][k - 1] if k > 0 else np.zeros(pres[name][1])
            if pe.role == "hidden":
                env = const["h"] | {"v": rec["start_v"][k], "a": rec["start_a"][k], "i_syn": rec["i_h"][k]}
            else:
                env = const["out"] | {"v": rec["start_vo"][k], "i_syn": rec["i_o"][k]}
            env = env | {N.REFRACTORY: 0.0, N.Z_PRE: pre_sp[:, None]} | state
            for st in pe.propagate:
                new[st.target] = _fn(st.expr)(env) * np.ones_like(state[st.target])
        env = const["out"] | {"v": rec["start_vo"][k], "i_syn": rec["i_o"][k]} | state
        for st in bias.propagate:
            new[st.target] = _fn(st.expr)(env)
        state |= new
        # 3. outputs: reductions, y, E; output gradients
        env = const["out"] | {"v": rec["vo"][k], N.Y_TRUE: y_true}
        for rname, kind, expr in oe.reductions:
            val = _fn(expr)(env)
            env[rname] = val.max() if kind == "max" else val.sum()
        err = _fn(oe.error)(env) if k >= oe.error_start_step else np.zeros(N_OUT)
        for pe in [ir.projections["h_to_out"], bias]:
            state[pe.gradient] = state[pe.gradient] + _fn(pe.accumulate)(state | {N.ERROR: err})
        # 4. learning signal
        fb = {t.projection: B @ err for t in he.learning}
        learning = _fn(he.learning_signal)({N.feedback(p): val for p, val in fb.items()})
        # 5. spike phase, pre-reset values
        env = const["h"] | {"v": rec["pre_v"][k], "a": rec["pre_a"][k], N.REFRACTORY: 0.0, N.Z: rec["z"][k]}
        psi = _fn(he.psi)(env) * np.ones(N_H)
        f_avg = _fn(he.f_avg.expr)({N.F_AVG: f_avg, N.Z: rec["z"][k]})
        env |= {N.PSI: psi, N.F_AVG: f_avg, N.LEARNING_SIGNAL: learning}
        for name in ("x_to_h", "h_to_h"):
            pe = ir.projections[name]
            env |= state
            e = _fn(pe.trace)(env)
            state[pe.gradient] = state[pe.gradient] + _fn(pe.accumulate)(env | {pe.trace_name: e})
            state[pe.filtered_name] = _fn(pe.filter.expr)(env | {pe.trace_name: e})
            jumped = {st.target: _fn(st.expr)(env) for st in pe.jump}
            state |= jumped
    return {
        "x_to_h": state[N.weight_gradient("x_to_h")],
        "h_to_h": state[N.weight_gradient("h_to_h")],
        "h_to_out": state[N.weight_gradient("h_to_out")],
        "bias": state[N.bias_gradient("out")],
    }


@pytest.mark.parametrize("feedback", ["symmetric", "random"])
@pytest.mark.parametrize("kind", ["lif", "alif"])
def test_ir_matches_bellec(kind, feedback):
    net = eprop(discretise(load_source(SRC.format(hidden=HIDDEN[kind], fb=feedback), "n.snn")))
    adaptive = kind == "alif"
    d = make_data(seed=3)
    rec = simulate(d, adaptive)
    assert rec["z"].sum() >= 3, "the test network should spike"
    # a pseudo-derivative that is non-zero somewhere, so the traces are exercised
    ref = bellec(d, rec, adaptive, feedback)
    got = evaluate_ir(net, d, rec, feedback)
    for name in ("x_to_h", "h_to_h", "h_to_out", "bias"):
        assert np.abs(ref[name]).max() > 1e-6, name
        np.testing.assert_allclose(got[name], ref[name], rtol=1e-5, atol=1e-5, err_msg=name)


def test_output_gradients_are_exact():
    net = eprop(discretise(load_source(SRC.format(hidden=HIDDEN["lif"], fb="symmetric"), "n.snn")))
    d = make_data(seed=5)
    rec = simulate(d, False)
    got = evaluate_ir(net, d, rec, "symmetric")
    h = 1e-6
    for j in range(N_H):
        for o in range(N_OUT):
            plus, minus = {**d, "w_out": d["w_out"].copy()}, {**d, "w_out": d["w_out"].copy()}
            plus["w_out"][j, o] += h
            minus["w_out"][j, o] -= h
            fd = (loss(simulate(plus, False)["vo"], 1) - loss(simulate(minus, False)["vo"], 1)) / (2 * h)
            assert got["h_to_out"][j, o] == pytest.approx(fd, rel=1e-4, abs=1e-7)
    for o in range(N_OUT):
        plus, minus = {**d, "bias": d["bias"].copy()}, {**d, "bias": d["bias"].copy()}
        plus["bias"][o] += h
        minus["bias"][o] -= h
        fd = (loss(simulate(plus, False)["vo"], 1) - loss(simulate(minus, False)["vo"], 1)) / (2 * h)
        assert got["bias"][o] == pytest.approx(fd, rel=1e-4, abs=1e-7)
