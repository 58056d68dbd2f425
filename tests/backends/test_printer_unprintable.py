"""An expression without a C value (zoo, nan, I, an unevaluated integral) that reaches the C printer
is an error that names it and where it is (kernel, phase, statement). sympy's own hook for these
needs a set only its `doprint` makes, so the printer failed with an AttributeError naming nothing."""

from __future__ import annotations

import dataclasses

import pytest
import sympy
from snnc.backends.c.kernel_printer import print_kernel
from snnc.backends.c.manifest import ABI_VERSION
from snnc.backends.c.printer import SnncCPrinter, UnprintableExprError
from snnc.ir.kernel import (
    BATCH,
    Array,
    Entry,
    If,
    Index,
    Let,
    Local,
    Loop,
    Neurons,
    Phase,
    PhaseKind,
    Role,
    Store,
)
from snnc.passes.schedule_forward import forward_kernel

from snnc.api import lower

SOURCE = """
use std.{SpikeInput, LIF, LeakyIntegrate, Exponential}
network g {
    input  x   = SpikeInput(3)
    hidden h   = LIF(4)
    output out = LeakyIntegrate(2, readout = avg_var)
    x -> h   : Dense(weight = 1.0), Exponential(tau = 5 ms)
    h -> out : Dense(weight = 1.0), Exponential(tau = 5 ms)
}
"""


@pytest.mark.parametrize(
    "expr", [sympy.zoo, sympy.nan, sympy.I, sympy.Integral(sympy.Symbol("x"), sympy.Symbol("x"))]
)
def test_the_expression_printer_names_what_it_cannot_print(expr):
    with pytest.raises(UnprintableExprError, match="has no C value") as info:
        SnncCPrinter({"x": "x"})._print(expr)
    assert info.value.expr == expr


def _with_phase(body: tuple) -> object:
    """The forward kernel of SOURCE with one more phase, `broken`, run after the others."""
    kernel = forward_kernel(lower(SOURCE, dt=0.5, duration=5.0), precision="double")
    total = Array("t_h__total", Role.SCRATCH, "h", ("batch", kernel.populations["h"]))
    return dataclasses.replace(
        kernel,
        arrays=(*kernel.arrays, total),
        phases=(*kernel.phases, Phase("broken", PhaseKind.REDUCE, body(total))),
        entries=(*kernel.entries, Entry("extra", after=("broken",))),
    )


J = Index("j")
CASES = {
    "store to 't_h__total'": lambda t: (
        Loop(Neurons("h"), (Store(t[BATCH, J], sympy.zoo * t[BATCH, J]),), {"j": J}),
    ),
    "local 'k'": lambda t: (
        Loop(Neurons("h"), (Let(Local("k"), sympy.nan), Store(t[BATCH, J], 1.0)), {"j": J}),
    ),
    "an if's condition": lambda t: (
        Loop(
            Neurons("h"),
            (If(sympy.Gt(t[BATCH, J], sympy.nan, evaluate=False), (Store(t[BATCH, J], 1.0),)),),
            {"j": J},
        ),
    ),
}


@pytest.mark.parametrize("place", CASES)
def test_a_kernel_statement_that_cannot_be_printed_is_located(place):
    kernel = _with_phase(CASES[place])
    with pytest.raises(UnprintableExprError) as info:
        print_kernel(kernel, precision="double", abi=ABI_VERSION)
    assert str(info.value).startswith(f"kernel '{kernel.name}', phase 'broken': {place}: "), str(info.value)
