"""The genn backend: a pygenn (GeNN 5) module printed from the kernel IR the C backend prints too.

pygenn is an optional extra: emitting code (`emit_genn`) never needs it; loading a network for
simulation (`load_genn`) does, and says so in one sentence when it is missing.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from snnc.backends.capabilities import INFERENCE, Capabilities
from snnc.ir.diagnostics import Diagnostic, DiagnosticError
from snnc.ir.model import Network

from .build import BuiltModule, build_module
from .emit import emit_genn, generate

MISSING = "E-GENN-MISSING"
#: GeNN backends the generated module can build for; `SNNC_GENN_BACKEND` picks one over the default
GENN_BACKENDS = ("cuda", "single_threaded_cpu")
BACKEND_ENV = "SNNC_GENN_BACKEND"

#: what this backend can do; `snnc check --backend genn` refuses the rest with a location
CAPABILITIES = Capabilities(
    connectivity=frozenset({"dense", "csr", "one_to_one", "window"}),
    gradients=frozenset({"eventprop", "eprop"}),
    precisions=frozenset({"float", "double"}),
    generators=frozenset({"spike_source", "poisson"}),
    trainable={k: frozenset({"dense", "csr", "one_to_one"}) for k in ("eventprop", "eprop")},
    trainable_delays=frozenset({"dense", "csr", "one_to_one"}),
    per_neuron_params=True,
    trainable_params=frozenset({"eprop", "eventprop", INFERENCE}),
    # their derived params, once per trial, are derived_printer.py's custom updates
    trainable_synapse_params=frozenset({"eprop", "eventprop", INFERENCE}),
)


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
    backend = chosen_backend(options.pop("backend", None))  # a bad name fails before any work
    from snnc.backends import check_supported

    refused = check_supported(network, "genn", precision=options.get("precision"))
    if refused:  # as `snnc.compile(..., backend="genn")` says it, not a failure inside the printers
        raise DiagnosticError(refused)
    batch_size = options.pop("batch_size", None)
    built = BACKEND.build(network, batch_size=batch_size, out_dir=options.pop("out_dir", None), **options)
    return BACKEND.load(built, batch_size, backend=backend)


class GeNNBackend:
    """The GeNN backend in the registry (`snnc.backends.get_backend("genn")`)."""

    name = "genn"
    capabilities = CAPABILITIES

    def require(self) -> None:
        require_pygenn()

    def emit(self, network: Network, out_dir: Path, **options: Any) -> list[Path]:
        return emit_genn(network, out_dir, **options)

    def build(
        self,
        network: Network,
        *,
        batch_size: int | None = None,
        precision: str = "float",
        seed: int | None = None,
        event_buffer: int = 0,
        cache_dir: str | Path | None = None,
        out_dir: str | Path | None = None,
    ) -> BuiltModule:
        """Write the module into snnc's cache (below `cache_dir` when given; `build.py`), or into
        `out_dir` exactly; GeNN builds its code beside it. event_buffer is the C backend's."""
        return build_module(
            network, root=cache_dir, out_dir=out_dir, precision=precision, seed=seed, batch_size=batch_size
        )

    def load(self, built: BuiltModule, batch_size: int | None, backend: str | None = None) -> Any:
        """Build the module with GeNN and load it; `backend` as `chosen_backend`."""
        require_pygenn()
        from .runtime import GeNNArtefact

        return GeNNArtefact.from_module(built.path, backend=chosen_backend(backend), batch_size=batch_size)


BACKEND = GeNNBackend()


__all__ = [
    "BACKEND",
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
