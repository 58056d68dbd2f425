"""The C backend's entry points: plan -> render -> build, and `--emit c`.

`build_network` returns a `BuiltNetwork` (library path, manifest, initial weights); `loader.py` loads it
into a runtime artefact (`CBackend.load`), so rendering and building never import the runtime.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from snnc.backends.capabilities import Capabilities
from snnc.backends.common import NetworkPlan, draw_connectivity, mangle, plan_network
from snnc.ir.model import Network
from snnc.ir.printer import print_network
from snnc.passes.schedule_forward import forward_kernel

from .build import build
from .eprop import is_eprop, render_eprop
from .eventprop import GRAD_KINDS, plan_eventprop
from .kernel_printer import print_kernel
from .render import ABI_VERSION, Rendered, manifest_facts, render

#: what this backend can do; `snnc check --backend c` refuses the rest with a location
CAPABILITIES = Capabilities(
    connectivity=frozenset({"dense", "sparse", "one_to_one", "conv2d", "avg_pool2d"}),
    gradients=frozenset({"eventprop", "eprop"}),
    precisions=frozenset({"float", "double"}),
    generators=frozenset({"spike_source", "poisson"}),
    trainable={"eventprop": frozenset(GRAD_KINDS), "eprop": frozenset({"dense"})},
)


def ir_hash(network: Network) -> str:
    """A stable fingerprint of the IR the code was generated from (for the manifest): the hash of
    its canonical text, so a printer bug fails loudly instead of changing the hash."""
    return hashlib.sha256(print_network(network).encode()).hexdigest()[:16]


@dataclass
class BuiltNetwork:
    library: Path
    source: Path
    manifest: dict[str, Any]
    static: dict[str, np.ndarray]  # array name -> initial weights / connectivity
    plan: NetworkPlan
    cached: bool

    @property
    def path(self) -> Path:
        return self.library


def generate(
    network: Network,
    *,
    dt: float | None = None,
    precision: str = "float",
    seed: int | None = None,
    event_buffer: int = 0,
) -> tuple[Rendered, dict[str, np.ndarray], NetworkPlan]:
    """Plan, draw initial weights with the seed, and render C (no compiling).

    The one C generator for `--emit c` and for training: an e-prop network gets the forward code with
    the e-prop kernel appended (`eprop.py`), an EventProp network `snnc_backward`.
    """
    plan = plan_network(network, dt=dt, precision=precision, seed=seed)
    rng = np.random.default_rng(plan.seed)
    drawn = draw_connectivity(network, plan, rng)
    static: dict[str, np.ndarray] = {}
    for proj, arrays in drawn.items():
        if "weight" in arrays:
            static[mangle("w", proj)] = arrays["weight"]
        for key in ("row_ptr", "col_idx"):
            if key in arrays:
                static[mangle("c", proj, key)] = arrays[key]
    if network.training is None:
        return _printed_kernel(network, plan, event_buffer), static, plan
    rendered = render(
        plan, ir_hash=ir_hash(network), event_buffer=event_buffer, eventprop=plan_eventprop(network, plan)
    )
    if is_eprop(network):
        rendered, extra = _with_eprop(network, plan, rendered)
        static.update(extra)
    return rendered, static, plan


def _printed_kernel(network: Network, plan: NetworkPlan, event_buffer: int) -> Rendered:
    """A network without training runs the kernel the passes schedule, printed by `kernel_printer`.

    Transitional: the training algorithms still have their own renderers until their schedule
    passes lower them into the kernel IR too (issue 13); then every network takes this path."""
    network = dataclasses.replace(network, dt=plan.dt)
    kernel = forward_kernel(network, precision=plan.precision, event_buffer=event_buffer)
    code, arrays = print_kernel(kernel, precision=plan.precision, ir_hash=ir_hash(network), abi=ABI_VERSION)
    manifest = manifest_facts(plan, code, ir_hash=ir_hash(network), event_buffer=event_buffer)
    manifest["arrays"] = arrays
    return Rendered(code, [], manifest)


def _with_eprop(
    network: Network, plan: NetworkPlan, rendered: Rendered
) -> tuple[Rendered, dict[str, np.ndarray]]:
    """The forward translation unit with the e-prop kernel appended, and its extra static arrays."""
    code, specs, static, info = render_eprop(network, plan, rendered.manifest["arrays"])
    code = rendered.code + code
    manifest = dict(rendered.manifest)
    manifest["arrays"] = list(manifest["arrays"]) + [a.as_json() for a in specs]
    manifest["eprop"] = info
    manifest["code_sha256"] = hashlib.sha256(code.encode()).hexdigest()
    return Rendered(code, [*rendered.arrays, *specs], manifest), static


def _with_training_defaults(network: Network, options: dict[str, Any]) -> dict[str, Any]:
    """Options as training builds them: a gradient pass gets per-neuron spike buffers of its
    max_spikes unless `event_buffer` is given (shared by build and `--emit c`, so both agree)."""
    if not options.get("event_buffer") and network.training is not None:
        return {**options, "event_buffer": int(getattr(network.training, "max_spikes", 0) or 0)}
    return options


def build_network(
    network: Network, *, cache_dir: Path | None = None, openmp: bool = True, **options: Any
) -> BuiltNetwork:
    """Generate and compile (cached); event_buffer 0 means the gradient pass's max_spikes."""
    rendered, static, plan = generate(network, **_with_training_defaults(network, options))
    result = build(rendered.code, network.name, openmp=openmp, directory=cache_dir)
    return BuiltNetwork(result.library, result.source, rendered.manifest, static, plan, result.cached)


def emit_c(network: Network, out_dir: str | Path, **options: Any) -> list[Path]:
    """Write `<name>.c` and `manifest.json` (populations, arrays, shapes, dtypes, IR hash): the code
    `build_network` compiles with the same options."""
    rendered, static, _ = generate(network, **_with_training_defaults(network, options))
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    c_path = out / f"{network.name}.c"
    c_path.write_text(rendered.code)
    manifest = dict(rendered.manifest)
    manifest["static_arrays"] = {
        k: {"shape": list(v.shape), "dtype": str(v.dtype)} for k, v in static.items()
    }
    m_path = out / "manifest.json"
    m_path.write_text(json.dumps(manifest, indent=2, default=_json_default) + "\n")
    return [c_path, m_path]


class CBackend:
    """The C backend in the registry (`snnc.backends.get_backend("c")`)."""

    name = "c"
    capabilities = CAPABILITIES

    def require(self) -> None:
        """The C compiler is looked for when building (`build.py` names it if missing)."""

    def emit(self, network: Network, out_dir: Path, **options: Any) -> list[Path]:
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
        openmp: bool = True,
    ) -> BuiltNetwork:
        """Compile (cached); the batch size is the loader's."""
        return build_network(
            network,
            precision=precision,
            seed=seed,
            event_buffer=event_buffer,
            cache_dir=Path(cache_dir) if cache_dir else None,
            openmp=openmp,
        )

    def load(self, built: BuiltNetwork, batch_size: int) -> Any:
        from .eprop_loader import EpropArtefact
        from .loader import NativeArtefact

        loader = EpropArtefact if "eprop" in built.manifest else NativeArtefact
        return loader(built.library, built.manifest, built.static, batch_size)


BACKEND = CBackend()


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    return str(obj)
