"""User-facing runtime configuration errors.

A bad loss name, optimiser argument or dataset option in a `train` block is the user's mistake, not a
bug, so it travels as a `DiagnosticError` the CLI renders. It is also a `ValueError`, so plain Python
callers of the runtime API can catch it the ordinary way.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from snnc.ir.diagnostics import Diagnostic, DiagnosticError, Span, did_you_mean


class RuntimeConfigError(DiagnosticError, ValueError):
    """One diagnostic about runtime configuration (loss, optimiser, schedule, dataset, checkpoint)."""

    def __init__(self, code: str, message: str, hint: str | None = None, span: Span | None = None):
        super().__init__(Diagnostic(code, message, span, hint))
        self.code = code
        self.hint = hint


def unknown_name(kind: str, name: str, known: Iterable[str], span: Span | None = None) -> RuntimeConfigError:
    """An error for `name` not being one of `known`, with a 'did you mean' hint when one is close."""
    known = sorted(known)
    hint = did_you_mean(name, known) or f"known {kind}s: {', '.join(known)}"
    return RuntimeConfigError(f"E-UNKNOWN-{kind.upper()}", f"unknown {kind} '{name}'", hint, span)


def check_args(
    kind: str, name: str, args: Mapping[str, Any], allowed: Iterable[str], span: Span | None = None
) -> None:
    """Reject keyword arguments a `kind` called `name` does not take."""
    allowed = sorted(allowed)
    for key in args:
        if key not in allowed:
            hint = did_you_mean(key, allowed) or (
                f"'{name}' takes: {', '.join(allowed)}" if allowed else f"'{name}' takes no arguments"
            )
            raise RuntimeConfigError(
                f"E-{kind.upper()}-ARG", f"{kind} '{name}' has no argument '{key}'", hint, span
            )
