"""The kernel IR: a hand-written LIF network kernel verifies and prints; each broken invariant is named."""

from __future__ import annotations

import dataclasses

import sympy
from snnc.ir.kernel import (
    BATCH,
    STEP,
    Array,
    Arrivals,
    Entry,
    Events,
    If,
    Index,
    Kernel,
    Let,
    Local,
    Loop,
    Neurons,
    Phase,
    PhaseKind,
    ProjectionInfo,
    Role,
    Spikes,
    Store,
    kernel_to_text,
    verify_kernel,
)
from snnc.ir.symbols import sym

V = Array("p_h__v", Role.STATE, "h", ("batch", 4), var="v")
ISYN = Array("y_h__i__x_to_h", Role.STATE, "h", ("batch", 4), var="i")
W = Array("w_x_to_h", Role.WEIGHT, "x_to_h", (3, 4))
G = Array("g_x_to_h", Role.GRADIENT, "x_to_h", ("batch", 3, 4))
LAM = Array("l_h__lambda_i", Role.ADJOINT, "h", ("batch", 4), var="i")
FLAG = Array("q_h__flag", Role.COUNTER, "h", ("batch", 4), dtype="int32")
LIST = (
    Array("sl_x__id", Role.SPIKE_LIST, "x", ("batch", "events"), "int32", var="id"),
    Array("sl_x__step", Role.SPIKE_LIST, "x", ("batch", "events"), "int32", var="step"),
    Array("sl_x__capacity", Role.INPUT, "x", (1,), "int64", var="capacity"),
    Array("sl_x__length", Role.COUNTER, "x", ("batch",), "int64", var="length"),
    Array("sl_x__cursor", Role.COUNTER, "x", ("batch",), "int64", var="cursor"),
)


def lif_kernel() -> Kernel:
    j = Index("j")
    i_, j2 = Index("i"), Index("j")
    v_new = Local("v_new")
    deliver = Loop(Arrivals("x_to_h"), (Store(ISYN[BATCH, j2], W[i_, j2], "+="),), comment="on_pre: i += w")
    step = Loop(
        Neurons("h"),
        (
            Let(v_new, ISYN[BATCH, j] + (V[BATCH, j] - ISYN[BATCH, j]) * sympy.Float(0.95)),
            Store(V[BATCH, j], v_new),
            Store(FLAG[BATCH, j], sympy.Piecewise((1, v_new >= 1), (0, True))),
            If(v_new >= 1, (Store(V[BATCH, j], sympy.S.Zero, comment="reset v = 0"),)),
        ),
    )
    e, ei = Index("e"), Index("i")
    backward = Loop(Events("x", STEP, "sl_x__cursor"), (Store(G[BATCH, ei, 0], LAM[BATCH, 0], "+="),))
    backward = dataclasses.replace(backward, vars={"e": e, "i": ei})
    return Kernel(
        name="net",
        dt=0.1,
        num_steps=10,
        precision="float",
        populations={"x": 3, "h": 4},
        projections={"x_to_h": ProjectionInfo("x", "h", "dense")},
        arrays=(V, ISYN, W, G, LAM, FLAG, *LIST),
        phases=(
            Phase("reset", PhaseKind.RESET, (Loop(Neurons("h"), (Store(V[BATCH, j], sympy.S.Zero),)),)),
            Phase("deliver", PhaseKind.FORWARD, (deliver,)),
            Phase("step_h", PhaseKind.FORWARD, (step,)),
            Phase("backward_x_to_h", PhaseKind.BACKWARD, (backward,)),
        ),
        entries=(
            Entry("run", before=("reset",), per_step=("deliver", "step_h")),
            Entry("backward", per_step=("backward_x_to_h",), steps="backward"),
        ),
    )


def test_a_well_formed_kernel_verifies_and_prints_deterministically():
    kernel = lif_kernel()
    assert verify_kernel(kernel) == []
    text = kernel_to_text(kernel)
    assert text == kernel_to_text(lif_kernel())
    assert "array w_x_to_h: weight of x_to_h, scalar[3, 4]" in text
    assert "for i, j, q in arrivals(x_to_h) {  // on_pre: i += w" in text
    assert "entry backward: before [], backward steps [backward_x_to_h], after []" in text


