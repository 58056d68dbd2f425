"""Where snnc keeps what it can rebuild: compiled libraries, the parser tables, downloaded data sets.

One place, so the frontend, the backends and the runtime agree on it without importing each other.
"""

from __future__ import annotations

import os
from pathlib import Path


def cache_dir() -> Path:
    """`$SNNC_CACHE_DIR`, else `$XDG_CACHE_HOME/snnc`, else `~/.cache/snnc`."""
    if os.environ.get("SNNC_CACHE_DIR"):
        return Path(os.environ["SNNC_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "snnc"
