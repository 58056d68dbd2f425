"""`compile_network`: source (path or `.snn` text) -> frontend -> passes -> backend -> runtime."""

from __future__ import annotations

import os
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from snnc.backends import check_supported, get_backend
from snnc.ir.diagnostics import Diagnostic, DiagnosticError, Span
from snnc.ir.model import Network


def load_network(source: str | os.PathLike[str]) -> Network:
    """Parse and check a `.snn` file path or source text into the Model IR."""
    from snnc import frontend

    if not isinstance(source, str | os.PathLike):  # str(b"...") or str(None) parsed as source text
        raise TypeError(f"a .snn path or .snn source text is needed, not {type(source).__name__}")
    text = str(source)
    if isinstance(source, os.PathLike) or _names_a_file(text):
        path = Path(source)
        if not path.exists():
            raise DiagnosticError(Diagnostic("E-NO-FILE", f"no such file: {path}"))
        return frontend.load_file(str(path))
    return frontend.load_source(text, "<string>")


def _check_steps(dt: float, duration: float) -> None:
    """The `dt`/`duration` overrides get the train block's checks (`frontend/lower_train.py`)."""
    import math

    from snnc.frontend.lower_train import MAX_STEPS

    for name, value in (("dt", dt), ("duration", duration)):
        if not (math.isfinite(value) and value > 0):
            raise DiagnosticError(
                Diagnostic("E-OPTION", f"{name} must be a positive time in ms, not {value}")
            )
    if dt > duration:
        raise DiagnosticError(
            Diagnostic("E-OPTION", f"dt = {dt:g} ms is longer than the duration of {duration:g} ms")
        )
    if duration / dt > MAX_STEPS:
        raise DiagnosticError(
            Diagnostic(
                "E-OPTION", f"duration / dt = {duration / dt:.3g} steps; snnc runs at most {MAX_STEPS}"
            )
        )


def require_network(network: Network) -> Network:
    """`network`, if its file defines one: a file of models only (or an empty one) checks clean and
    can be `use`d, but there is nothing in it to build, train or export."""
    if network.name or network.populations:
        return network
    where = network.source_path or "the source"
    span = Span(where, 1, 1) if network.source_path else None
    raise DiagnosticError(
        Diagnostic(
            "E-NETWORK",
            f"{where} defines no network, so there is nothing to build",
            span,
            "add `network NAME { ... }` (a file of models only is for `use` and `snnc check`)",
        )
    )


def _names_a_file(text: str) -> bool:
    """Whether a string passed as `source` is a file name rather than `.snn` text: one line that
    ends in `.snn` or names an existing file (`net.txt`, a folder: read as a file, so its error says
    what it is rather than failing to parse the name as source)."""
    return "\n" not in text and (text.endswith(".snn") or os.path.exists(text))


def lower(source: str | os.PathLike[str] | Network, **overrides: Any) -> Network:
    """Frontend and passes; `dt`/`duration` overrides apply before discretisation."""
    import dataclasses

    from snnc.passes.pipeline import compile_ir

    network = source if isinstance(source, Network) else require_network(load_network(source))
    changes = {k: float(overrides[k]) for k in ("dt", "duration") if overrides.get(k) is not None}
    if changes:
        network = dataclasses.replace(network, **changes)
        _check_steps(network.dt, network.duration)
    network, _ = compile_ir(network)
    return network


