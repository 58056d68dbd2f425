"""The C backend's entry points: plan -> render -> build, and `--emit c`.

`build_network` returns a `BuiltNetwork` (library path, manifest, initial weights); `loader.py` loads it
into a runtime artefact (`CBackend.load`), so rendering and building never import the runtime.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path
from typing import Any

import numpy as np
from snnc.backends.capabilities import INFERENCE, Capabilities, unsupported
from snnc.backends.common import (
    NetworkPlan,
    draw_connectivity,
    draw_delays,
    draw_param_values,
    mangle,
    plan_network,
)
from snnc.backends.eprop_init import initial_arrays
from snnc.ir.diagnostics import DiagnosticError
from snnc.ir.eprop_ir import EpropIR
from snnc.ir.kernel import Kernel
from snnc.ir.model import Network
from snnc.ir.printer import print_network
from snnc.passes.schedule import schedule

from .build import build, parallel_units
from .entry import BuiltNetwork
from .kernel_printer import print_units
from .manifest import ABI_VERSION, Rendered, manifest_facts

#: connectivity layouts whose EventProp gradient rows the C printer prints
GRAD_LAYOUTS = ("dense", "csr", "one_to_one", "window")

#: what this backend can do; `snnc check --backend c` refuses the rest with a location
CAPABILITIES = Capabilities(
    connectivity=frozenset({"dense", "csr", "one_to_one", "window"}),
    gradients=frozenset({"eventprop", "eprop"}),
    precisions=frozenset({"float", "double"}),
    generators=frozenset({"spike_source", "poisson"}),
    trainable={"eventprop": frozenset(GRAD_LAYOUTS), "eprop": frozenset({"dense", "csr"})},
    explicit_padding=True,
    dilated_grouped_conv=True,
    per_neuron_params=True,
    trainable_params=frozenset({"eventprop", "eprop", INFERENCE}),
    trainable_synapse_params=frozenset({"eventprop", "eprop", INFERENCE}),
    trainable_delays=frozenset({"dense", "csr", "one_to_one"}),
    per_timestep_loss=True,
    rewired_layouts=frozenset({"dense", "csr"}),
    sparse_random_feedback=True,
)


def ir_hash(network: Network) -> str:
    """A stable fingerprint of the IR the code was generated from (for the manifest): the hash of
    its canonical text, so a printer bug fails loudly instead of changing the hash."""
    return hashlib.sha256(print_network(network).encode()).hexdigest()[:16]


def generate(
    network: Network,
    *,
    dt: float | None = None,
    precision: str = "float",
    seed: int | None = None,
    event_buffer: int = 0,
) -> tuple[Rendered, dict[str, np.ndarray], NetworkPlan]:
    """Plan, draw initial weights with the seed, and render C (no compiling).

    The one C generator for `--emit c` and for training: a network without training and an e-prop
    network get their scheduled kernel printed (entry `snnc_eprop_run` beside `snnc_run` for e-prop),
    an EventProp network the templates with `snnc_backward`.
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
    return _printed_kernel(network, plan, event_buffer, static), static, plan


def _printed_kernel(
    network: Network, plan: NetworkPlan, event_buffer: int, static: dict[str, np.ndarray]
) -> Rendered:
    """The kernel the passes schedule, printed by `kernel_printer`; the arrays drawn from the seed
    (per-neuron params, delays, an e-prop network's output biases and random feedback) join `static`,
    and the kernel's `interface` (how a loader drives its entries) joins the manifest as it is."""
    network = dataclasses.replace(network, dt=plan.dt)
    _require_supported(network, plan.precision)
    kernel = schedule(network, precision=plan.precision, event_buffer=event_buffer)
    static.update(per_neuron_static(network, kernel, plan.seed))
    static.update(draw_delays(network, static, plan.seed))
    static.update(initial_arrays(network, kernel, plan.seed))
    fingerprint = ir_hash(network)  # the IR printed in full: once
    code, units, arrays = print_units(
        kernel, precision=plan.precision, ir_hash=fingerprint, abi=ABI_VERSION, units=parallel_units()
    )
    manifest = manifest_facts(plan, code, ir_hash=fingerprint, event_buffer=event_buffer)
    manifest["arrays"] = arrays
    manifest.update(kernel.interface)
    return Rendered(code, [], manifest, units)


def _require_supported(network: Network, precision: str) -> None:
    """What `snnc check --backend c` refuses, refused here too, for callers that build directly."""
    problems = unsupported(network, "c", CAPABILITIES, precision=precision)
    if problems:
        raise DiagnosticError(problems)


def per_neuron_static(network: Network, kernel: Kernel, seed: int) -> dict[str, np.ndarray]:
    """The drawn values of per-neuron params, by the name of the kernel array that holds them (an
    e-prop output bias, trained, takes its initial values from `eprop_initial`)."""
    values = draw_param_values(network, seed)
    return {a.name: values[(a.owner, a.var)] for a in kernel.arrays if (a.owner, a.var) in values}


def _with_training_defaults(network: Network, options: dict[str, Any]) -> dict[str, Any]:
    """Options as training builds them: a gradient pass gets per-neuron spike buffers of its
    max_spikes unless `event_buffer` is given (shared by build and `--emit c`, so both agree)."""
    if not options.get("event_buffer") and network.training is not None:
        return {**options, "event_buffer": int(getattr(network.training, "max_spikes", 0) or 0)}
    return options


def build_network(network: Network, *, cache_dir: Path | None = None, **options: Any) -> BuiltNetwork:
    """Generate and compile (cached); event_buffer 0 means the gradient pass's max_spikes."""
    rendered, static, plan = generate(network, **_with_training_defaults(network, options))
    result = build(rendered.code, network.name, directory=cache_dir, units=rendered.units)
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


def build_eprop_network(network: Network, **options: Any) -> BuiltNetwork:
    """`build_network` of a network the eprop pass has run on (entry points `run` and `learn`)."""
    _require_eprop(network)
    return build_network(network, **options)


def generate_eprop(
    network: Network, **options: Any
) -> tuple[str, dict[str, Any], dict[str, np.ndarray], NetworkPlan]:
    """`generate` of an e-prop network: code, manifest, static arrays and plan."""
    _require_eprop(network)
    rendered, static, plan = generate(network, **options)
    return rendered.code, rendered.manifest, static, plan


def _require_eprop(network: Network) -> None:
    if not isinstance(network.training, EpropIR):
        raise ValueError("the network carries no e-prop training IR; run the eprop pass")


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    return str(obj)
