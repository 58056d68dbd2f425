"""Which population or connection made a network too large to allocate, and where it is written.

A backend's loader allocates the arrays its manifest lists when a compiled network loads; a size the
input asks for (`eventprop(max_spikes = 1e12)`, a huge population, a long trial of delays) fails there
with numpy's MemoryError, which names a byte count and no part of the network. Every manifest array
has an owner (a population or a projection), so the largest array at the batch size names the part
of the `.snn` file to look at.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from snnc.ir.diagnostics import Span
from snnc.ir.model import Network

_ITEMSIZE = {"float": 4, "double": 8}


class NetworkTooLarge(MemoryError):
    """A MemoryError at load time that names the owner of the largest array and its `span`."""

    def __init__(self, message: str, owner: str, span: Span | None) -> None:
        super().__init__(message)
        self.owner = owner
        self.span = span


def _bytes(spec: dict[str, Any], batch: int, precision: str) -> int:
    """Bytes of a manifest array at `batch`; sizes known only while running (steps, events, nnz)
    count 1 here: the loader starts them small."""
    count = 1
    for d in spec.get("shape", ()):
        count *= batch if d == "batch" else (int(d) if not isinstance(d, str) else 1)
    dtype = str(spec.get("dtype", "scalar"))
    if dtype == "scalar":
        return count * _ITEMSIZE.get(precision, 8)
    return count * (8 if dtype.startswith("ptr_") else np.dtype(dtype).itemsize)  # ptr: an address


def _size_text(n: int) -> str:
    if n < 1024:
        return f"{n} bytes"
    size = float(n)
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        size /= 1024
        if size < 1024:
            return f"{size:.3g} {unit}"
    return f"{size / 1024:.3g} PiB"


def locate(exc: MemoryError, manifest: dict | None, network: Network, batch: int) -> MemoryError:
    """`exc` as a NetworkTooLarge naming the owner of the largest array (`exc` itself when the
    manifest lists no arrays or their owner is no part of `network`)."""
    arrays = (manifest or {}).get("arrays") or []
    if not arrays:
        return exc
    precision = str(manifest.get("precision", "double"))
    big = max(arrays, key=lambda a: _bytes(a, batch, precision))
    owner = str(big.get("owner"))
    part = network.populations.get(owner) or network.projections.get(owner)
    if part is None:
        return exc
    kind = "population" if owner in network.populations else "connection"
    shape = " x ".join(str(batch if d == "batch" else d) for d in big.get("shape", ()))
    return NetworkTooLarge(
        f"{exc or 'an allocation failed'}; the largest array, {big['name']} [{shape}] "
        f"({_size_text(_bytes(big, batch, precision))}), belongs to {kind} '{owner}'",
        owner,
        part.span,
    )
