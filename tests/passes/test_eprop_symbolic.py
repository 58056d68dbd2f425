"""The derived e-prop rules equal Bellec et al. 2020 / mlGeNN's LIF and ALIF rules (symbolically)."""

from __future__ import annotations

import pytest
import sympy
from snnc.frontend import load_source
from snnc.ir import names as N
from snnc.ir.diagnostics import DiagnosticError
from snnc.ir.discrete import DiscreteModel
from snnc.ir.eprop_ir import EpropIR
from snnc.ir.model import Assign, Input, Model, Param, State
from snnc.ir.symbols import sym
from snnc.passes import eprop_derive as D
from snnc.passes.discretise import discretise
from snnc.passes.eprop import eprop

v, a, i_syn, i = sym("v"), sym("a"), sym("i_syn"), sym("i")
alpha, rho, beta, v_thresh = sym("alpha"), sym("rho"), sym("beta"), sym("v_thresh")
zbar, eps_a, psi, z_pre = sym("zbar"), sym("eps_a"), D.PSI, D.Z_PRE

DELTA = Model(
    "Delta",
    "synapse",
    states={"i": State("i", 0.0)},
    on_pre=(Assign("i", "+=", sym("w")),),
    output="i",
    impulse=True,
)
DELTA_D = DiscreteModel("Delta", "none", "impulse", on_pre=DELTA.on_pre, output=i, impulse=True)
WHERE = D.Where("M", "h", None)


def _neuron(name: str, states: list[str], update: dict, spike, reset) -> tuple[Model, DiscreteModel]:
    model = Model(
        name,
        "neuron",
        params={p: Param(p, 1.0) for p in ("alpha", "rho", "beta", "v_thresh")},
        states={s: State(s, 0.0) for s in states},
        inputs={"i_syn": Input("i_syn")},
        spike=spike,
        reset=reset,
    )
    disc = DiscreteModel(
        name,
        "exact",
        "hand-made",
        update=tuple(Assign(s, "=", e) for s, e in update.items()),
        spike=spike,
        reset=reset,
    )
    return model, disc


def _derive(model, disc, keep=False):
    thr = D.threshold(model, disc, WHERE)
    return D.derive_weight("x_to_h", "i_syn", model, disc, DELTA, DELTA_D, WHERE, thr, keep), thr


def _rules(der):
    prop = {x.target: x.expr for x in der.propagate}
    jump = {x.target: x.expr for x in der.jump}
    return prop, jump


def test_lif_trace_is_psi_times_filtered_presynaptic_spikes():
    # mlGeNN's LIF: V = alpha V + Isyn, relative reset
    model, disc = _neuron(
        "LIF", ["v"], {"v": alpha * v + i_syn}, v >= v_thresh, (Assign("v", "-=", v_thresh),)
    )
    der, thr = _derive(model, disc)
    prop, jump = _rules(der)
    ev = sym(N.eligibility("x_to_h", "v"))
    assert jump == {}  # Bellec: the reset path of v is left out
    # the eligibility update is exactly z̄'s: z̄ <- alpha z̄ + z_pre
    assert sympy.simplify(prop[N.eligibility("x_to_h", "v")].subs(ev, zbar) - (alpha * zbar + z_pre)) == 0
    # ... and the trace is e = ψ z̄
    assert sympy.simplify(der.trace.subs(ev, zbar) - psi * zbar) == 0
    assert thr.v_th == v_thresh and thr.membrane == ("v",)


def test_std_lif_trace_is_psi_times_scaled_filtered_spikes():
    net = eprop(
        discretise(load_source(_NET.format(hidden="LIF(4, relative_reset = 1)", fb="symmetric"), "n.snn"))
    )
    pe = net.training.projections["x_to_h"]
    ev = sym(N.eligibility("x_to_h", "v"))
    prop = {x.target: x.expr for x in pe.propagate}
    P, c = sym("P_v_v"), sym("P_v_i_syn")
    r = D.REFRACTORY
    # ε_v = c·z̄ with z̄ <- P z̄ + z_pre (c = 1 - P, the exact step's input gain); held while refractory
    expected = r * c * zbar + (1 - r) * c * (P * zbar + z_pre)
    assert sympy.simplify(prop[ev.name].subs(ev, c * zbar) - expected) == 0
    assert sympy.simplify(pe.trace.subs(ev, c * zbar) - psi * c * zbar) == 0
    assert pe.jump == ()


