"""A `.snn` network (with weights from `File` initialisers, constants or a checkpoint) -> NIR graph.

Populations of the models `snnc import` writes (NirLIF, NirCubaLIF, NirLI, NirCubaLI, NirIF, NirI)
map back to their NIR nodes (ms -> s); each Dense projection becomes a Linear node (weight [post, pre],
in NIR's channels-first order, after a Flatten when the pre population is (H, W, C)), Conv2D and
AvgPool2D become Conv2d/SumPool2d/AvgPool2d (`windows`), plus a Scale node for a synapse gain they do
not absorb and a Delay node for a delay. A population of a `...Bias` model (an imported Affine or
Conv2d bias) gives its `bias` back to its first incoming projection's node, as an Affine's or
Conv2d's bias. Anything else is an error naming the population or projection.
"""

from __future__ import annotations

import numpy as np
from snnc.backends.nir.windows import conv_node, nir_shape, pool_node
from snnc.frontend.nir_conv import nir_order
from snnc.frontend.nir_models import BIAS
from snnc.frontend.nir_names import ExportNames
from snnc.ir import names as ir_names
from snnc.ir.connectivity import kind_of
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
    pre, post = network.populations[proj.pre], network.populations[proj.post]
    kind = kind_of(proj.connectivity.kind)
    shape = kind.weight_shape(pre.size, post.size, kind.geometry(proj.connectivity.args, tuple(pre.shape)))
    if init.kind == "file":
        return np.load(init.args["resolved"], allow_pickle=False).astype(np.float64)
    if init.kind == "constant":
        return np.full(shape, float(init.args["value"]))
    raise _error(
        f"projection '{proj.name}' has random initial weights ({init.kind})",
        "pass --checkpoint with trained weights, or use File(...) weights",
    )


