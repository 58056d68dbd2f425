"""The GeNN printer: sympy expressions -> GeNN 5 code-string text.

GeNN 5 code strings are C-like and typed by GeNN's own transpiler: unsuffixed literals are `scalar`
(float or double, as the model's precision says), maths functions are the plain C names (`exp`, not
`expf`), and `t`, `dt`, `id`, `batch` are provided. So the printer is the C printer in its double
flavour (no `f` suffixes) with a name map: every symbol must be mapped to a GeNN variable name, and
an unmapped symbol raises rather than leak a user name into generated code.
"""

from __future__ import annotations

import sympy
from snnc.backends.c.printer import SnncCPrinter, UnmappedSymbolError

__all__ = ["GeNNPrinter", "UnmappedSymbolError", "literal"]


class GeNNPrinter(SnncCPrinter):
    """`GeNNPrinter({"v": "u_v"}).doprint(v + 1) == "u_v + 1.0"`; `t` and `dt` map to GeNN's own."""

    def __init__(self, names: dict[str, str]) -> None:
        super().__init__({"t": "t", "dt": "dt", **names}, precision="double")

    def _print_Max(self, expr: sympy.Max) -> str:
        args = [self._print(a) for a in expr.args]
        out = args[0]
        for a in args[1:]:
            out = f"fmax({out}, {a})"
        return out

    def _print_Piecewise(self, expr: sympy.Piecewise) -> str:
        """One-line nested ternaries (the C printer breaks them over lines)."""
        if expr.args[-1].cond != sympy.true:
            raise ValueError("a Piecewise without a default branch cannot be printed for GeNN")
        out = self._print(expr.args[-1].expr)
        for e, c in reversed(expr.args[:-1]):
            out = f"(({self._print(c)}) ? ({self._print(e)}) : ({out}))"
        return out

    def _print_Min(self, expr: sympy.Min) -> str:
        args = [self._print(a) for a in expr.args]
        out = args[0]
        for a in args[1:]:
            out = f"fmin({out}, {a})"
        return out


def literal(value: float) -> str:
    """A scalar literal for GeNN code (no suffix: GeNN types it as `scalar`)."""
    value = float(value)
    if value != value:
        raise ValueError("NaN cannot be a GeNN literal")
    if value in (float("inf"), float("-inf")):
        # GeNN's transpiler knows no INFINITY; 1/0 in floating point is one
        return "(1.0 / 0.0)" if value > 0 else "(-1.0 / 0.0)"
    text = repr(value)
    if "e" not in text and "." not in text:
        text += ".0"
    return text
