"""runtime/numerics.first_rows_sum/_max: Python's sum and max over a few trials' results, numpy's over
many, with numpy's bits either way (the kernel loop's loss and counts must not move by a rounding)."""

from __future__ import annotations

import numpy as np
import pytest
from snnc.runtime.numerics import FEW_VALUES, first_rows_max, first_rows_sum


@pytest.mark.parametrize("size", [0, 1, 2, 3, 5, 7, 8, 9, 33])
@pytest.mark.parametrize("dtype", [np.float64, np.int32])
def test_sums_and_maxima_equal_numpys_bit_for_bit(size: int, dtype: type) -> None:
    rng = np.random.default_rng(size)
    a = (rng.standard_normal(size) * 10.0 ** rng.integers(-8, 8, size)).astype(dtype)
    for rows in {None, 0, 1, size // 2, size}:
        got, want = first_rows_sum(a, rows), a[:rows].sum()
        assert type(got) in (int, float) and got == want and np.signbit(got) == np.signbit(want)
        assert first_rows_max(a, rows, -1) == a[:rows].max(initial=-1)


def test_few_values_is_below_numpys_pairwise_blocks() -> None:
    """numpy sums 8 or more values in pairwise blocks (another order): the Python path stays below."""
    assert FEW_VALUES <= 8