def test_arrays_are_found_by_role_and_owner_not_by_name():
    kernel = lif_kernel()
    assert kernel.find(Role.STATE, "h", "v") is V
    assert kernel.find(Role.WEIGHT, "x_to_h").name == "w_x_to_h"


def test_generated_locals_never_equal_user_symbols():
    assert Local("v") != sym("v") and Index("k") != sym("k")
    assert Local("v").free_symbols.isdisjoint(sym("v").free_symbols)


def _phase(kernel: Kernel, name: str, body) -> Kernel:  # noqa: ANN001
    phases = tuple(dataclasses.replace(p, body=body) if p.name == name else p for p in kernel.phases)
    return dataclasses.replace(kernel, phases=phases)


def test_each_broken_invariant_is_reported():
    k = lif_kernel()
    j = Index("j")
    unknown = Array("nope", Role.STATE, "h", ("batch", 4))
    cases = {
        "reads undeclared array 'nope'": _phase(
            k, "reset", (Loop(Neurons("h"), (Store(V[BATCH, j], unknown[BATCH, j]),)),)
        ),
        "indexed with 3": _phase(k, "reset", (Loop(Neurons("h"), (Store(V[BATCH, j, j], 0),)),)),
        "index 'j' is not bound here": _phase(k, "reset", (Store(V[BATCH, j], 0),)),
        "local 'x' is not bound here": _phase(
            k, "reset", (Loop(Neurons("h"), (Store(V[BATCH, j], Local("x")),)),)
        ),
        "symbol 'tau' is not bound here": _phase(
            k, "reset", (Loop(Neurons("h"), (Store(V[BATCH, j], sym("tau")),)),)
        ),
        "index 'k' is not bound here": _phase(k, "reset", (Loop(Spikes("h", STEP), ()),)),
        "is a weight array, read-only": _phase(k, "reset", (Store(W[0, 0], 1),)),
        "operator '-='": _phase(k, "reset", (Loop(Neurons("h"), (Store(V[BATCH, j], 0, "-="),)),)),
        "defined twice": _phase(k, "reset", (Let(Local("a"), 1), Let(Local("a"), 2))),
        "unknown population or projection 'y'": _phase(k, "reset", (Loop(Neurons("y"), ()),)),
        "runs unknown phase 'gone'": dataclasses.replace(k, entries=(Entry("run", per_step=("gone",)),)),
        "runs backward phase 'backward_x_to_h' in a forward time loop": dataclasses.replace(
            k, entries=(Entry("run", per_step=("backward_x_to_h",)),)
        ),
        "runs forward phase 'step_h' in its 'before' slot": dataclasses.replace(
            k, entries=(Entry("run", before=("step_h",)),)
        ),
        "runs reset phase 'reset' in its 'prepare' slot": dataclasses.replace(
            k, entries=(Entry("run", prepare=("reset",)),)
        ),
        "index 'b' is not bound here": dataclasses.replace(  # once per batch: no trial of its own
            k,
            phases=(
                *k.phases,
                Phase("first", PhaseKind.PREPARE, (Loop(Neurons("h"), (Store(V[BATCH, j], 0),)),)),
            ),
        ),
        "array 'p_h__v' is declared more than once": dataclasses.replace(k, arrays=k.arrays + (V,)),
        "phase name '_first' does not begin with a letter": dataclasses.replace(
            k, phases=(*k.phases, Phase("_first", PhaseKind.PREPARE, ()))
        ),
        "phase 'run' is named like an entry": dataclasses.replace(
            k, phases=(*k.phases, Phase("run", PhaseKind.PREPARE, ()))
        ),
        "dimension 'rows'": dataclasses.replace(
            k, arrays=k.arrays + (Array("z", Role.SCRATCH, "h", ("rows",)),)
        ),
        "owner 'nobody'": dataclasses.replace(
            k, arrays=k.arrays + (Array("z", Role.SCRATCH, "nobody", (1,)),)
        ),
    }
    for expected, kernel in cases.items():
        problems = verify_kernel(kernel)
        assert any(expected in p for p in problems), (expected, problems)
