"""The shared base of the gradient payloads: one walk over their expressions serves `simplify` (constant
folding of gradient statements) and `ir.verify` (every symbol declared or generated)."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import sympy
from snnc.ir.eprop_ir import EpropIR
from snnc.ir.gradient import GradientIR
from snnc.ir.training import TrainingIR
from snnc.ir.verify import verify
from snnc.passes.pipeline import compile_ir
from snnc.passes.simplify import simplify

from snnc.api import lower

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
CASES = {"yinyang_eventprop.snn": TrainingIR, "eprop_pattern.snn": EpropIR}


@pytest.fixture(scope="module", params=sorted(CASES))
def compiled(request: pytest.FixtureRequest):  # noqa: ANN201 - (file name, optimised network)
    network, _ = compile_ir(lower(EXAMPLES / request.param))
    return request.param, network


def test_both_payloads_share_the_base_and_verify_clean(compiled) -> None:  # noqa: ANN001
    name, network = compiled
    assert isinstance(network.training, CASES[name])
    assert isinstance(network.training, GradientIR)
    assert verify(network) == []
    walked = list(network.training.expressions())
    assert len(walked) > 10
    assert all(isinstance(e, sympy.Basic) for _, e in walked)


def test_map_expressions_keeps_everything_it_does_not_touch(compiled) -> None:  # noqa: ANN001
    _, network = compiled
    same = network.training.map_expressions(lambda e: e)
    assert same == network.training
    assert same.to_text() == network.training.to_text()


def test_an_undeclared_symbol_in_a_gradient_statement_is_reported_with_where(compiled) -> None:  # noqa: ANN001
    _, network = compiled
    leak = sympy.Symbol("tau_nowhere", real=True)
    first = {}

    def poison(e: sympy.Basic) -> sympy.Basic:
        if first or not isinstance(e, sympy.Expr) or not e.free_symbols:
            return e
        first["done"] = True
        return e + leak

    bad = dataclasses.replace(network, training=network.training.map_expressions(poison))
    problems = verify(bad)
    assert len(problems) == 1
    assert "tau_nowhere" in problems[0] and "uses undeclared symbol" in problems[0]
    assert problems[0].startswith(f"{network.training.algorithm}: {type(network.training).__name__}.")


def test_generated_and_coupled_names_are_declared(compiled) -> None:  # noqa: ANN001
    _, network = compiled
    proj = next(iter(network.projections))
    synapse = network.models[network.projections[proj].synapse]
    state = next(iter(synapse.states))
    extra = sympy.Symbol("__lambda__anything", real=True) + sympy.Symbol(f"{state}__{proj}", real=True)
    ok = dataclasses.replace(
        network,
        training=network.training.map_expressions(lambda e: e + extra if isinstance(e, sympy.Expr) else e),
    )
    assert verify(ok) == []
    wrong_projection = sympy.Symbol(f"{state}__no_such_projection", real=True)
    bad = dataclasses.replace(
        network,
        training=network.training.map_expressions(
            lambda e: e + wrong_projection if isinstance(e, sympy.Expr) else e
        ),
    )
    assert verify(bad) and all("no_such_projection" in p for p in verify(bad))


def test_simplify_folds_gradient_statements(compiled) -> None:  # noqa: ANN001
    _, network = compiled
    numeric = sympy.exp(-1) * sympy.sqrt(2)

    def scale(e: sympy.Basic) -> sympy.Basic:
        return e * numeric if isinstance(e, sympy.Expr) and e.free_symbols else e

    before = dataclasses.replace(network, training=network.training.map_expressions(scale))
    assert any(e.has(sympy.exp(-1)) for _, e in before.training.expressions())
    after = simplify(before)
    folded = list(after.training.expressions())
    assert not any(e.has(sympy.exp(-1)) or e.has(sympy.sqrt(2)) for _, e in folded)
    # folding keeps the value: compare one statement numerically at an arbitrary point
    pairs = zip(before.training.expressions(), folded, strict=True)
    (where, old), (_, new) = next(pair for pair in pairs if pair[0][1].free_symbols)
    point = {s: 0.37 for s in old.free_symbols}
    assert float(old.subs(point)) == pytest.approx(float(new.subs(point)), rel=1e-12), where


def test_a_payload_outside_the_base_is_refused(compiled) -> None:  # noqa: ANN001
    _, network = compiled
    assert verify(dataclasses.replace(network, training="fake")) == [
        "training payload str is not a GradientIR"
    ]
