"""Mutated sources through the whole front half: parse, lower, check, passes. Only diagnostics come out."""

from __future__ import annotations

from pathlib import Path

from hypothesis import HealthCheck, given, settings
from mutations import mutated_sources
from snnc.frontend import check_source, load_source
from snnc.ir.diagnostics import DiagnosticError
from snnc.passes.pipeline import compile_ir

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [p.read_text(encoding="utf-8") for p in sorted((ROOT / "examples").glob("*.snn"))]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(mutated_sources(SOURCES))
def test_mutations_give_diagnostics_or_valid_ir(text: str) -> None:
    diagnostics = check_source(text, "<fuzz>")
    assert all(d.code != "E-INTERNAL" for d in diagnostics), diagnostics
    if any(d.severity == "error" for d in diagnostics):
        return
    try:
        network = load_source(text, "<fuzz>")
        compile_ir(network, gradients=False)
    except DiagnosticError as err:  # a pass may still refuse a model; it must say so as a diagnostic
        assert err.diagnostics and all(d.message for d in err.diagnostics)
