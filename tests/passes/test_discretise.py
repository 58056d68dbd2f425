"""discretise against the mathematics: closed forms, fine-step RK4, and the choice of integrator."""

from __future__ import annotations

import time

import discrete_eval as ev
import handmade_models as M
import numpy as np
import pytest
import sympy
from snnc.ir.diagnostics import DiagnosticError
from snnc.ir.model import Model, Ode
from snnc.ir.symbols import dt, sym, t
from snnc.passes import discretise as D


def substituted(dm, expr):
    """`expr` with every derived param replaced by its definition (latest first)."""
    for name, value in reversed(dm.derived):
        expr = expr.subs(sym(name), value)
    return expr


def rk4(f, x0: np.ndarray, T: float, n: int = 4000) -> np.ndarray:
    h, x = T / n, x0.astype(float)
    for _ in range(n):
        k1 = f(x)
        k2 = f(x + h / 2 * k1)
        k3 = f(x + h / 2 * k2)
        k4 = f(x + h * k3)
        x = x + h / 6 * (k1 + 2 * k2 + 2 * k3 + k4)
    return x


def test_lif_exact_update_is_the_closed_form():
    dm = D.discretise_model(M.lif())
    assert dm.method == "exact"
    v, i, tau = sym("v"), sym("i_syn"), sym("tau_mem")
    new_v = substituted(dm, dm.update_for("v").expr)
    assert sympy.simplify(new_v - (i + (v - i) * sympy.exp(-dt / tau))) == 0
    # the decay factor is hoisted under a readable name
    assert ("P_v_v", sympy.exp(-dt / tau)) in dm.derived


def test_integrate_fire_singular_matrix_is_exact():
    dm = D.discretise_model(M.integrate_fire())
    assert dm.method == "exact"
    new_v = substituted(dm, dm.update_for("v").expr)
    assert sympy.simplify(new_v - (sym("v") + dt * sym("i_syn") / sym("tau_mem"))) == 0


def test_leaky_integrate_with_bias():
    dm = D.discretise_model(M.leaky_integrate())
    v, i, b, tau = sym("v"), sym("i_syn"), sym("bias"), sym("tau_mem")
    new_v = substituted(dm, dm.update_for("v").expr)
    assert sympy.simplify(new_v - (i + b + (v - i - b) * sympy.exp(-dt / tau))) == 0


def test_alif_adaptation_decays_exactly():
    dm = D.discretise_model(M.alif())
    assert dm.method == "exact"
    a = substituted(dm, dm.update_for("a").expr)
    assert sympy.simplify(a - sym("a") * sympy.exp(-dt / sym("tau_adapt"))) == 0
    assert dm.spike == M.alif().spike and dm.reset == M.alif().reset


def test_exponential_output_is_the_step_average():
    dm = D.discretise_model(M.exponential())
    i, tau = sym("i"), sym("tau")
    out = substituted(dm, dm.output)
    assert sympy.simplify(out - i * tau * (1 - sympy.exp(-dt / tau)) / dt) == 0
    assert sympy.simplify(substituted(dm, dm.update_for("i").expr) - i * sympy.exp(-dt / tau)) == 0
    assert not dm.impulse and dm.on_pre == M.exponential().on_pre


def test_delta_is_an_impulse_and_generators_have_no_update():
    delta = D.discretise_model(M.delta())
    assert delta.impulse and delta.output == sym("i") and delta.update == ()
    gen = D.discretise_model(M.spike_input())
    assert gen.method == "none" and gen.update == ()


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_coupled_linear_system_matches_rk4(seed):
    rng = np.random.default_rng(seed)
    values = {
        "tau_mem": rng.uniform(5, 30),
        "tau_syn": rng.uniform(1, 4),
        "v_thresh": 1.0,
        "dt": rng.uniform(0.05, 2.0),
        "v": rng.normal(),
        "i": rng.normal(),
        "i_syn": rng.normal(),
    }
    dm = D.discretise_model(M.coupled())
    assert dm.method == "exact" and "coupled" in dm.reason
    got = ev.step(dm, values)
    tm, ts, u = values["tau_mem"], values["tau_syn"], values["i_syn"]

    def f(x):
        return np.array([(x[1] - x[0]) / tm, (u - x[1]) / ts])

    want = rk4(f, np.array([values["v"], values["i"]]), values["dt"])
    assert got["v"] == pytest.approx(want[0], abs=1e-6)
    assert got["i"] == pytest.approx(want[1], abs=1e-6)


