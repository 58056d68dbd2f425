"""A JSON form for the compile cache's entries: dataclasses of an allow-list of snnc modules, dicts,
lists, tuples, paths and plain numbers and strings, nothing else.

The cache folder may be shared or writable by others, so an entry is data, never code: reading one
builds only dataclasses from the modules below (no pickle, no imports named by the file), and
anything else in it is an error, which the cache treats as a damaged entry.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
import math
from pathlib import Path, PurePath
from typing import Any

#: the modules whose dataclasses an entry may hold (all of them import neither sympy nor Jinja)
MODULES = (
    "snnc.ir.model",
    "snnc.ir.diagnostics",
    "snnc.ir.units",
    "snnc.compile_cache",
    "snnc.backends.c.entry",
)


def dumps(obj: Any) -> str:
    """`obj` as JSON text; a value of any other type raises TypeError."""
    return json.dumps(_encode(obj), separators=(",", ":"))


def loads(text: str) -> Any:
    """The value `dumps` wrote; a dataclass from outside `MODULES` or a malformed form raises."""
    return _decode(json.loads(text))


def _encode(obj: Any) -> Any:
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if type(obj).__name__ == "bool_":  # numpy's
        return bool(obj)
    if isinstance(obj, int) or type(obj).__name__.startswith(("int", "uint")):
        return int(obj)
    if isinstance(obj, float) or type(obj).__name__.startswith("float"):
        value = float(obj)
        return value if math.isfinite(value) else {"f": repr(value)}
    if isinstance(obj, PurePath):
        return {"p": str(obj)}
    if isinstance(obj, list):
        return [_encode(v) for v in obj]
    if isinstance(obj, tuple):
        return {"t": [_encode(v) for v in obj]}
    if isinstance(obj, dict):
        return {"m": [[_encode(k), _encode(v)] for k, v in obj.items()]}
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        cls = type(obj)
        if cls.__module__ not in MODULES:
            raise TypeError(f"{cls.__module__}.{cls.__qualname__} is not a cacheable class")
        fields = {f.name: _encode(getattr(obj, f.name)) for f in dataclasses.fields(obj) if f.init}
        return {"d": f"{cls.__module__}:{cls.__qualname__}", "v": fields}
    raise TypeError(f"cannot cache a value of type {type(obj).__name__}")


def _decode(form: Any) -> Any:
    if form is None or isinstance(form, (bool, int, float, str)):
        return form
    if isinstance(form, list):
        return [_decode(v) for v in form]
    if not isinstance(form, dict) or len(form) not in (1, 2):
        raise ValueError("not a cache entry form")
    if "t" in form:
        return tuple(_decode(v) for v in form["t"])
    if "m" in form:
        return {_decode(k): _decode(v) for k, v in form["m"]}
    if "p" in form:
        return Path(form["p"])
    if "f" in form:
        return float(form["f"])
    if "d" in form:
        module, _, name = str(form["d"]).partition(":")
        if module not in MODULES:
            raise ValueError(f"class from {module} in a cache entry")
        cls = getattr(importlib.import_module(module), name)
        if not (isinstance(cls, type) and dataclasses.is_dataclass(cls)):
            raise ValueError(f"{form['d']} is not a dataclass")
        return cls(**{k: _decode(v) for k, v in form["v"].items()})
    raise ValueError("not a cache entry form")
