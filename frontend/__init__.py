"""The frontend: `.snn` text -> AST (parser) -> Model IR (lowering, with all semantic checks).

Entry points: `load_source`, `load_file`, `load_models`, `check_file`, `check_source`, `lower`.
They are imported lazily so that `import snnc.frontend.ast` stays cheap.
"""

from __future__ import annotations

from typing import Any

__all__ = ["lower", "load_source", "load_file", "load_models", "check_file", "check_source"]


def __getattr__(name: str) -> Any:
    if name == "lower":
        from snnc.frontend.lower import lower

        return lower
    if name in ("load_source", "load_file", "load_models", "check_file", "check_source"):
        from snnc.frontend import loader

        return getattr(loader, name)
    raise AttributeError(f"module 'snnc.frontend' has no attribute {name!r}")