def test_alif_bellec_form_gives_bellec_traces():
    # Bellec's ALIF: a_t = rho a_{t-1} + z_{t-1}. In snnc's step order (update, spike, reset) the
    # reset must add 1/rho so that the increment reaches the next threshold undecayed.
    model, disc = _neuron(
        "ALIF",
        ["v", "a"],
        {"v": alpha * v + i_syn, "a": rho * a},
        v >= v_thresh + beta * a,
        (Assign("v", "-=", v_thresh), Assign("a", "+=", 1 / rho)),
    )
    der, thr = _derive(model, disc)
    prop, jump = _rules(der)
    ev, ea = sym(N.eligibility("x_to_h", "v")), sym(N.eligibility("x_to_h", "a"))
    assert set(jump) == {
        N.eligibility("x_to_h", "a")
    }  # the spike's path into the adaptation is kept, v's is not
    # e = ψ (z̄ − β ε_a)
    assert sympy.simplify(der.trace.subs({ev: zbar, ea: eps_a}) - psi * (zbar - beta * eps_a)) == 0
    # from one trace to the next: the jump (this step) then propagate (next step):
    # ε_a <- ψ z̄ + (ρ − ψβ) ε_a
    after_jump = jump[N.eligibility("x_to_h", "a")].subs({ev: zbar, ea: eps_a})
    next_eps_a = prop[N.eligibility("x_to_h", "a")].subs({ea: after_jump})
    assert sympy.simplify(next_eps_a - (psi * zbar + (rho - psi * beta) * eps_a)) == 0


def test_std_alif_exact_rule_scales_the_spike_path_by_rho():
    net = eprop(discretise(load_source(_NET.format(hidden="ALIF(4)", fb="symmetric"), "n.snn")))
    pe = net.training.projections["x_to_h"]
    ev, ea = sym(N.eligibility("x_to_h", "v")), sym(N.eligibility("x_to_h", "a"))
    prop = {x.target: x.expr for x in pe.propagate}
    jump = {x.target: x.expr for x in pe.jump}
    P_aa, b = sym("P_a_a"), sym("beta")
    assert sympy.simplify(pe.trace.subs({ev: zbar, ea: eps_a}) - psi * (zbar - b * eps_a)) == 0
    nxt = prop[ea.name].subs(ea, jump[ea.name].subs({ev: zbar, ea: eps_a}))
    # std ALIF adds 1 after the decay, so the increment is decayed once before the threshold sees it
    assert sympy.simplify(nxt - (P_aa * psi * zbar + P_aa * (1 - psi * b) * eps_a)) == 0
    assert sympy.simplify(nxt - (psi * zbar + (P_aa - psi * b) * eps_a)) != 0


def test_keep_reset_path_option_adds_the_relative_reset_term():
    model, disc = _neuron(
        "LIF", ["v"], {"v": alpha * v + i_syn}, v >= v_thresh, (Assign("v", "-=", v_thresh),)
    )
    der, _ = _derive(model, disc, keep=True)
    ev = sym(N.eligibility("x_to_h", "v"))
    (j,) = der.jump
    # v+ = v - z v_th: through ψ, dv+ = dv - v_th ψ dv
    assert sympy.simplify(j.expr - (1 - v_thresh * psi) * ev) == 0


_NET = """
use std.{{LIF, ALIF, LeakyIntegrate, SpikeInput, Delta}}
network n {{
    input x = SpikeInput(3)
    hidden h = {hidden}
    output out = LeakyIntegrate(2, readout = sum_var(v))
    x -> h : Dense(weight = Normal(mean = 0.0, sd = 1.0)), Delta
    h -> h : Dense(weight = Normal(mean = 0.0, sd = 1.0)), Delta
    h -> out : Dense(weight = Normal(mean = 0.0, sd = 1.0)), Delta
}}
train n {{
    algorithm = eprop(feedback = {fb})
    loss = sparse_categorical_crossentropy
    dt = 1 ms
    duration = 30 ms
}}
"""

_USER = """
use std.{LeakyIntegrate, SpikeInput, Delta, Exponential}
neuron QuadIF {
    param tau = 10 ms
    param v_thresh = 1.0
    param theta_decay = 50 ms
    state v = 0.0
    state th = 0.0
    input i_syn
    dv/dt = (v * v * 0.1 - v + i_syn) / tau
    dth/dt = -th / theta_decay
    spike when v - 0.5 * th >= v_thresh
    reset {
        v = 0.0
        th += 0.2
    }
}
network n {
    input x = SpikeInput(3)
    hidden h = QuadIF(4)
    output out = LeakyIntegrate(2, readout = var(v))
    x -> h : Dense(weight = Normal(mean = 0.0, sd = 1.0)), Exponential
    h -> out : Dense(weight = Normal(mean = 0.0, sd = 1.0)), Delta
}
train n {
    algorithm = eprop(feedback = random, keep_reset_path = true)
    loss = mse
    dt = 1 ms
    duration = 30 ms
}
"""


