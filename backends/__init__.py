"""The backend registry: a backend's name -> its capabilities and its emit, build and load steps.

The API and the CLI look every backend up here, so adding one is a package that exposes a `BACKEND`
object of the `Backend` shape and one line in `_MODULES`. Modules are imported on first use: `snnc
check` should not pay for Jinja or pygenn.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from snnc.ir.diagnostics import Diagnostic, DiagnosticError

if TYPE_CHECKING:  # the CLI reads `NAMES` at start-up; the IR (and sympy) load on first use
    from snnc.ir.model import Network

    from .capabilities import Capabilities

#: backend name -> the package whose `BACKEND` implements it
_MODULES = {"c": "snnc.backends.c", "genn": "snnc.backends.genn"}
NAMES: tuple[str, ...] = tuple(_MODULES)


class Built(Protocol):
    """What `build` leaves on disk: the library or module `load` reads, and whether it was cached."""

    path: Path
    cached: bool


class Backend(Protocol):
    name: str
    capabilities: Capabilities

    def require(self) -> None:
        """Raise a one-sentence diagnostic when the backend's toolchain is missing."""

    def emit(self, network: Network, out_dir: Path, **options: Any) -> list[Path]:
        """Write the artefact's source files (what `build` compiles) into `out_dir`."""

    def build(self, network: Network, **options: Any) -> Built:
        """Generate and compile (cached) the artefact of `network`."""

    def load(self, built: Built, batch_size: int) -> Any:
        """A runtime artefact (`snnc.runtime.artefact.Artefact`) of a build."""


def get_backend(name: str) -> Backend:
    """The registered backend `name`; an unknown name is a diagnostic listing the known ones."""
    if name not in _MODULES:
        raise DiagnosticError(
            Diagnostic("E-BACKEND", f"unknown backend '{name}'", hint=f"backends: {', '.join(NAMES)}")
        )
    return importlib.import_module(_MODULES[name]).BACKEND


def check_supported(network: Network, name: str, *, precision: str | None = None) -> list[Diagnostic]:
    """What backend `name` refuses in `network` (empty when it can run it)."""
    from .capabilities import unsupported

    return unsupported(network, name, get_backend(name).capabilities, precision=precision)


__all__ = ["NAMES", "Backend", "Built", "check_supported", "get_backend"]
