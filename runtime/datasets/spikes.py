"""Spike data sets held as flat arrays: every example's spikes in one `times`/`ids` pair.

`offsets[i]:offsets[i+1]` selects example i's spikes, which keeps a whole data set in four numpy
arrays (cheap to save, to slice into batches and to shuffle). Indexing gives the
`PreprocessedSpikes` the artefacts read.

A set whose `times`/`ids` are memory-mapped (`np.memmap`, e.g. the SHD cache) is *lazy*: nothing
reads its spikes until examples are taken from it (`subset`, `example`, indexing), and those examples
alone are read (from the file, example by example) and checked then, errors naming `origin` and the
example. So an MPI rank that takes only its share of an epoch reads and holds only that share
(issue 18). `HeldExamples` is the same idea for data made per epoch (an augmented share).
"""

from __future__ import annotations

import functools
import mmap
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from snnc.runtime.datasets.validate import bad_spike, example_of
from snnc.runtime.encoding import BatchSpikes, PreprocessedSpikes, Tables, preprocess_spikes, rows_of_sorted
from snnc.runtime.errors import RuntimeConfigError


@dataclass(frozen=True, eq=False)
class SpikeDataset:
    times: np.ndarray  # float64 [total spikes], ms
    ids: np.ndarray  # int64 [total spikes]
    offsets: np.ndarray  # int64 [examples + 1]
    labels: np.ndarray  # [examples] (ints for classification, or arrays for regression)
    num_neurons: int
    #: where the spikes come from, named by the errors of a lazy set's examples
    origin: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "times", _as(self.times, np.float64))
        object.__setattr__(self, "ids", _as(self.ids, np.int64))
        object.__setattr__(self, "offsets", np.asarray(self.offsets, dtype=np.int64))
        object.__setattr__(self, "labels", np.asarray(self.labels))
        o = self.offsets
        if o.ndim != 1 or o.size < 1 or o[0] != 0 or np.any(np.diff(o) < 0) or o[-1] != self.times.size:
            raise ValueError("offsets must start at 0, never decrease and end at the number of spikes")
        if self.ids.shape != self.times.shape:
            raise ValueError("times and ids differ in length")
        if self.ids.size and not self.lazy:  # a lazy set's spikes are checked as they are read
            if self.ids.min() < 0:
                raise ValueError(f"spike ids count neurons from 0; got {self.ids.min()}")
            if self.ids.max() >= self.num_neurons:
                raise ValueError(f"spike ids must lie in [0, {self.num_neurons}); got {self.ids.max()}")
        if len(self.labels) != o.size - 1:
            raise ValueError(f"{o.size - 1} examples but {len(self.labels)} labels")

    def __len__(self) -> int:
        return self.offsets.size - 1

    @property
    def lazy(self) -> bool:
        """Whether the spikes stay on disk until examples are taken (memory-mapped arrays)."""
        return isinstance(self.times, np.memmap) or isinstance(self.ids, np.memmap)

    def __getitem__(self, i: int) -> PreprocessedSpikes:
        if not -len(self) <= i < len(self):
            raise IndexError(i)
        i %= len(self)
        return preprocess_spikes(*self.example(i), self.num_neurons)

    def example(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        a, b = self.offsets[i], self.offsets[i + 1]
        if not self.lazy:
            return self.times[a:b], self.ids[a:b]
        local = self.offsets[i : i + 2] - a
        times, ids = _read(self, np.array([a]), local)
        self._check(times, ids, local, np.array([i]))
        return times, ids

    def subset(self, idx: Sequence[int] | np.ndarray) -> SpikeDataset:
        """The examples `idx`, in that order (used for batches, shuffles and validation splits).
        Of a lazy set, only these examples are read (and checked); the subset is in memory."""
        idx = np.asarray(idx, dtype=np.int64)
        starts, ends = self.offsets[idx], self.offsets[idx + 1]
        counts = ends - starts
        offsets = np.concatenate([[0], np.cumsum(counts)])
        sel = None
        if self.lazy:
            times, ids = _read(self, starts, offsets)
            self._check(times, ids, offsets, idx)
        else:
            sel = _selection(starts, counts, offsets)
            times, ids = self.times[sel], self.ids[sel]
        out = SpikeDataset(times, ids, offsets, self.labels[idx], self.num_neurons, self.origin)
        if "by_time" in self.__dict__:  # a batch of a sorted set is sorted: gather, do not sort again
            sel = _selection(starts, counts, offsets) if sel is None else sel
            times, ids = self.by_time
            out.__dict__["by_time"] = (times[sel], ids[sel])
        return out

    def rows(self, idx: Sequence[int] | np.ndarray) -> SpikeRows:
        """The examples `idx` as a view for one batch: the C loader points into this set's sorted
        arrays without copying; anything else gets `subset(idx)`, built on first use."""
        return SpikeRows(self, np.asarray(idx, dtype=np.int64))

    @functools.cached_property
    def by_time(self) -> tuple[np.ndarray, np.ndarray]:
        """(times float64, ids int32) of every example sorted by time, ties by neuron, within the
        example's `offsets` range: the order the generated code reads spikes in. Sorted once per
        data set (one vectorised sort), and inherited by `subset`, so batches cost no sorting. Data
        already in that order (binned SHD) skip the sort: an MPI rank sorts its share every epoch."""
        if self.lazy:  # every example is needed: read and check them all once
            whole = self.subset(np.arange(len(self)))
            return whole.by_time
        if self._in_time_order():  # what the stable sort below would leave as it is
            return np.ascontiguousarray(self.times), self.ids.astype(np.int32)
        example = np.repeat(np.arange(len(self)), np.diff(self.offsets))
        order = np.lexsort((self.ids, self.times, example))
        return np.ascontiguousarray(self.times[order]), self.ids[order].astype(np.int32)

    def _in_time_order(self) -> bool:
        """Whether every example's spikes already run by time, ties by neuron (one linear pass)."""
        t, i = self.times, self.ids
        if t.size < 2:
            return True
        ok = (t[1:] > t[:-1]) | ((t[1:] == t[:-1]) & (i[1:] >= i[:-1]))
        starts = self.offsets[1:-1]  # a pair that spans two examples is never out of order
        ok[starts[(starts > 0) & (starts < t.size)] - 1] = True
        return bool(ok.all())

    @functools.cached_property
    def by_time_addresses(self) -> tuple[int, int]:
        """Where `by_time`'s two arrays start in memory, for the loader's pointer tables."""
        times, ids = self.by_time
        return times.ctypes.data, ids.ctypes.data

    def with_labels(self, labels: np.ndarray) -> SpikeDataset:
        return SpikeDataset(self.times, self.ids, self.offsets, labels, self.num_neurons, self.origin)

    def _check(self, times: np.ndarray, ids: np.ndarray, offsets: np.ndarray, idx: np.ndarray) -> None:
        """Examples `idx` of a lazy set, just read (`offsets` splits them): the first bad spike is a
        `RuntimeConfigError` naming `origin` and the example's index in this set."""
        found = bad_spike(times, ids, self.num_neurons)
        if found is not None:
            spike, what = found
            where = f"{self.origin}: " if self.origin else ""
            example = int(idx[example_of(offsets, spike)])
            raise RuntimeConfigError("E-DATASET-FILE", f"{where}example {example}: {what}")

    @staticmethod
    def from_examples(examples: Sequence[tuple[Any, Any]], labels, num_neurons: int) -> SpikeDataset:
        times = [np.asarray(t, dtype=np.float64).ravel() for t, _ in examples]
        ids = [np.asarray(i, dtype=np.int64).ravel() for _, i in examples]
        offsets = np.concatenate([[0], np.cumsum([t.size for t in times])])
        cat = lambda a, dt: np.concatenate(a) if a else np.zeros(0, dt)  # noqa: E731
        return SpikeDataset(cat(times, np.float64), cat(ids, np.int64), offsets, labels, num_neurons)


def _as(a: Any, dtype: type) -> np.ndarray:
    """`a` as an array of `dtype`; a memory-mapped one of that type stays mapped (not read)."""
    return a if isinstance(a, np.memmap) and a.dtype == dtype else np.asarray(a, dtype=dtype)


def _selection(starts: np.ndarray, counts: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Where each spike of a subset comes from: spike k of example j sits at
    starts[j] + (k − offsets[j]) of the set."""
    return np.arange(offsets[-1]) + np.repeat(starts - offsets[:-1], counts)


def _read(data: SpikeDataset, starts: np.ndarray, offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Examples of a lazy set's spikes (example j: `offsets[j+1] - offsets[j]` spikes from
    `starts[j]`) copied into memory, example by example, without an index array; a file that cannot
    be read (changed since it was opened) is a `RuntimeConfigError` naming the set's origin."""
    try:
        times = _read_one(data.times, starts, offsets, np.float64)
        ids = _read_one(data.ids, starts, offsets, np.int64)
    except OSError as e:
        where = f"{data.origin}: " if data.origin else ""
        raise RuntimeConfigError("E-DATASET-FILE", f"{where}cannot read its spikes ({e})") from None
    return times, ids


def _read_one(source: np.ndarray, starts: np.ndarray, offsets: np.ndarray, dtype: type) -> np.ndarray:
    """One array's examples. A mapped file is read with `os.preadv` straight into the result: the
    OS's read-ahead then fills its file cache, not this process's memory (touching the mapping
    would put every page read-ahead brings in into the process's resident set). Another array (a
    view of a mapping, or in memory) is sliced."""
    out = np.empty(int(offsets[-1]), dtype)
    whole_file = (
        isinstance(source, np.memmap)
        and isinstance(source.base, mmap.mmap)  # the mapping itself, not a view of it
        and source.dtype == dtype
        and source.flags.c_contiguous
        and getattr(source, "filename", None)
        and hasattr(os, "preadv")
    )
    if not whole_file:
        for j, a in enumerate(starts.tolist()):
            lo, hi = int(offsets[j]), int(offsets[j + 1])
            out[lo:hi] = source[a : a + hi - lo]
        return out
    item = source.itemsize
    with open(source.filename, "rb", buffering=0) as f:
        for j, a in enumerate(starts.tolist()):
            lo, hi = int(offsets[j]), int(offsets[j + 1])
            if hi > lo:
                view = memoryview(out[lo:hi]).cast("B")
                if os.preadv(f.fileno(), [view], int(source.offset) + a * item) != len(view):
                    raise OSError(f"'{source.filename}' is shorter than its header says")
    return out


class SpikeRows:
    """Examples `idx` of a `SpikeDataset`, for one batch: a training step at batch 1 would otherwise
    spend more time gathering and validating a one-example copy than the C code spends running it.
    `batch_tables` gives the loader its pointer tables straight into the parent's sorted arrays;
    every other use sees the same examples as `parent.subset(idx)`."""

    __slots__ = ("parent", "idx", "_subset")

    def __init__(self, parent: SpikeDataset, idx: np.ndarray) -> None:
        self.parent, self.idx, self._subset = parent, idx, None

    def batch_tables(self, batch_size: int, num_neurons: int, out: Tables | None = None) -> BatchSpikes:
        """Row b's spikes are the parent's example idx[b], time-sorted; rows past len(idx) are empty.
        `out`: the tables to fill in place (`batch_spikes`)."""
        p = self.parent
        if p.num_neurons != num_neurons:
            raise ValueError(f"spike data has {p.num_neurons} neurons, population has {num_neurons}")
        o = p.offsets
        return rows_of_sorted(*p.by_time, o[self.idx], o[self.idx + 1], batch_size, p.by_time_addresses, out)

    @property
    def lazy(self) -> bool:
        return self.parent.lazy

    @property
    def num_neurons(self) -> int:
        return self.parent.num_neurons

    @property
    def labels(self) -> np.ndarray:
        return self.parent.labels[self.idx]

    def rows(self, idx: Sequence[int] | np.ndarray) -> SpikeRows:
        """Rows of rows: a view of the parent again (a validation split's batches copy nothing)."""
        return SpikeRows(self.parent, self.idx[np.asarray(idx, dtype=np.int64)])

    def subset(self, idx: Sequence[int] | np.ndarray) -> SpikeDataset:
        return self.parent.subset(self.idx[np.asarray(idx, dtype=np.int64)])

    def example(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        return self.parent.example(int(self.idx[i]))

    @property
    def materialised(self) -> SpikeDataset:
        if self._subset is None:
            self._subset = self.parent.subset(self.idx)
        return self._subset

    def __len__(self) -> int:
        return self.idx.size

    def __getitem__(self, i: int) -> PreprocessedSpikes:
        return self.materialised[i]

    def __iter__(self):  # noqa: ANN204
        return (self.materialised[i] for i in range(len(self)))

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # copy/pickle probe private names before __init__ ran
            raise AttributeError(name)
        return getattr(self.materialised, name)


@dataclass
class Dataset:
    """A loaded data set: train and test splits of spikes plus what a network needs to know."""

    name: str
    train: SpikeDataset
    test: SpikeDataset
    num_inputs: int
    num_classes: int | None = None
    meta: dict[str, Any] = field(default_factory=dict)


class HeldExamples:
    """Some examples of a data set of `size` examples: what one MPI rank holds of an epoch's
    augmented data (`held[k]` is `data`'s example k). It is `lazy` like a memory-mapped set, so the
    trainer takes this rank's share of the epoch through `subset`; asking for an example that is not
    held is a bug in the caller and raises `LookupError`."""

    lazy = True

    def __init__(self, size: int, held: np.ndarray, data: SpikeDataset, labels: np.ndarray) -> None:
        self.size, self.data, self.labels = int(size), data, labels
        self.held = np.asarray(held, dtype=np.int64)
        self._order = np.argsort(self.held, kind="stable")
        self._sorted = self.held[self._order]

    @property
    def num_neurons(self) -> int:
        return self.data.num_neurons

    def __len__(self) -> int:
        return self.size

    def _local(self, idx: Sequence[int] | np.ndarray) -> np.ndarray:
        idx = np.asarray(idx, dtype=np.int64)
        at = np.minimum(np.searchsorted(self._sorted, idx), max(self._sorted.size - 1, 0))
        missing = idx[self._sorted[at] != idx] if self._sorted.size else idx
        if missing.size:
            raise LookupError(
                f"example {int(missing[0])} is not held here (this rank holds {self.held.size})"
            )
        return self._order[at]

    def subset(self, idx: Sequence[int] | np.ndarray) -> SpikeDataset:
        return self.data.subset(self._local(idx))

    def rows(self, idx: Sequence[int] | np.ndarray) -> SpikeRows:
        return self.data.rows(self._local(idx))

    def example(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        return self.data.example(int(self._local([i])[0]))
