"""The NIR shape of every imported population, and the Conv2d/pool windows that produce them.

A population's shape comes from its Input type, from the Conv2d/SumPool2d/AvgPool2d node feeding it
(computed from the shape of that node's input population), or else from its parameter arrays. NIR
neuron parameters may be flat or (C, H, W); only their size must agree with a computed shape.
"""

from __future__ import annotations

import math

from snnc.frontend.nir_conv import CONV, POOLS, Window, nir_error, window


def infer_shapes(
    graph,
    own: dict[str, tuple[int, ...]],  # noqa: ANN001
) -> tuple[dict[str, tuple[int, ...]], dict[str, Window]]:
    """`own`: population -> the shape its own arrays give. Returns (shapes, windows by node name)."""
    preds: dict[str, list[str]] = {}
    for a, b in graph.edges:
        preds.setdefault(b, []).append(a)
    shapes: dict[str, tuple[int, ...]] = {}
    windows: dict[str, Window] = {}
    visiting: set[str] = set()

    def shape(pop: str) -> tuple[int, ...]:
        if pop in shapes:
            return shapes[pop]
        if pop in visiting:
            raise nir_error(f"NIR node '{pop}': a convolution loop feeds it, which snnc cannot import")
        visiting.add(pop)
        found = None
        for p in preds.get(pop, ()):
            while type(graph.nodes[p]).__name__ == "Delay" and len(preds.get(p, [])) == 1:
                p = preds[p][0]  # a window may reach its population through a Delay
            kind = type(graph.nodes[p]).__name__
            if kind != CONV and kind not in POOLS:
                continue
            sources = preds.get(p, [])
            if len(sources) != 1 or sources[0] not in own:
                raise nir_error(
                    f"NIR node '{p}' ({kind}) must take its input directly from one neuron or Input node"
                )
            if p not in windows:
                windows[p] = window(p, graph.nodes[p], shape(sources[0]))
            out = windows[p].out_shape
            if found is not None and found != out:
                raise nir_error(f"NIR node '{pop}': its inputs have different shapes {found} and {out}")
            found = out
        mine = own[pop]
        if found is None:
            found = mine
        elif math.prod(mine) not in (1, math.prod(found)):
            raise nir_error(
                f"NIR node '{pop}' has {math.prod(mine)} neurons, but its input produces shape {found}"
            )
        visiting.discard(pop)
        shapes[pop] = tuple(int(s) for s in found)
        return shapes[pop]

    for pop in own:
        shape(pop)
    return shapes, windows
