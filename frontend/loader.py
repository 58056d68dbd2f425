"""Source text or a file -> Network: parse, resolve `use`, lower. The entry points the CLI calls."""

from __future__ import annotations

from pathlib import Path

from snnc.frontend.lower import lower, lower_collect, lower_models
from snnc.ir import model as ir
from snnc.ir.diagnostics import Diagnostic, DiagnosticError


def _parse(text: str, path: str):
    from snnc.frontend.parser import parse

    return parse(text, path)


def _read(path: str) -> str:
    """File text; binary, non-UTF-8 or oversized files become diagnostics (parser.decode_source)."""
    from snnc.frontend.parser import decode_source

    try:
        data = Path(path).read_bytes()
    except OSError as err:
        raise DiagnosticError(Diagnostic("E-FILE", f"cannot read '{path}': {err.strerror or err}")) from None
    return decode_source(data, path)


def load_source(text: str, path: str = "<string>", *, network: str | None = None) -> ir.Network:
    """Parse and lower source text; raises DiagnosticError with every error found."""
    return lower(_parse(text, path), sources={path: text}, network=network)


def load_file(path: str, *, network: str | None = None) -> ir.Network:
    """Parse and lower a `.snn` file; `use "x.snn"` paths are relative to it."""
    path = str(path)
    return load_source(_read(path), path, network=network)


def load_models(path_or_text: str, *, is_path: bool = True) -> dict[str, ir.Model]:
    """The models a file (or text) defines or imports, lowered: for model libraries."""
    text, path = (_read(str(path_or_text)), str(path_or_text)) if is_path else (path_or_text, "<string>")
    return lower_models(_parse(text, path), sources={path: text})


def check_source(text: str, path: str = "<string>") -> list[Diagnostic]:
    """Every diagnostic (errors and warnings) for source text; never raises for user errors."""
    try:
        module = _parse(text, path)
    except DiagnosticError as err:
        return list(err.diagnostics)
    _, bag, _ = lower_collect(module, sources={path: text})
    return list(bag.items)


def check_file(path: str) -> list[Diagnostic]:
    """`snnc check`: every diagnostic for a file, errors and warnings, instead of raising."""
    try:
        text = _read(str(path))
    except DiagnosticError as err:
        return list(err.diagnostics)
    return check_source(text, str(path))
