"""The embedded C backend: Jinja templates emitting C, compiled with the system compiler.

`BACKEND` (the registry entry) is light; the other names load `backend.py`, and with it sympy and
Jinja, on first use, so that loading a cached build costs neither.
"""

from __future__ import annotations

from typing import Any

from .entry import BACKEND, BuiltNetwork

__all__ = ["BACKEND", "CAPABILITIES", "BuiltNetwork", "build_network", "emit_c", "generate"]


def __getattr__(name: str) -> Any:
    if name in ("CAPABILITIES", "build_network", "emit_c", "generate"):
        from . import backend

        return getattr(backend, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
