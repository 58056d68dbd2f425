"""Diagnostics as values: a code, a source span, a message and an optional hint.

Every layer (frontend, passes, backends) reports user errors by creating `Diagnostic`s; only the CLI
decides how to print them and which exit status follows. Rendering lives here so that tests and the
CLI show exactly the same text (``path:line:col: error: message``, the source line, a caret, a hint).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Span:
    """A region of a source file. Lines and columns are 1-based; `end_col` is exclusive."""

    file: str
    line: int
    col: int
    end_line: int | None = None
    end_col: int | None = None

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.col}"


NO_SPAN = Span("<unknown>", 0, 0)


@dataclass(frozen=True)
class Diagnostic:
    """One message for the user. `code` is a stable identifier tests can assert (e.g. ``E-UNDEFINED``)."""

    code: str
    message: str
    span: Span | None = None
    hint: str | None = None
    severity: str = "error"  # "error" | "warning" | "note"
    notes: tuple[tuple[Span | None, str], ...] = ()

    def render(self, sources: dict[str, str] | None = None) -> str:
        return render(self, sources)


class DiagnosticError(Exception):
    """Raised to abort a stage with one or more user-facing diagnostics (never an internal bug)."""

    def __init__(self, diagnostics: Diagnostic | Iterable[Diagnostic], sources: dict[str, str] | None = None):
        if isinstance(diagnostics, Diagnostic):
            diagnostics = [diagnostics]
        self.diagnostics: list[Diagnostic] = list(diagnostics)
        # the source texts read while producing these (path -> text), so callers can render carets
        self.sources: dict[str, str] = dict(sources or {})
        super().__init__("\n".join(d.message for d in self.diagnostics))


@dataclass
class DiagnosticBag:
    """Collects diagnostics so that one run can report several errors."""

    items: list[Diagnostic] = field(default_factory=list)

    def error(self, code: str, message: str, span: Span | None = None, hint: str | None = None) -> None:
        self.items.append(Diagnostic(code, message, span, hint))

    def warning(self, code: str, message: str, span: Span | None = None, hint: str | None = None) -> None:
        self.items.append(Diagnostic(code, message, span, hint, severity="warning"))

    def add(self, diagnostic: Diagnostic) -> None:
        self.items.append(diagnostic)

    def extend(self, diagnostics: Iterable[Diagnostic]) -> None:
        self.items.extend(diagnostics)

    @property
    def errors(self) -> list[Diagnostic]:
        return [d for d in self.items if d.severity == "error"]

    def raise_if_errors(self) -> None:
        if self.errors:
            raise DiagnosticError(self.items)


def _source_line(span: Span, sources: dict[str, str] | None) -> str | None:
    if sources is None or span.file not in sources or span.line < 1:
        return None
    lines = sources[span.file].splitlines()
    if span.line > len(lines):
        return None
    return lines[span.line - 1]


def render(diagnostic: Diagnostic, sources: dict[str, str] | None = None) -> str:
    """Format like a good compiler: location, severity, message, source line, caret, hint."""
    span = diagnostic.span
    head = f"{span}: " if span is not None and span.line > 0 else ""
    out = [f"{head}{diagnostic.severity}: {diagnostic.message}"]
    if span is not None:
        text = _source_line(span, sources)
        if text is not None:
            shown = text.expandtabs(1)
            if len(shown) > 200:  # keep pathological one-line files readable
                start = max(0, span.col - 80)
                shown = ("..." if start else "") + shown[start : start + 160] + "..."
                caret_col = span.col - start + (3 if start else 0)
            else:
                caret_col = span.col
            width = 1
            if span.end_col is not None and (span.end_line in (None, span.line)) and span.end_col > span.col:
                width = span.end_col - span.col
            width = max(1, min(width, max(1, len(shown) - caret_col + 1)))
            gutter = f"{span.line:>4} | "
            out.append(gutter + shown)
            out.append(" " * (len(gutter) + caret_col - 1) + "^" + "~" * (width - 1))
    for note_span, note in diagnostic.notes:
        where = f"{note_span}: " if note_span is not None else ""
        out.append(f"  {where}note: {note}")
    if diagnostic.hint:
        out.append(f"  hint: {diagnostic.hint}")
    return "\n".join(out)


def did_you_mean(name: str, candidates: Iterable[str]) -> str | None:
    """A 'did you mean' hint built on difflib, or None when nothing is close."""
    import difflib

    close = difflib.get_close_matches(name, sorted(set(candidates)), n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else None
