"""A batch's view of a spike data set (`SpikeDataset.rows`) reads the same spikes as a copy of it."""

from __future__ import annotations

import ctypes

import numpy as np
import pytest
from snnc.runtime.datasets.spikes import SpikeDataset
from snnc.runtime.encoding import batch_spikes


def _data() -> SpikeDataset:
    rng = np.random.default_rng(3)
    examples = []
    for _ in range(7):
        k = int(rng.integers(0, 6))  # some examples have no spikes at all
        examples.append((rng.uniform(0, 10, k), rng.integers(0, 4, k)))
    return SpikeDataset.from_examples(examples, np.arange(7) % 3, num_neurons=4)


def _read(tables, batch: int) -> list[tuple[list[float], list[int]]]:
    """What the generated code reads through the pointer tables, row by row."""
    rows = []
    for b in range(batch):
        n = int(tables.end[b])
        times = ctypes.cast(int(tables.times_ptr[b]), ctypes.POINTER(ctypes.c_double))
        ids = ctypes.cast(int(tables.ids_ptr[b]), ctypes.POINTER(ctypes.c_int32))
        rows.append(([times[i] for i in range(n)], [ids[i] for i in range(n)]))
    return rows


@pytest.mark.parametrize("idx", [[4], [6, 0, 3], [2, 2, 5, 1]])
def test_rows_point_at_the_spikes_of_a_copy(idx: list[int]) -> None:
    data = _data()
    batch = 5
    view, copy = data.rows(idx), data.subset(idx)
    assert _read(batch_spikes(view, batch, 4), batch) == _read(batch_spikes(copy, batch, 4), batch)
    # everything else sees the same examples as the copy
    assert len(view) == len(copy)
    np.testing.assert_array_equal(view.labels, copy.labels)
    np.testing.assert_array_equal(view.offsets, copy.offsets)
    for a, b in zip(view, copy, strict=True):
        np.testing.assert_array_equal(a.by_time[0], b.by_time[0])


def test_rows_check_the_population_size() -> None:
    with pytest.raises(ValueError, match="4 neurons, population has 5"):
        batch_spikes(_data().rows([0]), 2, 5)
