"""snnc: a compiler toolchain for training spiking neural networks.

`snnc.compile(path_or_source, backend="c", **overrides)` compiles a `.snn` network and returns a
runnable network object (see `snnc.runtime`).
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__", "compile"]


def compile(source, backend: str = "c", **overrides):  # noqa: A001 - mirrors mlGeNN's compile step
    """Compile a `.snn` file (path) or source text into a runnable network."""
    from snnc.api import compile_network

    return compile_network(source, backend=backend, **overrides)