def compile_network(source: Any, backend: str = "c", **overrides: Any):  # noqa: ANN201
    """Compile to a runnable `CompiledNetwork`.

    overrides: dt, duration (ms), batch_size, precision ("float" | "double"), seed,
    event_buffer (per-neuron spike buffer size for gradient passes), cache_dir, threads (threads
    per batch; `CompiledNetwork.set_threads` changes it later).
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
        "threads",
    }
    unknown = set(overrides) - known
    if unknown:
        raise TypeError(f"unknown compile option(s): {', '.join(sorted(unknown))}")
    chosen.require()  # one clear sentence before any slow work when the toolchain is missing
    threads = overrides.pop("threads", None)
    if threads is not None and threads < 1:
        raise ValueError(f"threads must be at least 1, not {threads}")
    network = lower_cached(source, backend=backend, **overrides)
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


#: what `lower_cached` remembers of the networks it returned (by id; the network is kept alive here,
#: so an id is never reused while its record lives), for `build_compiled` of the same network
_LOWERED: OrderedDict[int, _Lowered] = OrderedDict()


@dataclass
class _Lowered:
    network: Network
    path: Path
    overrides: dict[str, float]  # dt, duration
    options: dict[str, Any]  # the build options the cache key was made with
    cache_dir: Any
    key: str
    entry: Any  # compile_cache.Entry on a hit, else None


def _cache_key(path: Path, backend: str, overrides: dict[str, float], options: dict[str, Any]) -> str:
    from snnc import compile_cache

    return compile_cache.key(path, backend, {**options, **overrides, "gradients": True})


def lower_cached(source: Any, *, backend: str = "c", cache_dir: Any = None, **options: Any) -> Network:
    """`lower` through the compile cache (`snnc.compile_cache`) for a `.snn` path: on a hit, the
    network as the runtime reads it, without the frontend or the passes (nor sympy); `build_compiled`
    of the returned network with the same options then loads the cached build.

    options: dt, duration, and the build options of `build_compiled` (precision, seed, event_buffer),
    which are part of the key; others (batch_size) are ignored here."""
    from snnc import compile_cache

    overrides = {k: float(options[k]) for k in ("dt", "duration") if options.get(k) is not None}
    path = compile_cache.path_of(source)
    if path is None or not path.is_file() or not getattr(get_backend(backend), "cacheable", False):
        return lower(source, **overrides)
    build = {k: options.get(k, v) for k, v in BUILD_DEFAULTS.items()}
    k = _cache_key(path, backend, overrides, build)
    entry = compile_cache.lookup(k, cache_dir)
    network = entry.network if entry is not None else lower(path, **overrides)
    _LOWERED[id(network)] = _Lowered(network, path, overrides, build, cache_dir, k, entry)
    while len(_LOWERED) > 8:
        _LOWERED.popitem(last=False)
    return network


#: the build options and their defaults, as `build_compiled` applies them
BUILD_DEFAULTS: dict[str, Any] = {"precision": "float", "seed": None, "event_buffer": 0}


def build_compiled(
    network: Network,
    *,
    backend: str = "c",
    batch_size: int | None = None,
    precision: str = "float",
    seed: int | None = None,
    event_buffer: int = 0,
    cache_dir: Any = None,
):  # noqa: ANN201
    """Backend and runtime for an already-discretised network; a network from `lower_cached` loads
    its cached build, or is built and stored in the compile cache. Under MPI rank 0 builds first and
    the other ranks then find its entry (or its library) in the cache."""
    from snnc.runtime import distributed

    def build():  # noqa: ANN202
        return _build_compiled(
            network,
            backend=backend,
            batch_size=batch_size,
            precision=precision,
            seed=seed,
            event_buffer=event_buffer,
            cache_dir=cache_dir,
        )

    world = distributed.world()
    if world.size == 1:
        return build()
    if world.rank == 0:
        compiled = build()
    world.barrier()
    if world.rank != 0:
        compiled = build()
    return compiled


def _build_compiled(
    network: Network,
    *,
    backend: str,
    batch_size: int | None,
    precision: str,
    seed: int | None,
    event_buffer: int,
    cache_dir: Any,
):  # noqa: ANN202
    from snnc import compile_cache

    chosen = get_backend(backend)
    if batch_size is None:
        batch_size = network.train.batch_size if network.train else 1
    options = {"precision": precision, "seed": seed, "event_buffer": event_buffer}
    lowered = _LOWERED.get(id(network))
    if lowered is None or lowered.network is not network or not getattr(chosen, "cacheable", False):
        if lowered is not None and lowered.network is network and lowered.entry is not None:
            network = lower(lowered.path, **lowered.overrides)  # the cached view cannot be built
        return _load(
            chosen, _build(chosen, network, backend, batch_size, options, cache_dir), network, batch_size
        )
    if options == lowered.options and cache_dir == lowered.cache_dir:
        k, entry = lowered.key, lowered.entry
    else:
        k = _cache_key(lowered.path, backend, lowered.overrides, options)
        entry = compile_cache.lookup(k, cache_dir)
    if entry is not None:
        try:
            return _load(chosen, entry.built, entry.network, batch_size)
        except OSError:  # a cached library that no longer loads is built again
            pass
    if lowered.entry is not None:
        network = lower(lowered.path, **lowered.overrides)
    built = _build(chosen, network, backend, batch_size, options, cache_dir)
    compile_cache.store(k, network, built, cache_dir)
    return _load(chosen, built, network, batch_size)


def _build(
    chosen: Any, network: Network, backend: str, batch_size: int, options: dict, cache_dir: Any
) -> Any:
    check_backend(network, backend, options["precision"])
    return chosen.build(network, batch_size=batch_size, cache_dir=cache_dir, **options)


def _load(chosen: Any, built: Any, network: Network, batch_size: int):  # noqa: ANN202
    from snnc.runtime.compiled import CompiledNetwork
    from snnc.too_large import locate

    try:
        artefact = chosen.load(built, batch_size)
    except MemoryError as exc:  # a size the .snn asks for: say which part of it
        raise locate(exc, getattr(built, "manifest", None), network, batch_size) from None
    return CompiledNetwork(artefact, network=network)


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
