"""A chain of ANN layers (`onnx_graph`) -> a readable `.snn` file plus `.npy` weights.

The input becomes a SpikeInput population fed rate-coded data (`runtime/datasets/analog.py`); each
ReLU layer a population of ConvertIF neurons (integrate-and-fire, reset by subtraction, threshold 1);
the output layer a ConvertSum population that adds up its input (readout `avg_var`: its weights are
scaled by 2 / timesteps, so the average of v over the run approximates the ANN's logits, and the
cross-entropy EventProp fine-tunes with starts near the ANN's). Spikes reach a neuron through an
exponential current (std Exponential, tau 1 ms) rather than a one-step pulse: EventProp needs a
synapse state that spikes jump, and v still gains w per spike in total. Each layer's ops become one
projection: a lone Conv or AveragePool keeps its window (Conv2D/AvgPool2D), any other chain of ops
is one Dense matrix. Few-spike coding (`few_spike`) writes its own models. Weights carry the threshold
balancing's scales (`convert_norm`), and a layer's bias becomes its population's per-neuron
`bias` (a `.npy` beside the weights). Shaped populations are (H, W, C), channels last, as in
`snnc import`; ONNX's are (C, H, W).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from snnc.frontend.mapping_table import mapping_table
from snnc.frontend.nir_conv import nir_order, snnc_shape
from snnc.frontend.nir_names import NameMap, readable
from snnc.frontend.nir_names import annotation as nir_annotation
from snnc.frontend.onnx_graph import Layer, Model, dense_matrix
from snnc.ir.connectivity import KINDS

MODELS = """\
neuron ConvertIF {   # integrate-and-fire, reset by subtraction: a spike of weight w moves v by w in all
    param v_thresh = 1.0
    param tau_syn  = 1 ms   # the synapses' tau: v integrates i_syn / tau_syn, so each spike adds w
    param bias     = 0.0    # added to v in every step (the ANN's bias / lambda of the layer)
    state v = 0.0
    input i_syn
    dv/dt = i_syn / tau_syn + bias / dt
    spike when v >= v_thresh
    reset { v = v - v_thresh }
}

neuron ConvertSum {   # the output layer: adds up its input, no threshold (the class is the arg max)
    param tau_syn = 1 ms
    param bias    = 0.0
    state v = 0.0
    input i_syn
    dv/dt = i_syn / tau_syn + bias / dt
}
"""


@dataclass
class Settings:
    """What the `.snn` file's train block says: the method, the data and the simulated time."""

    method: str
    scales: list[float]  # lambda_0 (input), lambda_1, ... per ReLU layer (convert_norm)
    timesteps: int
    data: str | None  # the calibration/test .npz, relative to the .snn file
    coding: str = "regular"
    dt: float = 1.0
    k: int = 8  # few_spike: steps per layer


@dataclass
class Scheme:
    """How a coding writes its neurons: rate coding (here) or few-spike coding (`few_spike`)."""

    models: str  # the neuron models the file defines
    uses: str  # the std models it uses
    synapse: str
    hidden: str  # the hidden and output models' names
    output: str
    readout: str
    steps: int  # simulated steps per example
    factors: list[float]  # each layer's weight factor
    bias_factors: list[float]  # each layer's bias factor
    args: list[str]  # each layer's extra population arguments
    coding_args: str  # the analog data set's coding arguments
    about: str  # the file's header: how the coding works


def rate_scheme(s: Settings, layers: int) -> Scheme:
    scales = [*s.scales, s.timesteps / 2.0]  # the output: avg_var ~ logits
    return Scheme(
        MODELS,
        "SpikeInput, Exponential",
        "Exponential(tau = 1 ms)",
        "ConvertIF",
        "ConvertSum",
        "avg_var",
        s.timesteps,
        [scales[k] / scales[k + 1] for k in range(layers)],
        [1.0 / scales[k + 1] for k in range(layers)],
        [""] * layers,
        f'coding = "{s.coding}"',
        rate_about(s),
    )


@dataclass
class Converted:
    """What `snnc convert` wrote, and what each ONNX node became (one row per node)."""

    paths: list[Path]
    rows: list[tuple[str, str, str, str]]  # ONNX node, its type, the snnc item, its weight file

    def table(self) -> str:
        return mapping_table("ONNX", self.rows)


