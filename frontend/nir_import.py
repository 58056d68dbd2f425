"""NIR graph -> a readable `.snn` file plus `.npy` weights.

Neuron nodes (LIF, CubaLIF, LI, CubaLI, IF, I) become populations whose models (`nir_models`) state
NIR's equations literally; chains of Affine/Linear/Scale/Delay nodes between them become one Dense
projection each. Node names become `.snn` names and `# nir:` annotations (`nir_names`); nested
subgraphs and scalar parameters are resolved first (`nir_graph`).
NIR times are seconds; snnc's are ms (converted). Per-neuron parameter arrays must be uniform (they
become scalar params), else it is an error naming the node. An Affine's (or Conv2d's) bias is a
constant current into the population it reaches: its model becomes the `...Bias` form
(`nir_models.biased`) with `bias = File("<stem>_weights/<node>_bias.npy")`. Conv2d/SumPool2d/AvgPool2d between two populations become Conv2D/AvgPool2D
connections and Flatten is a reshape (see `nir_conv` for the channels-last layout).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from snnc.frontend.mapping_table import mapping_table
from snnc.frontend.nir_conv import CONV, POOLS, Window, connectivity_text, nir_order, snnc_shape, window
from snnc.frontend.nir_graph import flatten, own_shape
from snnc.frontend.nir_models import BIAS, MODELS, NEURONS, TIME_PARAMS, biased, stepped
from snnc.frontend.nir_names import NameMap, annotation, readable
from snnc.frontend.nir_shapes import infer_shapes
from snnc.ir.connectivity import KINDS
from snnc.ir.diagnostics import Diagnostic, DiagnosticError

DISCRETISATION = (
    "# NIR fixes continuous-time equations only. snnc's discretisation: linear ODEs are solved exactly\n"
    "# over each step (the `discretise` pass), input spikes are delivered one step after emission.\n"
    "# A spike into LIF/LI/IF/I is a Dirac pulse: NirDirac holds w/dt for one step, so the jump\n"
    "# r*w/tau is reached as dt -> 0. Into CubaLIF/CubaLI it jumps the synaptic current exactly by\n"
    "# w/tau_syn (NirCurrent), and the membrane is driven by that current's exact mean over each step.\n"
    "# NIR's time unit (s) is written as `1 s` where it enters.\n"
)
STEP = (
    "# Spikes as pulses one step wide (`snnc import --spike-step`): the exporter simulates in discrete\n"
    "# time and adds w per spike and step, where NIR's Dirac pulse adds w/dt; `pulse = <its step>` on\n"
    "# every synapse reads the weights its way, and the models step with forward Euler as the exporter\n"
    "# does (beta = 1 - dt/tau): at the exporter's dt the two simulate the same arithmetic.\n"
)

UNMAPPED = {"Conv1d", "Threshold"}
PASSING = ("Output", "Affine", "Linear", "Scale", "Delay", "Flatten", CONV, *POOLS)
NAMES = (
    "# Names: each population and connection line ends with `# nir:` and the NIR nodes it stands\n"
    "# for, by type and original name; `snnc export` gives those names back (see frontend/nir_names.py).\n"
    "# Weights: <this file's name>_weights/<NIR weight node>.npy, [pre, post] or [kh, kw, C, F].\n"
)
LAYOUT = (
    "# Shaped populations are (H, W, C), channels last; NIR's are (C, H, W). Neuron (c, y, x) of a\n"
    "# NIR (C, H, W) node is index (y*W + x)*C + c here: input spike ids use this order too.\n"
)


def _error(message: str, hint: str | None = None) -> DiagnosticError:
    return DiagnosticError(Diagnostic("E-NIR", message, hint=hint))


def _scalar(node_name: str, field_name: str, value) -> float:
    a = np.asarray(value, dtype=np.float64)
    if a.size == 0 or not np.allclose(a, a.flat[0]):
        raise _error(
            f"NIR node '{node_name}': {field_name} differs between neurons",
            "snnc populations take one value per parameter; split the node or make it uniform",
        )
    return float(a.flat[0])


@dataclass
class Projection:
    pre: str
    post: str
    weight: np.ndarray | None  # dense: [pre, post] in snnc order; conv2d: [kh, kw, C / groups, F]; pool: None
    delay_ms: float = 0.0
    nodes: list[str] = field(default_factory=list)
    window: Window | None = None  # Conv2D / AvgPool2D connections
    gain: float = 1.0
    bias: np.ndarray | None = None  # Affine/Conv2d bias reaching `post`, per post neuron (snnc order)
    bias_node: str | None = None  # the NIR node whose bias it is


def _chain(graph, start: str, succ: dict, shapes: dict, windows: dict) -> list[Projection]:  # noqa: ANN001
    """Follow edges from a population through transform nodes to the populations they reach.

    Dense chains carry a matrix from the start population (snnc order) to NIR's flat index of the
    current node; it is permuted into the post population's snnc order at the end.
    """
    out: list[Projection] = []

    def walk(node: str, w: np.ndarray, delay: float, path: list[str], b: np.ndarray | None = None) -> None:
        """`b`: the bias an Affine added so far (NIR flat index of `node`'s output), carried on."""
        for nxt in succ.get(node, ()):
            obj = graph.nodes[nxt]
            kind = type(obj).__name__
            if nxt in shapes:  # a population
                if w.shape[1] != math.prod(shapes[nxt]):
                    raise _error(
                        f"NIR edge {node} -> {nxt}: {w.shape[1]} values into {math.prod(shapes[nxt])} neurons"
                    )
                order = nir_order(shapes[nxt])
                bias_node = next((n for n in path if _kind(graph, n) in ("Affine", CONV)), None)
                bias = None if b is None or not np.any(b) else b[order]
                out.append(Projection(start, nxt, w[:, order], delay, path, bias=bias, bias_node=bias_node))
            elif kind == "Output":
                continue
            elif kind in ("Affine", "Linear"):
                m = np.asarray(obj.weight, np.float64)
                if m.ndim != 2 or m.shape[1] != w.shape[1]:
                    raise _error(
                        f"NIR node '{nxt}': weight shape {m.shape} does not take {w.shape[1]} inputs"
                    )
                nb = None if b is None else m @ b
                if kind == "Affine" and np.any(np.asarray(obj.bias) != 0):
                    own = np.asarray(obj.bias, np.float64).reshape(-1)
                    if own.size != m.shape[0]:
                        raise _error(
                            f"NIR node '{nxt}': bias has {own.size} values, weight has {m.shape[0]} rows"
                        )
                    nb = own if nb is None else nb + own
                walk(nxt, w @ m.T, delay, [*path, nxt], nb)
            elif kind == "Scale":
                scale = np.asarray(obj.scale, np.float64).reshape(-1)
                walk(nxt, w * scale.reshape(1, -1), delay, [*path, nxt], None if b is None else b * scale)
            elif kind == "Delay":
                if b is not None:  # a delayed constant switches on `delay` late: not a plain bias
                    raise _error(f"NIR node '{nxt}': a Delay after an Affine bias is not supported")
                d = _scalar(nxt, "delay", obj.delay) * 1e3
                walk(nxt, w, delay + d, [*path, nxt])
            elif kind == "Flatten":  # a C-order reshape: NIR's flat index is unchanged
                walk(nxt, w, delay, [*path, nxt], b)
            elif (kind == CONV or kind in POOLS) and b is not None:
                raise _error(f"NIR node '{nxt}' ({kind}) after an Affine bias is not supported")
            elif (kind == CONV or kind in POOLS) and (nxt in windows or path):
                out.extend(_window_projections(graph, start, nxt, succ, shapes, windows, path))
            elif kind == CONV or kind in POOLS:  # feeds more transforms: one dense matrix with them
                win = window(nxt, obj, shapes[start])
                walk(nxt, _window_matrix(nxt, obj, shapes[start]), delay, [nxt], win.neuron_bias(False))
            elif kind in UNMAPPED:
                raise _error(
                    f"NIR node '{nxt}' ({kind}) cannot be imported",
                    "snnc import maps Affine, Linear, Scale, Delay, Flatten, Conv2d, SumPool2d and AvgPool2d",
                )
            else:
                raise _error(f"NIR node '{nxt}' has unknown type {kind}")

    walk(start, np.eye(math.prod(shapes[start]))[nir_order(shapes[start])], 0.0, [])
    return out


def _window_matrix(name: str, node, pre_shape: tuple[int, ...]) -> np.ndarray:  # noqa: ANN001
    """A Conv2d/pool read straight from a population but feeding a Flatten/Linear chain (snnTorch's
    `AvgPool2d -> Flatten -> Linear`): its dense equivalent, [pre in snnc order, NIR flat index]."""
    win = window(name, node, pre_shape)
    kind = KINDS[win.kind]
    pre = snnc_shape(pre_shape)
    g = kind.geometry(win.args, pre)
    n_pre, n_post = math.prod(pre), math.prod(win.out_shape)
    dense = kind.dense_equivalent({"weight": win.kernel}, n_pre, n_post, g) * win.gain
    out = np.empty_like(dense)
    out[:, nir_order(win.out_shape)] = dense
    return out


def _window_projections(graph, start, node, succ, shapes, windows, path) -> list[Projection]:  # noqa: ANN001
    """A Conv2d/pool node sits directly between two populations: one Conv2D/AvgPool2D each."""
    kind = type(graph.nodes[node]).__name__
    if path or node not in windows:
        raise _error(f"NIR node '{node}' ({kind}) must take its input directly from one neuron or Input node")
    win = windows[node]
    out = []
    todo = [(post, 0.0, [node]) for post in succ.get(node, ())]
    while todo:
        post, delay, via = todo.pop(0)
        post_kind = type(graph.nodes[post]).__name__
        if post_kind == "Output":
            continue
        if post_kind == "Delay":  # a delay after the window (as `snnc export` writes one)
            if win.bias is not None:
                raise _error(f"NIR node '{post}': a Delay after a Conv2d bias is not supported")
            d = _scalar(post, "delay", graph.nodes[post].delay) * 1e3
            todo += [(nxt, delay + d, [*via, post]) for nxt in succ.get(post, ())]
            continue
        if post not in shapes:
            raise _error(
                f"NIR node '{node}' ({kind}) feeds '{post}' ({post_kind})",
                f"snnc maps a {kind} only when it feeds a neuron node directly (or through a Delay)",
            )
        if math.prod(shapes[post]) != math.prod(win.out_shape):
            raise _error(
                f"NIR node '{node}' ({kind}) produces shape {win.out_shape}, '{post}' has {shapes[post]}"
            )
        bias = win.neuron_bias(True)
        out.append(
            Projection(
                start, post, win.kernel, delay, via, window=win, gain=win.gain, bias=bias, bias_node=node
            )
        )
    return out


def _stated_step(graph, nodes: list[str]) -> float | None:  # noqa: ANN001
    """The spike step `snnc export` wrote on a weight node it exported from a `--spike-step` import."""
    for n in nodes:
        value = getattr(graph.nodes[n], "metadata", {}).get("snnc_spike_step")
        if value is not None:
            return float(np.ravel(value)[0])
    return None


@dataclass
class Imported:
    """What `snnc import` wrote, and what each NIR node became (one row per node)."""

    paths: list[Path]
    rows: list[tuple[str, str, str, str]]  # NIR node, its type, the snnc item, its weight file

    def table(self) -> str:
        return mapping_table("NIR", self.rows)


def _kind(graph, name: str) -> str:  # noqa: ANN001
    return type(graph.nodes[name]).__name__


def _populations(graph) -> tuple[list[tuple[str, str, str, dict]], set[str]]:  # noqa: ANN001
    """(name, role, model, params) per Input/neuron node, and the nodes that feed an Output."""
    pops: list[tuple[str, str, str, dict]] = []
    outputs = {a for a, b in graph.edges if _kind(graph, b) == "Output"}
    for name, node in graph.nodes.items():
        kind = type(node).__name__
        if kind == "Input":
            pops.append((name, "input", "SpikeInput", {}))
        elif kind in NEURONS:
            model, fields = NEURONS[kind]
            params = {}
            for f, (p, scale) in fields.items():
                value = getattr(node, f)
                if value is None:
                    continue
                params[p] = _scalar(name, f, value) * scale
            pops.append((name, "output" if name in outputs else "hidden", model, params))
        elif kind in UNMAPPED:
            raise _error(
                f"NIR node '{name}' ({kind}) cannot be imported",
                "snnc import maps Affine, Linear, Scale, Delay, Flatten, Conv2d, SumPool2d and AvgPool2d",
            )
        elif kind not in PASSING:
            raise _error(f"NIR node '{name}' has type {kind}, which snnc cannot import")
    order = {"input": 0, "hidden": 1, "output": 2}
    return sorted(pops, key=lambda p: order[p[1]]), outputs


NEURONS_OF = {model for model, _ in NEURONS.values()}


def _biases(projections: list[Projection]) -> dict[str, tuple[np.ndarray, str]]:
    """Post population -> (its summed Affine/Conv2d bias, snnc order; the NIR node to name it after)."""
    out: dict[str, tuple[np.ndarray, str]] = {}
    for p in projections:
        if p.bias is None:
            continue
        if p.post in out:
            out[p.post] = (out[p.post][0] + p.bias, out[p.post][1])
        else:
            out[p.post] = (np.asarray(p.bias, np.float64).copy(), p.bias_node or p.post)
    return out


def nir_to_snn(
    graph,  # noqa: ANN001
    out_path: str | Path,
    network: str | None = None,
    spike_step: float | None = None,
    train_bias: bool = False,
) -> Imported:
    """Write `out_path` (.snn) and its weights (in `<stem>_weights/`, one `.npy` per NIR weight node).

    `spike_step` (seconds): read each spike as a pulse of that width (a discrete-time exporter's
    dt: snnTorch writes for 1e-4 s, Norse for its `dt`) instead of NIR's Dirac pulse. `train_bias`:
    write each bias as `Trainable(File(...))`, so EventProp trains it beside the weights (the file
    is its initial value; a checkpoint holds the trained one)."""
    out_path = Path(out_path)
    folder = out_path.parent
    graph = flatten(graph)
    succ: dict[str, list[str]] = {}
    for a, b in graph.edges:
        succ.setdefault(a, []).append(b)
    pops, outputs = _populations(graph)
    own = {name: own_shape(graph, name) for name, *_ in pops}
    shapes, windows = infer_shapes(graph, own)
    projections = [p for name in shapes for p in _chain(graph, name, succ, shapes, windows)]
    biases = _biases(projections)
    pops = [(n, role, model + BIAS if n in biases else model, params) for n, role, model, params in pops]
    used = {m for _, _, m, _ in pops} - {"SpikeInput"}
    stem = out_path.stem
    steps = [spike_step or _stated_step(graph, p.nodes) for p in projections]
    header = f"# Imported from NIR by `snnc import`.\n{DISCRETISATION}{STEP if any(steps) else ''}{NAMES}"
    lines = [header, "use std.SpikeInput", ""]
    if any(len(s) == 3 for s in shapes.values()):
        lines.insert(1, LAYOUT)
    tau_syn: dict[str, float] = {}
    for name, node in graph.nodes.items():
        if type(node).__name__ in ("CubaLIF", "CubaLI"):
            tau_syn[name] = _scalar(name, "tau_syn", node.tau_syn) * 1e3
    used |= {"NirCurrent"} if any(p.post in tau_syn for p in projections) else set()
    used |= {"NirDirac"} if any(p.post not in tau_syn for p in projections) else set()
    for m in MODELS:
        for name, text in ((m, MODELS[m]), (m + BIAS, biased(m) if m in NEURONS_OF else "")):
            if name in used:
                lines += [stepped(text) if any(steps) else text, ""]
    ident, files = NameMap(), NameMap()
    rows: list[tuple[str, str, str, str]] = []
    weights: dict[Path, np.ndarray] = {}
    lines.append(f"network {readable(network or stem)} {{")
    for name, role, model, params in pops:
        shape = snnc_shape(shapes[name])
        args = [str(shape[0]) if len(shape) == 1 else "(" + ", ".join(map(str, shape)) + ")"]
        for p, v in params.items():
            args.append(f"{p} = {v!r}" + (" ms" if p in TIME_PARAMS else ""))
        if name in biases:
            values, node = biases[name]
            if name in tau_syn:
                args.append(f"tau_syn = {tau_syn[name]!r} ms")
            path = folder / f"{stem}_weights" / f"{files(f'{node} bias')}.npy"
            weights[path] = values
            file = f'File("{path.relative_to(folder).as_posix()}")'
            args.append(f"bias = Trainable({file})" if train_bias else f"bias = {file}")
            bias_row = (
                node,
                "bias",
                f"{'trainable ' if train_bias else ''}bias of {ident(name)}",
                f"{path.relative_to(folder).as_posix()} [{values.size}]",
            )
        if role == "output":
            spiking = model in ("NirLIF", "NirCubaLIF", "NirIF")
            args.append("readout = spike_count" if spiking else "readout = avg_var")
        nodes = [(_kind(graph, name), name)]
        nodes += [("Output", o) for o in succ.get(name, ()) if _kind(graph, o) == "Output"]
        pop = ident(name)
        lines.append(f"    {role} {pop} = {model}({', '.join(args)})   {annotation(nodes)}")
        rows.append((name, nodes[0][0], f"{role} population {pop} {shape}", ""))
        if name in biases:
            rows.append(bias_row)
        rows += [(o, "Output", f"readout of {pop}", "") for _, o in nodes[1:]]
    for p, step in zip(projections, steps, strict=True):
        pre, post = ident(p.pre), ident(p.post)
        wfile = None
        if p.weight is not None:
            main = next((n for n in p.nodes if _kind(graph, n) in ("Affine", "Linear", CONV)), None)
            key = main if main is not None and main not in files.ident else f"{p.pre} to {p.post}"
            path = folder / f"{stem}_weights" / f"{files(key)}.npy"
            weights[path] = p.weight
            wfile = path.relative_to(folder).as_posix()
        syn_args = [f"tau_syn = {tau_syn[p.post]!r} ms"] if p.post in tau_syn else []
        if p.gain != 1.0:
            syn_args.append(f"gain = {p.gain!r}")
        if step:
            syn_args.append(f"pulse = {step * 1e3!r} ms")
        syn = ("NirCurrent" if p.post in tau_syn else "NirDirac") + (
            f"({', '.join(syn_args)})" if syn_args else ""
        )
        delay = f", delay = {p.delay_ms!r} ms" if p.delay_ms else ""
        note = annotation([(_kind(graph, n), n) for n in p.nodes]) if p.nodes else ""
        if p.window is not None:
            conn = connectivity_text(p.window, wfile, delay)
            if p.gain != 1.0:
                note = "# a sum: gain x the average; " + note.removeprefix("# ")
        else:
            conn = f'Dense(weight = File("{wfile}"){delay})'
        lines.append(f"    {pre} -> {post} : {conn}, {syn}" + (f"   {note}" if note else ""))
        layout = "[pre, post]"
        if p.window is not None:
            layout = "[kh, kw, C / groups, F]" if "groups" in p.window.args else "[kh, kw, C, F]"
        shown = f"{wfile} {list(p.weight.shape)} {layout}" if wfile else ""
        rows += [(n, _kind(graph, n), f"projection {pre} -> {post}", shown) for n in p.nodes]
    lines.append("}")
    folder.mkdir(parents=True, exist_ok=True)
    out_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    for path, w in weights.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, w)
    return Imported([out_path, *weights], rows)
