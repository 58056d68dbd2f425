"""`compile_network`: source (path or `.snn` text) -> frontend -> passes -> backend -> runtime."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from snnc.backends import check_supported, get_backend
from snnc.ir.diagnostics import Diagnostic, DiagnosticError
from snnc.ir.model import Network


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
    event_buffer (per-neuron spike buffer size for gradient passes), cache_dir, threads (OpenMP
    threads per batch; `CompiledNetwork.set_threads` changes it later).
    """
    chosen = get_backend(backend)
    known = {
        "dt",
        "duration",
        "batch_size",
        "precision",
        "seed",
        "event_buffer",
        "cache_dir",
        "openmp",
        "threads",
    }
    unknown = set(overrides) - known
    if unknown:
        raise TypeError(f"unknown compile option(s): {', '.join(sorted(unknown))}")
    chosen.require()  # one clear sentence before any slow work when the toolchain is missing
    threads = overrides.pop("threads", None)
    if threads is not None and threads < 1:
        raise ValueError(f"threads must be at least 1, not {threads}")
    network = lower(source, **overrides)
    options = {k: v for k, v in overrides.items() if k not in ("dt", "duration")}
    net = build_compiled(network, backend=backend, **options)
    if threads is not None:
        net.set_threads(threads)
    return net


def check_backend(network: Network, backend: str = "c", precision: str | None = None) -> None:
    """Raise every combination of `network` that `backend` cannot run, before any code generation."""
    diagnostics = check_supported(network, backend, precision=precision)
    if diagnostics:
        raise DiagnosticError(diagnostics)


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
    from snnc.runtime.compiled import CompiledNetwork

    chosen = get_backend(backend)
    check_backend(network, backend, precision)
    if batch_size is None:
        batch_size = network.train.batch_size if network.train else 1
    built = chosen.build(
        network,
        batch_size=batch_size,
        precision=precision,
        seed=seed,
        event_buffer=event_buffer,
        cache_dir=cache_dir,
        openmp=openmp,
    )
    return CompiledNetwork(chosen.load(built, batch_size), network=network)


def emit(network: Network, out_dir: str | os.PathLike[str], backend: str = "c", **options: Any) -> list[Path]:
    """`--emit <backend>`: write the backend's source files (what `build_compiled` compiles)."""
    check_backend(network, backend, options.get("precision"))
    return get_backend(backend).emit(network, Path(out_dir), **options)


def emit_c(network: Network, out_dir: str | os.PathLike[str], **options: Any) -> list[Path]:
    """`--emit c`: write the generated C file and `manifest.json`; returns their paths."""
    return emit(network, out_dir, "c", **options)


def kernel(network: Network, precision: str = "float"):  # noqa: ANN201
    """The kernel IR the backends print for a discretised network (`snnc compile --emit kernel`):
    the forward step, and EventProp's or e-prop's schedule when the network trains with one."""
    from snnc.passes.schedule import schedule

    return schedule(network, precision=precision)
