"""ir/connectivity: the one description of each connectivity kind.

Geometry and dense equivalents are compared with references written from the definitions (a
receptive field per output position), not with the code under test; the draw order is pinned
because the golden files' checksums and every saved seed depend on it.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from snnc.ir.connectivity import CALLS, KINDS, kind_of, require_fits
from snnc.ir.diagnostics import DiagnosticError
from snnc.ir.model import Connectivity, Initialiser, Projection

from tests.runtime.test_simulation_connectivity import conv_matrix, pool_matrix


def test_every_kind_is_reachable_by_its_calls() -> None:
    assert set(KINDS) == {"dense", "sparse", "fixed_number_post", "one_to_one", "conv2d", "avg_pool2d"}
    for kind in KINDS.values():
        assert all(CALLS[c] is kind for c in kind.calls)
    assert CALLS["Sparse"] is CALLS["FixedProbability"] is KINDS["sparse"]


@pytest.mark.parametrize("padding", ["valid", "same"])
@pytest.mark.parametrize("stride", [1, 2, 3])
@pytest.mark.parametrize("kernel", [1, 2, 3, 4])
@pytest.mark.parametrize("size", [(4, 4), (5, 7), (9, 6)])
def test_conv2d_geometry_and_dense_equivalent_match_a_receptive_field_reference(
    size: tuple[int, int], kernel: int, stride: int, padding: str
) -> None:
    conv = KINDS["conv2d"]
    pre = (*size, 2)
    args = conv.normalise({"filters": 3, "kernel": kernel, "stride": stride, "padding": padding})
    if padding == "valid" and kernel > min(size):
        assert conv.output_shape(args, pre) is None
        assert any("larger than the input" in p.message for p in conv.problems(args, pre, (1, 1, 3)))
        return
    k = np.random.default_rng(0).normal(size=(kernel, kernel, 2, 3))
    ref, out = conv_matrix(k, pre, stride, padding)
    assert conv.output_shape(args, pre) == out
    if padding == "same":
        assert out[:2] == (math.ceil(size[0] / stride), math.ceil(size[1] / stride))
    assert conv.problems(args, pre, out) == []
    g = conv.geometry(args, pre)
    assert conv.weight_shape(math.prod(pre), math.prod(out), g) == k.shape
    m = conv.dense_equivalent({"weight": k}, math.prod(pre), math.prod(out), g)
    np.testing.assert_array_equal(m, ref)


@pytest.mark.parametrize(("pool", "stride"), [(2, 2), (3, 1), (2, 3)])
def test_avg_pool2d_dense_equivalent_is_the_window_mean(pool: int, stride: int) -> None:
    kind = KINDS["avg_pool2d"]
    pre = (7, 6, 3)
    args = kind.normalise({"pool": pool, "stride": stride})
    ref, out = pool_matrix(pre, pool, stride)
    assert kind.output_shape(args, pre) == out
    g = kind.geometry(args, pre)
    m = kind.dense_equivalent({}, math.prod(pre), math.prod(out), g)
    np.testing.assert_allclose(m, ref, rtol=0, atol=1e-15)
    np.testing.assert_allclose(m.sum(axis=0), 1.0)  # each output is a mean
    assert kind.fixed_weight(args) == Fraction(1, pool**2)
    assert kind.draw(args, m.shape[0], m.shape[1], g, np.random.default_rng(0), None) == {}


def test_avg_pool2d_stride_defaults_to_the_pool() -> None:
    assert KINDS["avg_pool2d"].normalise({"pool": 3}) == {"pool": (3, 3), "stride": (3, 3)}


def test_unequal_strides_are_a_value_problem_naming_the_argument() -> None:
    conv = KINDS["conv2d"]
    args = conv.normalise({"filters": 1, "kernel": 3, "stride": (2, 1)})
    [p] = conv.problems(args, (8, 8, 1), (3, 6, 1))
    assert (p.what, p.arg) == ("value", "stride") and "(2, 1)" in p.message
    [p] = KINDS["avg_pool2d"].problems({"pool": (2, 3)}, (6, 6, 1), (3, 2, 1))
    assert (p.what, p.arg) == ("value", "stride") and "pool size" in p.hint


def test_sparse_draws_the_mask_then_the_weights_in_csr_order() -> None:
    kind = KINDS["sparse"]
    drawn = kind.draw({"p": 0.3}, 6, 5, {}, np.random.default_rng(7), lambda shape: np.arange(shape[0]) + 1.0)
    mask = np.random.default_rng(7).random((6, 5)) < 0.3  # the same stream, mask first
    rows, cols = np.nonzero(mask)
    np.testing.assert_array_equal(drawn["col_idx"], cols)
    np.testing.assert_array_equal(drawn["row_ptr"], np.searchsorted(rows, np.arange(7)))
    m = kind.dense_equivalent(drawn, 6, 5, {})
    np.testing.assert_array_equal(m[rows, cols], np.arange(len(cols)) + 1.0)
    assert np.count_nonzero(m) == len(cols)


def test_one_to_one_dense_equivalent_is_diagonal() -> None:
    kind = KINDS["one_to_one"]
    drawn = kind.draw({}, 4, 4, {}, np.random.default_rng(0), lambda shape: np.full(shape, 2.0))
    assert kind.weight_shape(4, 4, {}) == (4,)
    np.testing.assert_array_equal(kind.dense_equivalent(drawn, 4, 4, {}), 2.0 * np.eye(4))
    assert kind.problems({}, (2, 2), (4,)) == []
    assert "equal size" in kind.problems({}, (4,), (5,))[0].message


def _projection(kind: str, args: dict | None = None) -> Projection:
    return Projection(
        "x_to_h", "x", "h", Connectivity(kind, args or {}), Initialiser("constant", {"value": 1.0}), "Delta"
    )


def test_a_network_built_without_the_frontend_gets_the_same_problems_as_errors() -> None:
    with pytest.raises(DiagnosticError) as info:
        require_fits(_projection("one_to_one"), (4,), (5,))
    assert info.value.diagnostics[0].code == "E-ONE-TO-ONE"
    with pytest.raises(DiagnosticError) as info:
        require_fits(
            _projection("conv2d", {"filters": 1, "kernel": 3, "stride": (1, 2)}), (8, 8, 1), (6, 3, 1)
        )
    assert info.value.diagnostics[0].code == "E-CONV-SHAPE"
    with pytest.raises(DiagnosticError) as info:
        kind_of("toeplitz")
    assert info.value.diagnostics[0].code == "E-CONNECTIVITY"
    require_fits(_projection("dense"), (3,), (4,))


def test_fixed_number_post_draws_n_distinct_targets_per_pre_neuron() -> None:
    kind = KINDS["fixed_number_post"]
    assert kind.layout == "csr" and CALLS["FixedNumberPost"] is kind
    draw = kind.draw(
        {"n": 3}, 6, 10, {}, np.random.default_rng(1), lambda shape: np.arange(1.0, 1 + shape[0])
    )
    rp, ci = draw["row_ptr"], draw["col_idx"]
    assert list(np.diff(rp)) == [3] * 6
    for i in range(6):
        row = ci[rp[i] : rp[i + 1]]
        assert len(set(row)) == 3 and list(row) == sorted(row) and row.max() < 10
    again = kind.draw({"n": 3}, 6, 10, {}, np.random.default_rng(1), lambda shape: np.zeros(shape))
    assert np.array_equal(again["col_idx"], ci)  # drawn once, from the seed
    m = kind.dense_equivalent(draw, 6, 10, {})
    assert (m != 0).sum(axis=1).tolist() == [3] * 6 and sorted(m[m != 0]) == list(range(1, 19))


def test_fixed_number_post_asking_for_more_targets_than_post_has_is_an_error_at_its_argument() -> None:
    from snnc.frontend.loader import check_source

    src = """
