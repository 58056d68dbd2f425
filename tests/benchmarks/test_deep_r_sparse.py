"""benchmarks/deep_r_sparse.py compares Deep R on Dense and on sparse projections; what it compares
must stay that: the same network, the same rewired projections, the same scaled initial weights,
Dense with a mask against Sparse with the same p."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from snnc.api import lower

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))

import deep_r_sparse  # noqa: E402


@pytest.mark.parametrize("algorithm", ["eventprop", "eprop"])
def test_the_variants_differ_only_in_how_the_rewired_projections_are_stored(algorithm: str) -> None:
    sources = deep_r_sparse.sources(algorithm, 0.1, 200.0)
    dense, sparse = (lower(sources[k]) for k in ("dense", "sparse"))
    assert dense.train.algorithm.name == sparse.train.algorithm.name == algorithm
    assert dense.train.duration == sparse.train.duration == 200.0
    for net, kind in ((dense, "dense"), (sparse, "sparse")):
        rewiring = net.train.rewiring
        assert rewiring.name == "deep_r" and tuple(rewiring.args["projections"]) == deep_r_sparse.REWIRED
        assert rewiring.args.get("connectivity") == (0.1 if kind == "dense" else None)
        for name in deep_r_sparse.REWIRED:
            proj = net.projections[name]
            assert proj.connectivity.kind == kind
            assert proj.connectivity.args.get("p") == (0.1 if kind == "sparse" else None)
    assert dense.populations.keys() == sparse.populations.keys()
    for name, proj in dense.projections.items():
        other = sparse.projections[name]
        assert (proj.weight.kind, proj.weight.args) == (other.weight.kind, other.weight.args), (
            name
        )  # the same (scaled) initial weights
    x_to_h = sources["sparse"].split("x -> h", 1)[1].split("\n", 1)[0]
    assert (
        "mean = 0.3," in x_to_h if algorithm == "eventprop" else "sd = 3.162)" in x_to_h
    )  # 0.03 / p, 1 / sqrt(p)
