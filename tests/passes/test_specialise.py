"""The `specialise` pass: the same specialised steps the backends computed for themselves, and no
capture of a generated symbol by a param of the same spelling."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import sympy
from snnc.backends.common import plan_network
from snnc.ir.symbols import sym
from snnc.passes.specialise import apply, specialise

from snnc.api import lower

REPO = Path(__file__).resolve().parents[2]
SOURCES = [
    REPO / "examples" / "yinyang_eventprop.snn",
    REPO / "examples" / "eprop_pattern.snn",
    REPO / "tests" / "golden" / "sources" / "conv_pool.snn",
    REPO / "tests" / "golden" / "sources" / "sparse_delay_recurrent.snn",
]


@pytest.mark.parametrize("source", SOURCES, ids=lambda p: p.stem)
def test_specialised_steps_equal_the_backend_plan(source: Path) -> None:
    network = lower(source)
    spec = specialise(network).specialised
    plan = plan_network(network)
    for name, pp in plan.populations.items():
        if pp.generator is not None:
            assert name not in spec.populations
            continue
        sp = spec.populations[name]
        # the backends' forward plan substituted trained params too; the pass keeps them symbolic
        kept = {k: sympy.Float(float(network.populations[name].params[k]), 17) for k in sp.kept}
        update = tuple(dataclasses.replace(a, expr=apply(a.expr, kept)) for a in sp.update)
        assert update == pp.update, name
        assert sp.temps == pp.temps, name
        assert sp.spike == pp.spike, name
        assert sp.reset == pp.reset, name
        assert sp.refractory_steps == pp.refractory_steps, name
    for name, pj in plan.projections.items():
        sj = spec.projections[name]
        assert (sj.on_pre, sj.output, sj.update, sj.temps) == (pj.on_pre, pj.output, pj.update, pj.temps)
        assert sj.delay_steps == pj.delay_steps


def test_a_trained_param_stays_symbolic_with_the_derived_params_over_it() -> None:
    network = lower(REPO / "examples" / "eprop_pattern.snn")
    spec = specialise(network).specialised
    outputs = [p for p in spec.populations.values() if p.kept]
    assert outputs and all(p.kept == ("bias",) for p in outputs)
    for p in outputs:
        assert sym("bias") in set().union(*(a.expr.free_symbols for a in p.update))
        assert "bias" not in dict(p.values)


def test_only_user_symbols_are_substituted() -> None:
    generated = sympy.Symbol("tau_mem")  # same spelling, other assumptions: not the user's param
    expr = apply(sym("tau_mem") + generated, {"tau_mem": sympy.Float(20.0)})
    assert expr == sympy.Float(20.0) + generated
