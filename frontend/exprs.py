"""AST expressions -> sympy expressions, with dimension inference and checking in the same walk.

Every expression gets a `Dim`: a bare number is dimensionless, a number with a unit has the unit's
dimension, a name has the dimension its declaration gave it. `+`, `-`, comparisons, `min` and `max`
need equal dimensions; `*` and `/` combine them; `exp`, `log`, `sin` ... need dimensionless
arguments; `x ^ n` with a dimensional `x` needs a numeric `n`. One relaxation: a literal `0` fits any
dimension in sums and comparisons (`v >= 0`, `max(0, x)`), since zero is zero in every unit.

Errors go into a DiagnosticBag; the walk goes on with `dim=None` ("unknown"), which never produces a
second error, so one mistake gives one message.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from fractions import Fraction

import sympy
from snnc.frontend import ast
from snnc.frontend import messages as M
from snnc.frontend.dims import UnknownUnit, describe, dim_pow, parse_unit
from snnc.frontend.unparse import unparse
from snnc.ir.diagnostics import DiagnosticBag, did_you_mean
from snnc.ir.symbols import FUNCTIONS
from snnc.ir.units import DIMENSIONLESS, UNITS, Dim

_DIMENSIONLESS_ARG = frozenset({"exp", "log", "sin", "cos", "tanh", "sigmoid"})
_RELATIONS = {
    "<": sympy.Lt,
    "<=": sympy.Le,
    ">": sympy.Gt,
    ">=": sympy.Ge,
    "==": sympy.Eq,
    "!=": sympy.Ne,
}


@dataclass(frozen=True)
class Typed:
    """A lowered expression with its dimension (None: unknown after an error already reported)."""

    expr: sympy.Basic
    dim: Dim | None
    is_bool: bool = False
    zero: bool = False  # a literal zero: fits any dimension in sums and comparisons

    @property
    def constant(self) -> float | None:
        """The value when the expression has no free symbols, else None."""
        if self.is_bool or self.expr.free_symbols:
            return None
        try:
            return float(self.expr)
        except (TypeError, ValueError):
            return None


@dataclass(frozen=True)
class Binding:
    """What a name means in a scope: a sympy value (a symbol, or a number) and its dimension."""

    value: sympy.Basic
    dim: Dim | None  # None: the declaration had an error already reported; uses stay silent


UNKNOWN = Typed(sympy.Symbol("_unknown_"), None)


def number(value: float) -> sympy.Expr:
    """A sympy number: whole values become Integers (so `1.0 - v` prints as `1 - v`)."""
    if float(value).is_integer() and abs(value) < 2**53:
        return sympy.Integer(int(value))
    return sympy.Float(value)


def lower_number(n: ast.Number, bag: DiagnosticBag) -> Typed:
    """`20 ms` -> 20 (ms are base units), `1 s` -> 1000, `10 Hz` -> 0.01 (per ms)."""
    if n.unit is None:
        return Typed(number(n.value), DIMENSIONLESS, zero=n.value == 0)
    try:
        factor, dim = parse_unit(n.unit)
    except UnknownUnit as err:
        hint = did_you_mean(err.name, UNITS) or f"known units: {', '.join(UNITS)}"
        bag.error(M.UNDEFINED_UNIT, f"unknown unit '{err.name}'", n.span, hint)
        return UNKNOWN
    except ValueError as err:
        bag.error(M.UNDEFINED_UNIT, str(err), n.span)
        return UNKNOWN
    return Typed(number(n.value * factor), dim, zero=n.value == 0)


_NOT_FINITE = {
    sympy.zoo: "it is infinite (as 1/0 or log(0) are)",
    sympy.nan: "it is undefined (0/0)",
    sympy.oo: "it is infinite",
    -sympy.oo: "it is infinite",
    sympy.I: "it is imaginary",
}


def not_finite(expr: sympy.Basic) -> str | None:
    """Why `expr` is not a finite real number for every value of its symbols (None when it can be).

    `1/0`, `log(0)`, `0/0` and `sqrt(-1)` become sympy's zoo, nan and I as they are built; left in,
    they reached the passes and the C printer (internal errors, or NaN and inf in generated code).
    A constant that overflows a double (`exp(1000)`) is refused too. `lower` checks every node after
    its parts, and sympy folds a new zoo, nan or I into the node itself or its own arguments
    (`zoo*x`), so those are all this looks at."""
    for part in (expr, *expr.args):
        why = _NOT_FINITE.get(part)
        if why is not None:
            return why
    if not expr.free_symbols and isinstance(expr, sympy.Expr) and not expr.is_Number:
        value = complex(expr.evalf())
        if value.imag != 0:
            return "it is imaginary"
        if not math.isfinite(value.real):
            return f"it is {value.real} in double precision"
    return None


def same_dim(a: Typed, b: Typed) -> bool:
    """Dimensions agree, treating unknown as agreeing and a literal zero as fitting anything."""
    return a.dim is None or b.dim is None or a.zero or b.zero or a.dim == b.dim


class ExprLowerer:
    """Lowers expressions in one scope (a model's equations, a parameter value, an override ...)."""

    def __init__(
        self,
        bag: DiagnosticBag,
        scope: Mapping[str, Binding],
        unavailable: Mapping[str, str] | None = None,
    ):
        self.bag = bag
        self.scope = scope
        # names that exist but may not be used here -> the reason, given as a hint
        self.unavailable = dict(unavailable or {})

    # ---------------------------------------------------------------------------------------------
    def number_expr(self, e: ast.Expr) -> Typed:
        """Lower an expression that must be a number (not a comparison)."""
        r = self.lower(e)
        if r.is_bool:
            self.bag.error(M.TYPE, f"'{unparse(e)}' is a condition, but a number is needed here", e.span)
            return UNKNOWN
        return r

    def condition(self, e: ast.Expr) -> Typed:
        """Lower an expression that must be a condition (a comparison, or and/or/not of them)."""
        r = self.lower(e)
        if not r.is_bool and r.dim is not None:
            self.bag.error(
                M.TYPE,
                f"'{unparse(e)}' is a number, but a condition is needed here",
                e.span,
                "compare it with something, e.g. 'v >= v_thresh'",
            )
            return UNKNOWN
        return r

    def lower(self, e: ast.Expr) -> Typed:
        method = getattr(self, "_" + type(e).__name__, None)
        if method is None:
            self.bag.error(M.TYPE, f"'{unparse(e)}' cannot be used in an equation", e.span)
            return UNKNOWN
        r = method(e)
        why = None if r is UNKNOWN or r.is_bool else not_finite(r.expr)
        if why is not None:  # at the smallest part that is not: its parts were checked first
            self.bag.error(M.VALUE, f"'{unparse(e)}' is not a finite real number: {why}", e.span)
            return UNKNOWN
        return r

    # ---------------------------------------------------------------------------------------------
    def _Number(self, e: ast.Number) -> Typed:
        return lower_number(e, self.bag)

    def _Bool(self, e: ast.Bool) -> Typed:
        return Typed(sympy.Integer(1 if e.value else 0), DIMENSIONLESS, zero=not e.value)

    def _Name(self, e: ast.Name) -> Typed:
        binding = self.scope.get(e.id)
        if binding is not None:
            return Typed(binding.value, binding.dim)
        if e.id in self.unavailable:
            self.bag.error(M.UNDEFINED, f"'{e.id}' cannot be used here", e.span, self.unavailable[e.id])
        elif e.id in FUNCTIONS:
            self.bag.error(M.TYPE, f"'{e.id}' is a function; call it as {e.id}(...)", e.span)
        else:
            self.bag.error(M.UNDEFINED, f"undefined name '{e.id}'", e.span, did_you_mean(e.id, self.scope))
        return UNKNOWN

    def _UnaryOp(self, e: ast.UnaryOp) -> Typed:
        if e.op == "not":
            r = self.condition(e.operand)
            return Typed(sympy.Not(r.expr) if r.dim is not None else r.expr, r.dim, is_bool=True)
        r = self.number_expr(e.operand)
        return Typed(-r.expr if e.op == "-" else r.expr, r.dim, zero=r.zero)

    def _BinOp(self, e: ast.BinOp) -> Typed:
        a, b = self.number_expr(e.left), self.number_expr(e.right)
        if a is UNKNOWN or b is UNKNOWN:
            return UNKNOWN
        if e.op in ("+", "-"):
            if not same_dim(a, b):
                self._dim_error(e, f"cannot {'add' if e.op == '+' else 'subtract'}", a, b)
                return UNKNOWN
            dim = b.dim if a.zero else a.dim
            expr = a.expr + b.expr if e.op == "+" else a.expr - b.expr
            return Typed(expr, dim, zero=a.zero and b.zero)
        if e.op == "*":
            return Typed(a.expr * b.expr, _combine(a.dim, b.dim, 1), zero=a.zero or b.zero)
        if e.op == "/":
            return Typed(a.expr / b.expr, _combine(a.dim, b.dim, -1), zero=a.zero)
        return self._power(e, a, b)

    def _power(self, e: ast.BinOp, a: Typed, b: Typed) -> Typed:
        if b.dim is not None and not b.dim.dimensionless:
            self.bag.error(
                M.DIM, f"the exponent in '{unparse(e)}' must be dimensionless, not {describe(b.dim)}", e.span
            )
            return UNKNOWN
        if a.dim is None or a.dim.dimensionless:
            return Typed(a.expr**b.expr, a.dim)
        value = b.constant
        if value is None:
            self.bag.error(
                M.DIM,
                f"'{unparse(e)}': a quantity with dimension {describe(a.dim)} can only be raised "
                "to a fixed number",
                e.span,
            )
            return UNKNOWN
        dim = dim_pow(a.dim, Fraction(value).limit_denominator(1000))
        if dim is None:
            self.bag.error(M.DIM, f"'{unparse(e)}' would have fractional units", e.span)
            return UNKNOWN
        return Typed(a.expr**b.expr, dim)

    def _Compare(self, e: ast.Compare) -> Typed:
        a, b = self.number_expr(e.left), self.number_expr(e.right)
        if a is UNKNOWN or b is UNKNOWN:
            return Typed(sympy.true, None, is_bool=True)
        if not same_dim(a, b):
            self._dim_error(e, "cannot compare", a, b)
            return Typed(sympy.true, None, is_bool=True)
        return Typed(_RELATIONS[e.op](a.expr, b.expr, evaluate=False), DIMENSIONLESS, is_bool=True)

    def _BoolOp(self, e: ast.BoolOp) -> Typed:
        a, b = self.condition(e.left), self.condition(e.right)
        op = sympy.And if e.op == "and" else sympy.Or
        return Typed(op(a.expr, b.expr), DIMENSIONLESS if a.dim and b.dim else None, is_bool=True)

    def _Call(self, e: ast.Call) -> Typed:
        span = e.func_span or e.span
        if e.func not in FUNCTIONS:
            if e.func in self.scope:
                self.bag.error(M.TYPE, f"'{e.func}' is not a function", span)
            else:
                hint = did_you_mean(e.func, FUNCTIONS) or f"functions: {', '.join(FUNCTIONS)}"
                self.bag.error(M.UNDEFINED, f"unknown function '{e.func}'", span, hint)
            return UNKNOWN
        fn, arity = FUNCTIONS[e.func]
        if e.kwargs:
            self.bag.error(M.ARGCOUNT, f"{e.func}() takes no keyword arguments", e.kwargs[0].span)
            return UNKNOWN
        if len(e.args) != arity:
            plural = "s" if arity != 1 else ""
            self.bag.error(
                M.ARGCOUNT, f"{e.func}() takes {arity} argument{plural}, {len(e.args)} given", e.span
            )
            return UNKNOWN
        args = [self.number_expr(a) for a in e.args]
        if any(a is UNKNOWN for a in args):
            return UNKNOWN
        dim = self._call_dim(e, args)
        if dim is False:
            return UNKNOWN
        return Typed(fn(*[a.expr for a in args]), dim)

    def _call_dim(self, e: ast.Call, args: list[Typed]) -> Dim | None | bool:
        name, first = e.func, args[0]
        if name in _DIMENSIONLESS_ARG:
            if first.dim is not None and not first.dim.dimensionless and not first.zero:
                self.bag.error(
                    M.DIM,
                    f"the argument of {name}() must be dimensionless, but '{unparse(e.args[0])}' "
                    f"has dimension {describe(first.dim)}",
                    e.args[0].span,
                )
                return False
            return DIMENSIONLESS
        if name == "sqrt":
            if first.dim is None:
                return None
            dim = dim_pow(first.dim, Fraction(1, 2))
            if dim is None:
                self.bag.error(M.DIM, f"'{unparse(e)}' would have fractional units", e.span)
                return False
            return dim
        if name in ("min", "max"):
            if not same_dim(first, args[1]):
                self._dim_error(e, f"{name}() cannot mix", first, args[1])
                return False
            return args[1].dim if first.zero else first.dim
        if name == "heaviside":
            return DIMENSIONLESS
        return first.dim  # abs

    def _dim_error(self, e: ast.Expr, what: str, a: Typed, b: Typed) -> None:
        self.bag.error(
            M.DIM,
            f"'{unparse(e)}': {what} {describe(a.dim)} and {describe(b.dim)}",
            e.span,
            "write the units of numbers explicitly, e.g. '20 ms' or '1 mV'",
        )


def _combine(a: Dim | None, b: Dim | None, sign: int) -> Dim | None:
    if a is None or b is None:
        return None
    return a * b if sign > 0 else a / b
