"""The symbolic EventProp derivation: LIF check from DESIGN.md §4, user models and diagnostics."""

from __future__ import annotations

import pytest
import sympy
from snnc.ir import names as N
from snnc.ir.diagnostics import DiagnosticError
from snnc.ir.model import Assign, Call, Ode, Param, State
from snnc.ir.symbols import sym, w
from snnc.passes.eventprop import EVENTPROP, eventprop

try:  # the folder may or may not be a package, depending on the checkout's __init__ files
    from .eventprop_models import exponential, leaky_integrate, lif, network
except ImportError:
    from eventprop_models import exponential, leaky_integrate, lif, network

S = sym
lv, li = S(N.adjoint("v")), S(N.adjoint("i__h_to_out"))
tau_m, tau_s, vth, isyn = S("tau_mem"), S("tau__h_to_out"), S("v_thresh"), S("i_syn")
dlp, D = S(N.DLP_DTS), S(N.D)


def _zero(expr) -> bool:
    return sympy.simplify(expr) == 0


def _jump(pg, target: str):
    return next(a.expr for a in pg.jump if a.target == target)


def test_lif_jump_and_transmission_match_design() -> None:
    tr = eventprop(network()).training
    out = tr.populations["out"]
    assert _zero(_jump(out, N.adjoint("v")) - (isyn * lv - tau_m * (dlp + D)) / (isyn - vth))
    assert [a.target for a in out.jump] == [N.adjoint("v")]  # λ_I is continuous at an own spike
    # D = Σ_m w_mn g_m with g_m = -(λ_V,m/τ_m − λ_I,m/τ_s)
    assert _zero(tr.transmissions["h_to_out"].g + (lv / tau_m - li / tau_s))
    assert "x_to_h" not in tr.transmissions  # no jumps of input neurons
    assert tr.weight_gradients["h_to_out"].expr == li
    assert tr.weight_gradients["x_to_h"].expr == S(N.adjoint("i__x_to_h"))
    assert [r.name for r in out.records] == [N.SPIKE_TIME, N.CROSSING_RATE_RECORD, "i_syn"]
    assert dict(out.inputs)["i_syn"] == S("i__h_to_out")
    assert out.dlp_dts == S(N.DL_DY) * S(N.IS_FIRST_SPIKE)
    assert tr.max_spikes == 50


def test_lif_adjoint_ode_and_exact_propagator() -> None:
    out = eventprop(network()).training.populations["out"]
    odes = dict(out.adjoint_odes)
    assert _zero(odes[N.adjoint("v")] - (-lv / tau_m))
    assert _zero(odes[N.adjoint("i__h_to_out")] - (-li / tau_s + lv / tau_m))
    assert out.method == "exact"
    derived = {S(n): e for n, e in out.derived}
    step = {a.target: a.expr.xreplace(derived) for a in out.backward}
    dt = S("dt")
    alpha, beta = sympy.exp(-dt / tau_m), sympy.exp(-dt / tau_s)
    assert _zero(step[N.adjoint("v")] - alpha * lv)
    assert _zero(step[N.adjoint("i__h_to_out")] - (beta * li + lv * tau_s / (tau_m - tau_s) * (alpha - beta)))
    # decay factors are hoisted as derived params, not recomputed per step
    assert all(dt not in a.expr.free_symbols for a in out.backward)


@pytest.mark.parametrize(
    ("kind", "step"),
    [
        ("var", S(N.DL_DY)),
        ("avg_var", S(N.DL_DY) / S(N.STEPS)),
        ("sum_var", S(N.DL_DY)),
        ("max_var", S(N.DL_DY)),
        ("avg_var_exp_weight", S(N.DL_DY) * sympy.exp(-S(N.STEP) * S("dt") / S(N.DURATION)) / S(N.STEPS)),
    ],
)
def test_readout_drives(kind: str, step) -> None:
    """A readout of samples (var, max_var) adds its drive to λ at the step's end; one that
    integrates (avg_var, sum_var, avg_var_exp_weight) spreads it over the step inside the backward
    step: λ(k) = Pᵀλ(k+1) + q·drive, q = (1/dt)∫₀^dt e^{Aᵀs} ds e_v, which tends to e_v as dt -> 0."""
    out = eventprop(network(output=leaky_integrate(), readout=kind)).training.populations["out"]
    if kind in ("var", "max_var"):
        assert out.drive == ((N.adjoint("v"), step),)
    else:
        assert out.drive == ()
        back = {a.target: a.expr for a in out.backward}
        driven = {t: sympy.diff(e, S(N.DL_DY)) for t, e in back.items()}
        unit = step / S(N.DL_DY)
        q_v = sympy.simplify(driven[N.adjoint("v")] / unit)  # tau_m (1 - e^{-dt/tau_m}) / dt
        q_i = sympy.simplify(driven[N.adjoint("i__h_to_out")] / unit)
        decay = {
            S(n): sympy.exp(-S("dt") / S(t))
            for n, t in ((N.decay("tau_mem"), "tau_mem"), (N.decay("tau__h_to_out"), "tau__h_to_out"))
        }
        at = {S("tau_mem"): 20.0, S("tau__h_to_out"): 5.0}
        for h, (want_v, want_i) in {1.0: (0.97541151, 0.02302176), 1e-7: (1.0, 0.0)}.items():
            got_v = float(q_v.xreplace(decay).xreplace({**at, S("dt"): h}))
            got_i = float(q_i.xreplace(decay).xreplace({**at, S("dt"): h}))
            assert abs(got_v - want_v) < 1e-6 and abs(got_i - want_i) < 1e-5
    assert out.jump == () and out.theta is None
    if kind == "avg_var":
        assert _zero(dict(out.adjoint_odes)[N.adjoint("v")] - (-lv / tau_m + S(N.DL_DY) / S(N.DURATION)))


