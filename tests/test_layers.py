"""The layers call downwards only: frontend -> ir -> passes -> backends -> runtime protocol, with the API
and the CLI on top. Read from the source with `ast`, so a lazy import inside a function counts too."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
#: the modules at the top of the stack, which only the CLI, the API and training orchestration use
TOP = ("snnc.api", "snnc.cli", "snnc.train", "snnc.interop")


def imported(path: Path) -> set[str]:
    """Absolute names of every module `path` imports (relative imports resolved against its package)."""
    package = ("snnc." + path.parent.relative_to(ROOT).as_posix().replace("/", ".")).removesuffix(".snnc")
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            names.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parent = ".".join(parts[: len(parts) - node.level + 1])
                base = f"{parent}.{base}" if base else parent
            names.add(base)
            names.update(f"{base}.{a.name}" for a in node.names)
    return names


def offending(folder: str, banned: tuple[str, ...]) -> dict[str, list[str]]:
    found = {}
    for path in sorted((ROOT / folder).rglob("*.py")):
        bad = sorted(n for n in imported(path) if any(n == b or n.startswith(b + ".") for b in banned))
        if bad:
            found[path.relative_to(ROOT).as_posix()] = bad
    return found


def test_the_scanner_sees_imports() -> None:
    """Guard against a scanner that finds nothing: these imports exist today."""
    assert "snnc.api" in imported(ROOT / "snnc" / "train.py")
    assert "snnc.runtime.artefact.RecordRequest" in imported(ROOT / "backends" / "c" / "loader.py")
    assert "snnc.backends.c.loader" in imported(ROOT / "backends" / "c" / "eprop_loader.py")


def test_runtime_imports_neither_the_api_nor_a_backend() -> None:
    assert offending("runtime", (*TOP, "snnc.backends", "snnc.frontend", "snnc.passes")) == {}


@pytest.mark.parametrize("folder", ["backends", "passes", "frontend", "ir"])
def test_lower_layers_do_not_import_the_api(folder: str) -> None:
    assert offending(folder, TOP) == {}


def test_the_cache_folder_is_a_leaf() -> None:
    """`snnc/cache.py` is shared by the frontend, the C build and the data sets; it imports no snnc."""
    assert not any(n.startswith("snnc") for n in imported(ROOT / "snnc" / "cache.py"))