def test_user_model_derives_and_prints():
    net = eprop(discretise(load_source(_USER, "user.snn")))
    ir = net.training
    assert isinstance(ir, EpropIR) and net.stage == "training"
    pe = ir.projections["x_to_h"]
    names = {e.name for e in pe.eligibilities}
    assert names == {
        N.eligibility("x_to_h", "v"),
        N.eligibility("x_to_h", "th"),
        N.eligibility("x_to_h", "i__x_to_h"),
    }
    prop = {x.target: x.expr for x in pe.propagate}
    # the non-linear update makes the eligibility depend on the post neuron's voltage
    assert sym("v") in prop[N.eligibility("x_to_h", "v")].free_symbols
    assert next(e for e in pe.eligibilities if e.name == N.eligibility("x_to_h", "v")).scope == "synapse"
    assert next(e for e in pe.eligibilities if e.name == N.eligibility("x_to_h", "i__x_to_h")).scope == "pre"
    # keep_reset_path: v's absolute reset contributes (1 - z) and the ψ term
    jump = {x.target: x.expr for x in pe.jump}
    assert (
        D.Z in jump[N.eligibility("x_to_h", "v")].free_symbols
        and psi in jump[N.eligibility("x_to_h", "v")].free_symbols
    )
    assert ir.hidden["h"].learning[0].feedback == "random"
    assert ir.outputs["out"].loss == "mean_square_error" and ir.outputs["out"].reductions == ()
    text = ir.to_text()
    assert (
        "__e__x_to_h = " in text
        and "__B__h_to_out" in text
        and text == eprop(discretise(load_source(_USER, "user.snn"))).training.to_text()
    )


def test_hidden_without_spike_condition_is_a_diagnostic():
    src = _NET.format(hidden="LeakyIntegrate(4)", fb="symmetric")
    with pytest.raises(DiagnosticError) as err:
        eprop(discretise(load_source(src, "n.snn")))
    d = err.value.diagnostics[0]
    assert d.code == D.CODE_NOSPIKE and "'LeakyIntegrate'" in d.message and "'h'" in d.message


def test_non_differentiable_term_is_named():
    src = _USER.replace("v * v * 0.1", "abs(v) * 0.1")
    with pytest.raises(DiagnosticError) as err:
        eprop(discretise(load_source(src, "user.snn")))
    d = err.value.diagnostics[0]
    assert d.code == D.CODE_NONDIFF and "Abs(v)" in d.message and "QuadIF" in d.message


def test_threshold_without_state_is_a_diagnostic():
    model, disc = _neuron("T", ["v"], {"v": alpha * v + i_syn}, sym("t") >= v_thresh, ())
    with pytest.raises(DiagnosticError) as err:
        D.threshold(model, disc, WHERE)
    assert err.value.diagnostics[0].code == D.CODE_THRESHOLD


def test_unknown_option_and_unconnected_hidden():
    with pytest.raises(DiagnosticError) as err:
        eprop(
            discretise(
                load_source(
                    _NET.format(hidden="LIF(4)", fb="symmetric").replace("feedback", "feedbak"), "n.snn"
                )
            )
        )
    assert err.value.diagnostics[0].code == "E-EPROP-OPTION" and "feedback" in err.value.diagnostics[0].hint
    src = _NET.format(hidden="LIF(4)", fb="symmetric").replace("h -> out", "x -> out")
    with pytest.raises(DiagnosticError) as err:
        eprop(discretise(load_source(src, "n.snn")))
    assert err.value.diagnostics[0].code == "E-EPROP-NOOUTPUT"


def test_pipeline_runs_eprop_with_verification_and_printing():
    import io

    from snnc.passes.pipeline import compile_ir

    out = io.StringIO()
    net, _ = compile_ir(
        load_source(_NET.format(hidden="ALIF(4)", fb="symmetric"), "n.snn"), {"eprop"}, out=out
    )
    assert isinstance(net.training, EpropIR)
    assert "IR Dump After eprop" in out.getvalue() and N.eligibility("h_to_h", "a") in out.getvalue()


