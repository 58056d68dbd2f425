"""The C backend's entry points: plan -> render -> build, and `--emit c`.

`build_network` returns a `BuiltNetwork` (library path, manifest, initial weights); loading it is the
runtime's job (`snnc.runtime.native.NativeArtefact`), so this module never imports the runtime.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from snnc.backends.common import NetworkPlan, draw_connectivity, mangle, plan_network
from snnc.ir.model import Network

from .build import build
from .eventprop import plan_eventprop
from .render import Rendered, render

#: what this backend can do (a GeNN backend will declare its own)
CAPABILITIES = {
    "connectivity": ("dense", "sparse", "one_to_one", "conv2d", "avg_pool2d"),
    "precision": ("float", "double"),
    "generators": ("spike_source", "poisson"),
    "gradients": ("eventprop", "eprop"),
}


def ir_hash(network: Network) -> str:
    """A stable fingerprint of the IR the code was generated from (for the manifest)."""
    try:
        from snnc.ir.printer import print_network  # the canonical text form, once it exists

        text = print_network(network)
    except Exception:  # noqa: BLE001 - the printer is optional here; repr is deterministic too
        text = repr(network)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass
class BuiltNetwork:
    library: Path
    source: Path
    manifest: dict[str, Any]
    static: dict[str, np.ndarray]  # array name -> initial weights / connectivity
    plan: NetworkPlan
    cached: bool


def generate(
    network: Network,
    *,
    dt: float | None = None,
    precision: str = "float",
    seed: int | None = None,
    event_buffer: int = 0,
) -> tuple[Rendered, dict[str, np.ndarray], NetworkPlan]:
    """Plan, draw initial weights with the seed, and render C (no compiling)."""
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
    rendered = render(
        plan, ir_hash=ir_hash(network), event_buffer=event_buffer, eventprop=plan_eventprop(network, plan)
    )
    return rendered, static, plan


def build_network(
    network: Network, *, cache_dir: Path | None = None, openmp: bool = True, **options: Any
) -> BuiltNetwork:
    rendered, static, plan = generate(network, **options)
    result = build(rendered.code, network.name, openmp=openmp, directory=cache_dir)
    return BuiltNetwork(result.library, result.source, rendered.manifest, static, plan, result.cached)


def emit_c(network: Network, out_dir: str | Path, **options: Any) -> list[Path]:
    """Write `<name>.c` and `manifest.json` (populations, arrays, shapes, dtypes, IR hash)."""
    rendered, static, _ = generate(network, **options)
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


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    return str(obj)
