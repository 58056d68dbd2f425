"""Units and dimensions as the frontend needs them: compound unit strings and dimensions in words.

`ir.units` knows single units (`ms`, `mV` ...); the source may write compound ones (`mV/ms`, `1/ms`,
`ms^2`). Messages say dimensions the way a physicist reads them ("voltage/time (mV/ms)").
"""

from __future__ import annotations

import re
from fractions import Fraction

from snnc.ir.units import DIMENSIONLESS, UNITS, Dim

_TOKEN = re.compile(r"\s*([*/])?\s*([A-Za-z]+|1)\s*(?:(?:\^|\*\*)\s*(-?\d+))?\s*")


class UnknownUnit(ValueError):
    """Raised with the offending unit name; the caller turns it into a diagnostic."""

    def __init__(self, name: str):
        super().__init__(name)
        self.name = name


def parse_unit(text: str) -> tuple[float, Dim]:
    """`"mV/ms"` -> (factor to base units, dimension). Raises UnknownUnit or ValueError."""
    factor, dim = 1.0, DIMENSIONLESS
    pos, first = 0, True
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if not m or m.end() == pos or (m.group(1) is None and not first):
            raise ValueError(f"cannot read unit '{text}'")
        op, name, exp = m.group(1) or "*", m.group(2), int(m.group(3) or 1)
        if name == "1":
            f, d = 1.0, DIMENSIONLESS
        elif name in UNITS:
            f, d = UNITS[name]
        else:
            raise UnknownUnit(name)
        if op == "/":
            exp = -exp
        factor *= f**exp
        dim = dim * (d**exp)
        pos, first = m.end(), False
    return factor, dim


_NAMED = {
    Dim(time=1): "time",
    Dim(voltage=1): "voltage",
    Dim(current=1): "current",
    Dim(time=-1): "frequency",
    Dim(voltage=1, current=-1): "resistance",
    Dim(current=1, voltage=-1): "conductance",
    Dim(time=1, current=1, voltage=-1): "capacitance",
}


def unit_text(dim: Dim) -> str:
    """Base-unit spelling with a numerator and a denominator: `mV/ms`, `1/ms`, `nA*ms/mV`."""
    num, den = [], []
    for name, exp in (("mV", dim.voltage), ("nA", dim.current), ("ms", dim.time)):
        if exp > 0:
            num.append(name if exp == 1 else f"{name}^{exp}")
        elif exp < 0:
            den.append(name if exp == -1 else f"{name}^{-exp}")
    top = "*".join(num) or "1"
    if not den:
        return top
    bottom = "*".join(den)
    return f"{top}/{bottom}" if len(den) == 1 else f"{top}/({bottom})"


def describe(dim: Dim | None) -> str:
    """A dimension in words for messages: 'dimensionless', 'time (ms)', 'voltage/time (mV/ms)'."""
    if dim is None:
        return "unknown dimension"
    if dim.dimensionless:
        return "dimensionless (1)"
    if dim in _NAMED:
        return f"{_NAMED[dim]} ({unit_text(dim)})"
    for named, word in _NAMED.items():
        if dim == named / Dim(time=1) and word != "frequency":
            return f"{word}/time ({unit_text(dim)})"
    return unit_text(dim)


def dim_pow(dim: Dim, exponent: Fraction) -> Dim | None:
    """`dim ** exponent`, or None when the result would need fractional exponents (sqrt(ms))."""
    parts = []
    for e in (dim.time, dim.voltage, dim.current):
        value = e * exponent
        if value.denominator != 1:
            return None
        parts.append(int(value))
    return Dim(*parts)
