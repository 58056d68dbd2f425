"""Numerical fault detection: stop training at the first NaN or Inf in gradients or weights.

A non-finite gradient poisons every weight it touches and the optimiser's moments with it, and from
then on the run only burns time. The trainer checks each batch's gradients before the optimiser step
(so the weights in memory, and any checkpoint written later, stay the last good ones) and the weights
after it; the first fault raises `NumericalFaultError`, a `DiagnosticError` the CLI prints, naming the
projection, the epoch and the batch. For a faulty gradient the trainer then reruns that batch once,
recording every state, and the message names the population, state, step, example and neuron where
the forward pass first went non-finite (usually where the fault started: an exploding membrane
potential, a division by a zero parameter), or says the forward pass stayed finite, which puts the
fault in the backward pass. Without recordings, the state view (`artefact.state`) names the
population variables that hold NaN or Inf.
Checkpoints are only written at the end of an epoch, so the last good one on disk is never replaced.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from snnc.ir.diagnostics import Diagnostic, DiagnosticError

CODE = "E-NUMERICS"


@dataclass(frozen=True)
class FaultSite:
    """Where a forward pass first held a non-finite value: the earliest step, then by name."""

    population: str
    var: str
    step: int
    row: int  # the trial's row in the batch
    neuron: int
    example: int | None = None  # the data set index of that row, when known
    dt: float | None = None

    def sentence(self) -> str:
        when = f"step {self.step}"
        if self.dt is not None:
            when += f" (t = {self.step * self.dt:g} to {(self.step + 1) * self.dt:g} ms)"
        trial = f"example {self.example}" if self.example is not None else f"trial {self.row} of the batch"
        return (
            f"the forward pass first went non-finite in population '{self.population}' (state "
            f"'{self.var}', neuron {self.neuron}) at {when}, {trial}"
        )


class NumericalFaultError(DiagnosticError, FloatingPointError):
    """NaN or Inf in a projection's gradient or weights; `where` is (kind, projection, epoch, batch)."""

    def __init__(
        self,
        kind: str,
        projection: str,
        epoch: int | None,
        batch: int | None,
        detail: str,
        hint: str,
        site: FaultSite | None = None,
    ):
        self.kind = kind
        self.projection = projection
        self.epoch = epoch
        self.batch = batch
        when = []
        if batch is None and kind == "weights":
            when.append("before training")
        elif epoch is not None:
            when.append(f"epoch {epoch}")
        if batch is not None:
            when.append(f"batch {batch}")
        at = f" in {', '.join(when)}" if when else ""
        if when == ["before training"]:
            at = " before training"
        message = f"{detail} in the {kind} of projection '{projection}'{at}; training stopped"
        self.site = site
        if site is not None:
            message += f"; {site.sentence()}"
        super().__init__(Diagnostic(CODE, message, None, hint))


#: below this many values a reduction runs in Python: numpy's per-call cost (about a microsecond)
#: is more than the values, and below 8 numpy adds them in the same order (no pairwise blocks), so
#: the sum is bit for bit numpy's
FEW_VALUES = 8


def is_whole(value: Any, least: int) -> bool:
    """Whether `value` is a whole number (an int or a float without a fraction, not a bool) of at
    least `least`: the counts the API takes (epochs, steps) before a loop would cut or skip them."""
    return not isinstance(value, bool) and float(value).is_integer() and value >= least


def first_rows_sum(array: np.ndarray, rows: int | None) -> float | int:
    """`array[:rows].sum()`, for the per-trial results a training batch adds up (a batch of one
    trial does this several times per example)."""
    part = array[:rows]
    return sum(part.tolist()) if part.size < FEW_VALUES else part.sum().item()


def first_rows_max(array: np.ndarray, rows: int | None, initial: float | int) -> float | int:
    """`array[:rows].max(initial=initial)`, likewise."""
    part = array[:rows]
    return max([initial, *part.tolist()]) if part.size < FEW_VALUES else part.max(initial=initial).item()


def count_non_finite(array: Any) -> tuple[int, int, int]:
    """(NaN count, +Inf count, -Inf count) of an array; (0, 0, 0) for anything non-numeric."""
    a = np.asarray(array)
    if a.dtype.kind not in "fc":
        return 0, 0, 0
    return int(np.isnan(a).sum()), int(np.isposinf(a).sum()), int(np.isneginf(a).sum())


def _describe(counts: tuple[int, int, int], size: int) -> str:
    nan, pinf, ninf = counts
    parts = [f"{n} {what}" for n, what in ((nan, "NaN"), (pinf, "+Inf"), (ninf, "-Inf")) if n]
    return f"{' and '.join(parts)} (of {size} values)"


