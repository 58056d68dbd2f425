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


def _mapped(data: SpikeDataset, folder, bad: tuple[int, int] | None = None) -> SpikeDataset:
    """`data` with its spikes memory-mapped from .npy files (a lazy set); `bad` = (example, id)
    writes a wrong id into that example's first spike."""
    ids = data.ids.copy()
    if bad is not None:
        ids[data.offsets[bad[0]]] = bad[1]
    np.save(folder / "t.npy", data.times)
    np.save(folder / "i.npy", ids)
    t = np.load(folder / "t.npy", mmap_mode="r", allow_pickle=False)
    i = np.load(folder / "i.npy", mmap_mode="r", allow_pickle=False)
    return SpikeDataset(t, i, data.offsets, data.labels, data.num_neurons, origin="'the file'")


def test_a_memory_mapped_set_reads_the_examples_taken_from_it(tmp_path):
    data = _data()
    lazy = _mapped(data, tmp_path)
    assert lazy.lazy and not data.lazy and isinstance(lazy.times, np.memmap)
    for idx in ([6, 0, 3], [], [2, 2]):
        part, want = lazy.subset(idx), data.subset(idx)
        assert not part.lazy  # read into memory
        for key in ("times", "ids", "offsets", "labels"):
            np.testing.assert_array_equal(getattr(part, key), getattr(want, key))
    np.testing.assert_array_equal(lazy.by_time[0], data.by_time[0])
    np.testing.assert_array_equal(lazy.by_time[1], data.by_time[1])
    # a view of a view (a validation split's batch) is a view of the set, not a copy of the split
    split = lazy.rows(np.arange(2, 7))
    assert split.lazy and split.rows([4, 0]).idx.tolist() == [6, 2]
    np.testing.assert_array_equal(split.subset([4, 0]).times, data.subset([6, 2]).times)
    np.testing.assert_array_equal(split.labels, data.labels[2:])
    assert split._subset is None  # none of this copied the split


def test_a_bad_spike_in_a_memory_mapped_set_is_reported_when_read(tmp_path):
    data = _data()
    k = next(i for i in range(len(data)) if data.offsets[i + 1] > data.offsets[i] and i > 0)
    lazy = _mapped(data, tmp_path, bad=(k, 4))  # loading reads no spike, so finds nothing yet
    fine = [i for i in range(len(data)) if i != k]
    lazy.subset(fine)
    msg = f"'the file': example {k}: spike id 4, but the data have 4 neurons"
    with pytest.raises(ValueError, match=msg):
        lazy.subset([fine[0], k])
    with pytest.raises(ValueError, match=msg):
        lazy.example(k)
    with pytest.raises(ValueError, match=msg):
        _ = lazy.by_time


@pytest.mark.parametrize("order", ["sorted", "ties", "unsorted", "across-examples"])
def test_data_already_in_time_order_skip_the_sort_with_the_same_result(order):
    """`by_time` of data already sorted (binned SHD) is the data itself; anything else is sorted,
    and both give what one stable sort by (example, time, id) gives."""
    rng = np.random.default_rng(5)
    examples = []
    for k in (5, 0, 7, 1, 6):
        t = np.sort(rng.integers(0, 4, k).astype(float))
        i = rng.integers(0, 9, k)
        if order != "unsorted":
            i = i[np.lexsort((i, t))]
        if order == "ties" and k:
            t[:], i[:] = 2.0, np.sort(i)
        if order == "unsorted" and k > 1:
            t, i = t[::-1].copy(), i[::-1].copy()
            t[0], t[-1] = 3.0, 0.0  # surely out of order
        examples.append((t, i))
    if order == "across-examples":  # a later example starting earlier is still in order
        examples = [(t + (10.0 if n == 0 else 0.0), i) for n, (t, i) in enumerate(examples)]
    data = SpikeDataset.from_examples(examples, np.zeros(5, np.int64), 9)
    example = np.repeat(np.arange(len(data)), np.diff(data.offsets))
    want = np.lexsort((data.ids, data.times, example))
    times, ids = data.by_time
    np.testing.assert_array_equal(times, data.times[want])
    np.testing.assert_array_equal(ids, data.ids[want].astype(np.int32))
    assert ids.dtype == np.int32
    assert data._in_time_order() == (order != "unsorted")


@pytest.mark.parametrize("idx", [[4], [6, 0, 3, 2], [2, 2, 5, 1, 0], [0, 1, 2, 3, 4, 5, 6]])
@pytest.mark.parametrize("kind", ["rows", "copy", "list"])
def test_tables_filled_in_place_read_what_new_tables_read(idx: list[int], kind: str) -> None:
    """The loader's own tables, filled in place over last batch's values (up to four rows value by
    value, more with numpy), point at the same spikes as tables made anew; padding rows are empty."""
    data = _data()
    batch = 8
    source = {"rows": data.rows(idx), "copy": data.subset(idx), "list": [data.example(i) for i in idx]}[kind]
    out = (np.full(batch, 99, np.int64), np.full(batch, 12345, np.uintp), np.full(batch, 12345, np.uintp))
    filled = batch_spikes(source, batch, 4, out)
    assert all(a is b for a, b in zip((filled.end, filled.times_ptr, filled.ids_ptr), out, strict=True))
    assert _read(filled, batch) == _read(batch_spikes(data.subset(idx), batch, 4), batch)
    assert not out[0][len(idx) :].any()


def test_tables_of_the_wrong_size_are_refused() -> None:
    out = (np.zeros(3, np.int64), np.zeros(3, np.uintp), np.zeros(3, np.uintp))
    with pytest.raises(ValueError, match="3 rows for a batch of 5"):
        batch_spikes(_data().rows([0]), 5, 4, out)


def test_the_loader_keeps_its_input_tables_from_batch_to_batch() -> None:
    """A training batch neither allocates the input tables nor hands the library new addresses."""
    from pathlib import Path

    from snnc.runtime.session import load_data, xy

    import snnc

    example = Path(__file__).resolve().parents[2] / "examples" / "yinyang_eventprop.snn"
    net = snnc.compile(str(example), batch_size=4)
    x, y = xy(net.network, load_data(net.network).train)
    art = net.artefact
    names = [art._named("input", "x", var) for var in ("end", "times", "ids")]
    trainer = net.make_trainer(batch_size=4)
    trainer.train(
        {k: v.subset(range(8)) for k, v in x.items()}, {k: v[:8] for k, v in y.items()}, 1, callbacks=[]
    )
    first = [art._arrays[n] for n in names]
    addresses = [t.ctypes.data for t in first]
    trainer.train(
        {k: v.subset(range(8, 16)) for k, v in x.items()}, {k: v[8:16] for k, v in y.items()}, 1, callbacks=[]
    )
    assert all(art._arrays[n] is t for n, t in zip(names, first, strict=True))
    assert [t.ctypes.data for t in first] == addresses
    assert not set(names) & art._arrays.changed
    assert first[0].tolist() == [len(x["x"].example(i)[0]) for i in range(12, 16)]  # the last batch's rows
