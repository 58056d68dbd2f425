"""Resolve `use` declarations to model declarations, and provide the std prelude.

- `use std.X`, `use std.{A, B}`, `use std.*` import from the standard library (written in .snn).
- `use "lib.snn"` imports the models of a file, relative to the using file; the file's own `use
  "..."` imports are followed too (so libraries can build on libraries), each file read once, which
  also makes import cycles harmless.
- Every std model is also visible without a `use` (the prelude), after local and imported models, so
  `input x = SpikeInput(4)` works as in DESIGN.md's example; a local model of the same name wins.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from snnc.frontend import ast
from snnc.frontend import messages as M
from snnc.ir.diagnostics import DiagnosticBag, DiagnosticError, did_you_mean

STD_SOURCE = "std"


@dataclass(frozen=True)
class ModelSource:
    decl: ast.ModelDecl
    source: str  # "std", or the path of the file that defines the model


@dataclass
class Std:
    """The parsed standard library, loaded once per process on first use."""

    models: dict[str, ModelSource] = field(default_factory=dict)
    sources: dict[str, str] = field(default_factory=dict)
    loaded: bool = False


_STD = Std()


def std_library(bag: DiagnosticBag | None = None) -> Std:
    """All std models (empty when the std library or parser is not available yet)."""
    if _STD.loaded:
        return _STD
    try:
        from snnc.frontend.parser import parse
        from snnc.frontend.stdlib import std_models
    except ImportError:
        return _STD
    parsed: dict[str, ast.Module] = {}
    for name, (text, path) in std_models().items():
        if path not in parsed:
            try:
                parsed[path] = parse(text, path)
            except DiagnosticError as err:  # a broken std file is a bug, but report it readably
                if bag is not None:
                    bag.extend(err.diagnostics)
                continue
            _STD.sources[path] = text
        for item in parsed[path].items:
            if isinstance(item, ast.ModelDecl) and item.name == name:
                _STD.models[name] = ModelSource(item, STD_SOURCE)
    _STD.loaded = True
    return _STD


def parse_file(path: str, bag: DiagnosticBag, sources: dict[str, str]) -> ast.Module | None:
    """Read and parse a file; a missing file or a syntax error goes into `bag`."""
    from snnc.frontend.parser import parse

    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except OSError as err:
        bag.error(M.FILE, f"cannot read '{path}': {err.strerror or err}")
        return None
    sources[path] = text
    try:
        return parse(text, path)
    except DiagnosticError as err:
        bag.extend(err.diagnostics)
        return None


def resolve_uses(
    module: ast.Module, bag: DiagnosticBag, sources: dict[str, str], _seen: set[str] | None = None
) -> dict[str, ModelSource]:
    """Models imported by the module's `use` declarations, by name."""
    seen = _seen if _seen is not None else {os.path.abspath(module.path)}
    out: dict[str, ModelSource] = {}
    for use in (i for i in module.items if isinstance(i, ast.UseDecl)):
        found = _use_std(use, bag) if use.module == STD_SOURCE else _use_file(use, module, bag, sources, seen)
        for name, ms in found.items():
            prev = out.get(name)
            if prev is not None and prev.decl is not ms.decl:
                bag.error(
                    M.DUPLICATE,
                    f"model '{name}' is imported twice",
                    use.span,
                    f"it also comes from {prev.source}",
                )
                continue
            out[name] = ms
    return out


def _use_std(use: ast.UseDecl, bag: DiagnosticBag) -> dict[str, ModelSource]:
    std = std_library(bag)
    if use.names is None:
        return dict(std.models)
    out = {}
    for name in use.names:
        if name in std.models:
            out[name] = std.models[name]
        else:
            hint = did_you_mean(name, std.models) or f"std has: {', '.join(sorted(std.models))}"
            bag.error(M.UNDEFINED, f"the standard library has no model '{name}'", use.span, hint)
    return out


def _use_file(
    use: ast.UseDecl, module: ast.Module, bag: DiagnosticBag, sources: dict[str, str], seen: set[str]
) -> dict[str, ModelSource]:
    base = os.path.dirname(module.path) if module.path and not module.path.startswith("<") else "."
    path = os.path.normpath(os.path.join(base, use.module))
    key = os.path.abspath(path)
    if not os.path.isfile(path):
        bag.error(
            M.FILE,
            f"cannot find '{use.module}' (looked for {path})",
            use.span,
            "paths in 'use' are relative to the file that uses them",
        )
        return {}
    if key in seen:
        return {}
    seen.add(key)
    lib = parse_file(path, bag, sources)
    if lib is None:
        return {}
    out = resolve_uses(lib, bag, sources, seen)
    out.update({i.name: ModelSource(i, path) for i in lib.items if isinstance(i, ast.ModelDecl)})
    if use.names is not None:
        missing = [n for n in use.names if n not in out]
        for n in missing:
            bag.error(M.UNDEFINED, f"'{use.module}' has no model '{n}'", use.span, did_you_mean(n, out))
        out = {n: out[n] for n in use.names if n in out}
    return out
