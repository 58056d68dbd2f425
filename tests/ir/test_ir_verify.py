"""The verifier accepts valid IR at every stage and names what is wrong in broken IR."""

from __future__ import annotations

import dataclasses

import sympy
from small_network import exponential, lif, small_network
from snnc.ir.model import Assign, Ode
from snnc.ir.symbols import sym, w
from snnc.ir.verify import verify
from snnc.passes.discretise import discretise
from snnc.passes.simplify import simplify


def with_model(net, model):
    return dataclasses.replace(net, models={**net.models, model.name: model})


def test_valid_network_passes_at_every_stage():
    net = small_network()
    assert verify(net) == []
    discrete = discretise(net)
    assert verify(discrete) == []
    assert verify(simplify(discrete)) == []


def test_undeclared_symbol_in_ode_is_named():
    broken = dataclasses.replace(lif(), odes=(Ode("v", (sym("i_syn") - sym("v")) / sym("tau_bogus")),))
    problems = verify(with_model(small_network(), broken))
    assert len(problems) == 1
    assert "tau_bogus" in problems[0] and "LIF" in problems[0] and "dv/dt" in problems[0]


def test_weight_only_inside_on_pre():
    broken = dataclasses.replace(exponential(), odes=(Ode("i", -sym("i") / sym("tau") + w),))
    assert any("undeclared symbol(s) w" in p for p in verify(with_model(small_network(), broken)))


def test_on_pre_must_be_additive_in_w():
    broken = dataclasses.replace(exponential(), on_pre=(Assign("i", "+=", w**2),))
    assert any("not additive in w" in p for p in verify(with_model(small_network(), broken)))
    scaled = dataclasses.replace(exponential(), on_pre=(Assign("i", "*=", w),))
    assert any("not additive in w" in p for p in verify(with_model(small_network(), scaled)))


def test_wiring_problems_are_named():
    net = small_network()
    proj = net.projections["x_to_out"]
    bad = dataclasses.replace(
        net,
        projections={"p": dataclasses.replace(proj, pre="nowhere", target="i_exc", synapse="LIF")},
        populations={
            **net.populations,
            "h": dataclasses.replace(net.populations["x"], name="h", model="Nope"),
        },
    )
    problems = " | ".join(verify(bad))
    assert "unknown population 'nowhere'" in problems
    assert "neuron model 'LIF' as its synapse" in problems
    assert "'i_exc', which is not an input of 'LIF'" in problems
    assert "unknown model 'Nope'" in problems


def test_discrete_invariants():
    net = discretise(small_network())
    dm = net.discrete["LIF"]
    t0 = sym("_t0")
    cases = {
        "uses '+='": dataclasses.replace(dm, update=(Assign("v", "+=", sym("v")),)),
        "temp '_t1' uses undeclared symbol(s) _t0": dataclasses.replace(
            dm, temps=(("_t1", t0 + 1), ("_t0", sympy.Integer(2)))
        ),
        "derived 'bad' uses undeclared symbol(s) v": dataclasses.replace(dm, derived=(("bad", sym("v")),)),
        "'nope', which is not a state": dataclasses.replace(dm, update=(Assign("nope", "=", sym("v")),)),
    }
    for expected, broken in cases.items():
        problems = verify(dataclasses.replace(net, discrete={**net.discrete, "LIF": broken}))
        assert any(expected in p for p in problems), (expected, problems)
    missing = {k: v for k, v in net.discrete.items() if k != "LIF"}
    assert any("no discrete form" in p for p in verify(dataclasses.replace(net, discrete=missing)))
