"""The standard library: neuron and synapse models written in `.snn`, shipped as package data.

`use std.LIF` resolves through here. Files are found with importlib.resources so they work from an
installed wheel as well as from a checkout; each model's name maps to the text and path of its file
(several models may share one file, e.g. `LeakyIntegrate` and `LI`).
"""

from __future__ import annotations

from functools import lru_cache
from importlib import resources

from snnc.frontend import ast


@lru_cache(maxsize=1)
def std_files() -> dict[str, tuple[str, str]]:
    """File name -> (text, path) for every `std/*.snn`, sorted by name."""
    folder = resources.files("snnc.frontend").joinpath("std")
    out: dict[str, tuple[str, str]] = {}
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".snn"):
            out[entry.name] = (entry.read_text(encoding="utf-8"), str(entry))
    return out


@lru_cache(maxsize=1)
def std_models() -> dict[str, tuple[str, str]]:
    """Model name -> (text, path) of the std file that declares it."""
    from snnc.frontend.parser import parse  # the parser does not need the library; avoid a cycle

    models: dict[str, tuple[str, str]] = {}
    for text, path in std_files().values():
        for item in parse(text, path).items:
            if isinstance(item, ast.ModelDecl):
                models[item.name] = (text, path)
    return models


def std_source(name: str) -> tuple[str, str]:
    """(text, path) of the std file declaring model `name`; KeyError when std has no such model."""
    try:
        return std_models()[name]
    except KeyError:
        raise KeyError(name) from None
