"""`compile_network`: source (path or `.snn` text) -> frontend -> passes -> backend -> runtime."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from snnc.ir.diagnostics import Diagnostic, DiagnosticError
from snnc.ir.model import Network

BACKENDS = ("c", "genn")


def load_network(source: str | os.PathLike[str]) -> Network:
    """Parse and check a `.snn` file path or source text into the Model IR."""
    from snnc import frontend

    text = str(source)
    if isinstance(source, os.PathLike) or ("\n" not in text and text.endswith(".snn")):
        path = Path(source)
        if not path.exists():
            raise DiagnosticError(Diagnostic("E-NO-FILE", f"no such file: {path}"))
        return frontend.load_file(str(path))
    return frontend.load_source(text, "<string>")


def lower(source: str | os.PathLike[str] | Network, **overrides: Any) -> Network:
    """Frontend and passes; `dt`/`duration` overrides apply before discretisation."""
    import dataclasses

    from snnc.passes.pipeline import compile_ir

    network = source if isinstance(source, Network) else load_network(source)
    changes = {k: float(overrides[k]) for k in ("dt", "duration") if overrides.get(k) is not None}
    if changes:
        network = dataclasses.replace(network, **changes)
    network, _ = compile_ir(network)
    return network


def compile_network(source: Any, backend: str = "c", **overrides: Any):  # noqa: ANN201
    """Compile to a runnable `CompiledNetwork`.

    overrides: dt, duration (ms), batch_size, precision ("float" | "double"), seed,
    event_buffer (per-neuron spike buffer size for gradient passes), cache_dir.
    """
    if backend not in BACKENDS:
        raise DiagnosticError(
            Diagnostic("E-BACKEND", f"unknown backend '{backend}'", hint=f"backends: {', '.join(BACKENDS)}")
        )
    known = {"dt", "duration", "batch_size", "precision", "seed", "event_buffer", "cache_dir", "openmp"}
    unknown = set(overrides) - known
    if unknown:
        raise TypeError(f"unknown compile option(s): {', '.join(sorted(unknown))}")
    if backend == "genn":
        from snnc.backends.genn import require_pygenn

        require_pygenn()  # one clear sentence before any slow work when pygenn is missing
    network = lower(source, **overrides)
    options = {k: v for k, v in overrides.items() if k not in ("dt", "duration")}
    return build_compiled(network, backend=backend, **options)


def build_compiled(
    network: Network,
    *,
    backend: str = "c",
    batch_size: int | None = None,
    precision: str = "float",
    seed: int | None = None,
    event_buffer: int = 0,
    cache_dir: Any = None,
    openmp: bool = True,
):  # noqa: ANN201
    """Backend and runtime for an already-discretised network."""
    if backend == "genn":
        from snnc.backends.genn import load_genn
        from snnc.runtime.compiled import CompiledNetwork

        options = {"batch_size": batch_size, "precision": precision, "seed": seed, "out_dir": cache_dir}
        return CompiledNetwork(load_genn(network, **options), network=network)
    from snnc.backends.c import build_network
    from snnc.backends.c.eprop import build_eprop_network, is_eprop
    from snnc.runtime.compiled import CompiledNetwork
    from snnc.runtime.eprop_artefact import EpropArtefact
    from snnc.runtime.native import NativeArtefact

    online = is_eprop(network)  # e-prop: the forward kernel also accumulates the weight updates
    build = build_eprop_network if online else build_network
    artefact_type = EpropArtefact if online else NativeArtefact

    if not event_buffer and getattr(network, "training", None) is not None:
        # a gradient pass needs per-neuron spike buffers of the train block's size
        event_buffer = int(getattr(network.training, "max_spikes", 0) or 0)
    built = build(
        network,
        precision=precision,
        seed=seed,
        event_buffer=event_buffer,
        cache_dir=Path(cache_dir) if cache_dir else None,
        openmp=openmp,
    )
    if batch_size is None:
        batch_size = network.train.batch_size if network.train else 1
    artefact = artefact_type(built.library, built.manifest, built.static, batch_size)
    return CompiledNetwork(artefact, network=network)


def emit_c(network: Network, out_dir: str | os.PathLike[str], **options: Any) -> list[Path]:
    """`--emit c`: write the generated C file and `manifest.json`; returns their paths."""
    from snnc.backends.c import emit_c as _emit

    return _emit(network, out_dir, **options)
