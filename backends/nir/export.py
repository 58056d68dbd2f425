"""A `.snn` network (with weights from `File` initialisers, constants or a checkpoint) -> NIR graph.

Populations of the models `snnc import` writes (NirLIF, NirCubaLIF, NirLI, NirCubaLI, NirIF, NirI)
map back to their NIR nodes (ms -> s); each projection becomes a Linear node (weight [post, pre]),
plus a Delay node when it has a delay. Anything else is an error naming the population or projection.
"""

from __future__ import annotations

import numpy as np
from snnc.ir.diagnostics import Diagnostic, DiagnosticError
from snnc.ir.model import Network

#: snnc model -> (NIR class, {nir field: (snnc param, scale to NIR units)})
NODES = {
    "NirLIF": ("LIF", {"tau": "tau", "r": "r", "v_leak": "v_leak", "v_threshold": "v_threshold", "v_reset": "v_reset"}),
    "NirCubaLIF": ("CubaLIF", {"tau_mem": "tau_mem", "r": "r", "v_leak": "v_leak", "v_threshold": "v_threshold",
                               "v_reset": "v_reset", "w_in": "w_in"}),
    "NirLI": ("LI", {"tau": "tau", "r": "r", "v_leak": "v_leak"}),
    "NirCubaLI": ("CubaLI", {"tau_mem": "tau_mem", "r": "r", "v_leak": "v_leak", "w_in": "w_in"}),
    "NirIF": ("IF", {"r": "r", "v_threshold": "v_threshold", "v_reset": "v_reset"}),
    "NirI": ("I", {"r": "r"}),
}  # fmt: skip
TIME = {"tau", "tau_mem", "tau_syn"}


def _error(message: str, hint: str | None = None) -> DiagnosticError:
    return DiagnosticError(Diagnostic("E-NIR-EXPORT", message, hint=hint))


def _weights(network: Network, proj, weights: dict) -> np.ndarray:
    if proj.name in weights:
        return np.asarray(weights[proj.name], np.float64)
    init = proj.weight
    shape = (network.populations[proj.pre].size, network.populations[proj.post].size)
    if init.kind == "file":
        return np.load(init.args["resolved"], allow_pickle=False).astype(np.float64)
    if init.kind == "constant":
        return np.full(shape, float(init.args["value"]))
    raise _error(
        f"projection '{proj.name}' has random initial weights ({init.kind})",
        "pass --checkpoint with trained weights, or use File(...) weights",
    )


def to_nir(network: Network, weights: dict | None = None):  # noqa: ANN201
    """The NIR graph of `network`; `weights` (projection -> [pre, post]) override initialisers."""
    import nir

    weights = dict(weights or {})
    nodes, edges = {}, []
    tau_syn: dict[str, float] = {}
    for proj in network.projections.values():
        if proj.connectivity.kind != "dense":
            raise _error(
                f"projection '{proj.name}': {proj.connectivity.kind} connectivity has no NIR export yet"
            )
        if proj.synapse == "NirCurrent":
            tau = proj.synapse_params["tau_syn"]
            if tau_syn.setdefault(proj.post, tau) != tau:
                raise _error(f"population '{proj.post}': its projections use different tau_syn")
        elif proj.synapse != "NirDirac":
            raise _error(
                f"projection '{proj.name}': synapse model '{proj.synapse}' has no NIR equivalent",
                "export maps the NirDirac and NirCurrent synapses that `snnc import` writes",
            )
    for pop in network.populations.values():
        n = pop.size
        model = network.models[pop.model]
        if pop.role == "input":
            nodes[pop.name] = nir.Input(input_type={"input": np.array([n])})
            continue
        if pop.model not in NODES:
            raise _error(
                f"population '{pop.name}': model '{pop.model}' has no NIR equivalent",
                f"export maps the models `snnc import` writes: {', '.join(NODES)}",
            )
        kind, fields = NODES[pop.model]
        values = {}
        for f, p in fields.items():
            v = float(pop.params.get(p, model.params[p].value))
            values[f] = np.full(n, v / 1e3 if f in TIME else v)
        if kind.startswith("Cuba"):
            if pop.name not in tau_syn:
                raise _error(f"population '{pop.name}' ({pop.model}) needs NirCurrent synapses for tau_syn")
            values["tau_syn"] = np.full(n, tau_syn[pop.name] / 1e3)
        nodes[pop.name] = getattr(nir, kind)(**values)
        if pop.role == "output":
            nodes[f"{pop.name}_output"] = nir.Output(output_type={"output": np.array([n])})
            edges.append((pop.name, f"{pop.name}_output"))
    for proj in network.projections.values():
        w = _weights(network, proj, weights)
        nodes[proj.name] = nir.Linear(weight=w.T.copy())
        edges.append((proj.pre, proj.name))
        last = proj.name
        if proj.delay:
            d = f"{proj.name}_delay"
            nodes[d] = nir.Delay(delay=np.full(w.shape[1], proj.delay / 1e3))
            edges.append((last, d))
            last = d
        edges.append((last, proj.post))
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)
