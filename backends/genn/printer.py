"""Literals for GeNN 5 code strings (the reset values of the per-trial `Reset` update).

GeNN's transpiler types unsuffixed literals as `scalar` (float or double, as the model's precision
says) and knows no INFINITY. Expressions are printed by `kernel_printer.GeNNExprPrinter`.
"""

from __future__ import annotations

__all__ = ["literal"]


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