def _shape_text(shape: tuple[int, ...]) -> str:
    s = snnc_shape(shape)
    return str(s[0]) if len(s) == 1 else "(" + ", ".join(map(str, s)) + ")"


def _padding_text(args: dict, in_shape: tuple[int, ...]) -> str:
    """ONNX's symmetric pads as snnc writes them: "valid", "same" where that is the same computation
    (both backends take it), else the pair (the C backend's PyTorch-style padding)."""
    pad = args["padding"]
    if pad == (0, 0):
        return '"valid"'
    conv = KINDS["conv2d"]
    pre = snnc_shape(in_shape)
    same = {**args, "padding": "same"}
    numeric = {**args, "padding": pad}
    if conv.padding(same, pre) == ((pad[0], pad[0]), (pad[1], pad[1])) and conv.output_shape(
        same, pre
    ) == conv.output_shape(numeric, pre):
        return '"same"'
    return f"({pad[0]}, {pad[1]})"


def _projection(layer: Layer, factor: float, pre: str, post: str, wfile: str) -> tuple[str, np.ndarray, str]:
    """(connectivity text, weight array, its layout) of one layer's ops."""
    if len(layer.ops) == 1 and layer.ops[0].window is not None:
        kind, args, kernel = layer.ops[0].window
        if kind == "conv2d":
            kh, kw = args["kernel"]
            pad_text = _padding_text(args, layer.in_shape)
            more = (
                f", dilation = ({args['dilation'][0]}, {args['dilation'][1]})" if "dilation" in args else ""
            )
            more += f", groups = {args['groups']}" if "groups" in args else ""
            text = (
                f"Conv2D(filters = {args['filters']}, kernel = ({kh}, {kw}), stride = {args['stride']}, "
                f'padding = {pad_text}{more}, weight = File("{wfile}"))'
            )
            return text, kernel * factor, "[kh, kw, C / groups, F]" if "groups" in args else "[kh, kw, C, F]"
        if factor == 1.0:
            ph, pw = args["pool"]
            return f"AvgPool2D(pool = ({ph}, {pw}), stride = {args['stride']})", None, ""
    m = dense_matrix(layer.ops) * factor
    m = m[nir_order(layer.in_shape)][:, nir_order(layer.out_shape)]
    return f'Dense(weight = File("{wfile}"))', m, "[pre, post]"


def _main_node(layer: Layer) -> str:
    """The node a layer's population and weight file are named after: its last weighted op (a
    PyTorch name such as `/fc1/Gemm` loses its `/Gemm`)."""
    weighted = [(k, n) for k, n in layer.nodes if k in ("Gemm", "MatMul", "Conv")]
    kind, name = (weighted or [layer.nodes[0]])[-1]
    return name.removesuffix(f"/{kind}") or name


def rate_about(s: Settings) -> str:
    lam = ", ".join(f"{v:.6g}" for v in s.scales)
    return (
        "# ReLU layers are ConvertIF populations (threshold 1, reset by subtraction): a neuron's spikes per\n"
        "# step approximate its ReLU activation / lambda of its layer; the weights already hold the scales\n"
        f"# (W lambda_(l-1) / lambda_l). lambda per layer, input first: {lam}.\n"
        "# The output population adds up its input; the average of its v over the run approximates the\n"
        "# ANN's logits (its weights carry 2 / timesteps), so its arg max is the ANN's class.\n"
    )


def header(s: Settings, scheme: Scheme) -> str:
    coding = "few-spike coding" if s.method == "few_spike" else "rate coding"
    return (
        f"# Converted from ONNX by `snnc convert --method {s.method}` ({coding}, {scheme.steps} steps).\n"
        + scheme.about
        + "# Names: each line ends with `# onnx:` and the ONNX nodes it stands for.\n"
        "# Weights: <this file's name>_weights/<layer>.npy, [pre, post] or [kh, kw, C, F].\n"
    )


