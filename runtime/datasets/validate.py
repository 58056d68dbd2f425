"""Checks of spike data as it is loaded, each naming the offending example and value.

A bad value deep inside a data file (a NaN spike time, a negative id, a label the output layer cannot
hold) must stop a run before it compiles and trains, with a sentence the user can act on, rather than
surface later as a numpy error inside a loss or as a silently wrong result. The checks return a
message (None when the data are fine), so each loader decides the code and the file it names.
"""

from __future__ import annotations

import numpy as np


def example_of(offsets: np.ndarray, spike: int) -> int:
    """The example (row of `offsets`) that spike number `spike` belongs to."""
    return int(np.searchsorted(offsets, spike, side="right")) - 1


def shape_problem(times: np.ndarray, ids: np.ndarray, offsets: np.ndarray, labels: np.ndarray) -> str | None:
    """Why the four arrays cannot describe examples of spikes (None when they can)."""
    if times.shape != ids.shape or times.ndim != 1:
        return f"times and ids must be 1-d arrays of one length (got shapes {times.shape} and {ids.shape})"
    problem = offsets_problem(offsets, times.size)
    if problem is None and (labels.ndim == 0 or len(labels) != offsets.size - 1):
        problem = f"{offsets.size - 1} examples but labels of shape {labels.shape}"
    return problem


def offsets_problem(offsets: np.ndarray, num_spikes: int) -> str | None:
    """Why `offsets` cannot split `num_spikes` spikes into examples (None when it can)."""
    if offsets.ndim != 1 or offsets.size < 1:
        return f"offsets must be a 1-d array with one entry more than there are examples (got shape {offsets.shape})"
    if not np.issubdtype(offsets.dtype, np.integer):
        return f"offsets must be integers (got {offsets.dtype})"
    if offsets[0] != 0:
        return f"offsets must start at 0 (got {offsets[0]})"
    steps = np.flatnonzero(np.diff(offsets) < 0)
    if steps.size:
        i = int(steps[0])
        return f"offsets decrease: example {i} ends before it starts (offsets {offsets[i]} then {offsets[i + 1]})"
    if offsets[-1] != num_spikes:
        return f"offsets end at {offsets[-1]}, but there are {num_spikes} spikes"
    return None


def spikes_problem(
    times: np.ndarray, ids: np.ndarray, offsets: np.ndarray, num_neurons: int | None
) -> str | None:
    """The first bad spike time or id, as "example i: …" (None when every spike is fine).

    The arrays have passed `shape_problem`. Times must be finite and not negative (ms from the start
    of the example); ids count neurons from 0 and stay below `num_neurons` when the data say how many
    there are.
    """
    if not np.issubdtype(times.dtype, np.number) or np.issubdtype(times.dtype, np.complexfloating):
        return f"spike times must be real numbers (got {times.dtype})"
    if not np.issubdtype(ids.dtype, np.integer):
        if not np.issubdtype(ids.dtype, np.floating):
            return f"spike ids must be integers (got {ids.dtype})"
        bad = _first(~np.isfinite(ids) | (ids != np.round(ids)))
        if bad is not None:
            return f"example {example_of(offsets, bad)}: spike id {float(ids[bad])} is not a whole number"
    found = bad_spike(times, ids, num_neurons)
    if found is None:
        return None
    spike, what = found
    return f"example {example_of(offsets, spike)}: {what}"


def bad_spike(times: np.ndarray, ids: np.ndarray, num_neurons: int | None) -> tuple[int, str] | None:
    """(position, what is wrong) of the first spike with a bad time or id, None when all are fine;
    the arrays are numbers (`spikes_problem` has checked their types)."""
    bad_time = _first(~np.isfinite(times) | (times < 0))
    if bad_time is not None:
        return bad_time, (
            f"spike time {float(times[bad_time])} ms (spike times must be finite and at least 0 ms)"
        )
    bad_id = _first(ids < 0)
    if bad_id is not None:
        return bad_id, f"spike id {int(ids[bad_id])} (ids count neurons from 0)"
    if num_neurons is not None:
        bad_id = _first(ids >= num_neurons)
        if bad_id is not None:
            return bad_id, (
                f"spike id {int(ids[bad_id])}, but the data have "
                f"{num_neurons} neurons (ids 0 to {num_neurons - 1})"
            )
    return None


def class_labels_problem(labels: np.ndarray, num_classes: int) -> tuple[int | None, str] | None:
    """(example, what it has) for the first label that is not a class index in [0, num_classes);
    the example is None when the labels as a whole are not class indices (wrong shape or type)."""
    if labels.ndim != 1:
        return None, f"labels of shape {labels.shape}"
    if not (np.issubdtype(labels.dtype, np.integer) or np.issubdtype(labels.dtype, np.floating)):
        return None, f"labels of type {labels.dtype}"
    bad = _first((labels < 0) | (labels >= num_classes) | ~np.isfinite(labels) | (labels != np.round(labels)))
    if bad is None:
        return None
    return bad, f"label {_num(labels[bad])}"


def _first(mask: np.ndarray) -> int | None:
    hits = np.flatnonzero(mask)
    return int(hits[0]) if hits.size else None


def _num(value: np.generic) -> str:
    return str(int(value)) if np.isfinite(value) and float(value).is_integer() else str(float(value))