def to_nir(network: Network, weights: dict | None = None, names: ExportNames | None = None):  # noqa: ANN201
    """The NIR graph of `network`; `weights` (projection -> [pre, post]) override initialisers;
    `names` gives nodes their original NIR names (from the `.snn` file's `# nir:` annotations)."""
    import nir

    weights = dict(weights or {})
    names = names or ExportNames({})
    node_of = {pop: names.name(pop, _pop_kind(network, pop), pop) for pop in network.populations}
    nodes, edges = {}, []
    tau_syn: dict[str, float] = {}
    for proj in network.projections.values():
        if proj.connectivity.kind not in ("dense", "conv2d", "avg_pool2d"):
            raise _error(
                f"projection '{proj.name}': {proj.connectivity.kind} connectivity has no NIR export yet"
            )
        if proj.synapse_param_inits:
            raise _error(
                f"projection '{proj.name}': per-neuron synapse params "
                f"({', '.join(proj.synapse_param_inits)}) have no NIR export yet"
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
    biases: dict[str, np.ndarray] = {}  # first incoming projection -> its post's bias (snnc order)
    for pop in network.populations.values():
        n = nir_shape(pop.shape)
        model = network.models[pop.model]
        if pop.role == "input":
            nodes[node_of[pop.name]] = nir.Input(input_type={"input": np.array(n)})
            continue
        base = pop.model.removesuffix(BIAS)
        if base not in NODES:
            raise _error(
                f"population '{pop.name}': model '{pop.model}' has no NIR equivalent",
                f"export maps the models `snnc import` writes: {', '.join(NODES)} (and their {BIAS} forms)",
            )
        if base != pop.model:
            biases.update(_bias(network, pop, weights, tau_syn.get(pop.name)))
        kind, fields = NODES[base]
        values = {}
        for f, p in fields.items():
            v = _pop_param(pop, p, weights, model.params[p].value)
            values[f] = np.broadcast_to(v / 1e3 if f in TIME else v, n).astype(np.float64)
        if kind.startswith("Cuba"):
            if pop.name not in tau_syn:
                raise _error(f"population '{pop.name}' ({pop.model}) needs NirCurrent synapses for tau_syn")
            values["tau_syn"] = np.full(n, tau_syn[pop.name] / 1e3)
        nodes[node_of[pop.name]] = getattr(nir, kind)(**values)
        if pop.role == "output":
            out = names.name(pop.name, "Output", f"{pop.name}_output")
            nodes[out] = nir.Output(output_type={"output": np.array(n)})
            edges.append((node_of[pop.name], out))
    for proj in network.projections.values():
        chain = _projection_nodes(network, proj, weights, biases.get(proj.name))
        last = node_of[proj.pre]
        for kind, fallback, node in chain:
            name = names.name(proj.name, kind, fallback)
            nodes[name] = node
            edges.append((last, name))
            last = name
        edges.append((last, node_of[proj.post]))
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


def _pop_param(pop, name: str, weights: dict, default: float) -> float | np.ndarray:  # noqa: ANN001
    """A population's param: one number, or its per-neuron values (from the checkpoint's weights,
    where trained ones are filed as `<param>_<population>`, shared or per neuron, else from its
    `File()` or `Constant()`)."""
    if name not in pop.param_inits:
        shared = weights.get(ir_names.param_key(name, pop.name))  # a shared trained param's one value
        return (
            float(np.asarray(shared).reshape(-1)[0])
            if shared is not None
            else float(pop.params.get(name, default))
        )
    if len(pop.shape) > 1:
        raise _error(f"population '{pop.name}': per-neuron '{name}' of a multi-dimensional population")
    return _per_neuron(pop, name, weights)


def _per_neuron(pop, name: str, weights: dict) -> np.ndarray | None:  # noqa: ANN001
    """A param's per-neuron values (flat, snnc order): the checkpoint's (filed as `<param>_<pop>`),
    else its `File()`'s; None when it has neither; an error for values drawn at random."""
    key = ir_names.param_key(name, pop.name)
    if key in weights:
        return np.asarray(weights[key], np.float64).reshape(-1)
    init = pop.param_inits.get(name)
    if init is None:
        return None
    if init.kind == "file":
        return np.load(init.args["resolved"], allow_pickle=False).astype(np.float64).reshape(-1)
    raise _error(
        f"population '{pop.name}' has random per-neuron '{name}' ({init.kind})",
        "pass --checkpoint with the drawn values, or use File(...)",
    )


def _bias(network: Network, pop, weights: dict, tau_syn: float | None) -> dict[str, np.ndarray]:  # noqa: ANN001
    """{first projection into `pop`: pop's bias per neuron}: NIR adds a bias where weights sum."""
    model = network.models[pop.model]
    into = [p for p in network.projections.values() if p.post == pop.name]
    if not into:
        raise _error(f"population '{pop.name}' ({pop.model}): a bias needs a projection into it to carry it")
    if "tau_syn" in model.params:
        own = float(pop.params.get("tau_syn", model.params["tau_syn"].value))
        if tau_syn is not None and own != tau_syn:
            raise _error(
                f"population '{pop.name}': its bias current's tau_syn ({own} ms) differs from its "
                f"synapses' ({tau_syn} ms)",
                "NIR's CubaLIF/CubaLI filter bias and spikes with one tau_syn",
            )
    values = _per_neuron(pop, "bias", weights)
    if values is None:
        values = np.full(pop.size, float(pop.params.get("bias", model.params["bias"].value)))
    return {into[0].name: values}


def _syn_param(network: Network, proj, name: str, default: float) -> float:  # noqa: ANN001
    param = network.models[proj.synapse].params.get(name)
    return float(proj.synapse_params.get(name, param.value if param is not None else default))


def _gain(network: Network, proj) -> float:  # noqa: ANN001
    return _syn_param(network, proj, "gain", 1.0)


#: metadata key on a weight node whose weights mean pulses one exporter step wide (`--spike-step`)
SPIKE_STEP = "snnc_spike_step"


def _step_metadata(network: Network, proj) -> dict:  # noqa: ANN001
    """The weights keep the convention they were imported with; a non-Dirac pulse is stated here
    so that `snnc import` reads them back the same way (other readers ignore metadata)."""
    pulse_ms = _syn_param(network, proj, "pulse", 1e3)
    return {} if pulse_ms == 1e3 else {SPIKE_STEP: np.array([pulse_ms / 1e3])}


def _pop_kind(network: Network, pop: str) -> str:
    p = network.populations[pop]
    return "Input" if p.role == "input" else NODES.get(p.model.removesuffix(BIAS), ("?",))[0]


def _projection_nodes(
    network: Network,
    proj,  # noqa: ANN001
    weights: dict,
    bias: np.ndarray | None = None,
) -> list[tuple[str, str, object]]:
    """The NIR nodes of one projection, pre to post: (NIR type, generated name, node); `bias` (per
    post neuron, snnc order) makes its Linear an Affine, or sets its Conv2d's bias."""
    import nir

    pre, post = network.populations[proj.pre], network.populations[proj.post]
    kind, gain = proj.connectivity.kind, _gain(network, proj)
    chain: list[tuple[str, str, object]] = []
    if kind == "dense":
        w = _weights(network, proj, weights).reshape(pre.size, post.size)
        if len(pre.shape) == 3:
            flat = nir.Flatten(input_type={"input": np.array(nir_shape(pre.shape))}, start_dim=0)
            chain.append(("Flatten", f"{proj.name}_flatten", flat))
        m = np.empty((w.shape[1], w.shape[0]))
        m[np.ix_(nir_order(nir_shape(post.shape)), nir_order(nir_shape(pre.shape)))] = w.T
        meta = _step_metadata(network, proj)
        if bias is None:
            chain.append(("Linear", proj.name, nir.Linear(weight=m, metadata=meta)))
        else:
            b = np.empty(m.shape[0])
            b[nir_order(nir_shape(post.shape))] = bias
            chain.append(("Affine", proj.name, nir.Affine(weight=m, bias=b, metadata=meta)))
    elif kind == "conv2d":
        node = conv_node(proj, pre.shape, _weights(network, proj, weights))
        node.metadata.update(_step_metadata(network, proj))
        if bias is not None:
            per_channel = bias.reshape(-1, post.shape[-1])
            if not np.allclose(per_channel, per_channel[0]):
                raise _error(
                    f"population '{proj.post}': a bias that differs between positions of one channel",
                    "NIR's Conv2d bias is one value per output channel",
                )
            node.bias = per_channel[0].copy()
        chain.append(("Conv2d", proj.name, node))
    else:
        if bias is not None:
            raise _error(
                f"population '{proj.post}': its bias would go on pool projection '{proj.name}'",
                "NIR pools have no bias: declare a Dense or Conv2D projection into it first",
            )
        node = pool_node(proj, gain)
        if node is not None:
            gain = 1.0
        node = node or pool_node(proj, 1.0)
        chain.append((type(node).__name__, proj.name, node))
    if gain != 1.0:
        chain.append(("Scale", f"{proj.name}_gain", nir.Scale(scale=np.full(nir_shape(post.shape), gain))))
    if proj.delay_trainable is not None:
        raise _error(
            f"projection '{proj.name}' has a delay per connection (trainable), which a NIR Delay node "
            "(one delay per post neuron) cannot hold",
            "export a network whose delays are one time per projection",
        )
    if proj.delay:
        delay = nir.Delay(delay=np.full(nir_shape(post.shape), proj.delay / 1e3))
        chain.append(("Delay", f"{proj.name}_delay", delay))
    return chain
