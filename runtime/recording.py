"""Recorders: callbacks that ask the artefact to record, then keep the filtered results per example.

`CompiledNetwork` (and the trainer) call `request()` before each batch to build the `RecordRequest`
and `on_batch(result, example_indices)` after it. Filters are applied here, in Python; the generated
code records whole populations into its buffers.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from .artefact import RunResult


def _mask(filter_, n: int) -> np.ndarray:  # noqa: ANN001
    """None -> all; an int -> that index; a slice or sequence of indices / bools -> those."""
    m = np.zeros(n, bool)
    if filter_ is None:
        m[:] = True
    elif isinstance(filter_, (int, np.integer)):
        m[int(filter_)] = True
    elif isinstance(filter_, slice):
        m[filter_] = True
    else:
        arr = np.asarray(filter_)
        if arr.dtype == bool:
            m[: arr.size] = arr
        else:
            m[arr.astype(int)] = True
    return m


class _Recorder:
    def __init__(self, pop: str, example_filter=None, neuron_filter=None) -> None:  # noqa: ANN001
        self.pop = pop
        self.example_filter = example_filter
        self.neuron_filter = neuron_filter

    def wants(self, example: int, num_examples: int) -> bool:
        return bool(_mask(self.example_filter, max(num_examples, example + 1))[example])


class SpikeRecorder(_Recorder):
    """Keeps, per recorded example, `(times_ms, neuron_ids)` of the filtered neurons' spikes.

    Spike times are the start of the step in which the spike was emitted (`k * dt`).
    """

    def __init__(self, pop: str, example_filter=None, neuron_filter=None) -> None:  # noqa: ANN001
        super().__init__(pop, example_filter, neuron_filter)
        self.spikes: list[tuple[np.ndarray, np.ndarray]] = []
        self.examples: list[int] = []

    def request(self) -> tuple[set[str], set[tuple[str, str]]]:
        return {self.pop}, set()

    def on_batch(self, result: RunResult, example_indices: Sequence[int], num_examples: int) -> None:
        raster = result.spikes[self.pop]  # [batch, steps, n]
        keep = _mask(self.neuron_filter, raster.shape[-1])
        for row, ex in enumerate(example_indices):
            if not self.wants(ex, num_examples):
                continue
            steps, ids = np.nonzero(raster[row][:, keep])
            ids = np.nonzero(keep)[0][ids]
            self.spikes.append((steps * result.dt, ids))
            self.examples.append(ex)


class VarRecorder(_Recorder):
    """Keeps, per recorded example, an array [steps, filtered neurons] of a state's values at the
    end of each step (after reset)."""

    def __init__(self, pop: str, var: str, example_filter=None, neuron_filter=None) -> None:  # noqa: ANN001
        super().__init__(pop, example_filter, neuron_filter)
        self.var = var
        self.data: list[np.ndarray] = []
        self.examples: list[int] = []

    def request(self) -> tuple[set[str], set[tuple[str, str]]]:
        return set(), {(self.pop, self.var)}

    def on_batch(self, result: RunResult, example_indices: Sequence[int], num_examples: int) -> None:
        values = result.vars[(self.pop, self.var)]  # [batch, steps, n]
        keep = _mask(self.neuron_filter, values.shape[-1])
        for row, ex in enumerate(example_indices):
            if self.wants(ex, num_examples):
                self.data.append(values[row][:, keep].copy())
                self.examples.append(ex)


Recorder = SpikeRecorder | VarRecorder