def test_spike_count_readout_is_refused() -> None:
    with pytest.raises(DiagnosticError) as err:
        eventprop(network(readout="spike_count"))
    assert err.value.diagnostics[0].code == "E-ALGO"


def test_regularisation_adds_rate_along_grad_theta() -> None:
    reg = Call("spike_count", {"reg_lambda_upper": 2e-3, "reg_lambda_lower": 1e-3, "reg_nu_upper": 4.0})
    tr = eventprop(network(regularisation=reg)).training
    h = tr.populations["h"]
    assert h.regularisation is not None and tr.populations["out"].regularisation is None
    jump = _jump(h, N.adjoint("v"))
    with_reg = jump.xreplace({dlp: h.dlp_dts, D: 0})
    without = jump.xreplace({dlp: 0, D: 0})
    # the regulariser's ∂l_p/∂t_s is -r times the rate the executed jump divides by (recorded), so
    # each spike adds r along ∇θ there; in the exact jump (÷ ∇θ·f⁻) the same holds where they agree
    recorded = S(N.CROSSING_RATE_RECORD)
    denom = (isyn - vth) / tau_m
    assert _zero((with_reg - without).xreplace({recorded: denom}) - h.regularisation.rate)
    n, b = S(N.SPIKE_COUNT_SUM), S(N.BATCH_SIZE)
    rate = h.regularisation.rate
    assert _zero(rate.xreplace({n: 10, b: 2}) - 2e-3 * (10 - 8) / 4)
    assert _zero(rate.xreplace({n: 6, b: 2}) - 1e-3 * (6 - 8) / 4)


def test_quadratic_leak_uses_the_euler_fallback() -> None:
    v, kappa = S("v"), S("kappa")
    quad = lif("QuadLIF", rhs=(isyn - v + kappa * v**2) / tau_m, extra=(Param("kappa", 0.1),))
    pg = eventprop(network(hidden=quad)).training.populations["h"]
    assert pg.method == "euler" and pg.trajectory == ("v",)
    step = {a.target: a.expr for a in pg.backward}
    assert _zero(step[N.adjoint("v")] - (lv + S("dt") * (2 * kappa * v - 1) / tau_m * lv))
    # on the threshold surface v = v_thresh: ∇θ·f⁻ = (isyn − ϑ + κϑ²)/τ_m
    # and f⁺ = f(v = 0) = I/τ_m, so the numerator is the LIF one
    expect = (isyn * lv - tau_m * (dlp + D)) / (isyn - vth + kappa * vth**2)
    assert _zero(_jump(pg, N.adjoint("v")) - expect)


def test_adaptive_threshold_model() -> None:
    v, a, tau_a, beta = S("v"), S("a"), S("tau_a"), S("beta")
    alif = lif(
        "AdaptiveLIF",
        spike=v >= vth + a,
        reset=(Assign("v", "=", sympy.Integer(0)), Assign("a", "+=", beta)),
        extra=(Param("tau_a", 200.0), Param("beta", 0.2), State("a", 0.0), Ode("a", -a / tau_a)),
    )
    pg = eventprop(network(hidden=alif)).training.populations["h"]
    assert pg.method == "exact"
    assert pg.on_threshold == ("v", vth + a)
    la = S(N.adjoint("a"))
    jv, ja = _jump(pg, N.adjoint("v")), _jump(pg, N.adjoint("a"))
    # ∇θ = (1, −1); ∇θ·f⁻ = (isyn − ϑ − a)/τ_m + a/τ_a; f⁺ − J f⁻ = isyn/τ_m on v, −β/τ_a on a
    denom = (isyn - vth - a) / tau_m + a / tau_a
    bracket = lv * isyn / tau_m - la * beta / tau_a - dlp - D
    assert _zero(jv - bracket / denom)
    assert _zero(ja - (la - bracket / denom))
    assert {r.name for r in pg.records} == {N.SPIKE_TIME, N.CROSSING_RATE_RECORD, "a", "i_syn"}


def _diag(net) -> str:
    with pytest.raises(DiagnosticError) as err:
        eventprop(net)
    return err.value.diagnostics[0].code, err.value.diagnostics[0].message


def test_hidden_without_spike_condition() -> None:
    code, msg = _diag(network(hidden=leaky_integrate()))
    assert code == EVENTPROP and "'h'" in msg and "LeakyIntegrate" in msg and "spike condition" in msg


def test_non_differentiable_reset() -> None:
    bad = lif("MinReset", reset=(Assign("v", "=", sympy.Min(S("v"), 0) - 1),))
    code, msg = _diag(network(hidden=bad))
    assert code == EVENTPROP and "MinReset" in msg and "Min" in msg


def test_zero_threshold_rate() -> None:
    c = S("c")
    frozen = lif("Frozen", spike=c >= vth, extra=(State("c", 0.0),))
    code, msg = _diag(network(hidden=frozen))
    assert code == EVENTPROP and "identically zero" in msg and "Frozen" in msg


def test_non_additive_on_pre() -> None:
    syn = exponential(on_pre=(Assign("i", "=", w),))
    code, msg = _diag(network(synapse=syn))
    assert code == EVENTPROP and "not additive" in msg


def test_other_algorithms_are_left_alone() -> None:
    net = network(algorithm=Call("eprop"))
    assert eventprop(net) is net


def test_text_is_deterministic_and_readable() -> None:
    a = eventprop(network()).training.to_text()
    b = eventprop(network()).training.to_text()
    assert a == b
    for piece in (
        "__lambda__i__h_to_out",
        "jump at own spike",
        "record per spike: i_syn",
        "__decay__tau_mem",
    ):
        assert piece in a
    net = eventprop(network())
    assert net.stage == "training"