def test_coupled_synapse_output_is_the_step_average_of_rk4():
    """Alpha synapse (equal time constants, a Jordan block): output = (1/dt) * integral of i."""
    dm = D.discretise_model(M.alpha())
    values = {"tau": 3.0, "dt": 0.7, "x": 1.3, "i": -0.4}
    tau = values["tau"]

    def f(y):  # y = (x, i, integral of i)
        return np.array([-y[0] / tau, (y[0] - y[1]) / tau, y[1]])

    want = rk4(f, np.array([values["x"], values["i"], 0.0]), values["dt"])
    assert ev.output(dm, values) == pytest.approx(want[2] / values["dt"], abs=1e-6)
    got = ev.step(dm, values)
    assert got["x"] == pytest.approx(want[0], abs=1e-6) and got["i"] == pytest.approx(want[1], abs=1e-6)


def test_nonlinear_model_falls_back_and_says_why():
    dm = D.discretise_model(M.quadratic())
    assert dm.method == "euler"
    assert "exact refused" in dm.reason and "v**2" in dm.reason
    assert "exponential_euler refused" in dm.reason


def test_state_dependent_coefficient_uses_exponential_euler():
    dm = D.discretise_model(M.conductance())
    assert dm.method == "exponential_euler"
    assert "exact refused" in dm.reason and "depends on g" in dm.reason
    values = {"e_rev": 2.0, "tau_mem": 20.0, "g": 0.3, "v": -0.5, "dt": 0.5}
    a = -values["g"] - 1 / values["tau_mem"]
    b = values["g"] * values["e_rev"]
    want = -b / a + (values["v"] + b / a) * np.exp(a * values["dt"])  # exact for constant g
    assert ev.step(dm, values)["v"] == pytest.approx(want, rel=1e-12)
    # the a -> 0 guard: zero conductance and infinite membrane time constant stays finite
    zero = D.discretise_model(M.conductance())
    values.update(g=0.0, tau_mem=float("inf"))
    assert ev.step(zero, values)["v"] == pytest.approx(values["v"])


def test_time_dependence_defeats_exact():
    model = Model("Driven", "neuron", states=M.lif().states, odes=(Ode("v", sympy.sin(t) - sym("v")),))
    dm = D.discretise_model(model)
    assert dm.method == "exponential_euler" and "depends on time" in dm.reason


def test_euler_sub_steps_match_manual_iteration():
    dm = D.discretise_model(M.quadratic(method="euler", sub_steps=4))
    assert dm.sub_steps == 4 and len(dm.temps) == 3
    values = {"v_thresh": 1.0, "v": 0.3, "i_syn": 0.1, "dt": 0.2}
    v, h = values["v"], values["dt"] / 4
    for _ in range(4):
        v = v + h * (v**2 - values["i_syn"])
    assert ev.step(dm, values)["v"] == pytest.approx(v, rel=1e-12)


def test_user_method_exact_on_nonlinear_model_is_a_diagnostic():
    with pytest.raises(DiagnosticError) as err:
        D.discretise_model(M.quadratic(method="exact"))
    diag = err.value.diagnostics[0]
    assert diag.code == "E-METHOD" and "v**2" in diag.message and "Quadratic" in diag.message


def test_unknown_method_is_a_diagnostic():
    with pytest.raises(DiagnosticError) as err:
        D.discretise_model(M.lif(method="runge_kutta"))
    assert err.value.diagnostics[0].code == "E-METHOD"
    assert "exact" in (err.value.diagnostics[0].hint or "")


def test_user_method_overrides_the_preference():
    dm = D.discretise_model(M.lif(method="exponential_euler"))
    assert dm.method == "exponential_euler" and dm.reason.startswith("requested")


def test_states_without_ode_are_held():
    model = M.lif()
    held = Model(
        "Held",
        "neuron",
        params=model.params,
        states={**model.states, "b": M.State("b", 0.5)},
        inputs=model.inputs,
        odes=(Ode("v", (sym("i_syn") + sym("b") - sym("v")) / sym("tau_mem")),),
    )
    dm = D.discretise_model(held)
    assert dm.method == "exact" and dm.update_for("b") is None and "held" in dm.reason


@pytest.mark.parametrize(
    "factory", [M.lif, M.alif, M.leaky_integrate, M.integrate_fire, M.exponential, M.delta, M.spike_input]
)
def test_std_models_discretise_fast_and_are_cached(factory):
    D._CACHE.clear()
    start = time.perf_counter()
    first = D.discretise_model(factory())
    assert time.perf_counter() - start < 0.1
    assert D.discretise_model(factory()) is first
