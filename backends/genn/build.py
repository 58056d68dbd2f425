"""Where a generated pygenn module lives: a folder of snnc's cache named by what it holds.

GeNN writes its generated C++ (`<name>_CODE/`) beside the module when it builds it, so the module's
folder is where every file of a GeNN build ends up. By default that folder is
`<cache>/genn/<key[:2]>/<key>`, the key a hash of the module's code and initial arrays, as the C
backend keys its libraries: nothing is written into the current folder, two networks never share a
folder, and a network built twice reuses its module (and GeNN's build) from the first time.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from snnc.ir.diagnostics import Diagnostic, DiagnosticError
from snnc.ir.model import Network

from snnc.cache import cache_dir

from .emit import generate, write_module


@dataclass
class BuiltModule:
    """A written pygenn module; GeNN generates and compiles its code when it is loaded."""

    path: Path
    cached: bool = False


def module_key(code: str, arrays: dict) -> str:
    digest = hashlib.sha256(code.encode())
    for name in sorted(arrays):
        array = arrays[name]
        digest.update(f"\0{name}\0{array.dtype}\0{array.shape}\0".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def build_module(
    network: Network,
    *,
    root: str | Path | None = None,
    out_dir: str | Path | None = None,
    precision: str = "float",
    seed: int | None = None,
    batch_size: int | None = None,
) -> BuiltModule:
    """Write `network`'s module into `out_dir` when given, else into the cache below `root`
    (default: snnc's cache folder, `$SNNC_CACHE_DIR`); a complete cached module is reused."""
    code, arrays, ctx = generate(network, precision=precision, seed=seed, batch_size=batch_size)
    base = Path(root) if root is not None else cache_dir()
    if out_dir is None:
        key = module_key(code, arrays)
        folder = base / "genn" / key[:2] / key
    else:
        folder = Path(out_dir)
    module = folder / f"{ctx.plan.name}_genn.py"
    try:
        if out_dir is None and module.is_file() and module.read_text() == code:
            return BuiltModule(module, cached=True)
        write_module(folder, code, arrays, ctx)
    except OSError as exc:  # a user's folder that cannot hold the module, not a bug in snnc
        where = folder if out_dir is not None else base
        raise DiagnosticError(
            Diagnostic(
                "E-CACHE",
                f"cannot write GeNN models into {where}: {exc.strerror or exc}"
                + (f" ({exc.filename})" if exc.filename else ""),
                hint=None if out_dir is not None else "point $SNNC_CACHE_DIR at a writable folder",
            )
        ) from None
    return BuiltModule(module)
