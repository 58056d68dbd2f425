"""Spike data for input populations: preprocessing (as mlGeNN's `preprocess_spikes`), latency
encoding, and the per-row tables through which the generated code reads a batch of them.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class PreprocessedSpikes:
    """One example's spikes: `spike_times` sorted by neuron then time; neuron i's spikes are
    `spike_times[end_spikes[i-1]:end_spikes[i]]` (mlGeNN's layout)."""

    end_spikes: np.ndarray  # int32 [num_neurons]
    spike_times: np.ndarray  # float64 [num_spikes], ms

    @property
    def num_neurons(self) -> int:
        return int(self.end_spikes.size)

    def to_times_ids(self) -> tuple[np.ndarray, np.ndarray]:
        counts = np.diff(np.concatenate([[0], self.end_spikes]))
        return self.spike_times.copy(), np.repeat(np.arange(self.num_neurons), counts)

    @functools.cached_property
    def by_time(self) -> tuple[np.ndarray, np.ndarray]:
        """(times float64, ids int32) sorted by time (ties by neuron), computed once per example:
        the order the generated code consumes spikes in."""
        times, ids = self.to_times_ids()
        order = np.argsort(times, kind="stable")  # stable: ids stay ascending within a time
        return np.ascontiguousarray(times[order]), ids[order].astype(np.int32)


def preprocess_spikes(times, ids, num_neurons: int) -> PreprocessedSpikes:  # noqa: ANN001
    """Sort (times, ids) into per-neuron runs; ids outside [0, num_neurons) are an error."""
    times = np.asarray(times, dtype=np.float64).ravel()
    ids = np.asarray(ids, dtype=np.int64).ravel()
    if times.shape != ids.shape:
        raise ValueError(f"spike times and ids differ in length: {times.size} vs {ids.size}")
    if ids.size and (ids.min() < 0 or ids.max() >= num_neurons):
        raise ValueError(f"spike ids must lie in [0, {num_neurons}), got [{ids.min()}, {ids.max()}]")
    order = np.lexsort((times, ids))
    end = np.cumsum(np.bincount(ids, minlength=num_neurons)).astype(np.int32)
    return PreprocessedSpikes(end, times[order])


def latency_encode(
    values,
    t_min: float,
    t_max: float,
    *,
    value_max: float = 1.0,
    thresh: float = 0.0,  # noqa: ANN001
) -> list[PreprocessedSpikes]:
    """One spike per feature above `thresh`: higher values spike earlier (mlGeNN's
    `linear_latency_encode_data`): `t = t_min + (1 - v/value_max) * (t_max - t_min)`.

    `values` is [examples, features...]; features are flattened per example.
    """
    values = np.asarray(values, dtype=np.float64)
    flat = values.reshape(values.shape[0], -1)
    out = []
    for row in flat:
        active = row > thresh
        times = t_min + (1.0 - row[active] / value_max) * (t_max - t_min)
        out.append(preprocess_spikes(times, np.nonzero(active)[0], row.size))
    return out


def as_preprocessed(example, num_neurons: int) -> PreprocessedSpikes:  # noqa: ANN001
    """Accept `PreprocessedSpikes`, `(times, ids)` or None (no spikes)."""
    if example is None:
        return PreprocessedSpikes(np.zeros(num_neurons, np.int32), np.zeros(0))
    if isinstance(example, PreprocessedSpikes):
        if example.num_neurons != num_neurons:
            raise ValueError(f"spike data has {example.num_neurons} neurons, population has {num_neurons}")
        return example
    times, ids = example
    return preprocess_spikes(times, ids, num_neurons)


@dataclass(frozen=True)
class BatchSpikes:
    """A batch of input spikes as the generated code reads them, without copying the data: row b's
    spikes are `times[b][:end[b]]` / `ids[b][:end[b]]` (sorted by time, ties by neuron), and
    `times_ptr[b]` / `ids_ptr[b]` are those arrays' addresses. `keep` holds the arrays alive for as
    long as the tables are in use."""

    end: np.ndarray  # int64 [batch]
    times_ptr: np.ndarray  # uintp [batch]
    ids_ptr: np.ndarray  # uintp [batch]
    keep: tuple[np.ndarray, ...]


_NO_TIMES = np.zeros(1, np.float64)  # what padding rows point at (never read: their end is 0)
_NO_IDS = np.zeros(1, np.int32)
_NO_ADDRESSES = (_NO_TIMES.ctypes.data, _NO_IDS.ctypes.data)  # `.ctypes` costs microseconds a call


#: a batch's three pointer tables (end, times_ptr, ids_ptr), to be filled in place
Tables = tuple[np.ndarray, np.ndarray, np.ndarray]


def _tables(batch_size: int, out: Tables | None) -> Tables:
    """`out`, checked, or three new tables of `batch_size` rows."""
    if out is None:
        return np.empty(batch_size, np.int64), np.empty(batch_size, np.uintp), np.empty(batch_size, np.uintp)
    end, times_ptr, ids_ptr = out
    if not (end.shape == times_ptr.shape == ids_ptr.shape == (batch_size,)):
        raise ValueError(f"pointer tables of {end.shape[0]} rows for a batch of {batch_size}")
    return out


def batch_spikes(
    examples: Sequence[object], batch_size: int, num_neurons: int, out: Tables | None = None
) -> BatchSpikes:
    """Per-row pointer tables into each example's time-sorted spikes (computed once per example
    and cached on it; a data set with `by_time`, such as `SpikeDataset`, in one step). Rows past
    `len(examples)` (padding) get no spikes. `out`: tables to fill in place (the loader's own, whose
    addresses the library keeps) instead of new ones."""
    if len(examples) > batch_size:
        raise ValueError(f"{len(examples)} examples do not fit a batch of {batch_size}")
    if hasattr(examples, "batch_tables"):  # SpikeRows: a batch's view of a whole data set
        return examples.batch_tables(batch_size, num_neurons, out)
    if hasattr(examples, "by_time") and hasattr(examples, "offsets"):
        return _batch_of_dataset(examples, batch_size, num_neurons, out)
    end, times_ptr, ids_ptr = _tables(batch_size, out)
    end.fill(0)
    times_ptr.fill(_NO_ADDRESSES[0])
    ids_ptr.fill(_NO_ADDRESSES[1])
    keep: list[np.ndarray] = [_NO_TIMES, _NO_IDS]
    for b, ex in enumerate(examples):
        times, ids = as_preprocessed(ex, num_neurons).by_time
        end[b] = times.size
        if times.size:
            times_ptr[b] = times.ctypes.data
            ids_ptr[b] = ids.ctypes.data
            keep += (times, ids)
    return BatchSpikes(end, times_ptr, ids_ptr, tuple(keep))


def _batch_of_dataset(
    data: object, batch_size: int, num_neurons: int, out: Tables | None = None
) -> BatchSpikes:
    """`batch_spikes` of a flat data set: row b points into its time-sorted arrays at offsets[b]."""
    if data.num_neurons != num_neurons:
        raise ValueError(f"spike data has {data.num_neurons} neurons, population has {num_neurons}")
    offsets = np.asarray(data.offsets, np.int64)
    return rows_of_sorted(*data.by_time, offsets[:-1], offsets[1:], batch_size, out=out)


#: up to this many rows, the tables are filled value by value: a numpy call costs about a microsecond,
#: more than a few Python integers (training at batch 1 fills them once per example)
_FEW_ROWS = 4


def rows_of_sorted(
    times: np.ndarray,
    ids: np.ndarray,
    starts: np.ndarray,
    ends: np.ndarray,
    batch_size: int,
    addresses: tuple[int, int] | None = None,
    out: Tables | None = None,
) -> BatchSpikes:
    """Pointer tables whose row b reads `times[starts[b]:ends[b]]` (time-sorted float64) and the
    matching int32 `ids`; rows past len(starts) are padding without spikes. `addresses` are
    `times.ctypes.data, ids.ctypes.data` when the caller keeps them (a batch at a time adds up);
    `out`: the tables to fill in place."""
    n = starts.size
    end, times_ptr, ids_ptr = _tables(batch_size, out)
    if times.size:
        t0, i0 = addresses if addresses is not None else (times.ctypes.data, ids.ctypes.data)
    else:  # every row empty: point at the placeholders
        t0, i0 = _NO_ADDRESSES
    ti, ii = (times.itemsize, ids.itemsize) if times.size else (0, 0)
    if n <= _FEW_ROWS:
        for b in range(n):
            start = int(starts[b])
            end[b] = int(ends[b]) - start
            times_ptr[b] = t0 + start * ti
            ids_ptr[b] = i0 + start * ii
    else:
        np.subtract(ends, starts, out=end[:n])
        np.multiply(starts, ti, out=times_ptr[:n], casting="unsafe")
        times_ptr[:n] += t0
        np.multiply(starts, ii, out=ids_ptr[:n], casting="unsafe")
        ids_ptr[:n] += i0
    if n < batch_size:
        end[n:] = 0
        times_ptr[n:], ids_ptr[n:] = _NO_ADDRESSES
    return BatchSpikes(end, times_ptr, ids_ptr, (_NO_TIMES, _NO_IDS, times, ids))