def test_param_eligibility_of_a_lif_neuron() -> None:
    """derive_param for v ← α v + (1 − α) i, spike when v ≥ ϑ, reset v ← v − ϑ (relative) or
    v ← v_r: ε ← α ε + ∂/∂p; e = ψ (ε + ∂θ/∂p); the membrane's jump adds z ∂R/∂p only."""
    v_r = sym("v_reset")
    for reset, jumps in (
        ((Assign("v", "=", v - v_thresh),), {"v_thresh": -1, "alpha": 0}),
        ((Assign("v", "=", v_r),), {"v_thresh": 0, "alpha": 0, "v_reset": 1}),
    ):
        model, disc = _neuron("M", ["v"], {"v": alpha * v + (1 - alpha) * i_syn}, v >= v_thresh, reset)
        model = Model(**{**model.__dict__, "params": {**model.params, "v_reset": Param("v_reset", 0.0)}})
        thr = D.threshold(model, disc, WHERE)
        for param, dz in jumps.items():
            der = D.derive_param(param, model, disc, WHERE, thr, False)
            eps = sym(N.param_eligibility(param, "v"))
            (prop,) = der.propagate
            assert sympy.expand(prop.expr - (alpha * eps + (v - i_syn if param == "alpha" else 0))) == 0
            dtheta = -1 if param == "v_thresh" else 0
            assert sympy.expand(der.trace - psi * (eps + dtheta)) == 0
            if dz == 0:
                assert der.jump == ()
            else:
                (jump,) = der.jump
                assert sympy.expand(jump.expr - (eps + dz * D.Z)) == 0


def test_a_readout_param_has_no_trace_and_no_jump() -> None:
    model, disc = _neuron("M", ["v"], {"v": alpha * v + (1 - alpha) * i_syn}, None, ())
    der = D.derive_param("alpha", model, disc, WHERE, None, False)
    eps = sym(N.param_eligibility("alpha", "v"))
    assert der.trace is None and der.jump == ()
    assert sympy.expand(der.propagate[0].expr - (alpha * eps + v - i_syn)) == 0


def test_synapse_param_eligibility_of_an_exponential_tau() -> None:
    """derive_synapse_param for std Exponential into std LIF (relative reset), from the discretised
    models: ε_i ← ρ ε_i + ∂ρ/∂τ·i⁺ and ε_v ← α ε_v + (1 − α)(s ε_i + ∂s/∂τ·i⁺), with ρ = e^{−dt/τ},
    s = τ(1 − ρ)/dt the output's step average and i⁺ the state after delivery; e = ψ ε_v; the
    membrane's reset path stays stopped (no jump)."""
    src = """use std.{SpikeInput, LIF, LeakyIntegrate, Exponential, Delta}
network g {
    input  x   = SpikeInput(2)
    hidden h   = LIF(3, relative_reset = 1)
    output out = LeakyIntegrate(2, readout = sum_var(v))
    x -> h   : Dense(weight = 1.0), Exponential(tau = Trainable(5 ms))
    h -> out : Dense(weight = 1.0), Delta
}
train g {
    algorithm = eprop
    loss = sparse_categorical_crossentropy
}
"""
    pe = eprop(discretise(load_source(src, "g.snn"))).training.params["tau_x_to_h"]
    assert (pe.population, pe.projection, pe.role, pe.per_neuron) == ("h", "x_to_h", "hidden", False)
    tau, dt, i = sym("tau__x_to_h"), sym("dt"), sym("i__x_to_h")
    rho = sympy.exp(-dt / tau)
    s = tau * (1 - rho) / dt
    alpha = sympy.exp(-dt / sym("tau_mem"))
    eps_v, eps_i = (
        sym(N.param_eligibility("tau__x_to_h", "v")),
        sym(N.param_eligibility("tau__x_to_h", "i__x_to_h")),
    )
    values = {  # the derived params by their expressions, a neuron that is not refractory
        sym("P_i_i__x_to_h"): rho,
        sym("scale_i__x_to_h"): s,
        sym("P_v_v"): alpha,
        sym("P_v_i_syn"): 1 - alpha,
        sym(N.REFRACTORY): 0,
    }
    prop = {a.target: a.expr.xreplace(values) for a in pe.propagate}
    want_i = rho * eps_i + sympy.diff(rho, tau) * i
    want_v = alpha * eps_v + (1 - alpha) * (s * eps_i + sympy.diff(s, tau) * i)
    assert sympy.simplify(prop[eps_i.name] - want_i) == 0
    assert sympy.simplify(prop[eps_v.name] - want_v) == 0
    assert sympy.expand(pe.trace - psi * eps_v) == 0 and pe.jump == ()
    assert pe.trace_name == "__e_param__tau__x_to_h" and pe.key == "tau_x_to_h"
