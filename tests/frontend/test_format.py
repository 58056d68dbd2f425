"""Canonical source printing round-trips: parse(format(parse(x))) == parse(x), spans aside."""

from __future__ import annotations

from pathlib import Path

import pytest
from snnc.frontend.format import format_module, strip_spans
from snnc.frontend.parser import parse
from snnc.frontend.stdlib import std_models

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [(p.name, p.read_text(), str(p)) for p in sorted((ROOT / "examples").glob("*.snn"))]
SOURCES += [(name, text, path) for name, (text, path) in sorted(std_models().items())]


@pytest.mark.parametrize(("name", "text", "path"), SOURCES, ids=[s[0] for s in SOURCES])
def test_round_trip(name: str, text: str, path: str) -> None:
    module = parse(text, path)
    printed = format_module(module)
    again = parse(printed, "<formatted>")
    assert strip_spans(again) == strip_spans(module)
    assert format_module(again) == printed  # idempotent


def test_round_trip_covers_every_statement_kind() -> None:
    text = """use std.{LIF, Exponential}
neuron N {
    param tau = 20 ms
    derived a = exp(-dt / tau)
    state v = 0.0
    input i_syn : nA
    dv/dt = (-v + i_syn * 1 MOhm) / tau
    spike when v >= 1.0 and not (v < -2 ^ 2)
    reset { v = 0; v += 1 }
    refractory = 2 ms integrating
    method = euler(sub_steps = 4)
}
synapse S {
    state i = 0
    on_pre { i += w }
    output impulse i
}
neuron G {
    generator poisson
}
network n {
    input x = G((2, 3))
    output o = N(6, readout = avg_var(v))
    x -> o : Dense(weight = File("w.npy"), delay = 1 ms), S
}
train n {
    loss = mse
    augment = (shift(max = 4), blend(n = 2))
}
"""
    module = parse(text, "t.snn")
    assert strip_spans(parse(format_module(module))) == strip_spans(module)
