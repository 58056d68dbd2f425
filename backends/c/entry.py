"""The C backend's registry entry (`BACKEND`) and what a build leaves (`BuiltNetwork`).

Kept apart from `backend.py` so that loading a cached build imports neither sympy nor Jinja:
`build` and `emit` import the generator on first use, `load` only the loaders.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import numpy as np
    from snnc.backends.capabilities import Capabilities
    from snnc.backends.common import NetworkPlan
    from snnc.ir.model import Network


@dataclass
class BuiltNetwork:
    library: Path
    source: Path
    manifest: dict[str, Any]
    static: dict[str, np.ndarray]  # array name -> initial weights / connectivity
    plan: NetworkPlan | None  # None when read back from the compile cache
    cached: bool

    @property
    def path(self) -> Path:
        return self.library


class CBackend:
    """The C backend in the registry (`snnc.backends.get_backend("c")`)."""

    name = "c"
    #: `snnc.compile_cache` may keep its builds (a `BuiltNetwork` is stored without its plan and arrays)
    cacheable = True

    @property
    def capabilities(self) -> Capabilities:
        from .backend import CAPABILITIES

        return CAPABILITIES

    def require(self) -> None:
        """The C compiler is looked for when building (`build.py` names it if missing)."""

    def emit(self, network: Network, out_dir: Path, **options: Any) -> list[Path]:
        from .backend import emit_c

        return emit_c(network, out_dir, **options)

    def build(
        self,
        network: Network,
        *,
        batch_size: int | None = None,
        precision: str = "float",
        seed: int | None = None,
        event_buffer: int = 0,
        cache_dir: str | Path | None = None,
    ) -> BuiltNetwork:
        """Compile (cached); the batch size is the loader's."""
        from .backend import build_network

        return build_network(
            network,
            precision=precision,
            seed=seed,
            event_buffer=event_buffer,
            cache_dir=Path(cache_dir) if cache_dir else None,
        )

    def load(self, built: BuiltNetwork, batch_size: int) -> Any:
        from .eprop_loader import EpropArtefact
        from .loader import NativeArtefact

        loader = EpropArtefact if "eprop" in built.manifest else NativeArtefact
        return loader(built.library, built.manifest, built.static, batch_size)


BACKEND = CBackend()
