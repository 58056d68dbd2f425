"""NIR graph -> a readable `.snn` file plus `.npy` weights.

Neuron nodes (LIF, CubaLIF, LI, CubaLI, IF, I) become populations whose models state NIR's equations
literally; chains of Affine/Linear/Scale/Delay nodes between them become one Dense projection each.
NIR times are seconds; snnc's are ms (converted). Per-neuron parameter arrays must be uniform (they
become scalar params): snnc populations have no per-neuron params, so anything else is an error
naming the node. Conv2d, Flatten and the pooling nodes are recognised but not mapped yet (an error
naming the node).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from snnc.ir.diagnostics import Diagnostic, DiagnosticError

DISCRETISATION = (
    "# NIR fixes continuous-time equations only. snnc's discretisation: linear ODEs are solved exactly\n"
    "# over each step (the `discretise` pass), input spikes are delivered one step after emission.\n"
    "# A spike into LIF/LI/IF/I is a Dirac pulse: NirDirac holds w/dt for one step, so the jump\n"
    "# r*w/tau is reached as dt -> 0. Into CubaLIF/CubaLI it jumps the synaptic current exactly by\n"
    "# w/tau_syn (NirCurrent). NIR's time unit (s) is written as `1 s` where it enters.\n"
)

MODELS = {
    "NirLIF": """neuron NirLIF {   # NIR LIF: tau dv/dt = (v_leak - v) + r I; spike when v > v_threshold
    param tau = 20 ms
    param r = 1.0
    param v_leak = 0.0
    param v_threshold = 1.0
    param v_reset = 0.0
    state v = 0.0
    input i_syn
    dv/dt = ((v_leak - v) + r * i_syn) / tau
    spike when v > v_threshold
    reset { v = v_reset }
}""",
    "NirCubaLIF": """neuron NirCubaLIF {   # NIR CubaLIF membrane: tau_mem dv/dt = (v_leak - v) + r w_in I
    param tau_mem = 20 ms
    param r = 1.0
    param v_leak = 0.0
    param v_threshold = 1.0
    param v_reset = 0.0
    param w_in = 1.0
    state v = 0.0
    input i_syn
    dv/dt = ((v_leak - v) + r * w_in * i_syn) / tau_mem
    spike when v > v_threshold
    reset { v = v_reset }
}""",
    "NirLI": """neuron NirLI {   # NIR LI: tau dv/dt = (v_leak - v) + r I
    param tau = 20 ms
    param r = 1.0
    param v_leak = 0.0
    state v = 0.0
    input i_syn
    dv/dt = ((v_leak - v) + r * i_syn) / tau
}""",
    "NirCubaLI": """neuron NirCubaLI {   # NIR CubaLI membrane: tau_mem dv/dt = (v_leak - v) + r w_in I
    param tau_mem = 20 ms
    param r = 1.0
    param v_leak = 0.0
    param w_in = 1.0
    state v = 0.0
    input i_syn
    dv/dt = ((v_leak - v) + r * w_in * i_syn) / tau_mem
}""",
    "NirIF": """neuron NirIF {   # NIR IF: dv/dt = r I (I per second: 1 s)
    param r = 1.0
    param v_threshold = 1.0
    param v_reset = 0.0
    state v = 0.0
    input i_syn
    dv/dt = r * i_syn / (1 s)
    spike when v > v_threshold
    reset { v = v_reset }
}""",
    "NirI": """neuron NirI {   # NIR I: dv/dt = r I
    param r = 1.0
    state v = 0.0
    input i_syn
    dv/dt = r * i_syn / (1 s)
}""",
    "NirCurrent": """synapse NirCurrent {   # NIR's tau_syn dI/dt = -I + S: a spike of weight w adds w/tau_syn
    param tau_syn = 5 ms
    state i = 0.0
    di/dt = -i / tau_syn
    on_pre { i += w * (1 s) / tau_syn }
    output i
}""",
    "NirDirac": """synapse NirDirac {   # a Dirac pulse of weight w, held as w/dt for one step
    state i = 0.0
    on_pre { i += w * (1 s) / dt }
    output impulse i
}""",
}

#: NIR class -> (snnc model, {nir field: (snnc param, scale to snnc units)})
NEURONS = {
    "LIF": ("NirLIF", {"tau": ("tau", 1e3), "r": ("r", 1), "v_leak": ("v_leak", 1),
                       "v_threshold": ("v_threshold", 1), "v_reset": ("v_reset", 1)}),
    "CubaLIF": ("NirCubaLIF", {"tau_mem": ("tau_mem", 1e3), "r": ("r", 1), "v_leak": ("v_leak", 1),
                               "v_threshold": ("v_threshold", 1), "v_reset": ("v_reset", 1),
                               "w_in": ("w_in", 1)}),
    "LI": ("NirLI", {"tau": ("tau", 1e3), "r": ("r", 1), "v_leak": ("v_leak", 1)}),
    "CubaLI": ("NirCubaLI", {"tau_mem": ("tau_mem", 1e3), "r": ("r", 1), "v_leak": ("v_leak", 1),
                             "w_in": ("w_in", 1)}),
    "IF": ("NirIF", {"r": ("r", 1), "v_threshold": ("v_threshold", 1), "v_reset": ("v_reset", 1)}),
    "I": ("NirI", {"r": ("r", 1)}),
}  # fmt: skip
TIME_PARAMS = {"tau", "tau_mem", "tau_syn"}
UNMAPPED = {"Conv2d", "Conv1d", "Flatten", "SumPool2d", "AvgPool2d", "Threshold"}


def _error(message: str, hint: str | None = None) -> DiagnosticError:
    return DiagnosticError(Diagnostic("E-NIR", message, hint=hint))


def _ident(name: str) -> str:
    s = re.sub(r"\W", "_", str(name))
    return s if re.match(r"[A-Za-z_]", s) else f"n_{s}"


def _scalar(node_name: str, field_name: str, value) -> float:
    a = np.asarray(value, dtype=np.float64)
    if a.size == 0 or not np.allclose(a, a.flat[0]):
        raise _error(
            f"NIR node '{node_name}': {field_name} differs between neurons",
            "snnc populations take one value per parameter; split the node or make it uniform",
        )
    return float(a.flat[0])


def _size(node_name: str, node) -> int:
    for attr in ("tau", "tau_mem", "r", "v_threshold"):
        if hasattr(node, attr):
            return int(np.asarray(getattr(node, attr)).size)
    raise _error(f"cannot tell the size of NIR node '{node_name}'")


@dataclass
class Projection:
    pre: str
    post: str
    weight: np.ndarray  # [pre, post]
    delay_ms: float = 0.0
    nodes: list[str] = field(default_factory=list)


def _chain(graph, start: str, succ: dict, sizes: dict) -> list[Projection]:
    """Follow edges from a population through transform nodes to the populations they reach."""
    out: list[Projection] = []
    n = sizes[start]

    def walk(node: str, w: np.ndarray, delay: float, path: list[str]) -> None:
        for nxt in succ.get(node, ()):
            obj = graph.nodes[nxt]
            kind = type(obj).__name__
            if nxt in sizes:  # a population
                if w.shape[1] != sizes[nxt]:
                    raise _error(f"NIR edge {node} -> {nxt}: {w.shape[1]} values into {sizes[nxt]} neurons")
                out.append(Projection(start, nxt, w, delay, path))
            elif kind == "Output":
                continue
            elif kind in ("Affine", "Linear"):
                if kind == "Affine" and np.any(np.asarray(obj.bias) != 0):
                    raise _error(
                        f"NIR node '{nxt}': Affine with a non-zero bias", "snnc has no per-neuron bias yet"
                    )
                m = np.asarray(obj.weight, np.float64)
                if m.ndim != 2 or m.shape[1] != w.shape[1]:
                    raise _error(
                        f"NIR node '{nxt}': weight shape {m.shape} does not take {w.shape[1]} inputs"
                    )
                walk(nxt, w @ m.T, delay, [*path, nxt])
            elif kind == "Scale":
                walk(nxt, w * np.asarray(obj.scale, np.float64).reshape(1, -1), delay, [*path, nxt])
            elif kind == "Delay":
                d = _scalar(nxt, "delay", obj.delay) * 1e3
                walk(nxt, w, delay + d, [*path, nxt])
            elif kind in UNMAPPED:
                raise _error(
                    f"NIR node '{nxt}' ({kind}) cannot be imported yet",
                    "snnc import maps Affine, Linear, Scale and Delay chains",
                )
            else:
                raise _error(f"NIR node '{nxt}' has unknown type {kind}")

    walk(start, np.eye(n), 0.0, [])
    return out


def nir_to_snn(graph, out_path: str | Path, network: str | None = None) -> list[Path]:
    """Write `out_path` (.snn) and its weight files next to it; returns the written paths."""
    out_path = Path(out_path)
    folder = out_path.parent
    folder.mkdir(parents=True, exist_ok=True)
    succ: dict[str, list[str]] = {}
    for a, b in graph.edges:
        succ.setdefault(a, []).append(b)
    sizes: dict[str, int] = {}
    pops: list[tuple[str, str, str, dict]] = []  # name, role, model, params
    outputs = {a for a, b in graph.edges if type(graph.nodes[b]).__name__ == "Output"}
    for name, node in graph.nodes.items():
        kind = type(node).__name__
        if kind == "Input":
            shape = np.asarray(next(iter(node.input_type.values())))
            sizes[name] = int(np.prod(shape))
            pops.append((name, "input", "SpikeInput", {}))
        elif kind in NEURONS:
            model, fields = NEURONS[kind]
            params = {}
            for f, (p, scale) in fields.items():
                value = getattr(node, f)
                if value is None:
                    continue
                params[p] = _scalar(name, f, value) * scale
            sizes[name] = _size(name, node)
            role = "output" if name in outputs else "hidden"
            pops.append((name, role, model, params))
            if kind.startswith("Cuba"):
                sizes[name] = int(np.asarray(node.tau_mem).size)
        elif kind in UNMAPPED:
            raise _error(
                f"NIR node '{name}' ({kind}) cannot be imported yet",
                "snnc import maps Affine, Linear, Scale and Delay chains",
            )
        elif kind not in ("Output", "Affine", "Linear", "Scale", "Delay"):
            raise _error(f"NIR node '{name}' has type {kind}, which snnc cannot import")
    projections = [p for name in sizes for p in _chain(graph, name, succ, sizes)]
    used = {m for _, _, m, _ in pops} - {"SpikeInput"}
    stem = out_path.stem
    lines = [f"# Imported from NIR by `snnc import`.\n{DISCRETISATION}", "use std.SpikeInput", ""]
    tau_syn: dict[str, float] = {}
    for name, node in graph.nodes.items():
        if type(node).__name__ in ("CubaLIF", "CubaLI"):
            tau_syn[name] = _scalar(name, "tau_syn", node.tau_syn) * 1e3
    used |= {"NirCurrent"} if any(p.post in tau_syn for p in projections) else set()
    used |= {"NirDirac"} if any(p.post not in tau_syn for p in projections) else set()
    for m in MODELS:
        if m in used:
            lines += [MODELS[m], ""]
    written = []
    lines.append(f"network {_ident(network or stem)} {{")
    for name, role, model, params in pops:
        args = [str(sizes[name])]
        for p, v in params.items():
            args.append(f"{p} = {v!r}" + (" ms" if p in TIME_PARAMS else ""))
        if role == "output":
            spiking = model in ("NirLIF", "NirCubaLIF", "NirIF")
            args.append("readout = spike_count" if spiking else "readout = avg_var")
        lines.append(f"    {role} {_ident(name)} = {model}({', '.join(args)})")
    names: set[str] = set()
    for k, p in enumerate(projections):
        wfile = f"{stem}_{_ident(p.pre)}_to_{_ident(p.post)}.npy"
        if wfile in names:  # a second projection between the same populations
            wfile = wfile.replace(".npy", f"_{k}.npy")
        names.add(wfile)
        np.save(folder / wfile, p.weight)
        written.append(folder / wfile)
        syn = f"NirCurrent(tau_syn = {tau_syn[p.post]!r} ms)" if p.post in tau_syn else "NirDirac"
        delay = f", delay = {p.delay_ms!r} ms" if p.delay_ms else ""
        via = f"   # via {', '.join(p.nodes)}" if p.nodes else ""
        lines.append(
            f'    {_ident(p.pre)} -> {_ident(p.post)} : Dense(weight = File("{wfile}"){delay}), {syn}{via}'
        )
    lines.append("}")
    out_path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return [out_path, *written]
