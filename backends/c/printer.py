"""The C expression printer: sympy expressions -> C99 text, specialised to one precision.

Symbols are printed through a name map built by the renderer (user names are mangled before they
reach C; an unmapped symbol is a bug, so it raises instead of leaking a raw name into the code).
"""

from __future__ import annotations

import sympy
from sympy.codegen.ast import float32, float64, real
from sympy.printing.c import C99CodePrinter
from sympy.printing.codeprinter import CodePrinter


class UnmappedSymbolError(KeyError):
    """An expression referenced a symbol the renderer did not map to a C name (an internal bug)."""


class UnprintableExprError(ValueError):
    """An expression without a C value (zoo, nan, I, an unevaluated integral) reached the printer.

    The frontend refuses non-finite numbers where they are written (`frontend/exprs.not_finite`), so
    one that gets here was made by a pass: a bug, whose report should say where. Printers add the
    places they know as the error passes them (`within`): the statement, then the phase."""

    def __init__(self, expr: sympy.Basic) -> None:
        super().__init__(expr)
        self.expr = expr
        self.places: list[str] = []

    def within(self, place: str) -> UnprintableExprError:
        self.places.insert(0, place)  # outer places are added later and read first
        return self

    def __str__(self) -> str:
        where = "".join(f"{p}: " for p in self.places)
        return f"{where}{self.expr} ({type(self.expr).__name__}) has no C value"


class SnncCPrinter(C99CodePrinter):
    """C99 printer: float32 (`f` suffixes, `expf`) by default, float64 on request.

    Small integer powers become products (`x*x`), which is exact and faster than `powf(x, 2)`.
    """

    def __init__(self, names: dict[str, str], precision: str = "float") -> None:
        alias = float32 if precision == "float" else float64
        super().__init__({"type_aliases": {real: alias}, "strict": False})
        self._names = dict(names)
        self._scalar = "float" if precision == "float" else "double"

    def _print_Symbol(self, expr: sympy.Symbol) -> str:
        try:
            return self._names[expr.name]
        except KeyError:
            raise UnmappedSymbolError(f"symbol '{expr.name}' has no C name") from None

    def _print_Pow(self, expr: sympy.Pow) -> str:
        base, exp = expr.as_base_exp()
        if exp.is_Integer and 1 < int(exp) <= 4:
            b = self.parenthesize(base, 1000)  # always bracket the base
            return "(" + "*".join([b] * int(exp)) + ")"
        if exp.is_Integer and -4 <= int(exp) <= -1:
            b = self.parenthesize(base, 1000)
            one = self._print(sympy.Float(1.0))
            return f"({one}/(" + "*".join([b] * -int(exp)) + "))"
        return super()._print_Pow(expr)

    def _print_Integer(self, expr: sympy.Integer) -> str:
        # Integers appear in arithmetic with scalars; print them as floating literals so that
        # `1/2` can never become C integer division.
        return self._print(sympy.Float(int(expr)))

    def _print_Rational(self, expr: sympy.Rational) -> str:
        return self._print(sympy.Float(expr.p)) + "/" + self._print(sympy.Float(expr.q))

    def _print_Heaviside(self, expr: sympy.Heaviside) -> str:
        x = self._print(expr.args[0])
        h0 = expr.args[1] if len(expr.args) > 1 else sympy.Rational(1, 2)
        one, zero, half = (self._print(sympy.Float(v)) for v in (1.0, 0.0, float(h0)))
        return f"(({x}) > 0 ? {one} : (({x}) < 0 ? {zero} : {half}))"

    def _print_BooleanTrue(self, expr) -> str:  # noqa: ANN001
        return "1"

    def _print_BooleanFalse(self, expr) -> str:  # noqa: ANN001
        return "0"

    def _print_not_supported(self, expr: sympy.Basic) -> str:
        """sympy's own version records `expr` in a set that only `doprint` makes (an AttributeError
        here) and prints it as it is; a kernel must not hold it, so say what it was."""
        raise UnprintableExprError(expr)

    _print_NaN = _print_ImaginaryUnit = _print_not_supported  # C99's NAN and I: a NaN kernel, or no C


# sympy binds its unsupported kinds (ComplexInfinity, Integral, Basic ...) to its own function by name
for _name in dir(C99CodePrinter):
    if getattr(C99CodePrinter, _name) is CodePrinter._print_not_supported:
        setattr(SnncCPrinter, _name, SnncCPrinter._print_not_supported)


def literal(value: float, precision: str = "float") -> str:
    """A numeric literal in the target precision (`0.5f` or `0.5`), with round-trip digits."""
    value = float(value)
    if value != value:
        return "NAN"
    if value in (float("inf"), float("-inf")):
        return "INFINITY" if value > 0 else "(-INFINITY)"
    text = repr(value)
    if "e" not in text and "." not in text:
        text += ".0"
    return f"{text}f" if precision == "float" else text
