"""simplify must not change what a step computes, and must actually simplify."""

from __future__ import annotations

import discrete_eval as ev
import handmade_models as M
import numpy as np
import pytest
import sympy
from snnc.ir.model import Model, Ode, Param
from snnc.ir.symbols import dt, sym
from snnc.passes.discretise import discretise_model
from snnc.passes.simplify import fold, simplify_model


def random_values(model: Model, rng: np.random.Generator) -> dict[str, float]:
    values = {"dt": rng.uniform(0.05, 1.0)}
    for name in model.params:
        values[name] = rng.uniform(2.0, 30.0) if name.startswith("tau") else rng.uniform(-1.0, 1.0)
    for name in [*model.states, *model.inputs]:
        values[name] = rng.uniform(-0.5, 0.5)
    return values


def cse_heavy() -> Model:
    v, i = sym("v"), sym("i_syn")
    u = (v - i) ** 2
    return Model(
        "CseHeavy",
        "neuron",
        params={"k": Param("k", 0.5), "unused": Param("unused", 3.0)},
        states={"v": M.State("v", 0.0), "z": M.State("z", 1.0)},
        inputs={"i_syn": M.Input("i_syn")},
        odes=(Ode("v", sympy.sin(u) + u * sym("k") * sympy.exp(sympy.Integer(1))),),
        method="euler",
        sub_steps=2,
    )


MODELS = [
    M.lif,
    M.alif,
    M.leaky_integrate,
    M.integrate_fire,
    M.exponential,
    M.coupled,
    M.conductance,
    M.alpha,
]
MODELS += [lambda: M.quadratic(method="euler", sub_steps=3), lambda: M.lif(method="euler"), cse_heavy]


@pytest.mark.parametrize("factory", MODELS)
def test_simplify_preserves_numerics(factory):
    model = factory()
    before = discretise_model(model)
    after = simplify_model(model, before)
    rng = np.random.default_rng(7)
    for _ in range(3):
        values = random_values(model, rng)
        want, got = ev.step(before, values), ev.step(after, values)
        assert want.keys() == got.keys()
        for k in want:
            assert got[k] == pytest.approx(want[k], rel=1e-12, abs=1e-14)
        if before.output is not None:
            assert ev.output(after, values) == pytest.approx(ev.output(before, values), rel=1e-12)
        assert ev.reset(after, values) == pytest.approx(ev.reset(before, values), rel=1e-12)


def test_loop_invariants_are_hoisted_out_of_the_step():
    model = M.lif(method="euler")  # v + dt*(i_syn - v)/tau_mem: dt/tau_mem is invariant
    after = simplify_model(model, discretise_model(model))
    step_symbols = set().union(*(a.expr.free_symbols for a in after.update))
    assert sym("tau_mem") not in step_symbols and dt not in step_symbols
    hoisted = dict(after.derived)
    assert any(e.free_symbols == {dt, sym("tau_mem")} for e in hoisted.values())


def test_common_subexpressions_become_named_temps():
    model = cse_heavy()
    before = discretise_model(model)
    after = simplify_model(model, before)
    names = [n for n, _ in after.temps]
    assert any(n.startswith("_cse") for n in names)
    # temps are defined before use
    seen: set[str] = set()
    for name, e in after.temps:
        assert {str(s) for s in e.free_symbols} & set(names) <= seen
        seen.add(name)


def test_unused_params_dropped_from_needs_but_states_kept():
    model = cse_heavy()
    after = simplify_model(model, discretise_model(model))
    assert after.needs_params == ("k",)
    assert "z" in model.states  # the model still declares it; nothing removes states
    assert {a.target for a in after.update} == {"v"}


def test_constant_folding_evaluates_numbers():
    folded = fold(sympy.exp(sympy.Integer(1)) * sym("v") + sympy.sqrt(2))
    assert folded.free_symbols == {sym("v")}
    assert all(
        not (a.is_number and not a.is_Float and not a.is_Rational) for a in sympy.preorder_traversal(folded)
    )
    assert float(folded.subs(sym("v"), 1.0)) == pytest.approx(np.e + np.sqrt(2))


def test_dead_derived_removed_unless_training_is_present():
    model = M.lif()
    dm = discretise_model(model)
    import dataclasses

    padded = dataclasses.replace(dm, derived=(*dm.derived, ("dead", sym("tau_mem") * 2)))
    assert "dead" not in dict(simplify_model(model, padded).derived)
    assert "dead" in dict(simplify_model(model, padded, keep_derived=True).derived)
