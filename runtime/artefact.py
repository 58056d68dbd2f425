"""The artefact protocol: what every backend's loaded, runnable network offers the runtime.

The trainer (`snnc.runtime` training loop) and `CompiledNetwork` are written against this protocol
only, never against a backend. An artefact owns its arrays (numpy, [batch][neuron] layout), so state,
weights and recordings are inspectable and checkpointable from Python.

Life cycle::

    art.allocate(batch_size)           # (re)allocate every per-batch array
    art.set_weights({"x_to_h": w})     # numpy, shapes from art.weight_shapes()
    res = art.run({"x": spikes}, record=RecordRequest(spikes={"h"}, vars={("out", "v")}))
    res.readouts["out"]                # [batch, *shape] readout of each output population
    grads = art.backward({"out": dl_dy})  # later: gradient-capable artefacts only

`run` always starts the trials from the initial state (it calls `reset` first); a batch of examples
is independent, and padded rows (`num_valid < batch_size`) are simulated but ignored by callers.

An artefact whose sparse structure the runtime may rewrite (Deep R, `rewiring.py`) also offers
`connectivity(projection) -> {"row_ptr": ..., "col_idx": ...}`: live views of a CSR projection's
arrays; a write into `col_idx` takes effect at the next `run`.

Inputs, keyed by input population name:
  - `spike_source` populations: a sequence (one per batch row) of `PreprocessedSpikes` (see
    `snnc.runtime.encoding`), or of `(times, ids)` pairs; missing rows mean "no spikes".
  - `poisson` populations: an array [batch, neurons] of rates in Hz.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np


@dataclass(frozen=True)
class RecordRequest:
    """What to record during one `run`: spike rasters of populations and state variables (every step)."""

    spikes: frozenset[str] = frozenset()
    vars: frozenset[tuple[str, str]] = frozenset()  # (population, state)

    @staticmethod
    def of(spikes: Sequence[str] = (), vars: Sequence[tuple[str, str]] = ()) -> RecordRequest:  # noqa: A002
        return RecordRequest(frozenset(spikes), frozenset(vars))

    def __bool__(self) -> bool:
        return bool(self.spikes or self.vars)


@dataclass
class RunResult:
    """The outcome of one batch.

    readouts: population -> array [batch, *shape] (float64 copies).
    spikes: population -> bool array [batch, steps, neurons] (only populations requested).
    vars: (population, state) -> array [batch, steps, neurons], values at the end of each step.
    events: population -> (times [batch, neurons, max_events], counts [batch, neurons]) when the
      artefact keeps per-neuron spike buffers (gradient passes); counts above max_events mean overflow.
    """

    readouts: dict[str, np.ndarray] = field(default_factory=dict)
    spikes: dict[str, np.ndarray] = field(default_factory=dict)
    vars: dict[tuple[str, str], np.ndarray] = field(default_factory=dict)
    events: dict[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)
    num_steps: int = 0
    dt: float = 1.0


@runtime_checkable
class Artefact(Protocol):
    """A compiled network a backend has loaded. All times are ms."""

    #: the compiler's manifest (populations, projections, arrays, dt, num_steps, precision, IR hash)
    manifest: dict[str, Any]

    @property
    def dt(self) -> float: ...

    @property
    def num_steps(self) -> int: ...

    @property
    def batch_size(self) -> int: ...

    def allocate(self, batch_size: int) -> None:
        """(Re)allocate per-batch arrays for `batch_size` trials; weights are kept."""

    def weight_shapes(self) -> dict[str, tuple[int, ...]]:
        """Projection name -> weight array shape (trainable and fixed projections with weights)."""

    def get_weights(self) -> dict[str, np.ndarray]:
        """Projection name -> a copy of its weights (float64)."""

    def set_weights(self, weights: Mapping[str, np.ndarray]) -> None:
        """Overwrite the named projections' weights (cast to the artefact's precision)."""

    @property
    def state(self) -> dict[str, np.ndarray]:
        """`"pop.var"` -> live view [batch, neurons] of each state (writes take effect)."""

    def reset(self) -> None:
        """Put every state, synapse state, readout and spike queue back to its initial value."""

    def run(
        self,
        inputs: Mapping[str, Any],
        record: RecordRequest | None = None,
        *,
        num_steps: int | None = None,
        example_ids: Sequence[int] | None = None,
    ) -> RunResult:
        """Reset, then simulate one batch; `example_ids` key the Poisson RNG (default 0..batch-1)."""

    def backward(self, dl_dy: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Gradients of the loss w.r.t. each trainable projection's weights, given dL/d(readout).

        Only artefacts compiled with a gradient pass implement it; others raise NotImplementedError.
        """

    def close(self) -> None:
        """Release arrays and the library handle."""