def non_finite_states(artefact: Any) -> list[str]:
    """`"pop.var"` names of the artefact's state arrays holding NaN or Inf (empty when it has no state)."""
    try:
        state = getattr(artefact, "state", None)
    except Exception:  # noqa: BLE001 - a state view that cannot be read just means "no extra detail"
        return []
    if not isinstance(state, Mapping):
        return []
    bad = []
    for name, values in state.items():
        if sum(count_non_finite(values)):
            bad.append(str(name))
    return sorted(bad)


def recordable_states(artefact: Any) -> list[tuple[str, str]]:
    """(population, state) pairs the artefact can record every step, from its manifest or its state."""
    pops = (getattr(artefact, "manifest", None) or {}).get("populations")
    if isinstance(pops, Mapping) and all(isinstance(p, Mapping) and "states" in p for p in pops.values()):
        return sorted((pop, str(var)) for pop, meta in pops.items() for var in meta["states"])
    try:
        state = getattr(artefact, "state", None)
    except Exception:  # noqa: BLE001 - no state view: nothing to record
        return []
    if not isinstance(state, Mapping):
        return []
    return sorted(tuple(str(key).split(".", 1)) for key in state if "." in str(key))  # type: ignore[misc]


def locate_fault(
    artefact: Any, inputs: Mapping[str, Any], example_ids: Sequence[int] | None = None
) -> tuple[bool, FaultSite | None]:
    """Run the batch again recording every state, and find the first step any of them is non-finite.

    Called only once a fault has stopped training (it costs one recorded forward pass). Returns
    (recorded, site): site None with recorded True means the forward pass stayed finite (the fault
    came from the backward pass); recorded False means the artefact could not say."""
    from snnc.runtime.artefact import RecordRequest

    wanted = recordable_states(artefact)
    if not wanted:
        return False, None
    try:
        with np.errstate(all="ignore"):
            result = artefact.run(
                inputs,
                record=RecordRequest.of(vars=wanted),
                example_ids=None if example_ids is None else [int(i) for i in example_ids],
            )
    except (KeyError, ValueError, TypeError, RuntimeError):
        return False, None
    recorded = getattr(result, "vars", None)
    if not recorded:
        return False, None
    best: FaultSite | None = None
    dt = getattr(artefact, "dt", None)
    for (pop, var), values in sorted(recorded.items()):
        a = np.asarray(values, dtype=np.float64)
        if a.ndim < 3 or np.isfinite(a).all():
            continue
        bad = ~np.isfinite(a.reshape(a.shape[0], a.shape[1], -1))
        steps = np.nonzero(bad.any(axis=(0, 2)))[0]
        step = int(steps[0])
        rows = np.nonzero(bad[:, step, :].any(axis=1))[0]
        row = int(rows[0])
        neuron = int(np.nonzero(bad[row, step])[0][0])
        if best is None or step < best.step:
            example = None
            if example_ids is not None and row < len(example_ids):
                example = int(example_ids[row])
            best = FaultSite(pop, var, step, row, neuron, example, float(dt) if dt is not None else None)
    return True, best


def check_finite(
    kind: str,
    arrays: Mapping[str, Any],
    *,
    epoch: int | None = None,
    batch: int | None = None,
    artefact: Any = None,
    locate: Callable[[], tuple[bool, FaultSite | None]] | None = None,
) -> None:
    """Raise `NumericalFaultError` for the first (by name) array in `arrays` holding NaN or Inf.

    kind: "gradient" or "weights", used in the message; weights checked with `batch=None` are the
    ones training starts from (initialiser, File() weights, a resumed checkpoint). `locate`, called
    only on a fault, reruns the batch to name the population and step where it started.
    """
    for name in sorted(arrays):
        a = np.asarray(arrays[name])
        if a.dtype.kind not in "fc" or np.isfinite(a).all():  # one pass in the common case
            continue
        counts = count_non_finite(a)
        size = int(a.size)
        recorded, site = locate() if locate is not None else (False, None)
        states = non_finite_states(artefact) if artefact is not None else []
        if site is not None:
            hint = ""
        elif recorded and kind == "gradient":
            hint = "every state stayed finite in the forward pass, so the backward pass produced it; "
        elif states:
            hint = f"non-finite state after the forward pass: {', '.join(states)}; "
        else:
            hint = ""
        if kind == "gradient":
            hint += (
                "lower the learning rate, clip the inputs, or check parameters that can divide by zero "
                "(time constants, thresholds); the last checkpoint written is still good"
            )
        elif batch is None:
            hint += "the weight initialiser, a File() weight or the checkpoint loaded put it there"
        else:
            hint += (
                "the optimiser step produced it: lower the learning rate or use gradient clipping; "
                "the last checkpoint written is still good"
            )
        raise NumericalFaultError(kind, str(name), epoch, batch, _describe(counts, size), hint, site)
