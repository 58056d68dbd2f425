"""Physical dimensions and units.

Internally every quantity is a plain float in snnc's base units, the convention of GeNN and NEST:
milliseconds, millivolts, nanoamperes (hence megaohms, nanofarads, microsiemens and kilohertz, i.e. 1/ms).
A `Dim` records the exponents of time, voltage and current so that the frontend can check equations.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Dim:
    """Exponents of (time, voltage, current). `Dim()` is dimensionless."""

    time: int = 0
    voltage: int = 0
    current: int = 0

    def __mul__(self, other: Dim) -> Dim:
        return Dim(self.time + other.time, self.voltage + other.voltage, self.current + other.current)

    def __truediv__(self, other: Dim) -> Dim:
        return Dim(self.time - other.time, self.voltage - other.voltage, self.current - other.current)

    def __pow__(self, n: int) -> Dim:
        return Dim(self.time * n, self.voltage * n, self.current * n)

    @property
    def dimensionless(self) -> bool:
        return self == DIMENSIONLESS

    def __str__(self) -> str:
        if self.dimensionless:
            return "1"
        parts = []
        for sym, exp in (("ms", self.time), ("mV", self.voltage), ("nA", self.current)):
            if exp == 1:
                parts.append(sym)
            elif exp:
                parts.append(f"{sym}^{exp}")
        return "*".join(parts)


DIMENSIONLESS = Dim()
TIME = Dim(time=1)
VOLTAGE = Dim(voltage=1)
CURRENT = Dim(current=1)
FREQUENCY = Dim(time=-1)
RESISTANCE = VOLTAGE / CURRENT
CONDUCTANCE = CURRENT / VOLTAGE
CAPACITANCE = CURRENT * TIME / VOLTAGE

#: unit name -> (factor to base units, dimension)
UNITS: dict[str, tuple[float, Dim]] = {
    "s": (1e3, TIME),
    "ms": (1.0, TIME),
    "us": (1e-3, TIME),
    "Hz": (1e-3, FREQUENCY),
    "kHz": (1.0, FREQUENCY),
    "V": (1e3, VOLTAGE),
    "mV": (1.0, VOLTAGE),
    "uV": (1e-3, VOLTAGE),
    "A": (1e9, CURRENT),
    "mA": (1e6, CURRENT),
    "uA": (1e3, CURRENT),
    "nA": (1.0, CURRENT),
    "pA": (1e-3, CURRENT),
    "Ohm": (1e-6, RESISTANCE),
    "kOhm": (1e-3, RESISTANCE),
    "MOhm": (1.0, RESISTANCE),
    "GOhm": (1e3, RESISTANCE),
    "S": (1e6, CONDUCTANCE),
    "mS": (1e3, CONDUCTANCE),
    "uS": (1.0, CONDUCTANCE),
    "nS": (1e-3, CONDUCTANCE),
    "F": (1e9, CAPACITANCE),
    "uF": (1e3, CAPACITANCE),
    "nF": (1.0, CAPACITANCE),
    "pF": (1e-3, CAPACITANCE),
}


def unit(name: str) -> tuple[float, Dim]:
    """Look up a unit; raises KeyError for unknown names (the frontend turns that into a diagnostic)."""
    return UNITS[name]
