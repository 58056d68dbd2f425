"""Spike data sets held as flat arrays: every example's spikes in one `times`/`ids` pair.

`offsets[i]:offsets[i+1]` selects example i's spikes, which keeps a whole data set in four numpy
arrays (cheap to save as `.npz`, to slice into batches and to shuffle). Indexing gives the
`PreprocessedSpikes` the artefacts read.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from snnc.runtime.encoding import BatchSpikes, PreprocessedSpikes, preprocess_spikes, rows_of_sorted


@dataclass(frozen=True, eq=False)
class SpikeDataset:
    times: np.ndarray  # float64 [total spikes], ms
    ids: np.ndarray  # int64 [total spikes]
    offsets: np.ndarray  # int64 [examples + 1]
    labels: np.ndarray  # [examples] (ints for classification, or arrays for regression)
    num_neurons: int

    def __post_init__(self) -> None:
        object.__setattr__(self, "times", np.asarray(self.times, dtype=np.float64))
        object.__setattr__(self, "ids", np.asarray(self.ids, dtype=np.int64))
        object.__setattr__(self, "offsets", np.asarray(self.offsets, dtype=np.int64))
        object.__setattr__(self, "labels", np.asarray(self.labels))
        o = self.offsets
        if o.ndim != 1 or o.size < 1 or o[0] != 0 or np.any(np.diff(o) < 0) or o[-1] != self.times.size:
            raise ValueError("offsets must start at 0, never decrease and end at the number of spikes")
        if self.ids.shape != self.times.shape:
            raise ValueError("times and ids differ in length")
        if self.ids.size and self.ids.min() < 0:
            raise ValueError(f"spike ids count neurons from 0; got {self.ids.min()}")
        if self.ids.size and self.ids.max() >= self.num_neurons:
            raise ValueError(f"spike ids must lie in [0, {self.num_neurons}); got {self.ids.max()}")
        if len(self.labels) != o.size - 1:
            raise ValueError(f"{o.size - 1} examples but {len(self.labels)} labels")

    def __len__(self) -> int:
        return self.offsets.size - 1

    def __getitem__(self, i: int) -> PreprocessedSpikes:
        if not -len(self) <= i < len(self):
            raise IndexError(i)
        i %= len(self)
        a, b = self.offsets[i], self.offsets[i + 1]
        return preprocess_spikes(self.times[a:b], self.ids[a:b], self.num_neurons)

    def example(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        a, b = self.offsets[i], self.offsets[i + 1]
        return self.times[a:b], self.ids[a:b]

    def subset(self, idx: Sequence[int] | np.ndarray) -> SpikeDataset:
        """The examples `idx`, in that order (used for batches, shuffles and validation splits)."""
        idx = np.asarray(idx, dtype=np.int64)
        starts, ends = self.offsets[idx], self.offsets[idx + 1]
        counts = ends - starts
        offsets = np.concatenate([[0], np.cumsum(counts)])
        # spike k of the subset comes from position start(example) + (k − new start(example))
        sel = np.arange(offsets[-1]) + np.repeat(starts - offsets[:-1], counts)
        out = SpikeDataset(self.times[sel], self.ids[sel], offsets, self.labels[idx], self.num_neurons)
        if "by_time" in self.__dict__:  # a batch of a sorted set is sorted: gather, do not sort again
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
        data set (one vectorised sort), and inherited by `subset`, so batches cost no sorting."""
        example = np.repeat(np.arange(len(self)), np.diff(self.offsets))
        order = np.lexsort((self.ids, self.times, example))
        return np.ascontiguousarray(self.times[order]), self.ids[order].astype(np.int32)

    @functools.cached_property
    def by_time_addresses(self) -> tuple[int, int]:
        """Where `by_time`'s two arrays start in memory, for the loader's pointer tables."""
        times, ids = self.by_time
        return times.ctypes.data, ids.ctypes.data

    def with_labels(self, labels: np.ndarray) -> SpikeDataset:
        return SpikeDataset(self.times, self.ids, self.offsets, labels, self.num_neurons)

    @staticmethod
    def from_examples(examples: Sequence[tuple[Any, Any]], labels, num_neurons: int) -> SpikeDataset:
        times = [np.asarray(t, dtype=np.float64).ravel() for t, _ in examples]
        ids = [np.asarray(i, dtype=np.int64).ravel() for _, i in examples]
        offsets = np.concatenate([[0], np.cumsum([t.size for t in times])])
        cat = lambda a, dt: np.concatenate(a) if a else np.zeros(0, dt)  # noqa: E731
        return SpikeDataset(cat(times, np.float64), cat(ids, np.int64), offsets, labels, num_neurons)


class SpikeRows:
    """Examples `idx` of a `SpikeDataset`, for one batch: a training step at batch 1 would otherwise
    spend more time gathering and validating a one-example copy than the C code spends running it.
    `batch_tables` gives the loader its pointer tables straight into the parent's sorted arrays;
    every other use sees the same examples as `parent.subset(idx)`."""

    __slots__ = ("parent", "idx", "_subset")

    def __init__(self, parent: SpikeDataset, idx: np.ndarray) -> None:
        self.parent, self.idx, self._subset = parent, idx, None

    def batch_tables(self, batch_size: int, num_neurons: int) -> BatchSpikes:
        """Row b's spikes are the parent's example idx[b], time-sorted; rows past len(idx) are empty."""
        p = self.parent
        if p.num_neurons != num_neurons:
            raise ValueError(f"spike data has {p.num_neurons} neurons, population has {num_neurons}")
        o = p.offsets
        return rows_of_sorted(*p.by_time, o[self.idx], o[self.idx + 1], batch_size, p.by_time_addresses)

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
