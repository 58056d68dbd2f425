"""`npz(…)` data sets are read and checked once, then memory-mapped from a cache of their splits:
a later run (or another MPI rank) reads only the examples it takes, as SHD's cache does."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from snnc.runtime.datasets import npzdata
from snnc.runtime.datasets.npzdata import npz, save_npz
from snnc.runtime.datasets.spikes import SpikeDataset
from snnc.runtime.errors import RuntimeConfigError


def _examples(n: int, seed: int) -> SpikeDataset:
    rng = np.random.default_rng(seed)
    rows = []
    for _ in range(n):
        k = int(rng.integers(1, 12))
        rows.append((np.sort(rng.uniform(0, 50, k)), rng.integers(0, 9, k)))
    return SpikeDataset.from_examples(rows, rng.integers(0, 3, n), 9)


@pytest.fixture
def counted_reads(monkeypatch) -> list[Path]:
    reads: list[Path] = []
    read = npzdata._read
    monkeypatch.setattr(npzdata, "_read", lambda p: reads.append(p) or read(p))
    return reads


def same(a: SpikeDataset, b: SpikeDataset) -> None:
    assert a.num_neurons == b.num_neurons
    for key in ("times", "ids", "offsets", "labels"):
        np.testing.assert_array_equal(getattr(a, key), getattr(b, key), err_msg=key)


def test_a_second_load_maps_the_checked_splits_without_reading_the_file(tmp_path, counted_reads):
    path = tmp_path / "spikes.npz"
    save_npz(path, _examples(20, 0))
    first = npz(path, test_fraction=0.25, seed=3)
    again = npz(path, test_fraction=0.25, seed=3)
    assert len(counted_reads) == 1, "the file is read once, for both splits"
    for split in ("train", "test"):
        got = getattr(again, split)
        assert isinstance(got.times, np.memmap) and got.lazy, split
        same(getattr(first, split), got)
    assert (len(again.train), len(again.test)) == (15, 5)
    assert again.num_inputs == 9 and again.num_classes == first.num_classes
    for split in ("train", "test"):  # label errors still name the file's own example numbers
        np.testing.assert_array_equal(again.meta["examples"][split][1], first.meta["examples"][split][1])
    # the split is the same as reading the file without a cache
    full = _examples(20, 0)
    np.testing.assert_array_equal(again.train.labels, full.labels[first.meta["examples"]["train"][1]])


def test_another_split_or_a_changed_file_is_read_again(tmp_path, counted_reads):
    path = tmp_path / "spikes.npz"
    save_npz(path, _examples(20, 0))
    a = npz(path, test_fraction=0.25, seed=3)
    b = npz(path, test_fraction=0.25, seed=4)
    assert len(counted_reads) == 2
    assert not np.array_equal(a.meta["examples"]["test"][1], b.meta["examples"]["test"][1])
    save_npz(path, _examples(12, 1))  # new content under the same name
    c = npz(path, test_fraction=0.25, seed=3)
    assert len(counted_reads) == 3 and len(c.train) + len(c.test) == 12


def test_a_file_with_its_own_test_split_is_cached_too(tmp_path, counted_reads):
    path = tmp_path / "own.npz"
    save_npz(path, _examples(10, 0), _examples(4, 1))
    first = npz(path, test_fraction=0.9)  # ignored: the file has its test split
    again = npz(path, test_fraction=0.9)
    assert len(counted_reads) == 1 and again.test.lazy
    same(first.test, again.test)
    same(
        _examples(4, 1),
        SpikeDataset(*(np.array(getattr(again.test, k)) for k in ("times", "ids", "offsets", "labels")), 9),
    )


def test_a_bad_file_is_reported_and_leaves_no_cache(tmp_path):
    path = tmp_path / "bad.npz"
    data = _examples(6, 0)
    np.savez(path, times=-data.times, ids=data.ids, labels=data.labels, offsets=data.offsets)
    for _ in range(2):  # reported each time: nothing was cached
        with pytest.raises(RuntimeConfigError, match="bad.npz"):
            npz(path)
    assert not [p for p in tmp_path.iterdir() if p.is_dir()]
