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
from snnc.backends.capabilities import Capabilities
from snnc.backends.common import (
    NetworkPlan,
    draw_connectivity,
    draw_delays,
    draw_param_values,
    mangle,
    plan_network,
)
from snnc.backends.eprop_init import initial_arrays
from snnc.ir.connectivity import kind_of
from snnc.ir.diagnostics import Diagnostic, DiagnosticError
from snnc.ir.eprop_ir import EpropIR
from snnc.ir.kernel import Kernel, Role
from snnc.ir.model import Network
from snnc.ir.names import param_key
from snnc.ir.printer import print_network
from snnc.passes.schedule import schedule
from snnc.passes.schedule_eventprop import recorded
from snnc.passes.schedule_learning import learning_manifest, learning_plan

from .build import build
from .entry import BuiltNetwork
from .kernel_printer import print_kernel
from .manifest import ABI_VERSION, Rendered, manifest_facts

CODE_EPROP_UNSUPPORTED = "E-EPROP-C-UNSUPPORTED"

#: connectivity layouts whose EventProp gradient rows the C printer prints
GRAD_LAYOUTS = ("dense", "csr", "one_to_one", "window")

#: what this backend can do; `snnc check --backend c` refuses the rest with a location
CAPABILITIES = Capabilities(
    connectivity=frozenset({"dense", "csr", "one_to_one", "window"}),
    gradients=frozenset({"eventprop", "eprop"}),
    precisions=frozenset({"float", "double"}),
    generators=frozenset({"spike_source", "poisson"}),
    trainable={"eventprop": frozenset(GRAD_LAYOUTS), "eprop": frozenset({"dense"})},
    explicit_padding=True,
    dilated_grouped_conv=True,
    per_neuron_params=True,
    trainable_params=True,
    trainable_delays=frozenset({"dense", "csr", "one_to_one"}),
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


def is_eprop(network: Network) -> bool:
    return isinstance(network.training, EpropIR)


def _is_eventprop(network: Network) -> bool:
    return getattr(network.training, "algorithm", None) == "eventprop"


def _printed_kernel(
    network: Network, plan: NetworkPlan, event_buffer: int, static: dict[str, np.ndarray]
) -> Rendered:
    """The kernel the passes schedule (forward, EventProp's forward and backward, or e-prop's online
    learning), printed by `kernel_printer`; an e-prop network's initial output biases and random
    feedback matrices join `static`."""
    network = dataclasses.replace(network, dt=plan.dt)
    if is_eprop(network):
        _require_dense(network)
    elif _is_eventprop(network):
        _check_trainable(network)
    kernel = schedule(network, precision=plan.precision, event_buffer=event_buffer)
    static.update(per_neuron_static(network, kernel, plan.seed))
    static.update(draw_delays(network, static, plan.seed))
    if is_eprop(network):
        static.update(_eprop_static(network, kernel, plan.seed))
    code, arrays = print_kernel(kernel, precision=plan.precision, ir_hash=ir_hash(network), abi=ABI_VERSION)
    manifest = manifest_facts(plan, code, ir_hash=ir_hash(network), event_buffer=event_buffer)
    manifest["arrays"] = arrays
    if is_eprop(network):
        manifest["eprop"] = _eprop_facts(network.training)
    if _is_eventprop(network):
        manifest["eventprop"] = eventprop_manifest(kernel, network.training)
        learning = learning_manifest(kernel)
        if learning is not None:  # the kernel computes the loss and steps the optimiser itself
            manifest["learning"] = {**learning, **_learning_spec(network)}
        trainable = trainable_params(network)
        if trainable:
            manifest["trainable_params"] = trainable
    return Rendered(code, [], manifest)


def _learning_spec(network: Network) -> dict[str, Any]:
    """The loss and optimiser the kernel's learning phases implement, for the runtime to compare
    with the ones it was given (another loss or optimiser keeps the runtime's own loop)."""
    loss, optimiser, temperature = learning_plan(network)
    return {"loss": loss, "temperature": temperature, "optimiser": optimiser}


def trainable_params(network: Network) -> dict[str, dict[str, Any]]:
    """key -> bounds and learning-rate scale of every trainable param, for the optimiser."""
    owners = [(p.name, p.trainable) for p in network.populations.values()]
    owners += [(p.name, p.synapse_trainable) for p in network.projections.values()]
    owners += [
        (p.name, {"delay": p.delay_trainable}) for p in network.projections.values() if p.delay_trainable
    ]
    return {
        param_key(name, owner): {
            "min": t.min,
            "max": t.max,
            "lr_scale": t.lr_scale,
            "per_neuron": t.per_neuron,
        }
        for owner, specs in owners
        for name, t in specs.items()
    }


def eventprop_manifest(kernel: Kernel, training: Any) -> dict[str, Any]:
    """What the loader needs to drive `snnc_backward`: array names found by role, owner and var."""

    def named(role: Role, var: str | None = None) -> dict[str, str]:
        return {a.owner: a.name for a in kernel.arrays if a.role == role and (var is None or a.var == var)}

    lists = {
        pop: {
            "over": kernel.find(Role.COUNTER, pop, "overflow").name,
            "cnt": kernel.find(Role.COUNTER, pop, "count").name,
            "ln": kernel.find(Role.COUNTER, pop, "length").name,
            "cap": cap,
        }
        for pop, cap in named(Role.INPUT, "capacity").items()
    }
    outputs = {
        pop: {
            "dly": name,
            "per_step": "steps" in kernel.array(name).shape,
            "readout": training.populations[pop].readout.kind,
        }
        for pop, name in named(Role.TARGET, "dL_dy").items()
    }
    trajectory = {
        pop: [kernel.find(Role.RECORD, pop, s).name for s in recorded(training, pg)]
        for pop, pg in training.populations.items()
        if recorded(training, pg)
    }
    return {
        "max_spikes": int(training.max_spikes),
        "lists": lists,
        "outputs": outputs,
        "regularised": {
            pop: {"nsum": name, "cnt": lists[pop]["cnt"]}
            for pop, name in named(Role.TARGET, "spike_count_sum").items()
        },
        "count_grads": named(Role.TARGET, "dL_dcount"),
        "gradients": {
            (param_key(a.var, a.owner) if a.var else a.owner): a.name
            for a in kernel.arrays
            if a.role == Role.GRADIENT
        },
        "trajectory": trajectory,
    }


def _check_trainable(network: Network) -> None:
    """Backward rows are printed for GRAD_LAYOUTS only (the capability `snnc check` reads)."""
    for name in network.training.weight_gradients:
        kind = network.projections[name].connectivity.kind
        if kind_of(kind).layout not in GRAD_LAYOUTS:
            raise DiagnosticError(
                Diagnostic(
                    "E-C-EVENTPROP",
                    f"projection '{name}' is {kind}: the C backend computes EventProp gradients for "
                    f"{', '.join(GRAD_LAYOUTS)} connectivity only",
                    None,
                    "mark it `trainable = false` or use dense/sparse connectivity",
                )
            )


def _require_dense(network: Network) -> None:
    """e-prop's synapse loops and feedback are printed for dense projections only."""
    ir: EpropIR = network.training
    feedback = {t.projection for he in ir.hidden.values() for t in he.learning}
    for name in sorted({*ir.projections, *feedback} & set(network.projections)):
        kind = network.projections[name].connectivity.kind
        if kind_of(kind).layout not in CAPABILITIES.trainable["eprop"]:
            what = "trains" if name in ir.projections else "sends feedback through"
            raise DiagnosticError(
                Diagnostic(
                    CODE_EPROP_UNSUPPORTED,
                    f"e-prop in the C backend {what} dense projections only; '{name}' is {kind}",
                    None,
                    "make the projection Dense, or mark it not trainable",
                )
            )


def per_neuron_static(network: Network, kernel: Kernel, seed: int) -> dict[str, np.ndarray]:
    """The drawn values of per-neuron params, by the name of the kernel array that holds them (an
    e-prop output bias, trained, takes its initial values from `eprop_initial`)."""
    values = draw_param_values(network, seed)
    return {a.name: values[(a.owner, a.var)] for a in kernel.arrays if (a.owner, a.var) in values}


def _eprop_static(network: Network, kernel: Kernel, seed: int) -> dict[str, np.ndarray]:
    """Initial output biases and random feedback, drawn as every backend draws them."""
    return initial_arrays(network, kernel, seed)


def _eprop_facts(ir: EpropIR) -> dict[str, Any]:
    """manifest["eprop"]: what the loader needs to hand targets to the kernel and name gradients."""
    return {
        "options": {k: getattr(ir.options, k) for k in ir.options.__dataclass_fields__},
        "outputs": {
            o.population: {"loss": o.loss, "readout": o.readout, "var": o.var} for o in ir.outputs.values()
        },
        "projections": sorted(ir.projections),
        "biases": {
            param_key("bias", o.population): o.population for o in ir.outputs.values() if o.bias is not None
        },
    }


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
    if not is_eprop(network):
        raise ValueError("the network carries no e-prop training IR; run the eprop pass")


def _json_default(obj: Any) -> Any:
    if isinstance(obj, (np.integer,)):
        return int(obj)
    if isinstance(obj, (np.floating,)):
        return float(obj)
    return str(obj)