use std.{SpikeInput, LIF, Exponential}
network g {
    input  x = SpikeInput(4)
    hidden h = LIF(3)
    x -> h : FixedNumberPost(n = 5, weight = Normal(mean = 1.0, sd = 0.1)), Exponential(tau = 5 ms)
}
"""
    (d,) = [d for d in check_source(src) if d.severity == "error"]
    assert "n = 5" in d.message and "3" in d.message and d.span.line == 6


@pytest.mark.parametrize(("pad", "stride", "kernel"), [((1, 1), 2, 3), ((2, 0), 1, 3), ((1, 2), 3, 2)])
def test_conv2d_padded_by_numbers_is_a_valid_conv_of_the_zero_padded_image(
    pad: tuple[int, int], stride: int, kernel: int
) -> None:
    """PyTorch/NIR padding: ph zero rows above and below, pw zero columns left and right. Reference:
    the "valid" matrix of the padded image, keeping only the rows of real pixels."""
    conv = KINDS["conv2d"]
    h, w, c = 5, 6, 2
    args = conv.normalise({"filters": 3, "kernel": kernel, "stride": stride, "padding": pad})
    assert args["padding"] == pad
    k = np.random.default_rng(1).normal(size=(kernel, kernel, c, 3))
    big, out = conv_matrix(k, (h + 2 * pad[0], w + 2 * pad[1], c), stride, "valid")
    real = [
        ((y + pad[0]) * (w + 2 * pad[1]) + x + pad[1]) * c + ci
        for y in range(h)
        for x in range(w)
        for ci in range(c)
    ]
    assert conv.output_shape(args, (h, w, c)) == out
    assert conv.problems(args, (h, w, c), out) == []
    g = conv.geometry(args, (h, w, c))
    m = conv.dense_equivalent({"weight": k}, h * w * c, math.prod(out), g)
    np.testing.assert_array_equal(m, big[real])