def _train_block(name: str, model: Model, s: Settings, scheme: Scheme) -> list[str]:
    duration = scheme.steps * s.dt
    channels = ", channels_first = true" if len(model.input_shape) == 3 else ""
    data = (
        f'analog(path = "{s.data}", {scheme.coding_args}, scale = {s.scales[0]!r}, '
        f"dt = {s.dt!r} ms, duration = {duration!r} ms{channels})"
    )
    lines = [
        "",
        "# `snnc evaluate FILE --no-checkpoint` runs the converted weights on the data's test split;",
        *(
            [
                f"# to fine-tune: algorithm = eventprop(max_spikes = {s.timesteps}), optimizer = adam(lr = 0.0001),",
                "# epochs = 1, then `snnc train FILE`.",
            ]
            if s.method != "few_spike"
            else []
        ),
        f"train {name} {{",
        "    algorithm  = none",
        "    loss       = sparse_categorical_crossentropy",
    ]
    lines.append(
        f"    data       = {data}" if s.data else f"    # data     = {data.replace('None', 'DATA.npz')}"
    )
    lines += [
        f"    dt         = {s.dt!r} ms",
        f"    duration   = {duration!r} ms",
        "    batch_size = 32",
        "}",
    ]
    return lines


def annotation(nodes: list[tuple[str, str]]) -> str:
    return nir_annotation(nodes, source="onnx")


def write_snn(model: Model, out_path: Path, s: Settings, network: str | None = None) -> Converted:
    """Write `out_path` and its weights (in `<stem>_weights/`, one `.npy` per projection)."""
    folder, stem = out_path.parent, out_path.stem
    ident, files = NameMap(), NameMap()
    name = readable(network or stem)
    if s.method == "few_spike":
        from snnc.frontend.few_spike import few_spike_scheme

        scheme = few_spike_scheme(s, len(model.layers))
    else:
        scheme = rate_scheme(s, len(model.layers))
    lines = [header(s, scheme) + f"use std.{{{scheme.uses}}}", "", scheme.models]
    lines.append(f"network {name} {{")
    rows: list[tuple[str, str, str, str]] = []
    pre = ident(model.input_name)
    lines.append(
        f"    input  {pre} = SpikeInput({_shape_text(model.input_shape)})   {annotation([('Input', model.input_name)])}"
    )
    rows.append((model.input_name, "Input", f"input population {pre} {snnc_shape(model.input_shape)}", ""))
    pops, projections = [], []
    weights: dict[Path, np.ndarray] = {}
    for k, layer in enumerate(model.layers):
        main = _main_node(layer)
        post = ident(main)
        role, model_name = ("hidden", scheme.hidden) if layer.relu else ("output", scheme.output)
        args = _shape_text(layer.out_shape) + scheme.args[k]
        bias = layer.bias
        bias_file = ""
        if bias is not None and np.any(bias != 0):  # per neuron, in snnc's order
            bpath = folder / f"{stem}_weights" / f"{files(main + ' bias')}.npy"
            bias_file = bpath.relative_to(folder).as_posix()
            weights[bpath] = bias.ravel()[nir_order(layer.out_shape)] * scheme.bias_factors[k]
            args += f', bias = File("{bias_file}")'
        args += f", readout = {scheme.readout}" if layer.relu is None else ""
        note = f"   {annotation([layer.relu])}" if layer.relu else ""
        pops.append(f"    {role:<6} {post} = {model_name}({args}){note}")
        factor = scheme.factors[k]
        path = folder / f"{stem}_weights" / f"{files(main)}.npy"
        wfile = path.relative_to(folder).as_posix()
        conn, w, layout = _projection(layer, factor, pre, post, wfile)
        link = [n for n in layer.nodes if n != layer.relu]
        projections.append(f"    {pre} -> {post} : {conn}, {scheme.synapse}   {annotation(link)}")
        shown = ""
        if w is not None:
            weights[path] = w
            shown = f"{wfile} {list(w.shape)} {layout}"
        rows += [(n, kind, f"projection {pre} -> {post}", shown) for kind, n in link]
        relu = layer.relu or ("", "")
        population = f"{role} population {post} {snnc_shape(layer.out_shape)} ({model_name})"
        rows.append((relu[1], relu[0], population, f"{bias_file} (bias)" if bias_file else ""))
        pre = post
    lines += [*pops, "", *projections, "}", *_train_block(name, model, s, scheme)]
    folder.mkdir(parents=True, exist_ok=True)
    out_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    for path, w in weights.items():
        path.parent.mkdir(parents=True, exist_ok=True)
        np.save(path, w)
    return Converted([out_path, *weights], rows)


def data_path(data: Path, out_path: Path) -> str:
    """`data` as the `.snn` file's train block names it: relative to the file's folder."""
    return Path(os.path.relpath(data.resolve(), out_path.parent.resolve())).as_posix()
