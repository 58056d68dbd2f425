"""A NIR graph made ready for import: nested subgraphs inlined, and the size of every neuron node.

Exporters nest a recurrent layer as a subgraph (snnTorch's `RLeaky`: Input -> `lif` <-> `w_rec` ->
Output); older `nir` files keep it nested, newer ones name its nodes `lif1.lif`, `lif1.w_rec`.
Both become the same flat graph here. Exporters also write scalar neuron parameters (Norse, snnTorch
with a scalar `beta`); such a node's size comes from the weight matrix next to it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np


@dataclass
class FlatGraph:
    nodes: dict
    edges: list[tuple[str, str]]


def _kind(node) -> str:  # noqa: ANN001
    return type(node).__name__


def flatten(graph) -> FlatGraph:  # noqa: ANN001
    """Inline every NIRGraph node as `<name>.<inner>`, dropping its own Input and Output nodes."""
    nodes: dict = {}
    edges: list[tuple[str, str]] = []
    entry: dict[str, list[str]] = {}  # subgraph -> the inner nodes its Input feeds
    exits: dict[str, list[str]] = {}  # subgraph -> the inner nodes that feed its Output
    for name, node in graph.nodes.items():
        if _kind(node) != "NIRGraph":
            nodes[name] = node
            continue
        sub = flatten(node)
        ins = {k for k, v in sub.nodes.items() if _kind(v) == "Input"}
        outs = {k for k, v in sub.nodes.items() if _kind(v) == "Output"}
        for k, v in sub.nodes.items():
            if k not in ins and k not in outs:
                nodes[f"{name}.{k}"] = v
        entry[name], exits[name] = [], []
        for a, b in sub.edges:
            if a in ins:
                entry[name].append(f"{name}.{b}")
            elif b in outs:
                exits[name].append(f"{name}.{a}")
            else:
                edges.append((f"{name}.{a}", f"{name}.{b}"))
    for a, b in graph.edges:
        edges += [(a2, b2) for a2 in exits.get(a, [a]) for b2 in entry.get(b, [b])]
    return FlatGraph(nodes, edges)


def _weight_rows(node, side: int) -> int | None:  # noqa: ANN001
    w = getattr(node, "weight", None)
    if _kind(node) not in ("Affine", "Linear") or w is None or np.ndim(w) != 2:
        return None
    return int(np.shape(w)[side])


def size_from_neighbours(graph: FlatGraph, name: str) -> int | None:
    """The size of neuron node `name` as its Affine/Linear neighbours state it (None if none does)."""
    passing = ("Scale", "Delay")
    todo = [(b, 0) for a, b in graph.edges if a == name] + [(a, 1) for a, b in graph.edges if b == name]
    seen: set[tuple[str, int]] = set()
    while todo:
        node, side = todo.pop()
        if (node, side) in seen:
            continue
        seen.add((node, side))
        obj = graph.nodes[node]
        # a weight after the neuron reads it (columns); a weight before it writes it (rows)
        n = _weight_rows(obj, 1 if side == 0 else 0)
        if n is not None:
            return n
        if _kind(obj) in passing:
            step = [(b, 0) for a, b in graph.edges if a == node] if side == 0 else []
            step += [(a, 1) for a, b in graph.edges if b == node] if side == 1 else []
            todo += step
    return None


def own_shape(graph: FlatGraph, name: str) -> tuple[int, ...]:
    """A population's shape from its own arrays; scalar parameters take the size of its weights."""
    node = graph.nodes[name]
    if _kind(node) == "Input":
        return tuple(int(s) for s in np.ravel(next(iter(node.input_type.values()))))
    shape: tuple[int, ...] = (1,)
    for attr in ("tau_mem", "tau", "r", "v_threshold"):
        if getattr(node, attr, None) is not None:
            shape = tuple(int(s) for s in np.shape(getattr(node, attr))) or (1,)
            break
    if math.prod(shape) == 1:
        n = size_from_neighbours(graph, name)
        if n is not None:
            return (n,)
    return shape
