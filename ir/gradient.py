"""What every gradient pass attaches to `Network.training`: one base for EventProp's and e-prop's IR.

The two algorithms derive different things (adjoints and jumps; eligibilities and learning signals),
so each keeps its own payload (`ir/training.py`, `ir/eprop_ir.py`), but the rest of the compiler
treats them alike through this base: `algorithm` names the payload, `to_text()` prints it for
`--print-after`, and `expressions()` / `map_expressions()` walk every sympy expression in it, so
`simplify` folds gradient statements as it folds the forward step, and `ir.verify` checks that
every symbol a gradient statement uses is one the network declares or the compiler generates.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import sympy

T = TypeVar("T")
ExprMap = Callable[[sympy.Basic], sympy.Basic]


class GradientIR:
    """The base of every gradient payload; subclasses are frozen dataclasses."""

    algorithm: str
    notes: tuple[str, ...]

    def to_text(self) -> str:  # pragma: no cover - every payload overrides it
        raise NotImplementedError

    def expressions(self) -> Iterator[tuple[str, sympy.Basic]]:
        """(where, expression) for every sympy expression in the payload, in a fixed order."""
        yield from _walk(self, type(self).__name__)

    def map_expressions(self: T, fn: ExprMap) -> T:
        """A copy with `fn` applied to every sympy expression (names, numbers and options kept)."""
        return _map(self, fn)


def _walk(obj: Any, where: str) -> Iterator[tuple[str, sympy.Basic]]:
    if isinstance(obj, sympy.Basic):
        yield where, obj
    elif dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        for f in dataclasses.fields(obj):
            if f.name != "span":
                yield from _walk(getattr(obj, f.name), f"{where}.{f.name}")
    elif isinstance(obj, dict):
        for key, value in obj.items():
            yield from _walk(value, f"{where}[{key}]")
    elif isinstance(obj, (tuple, list)):
        for i, value in enumerate(obj):
            yield from _walk(value, f"{where}[{i}]")


def _map(obj: Any, fn: ExprMap) -> Any:
    if isinstance(obj, sympy.Basic):
        return fn(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        changes = {f.name: _map(getattr(obj, f.name), fn) for f in dataclasses.fields(obj) if f.init}
        return dataclasses.replace(obj, **changes)
    if isinstance(obj, dict):
        return {key: _map(value, fn) for key, value in obj.items()}
    if isinstance(obj, tuple):
        return tuple(_map(value, fn) for value in obj)
    if isinstance(obj, list):
        return [_map(value, fn) for value in obj]
    return obj
