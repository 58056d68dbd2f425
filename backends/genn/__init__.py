"""The genn backend: a pygenn (GeNN 5) module generated from the same plan the C backend prints.

pygenn is an optional extra: emitting code (`emit_genn`) never needs it; loading a network for
simulation (`load_genn`) does, and says so in one sentence when it is missing.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from snnc.ir.diagnostics import Diagnostic, DiagnosticError
from snnc.ir.model import Network

from .emit import CAPABILITIES, emit_genn, generate

MISSING = "E-GENN-MISSING"
#: GeNN backends the generated module can build for; `SNNC_GENN_BACKEND` picks one over the default
GENN_BACKENDS = ("cuda", "single_threaded_cpu")
BACKEND_ENV = "SNNC_GENN_BACKEND"


def have_pygenn() -> bool:
    try:
        import pygenn  # noqa: F401
    except ImportError:
        return False
    return True


def require_pygenn() -> None:
    """Raise the one-sentence diagnostic when pygenn does not import."""
    if not have_pygenn():
        raise DiagnosticError(
            Diagnostic(
                MISSING,
                "the genn backend needs pygenn, which is not installed; see README 'Optional extras'",
            )
        )


def chosen_backend(backend: str | None = None) -> str | None:
    """`backend`, else `$SNNC_GENN_BACKEND`, else None (the module picks CUDA when pygenn has it)."""
    value = backend if backend is not None else (os.environ.get(BACKEND_ENV) or None)
    if value is not None and value not in GENN_BACKENDS:
        source = "backend" if backend is not None else BACKEND_ENV
        raise DiagnosticError(
            Diagnostic(
                "E-GENN-BACKEND",
                f"unknown GeNN backend '{value}' (from {source})",
                hint=f"GeNN backends: {', '.join(GENN_BACKENDS)}",
            )
        )
    return value


def load_genn(network: Network, **options: Any):  # noqa: ANN201
    """Emit, build and load `network` with pygenn; returns a `GeNNArtefact` (runtime protocol).

    options: batch_size, precision, seed, backend ("cuda" | "single_threaded_cpu" | None: the
    environment variable SNNC_GENN_BACKEND, else CUDA when pygenn has it, else the CPU backend),
    out_dir (where the module and GeNN's generated code go).
    """
    require_pygenn()
    from .runtime import GeNNArtefact

    out_dir = Path(options.pop("out_dir", None) or Path(".snnc-genn") / network.name)
    backend = chosen_backend(options.pop("backend", None))
    batch_size = options.pop("batch_size", None)
    paths = emit_genn(network, out_dir, **options, batch_size=batch_size)
    return GeNNArtefact.from_module(paths[0], backend=backend, batch_size=batch_size)


__all__ = [
    "BACKEND_ENV",
    "CAPABILITIES",
    "GENN_BACKENDS",
    "MISSING",
    "chosen_backend",
    "emit_genn",
    "generate",
    "have_pygenn",
    "load_genn",
    "require_pygenn",
]
