"""Numerical fault detection: stop training at the first NaN or Inf in gradients or weights.

A non-finite gradient poisons every weight it touches and the optimiser's moments with it, and from
then on the run only burns time. The trainer checks each batch's gradients before the optimiser step
(so the weights in memory, and any checkpoint written later, stay the last good ones) and the weights
after it; the first fault raises `NumericalFaultError`, a `DiagnosticError` the CLI prints, naming the
projection, the epoch and the batch. When the artefact exposes its state (`artefact.state`,
`"pop.var" -> array`) the message also names the population variables that went non-finite, which is
usually where the fault started (an exploding membrane potential, a division by a zero parameter).
Checkpoints are only written at the end of an epoch, so the last good one on disk is never replaced.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from snnc.ir.diagnostics import Diagnostic, DiagnosticError

CODE = "E-NUMERICS"


class NumericalFaultError(DiagnosticError, FloatingPointError):
    """NaN or Inf in a projection's gradient or weights; `where` is (kind, projection, epoch, batch)."""

    def __init__(
        self, kind: str, projection: str, epoch: int | None, batch: int | None, detail: str, hint: str
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
        super().__init__(Diagnostic(CODE, message, None, hint))


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


def check_finite(
    kind: str,
    arrays: Mapping[str, Any],
    *,
    epoch: int | None = None,
    batch: int | None = None,
    artefact: Any = None,
) -> None:
    """Raise `NumericalFaultError` for the first (by name) array in `arrays` holding NaN or Inf.

    kind: "gradient" or "weights", used in the message; weights checked with `batch=None` are the
    ones training starts from (initialiser, File() weights, a resumed checkpoint).
    """
    for name in sorted(arrays):
        a = np.asarray(arrays[name])
        if a.dtype.kind not in "fc" or np.isfinite(a).all():  # one pass in the common case
            continue
        counts = count_non_finite(a)
        size = int(a.size)
        states = non_finite_states(artefact) if artefact is not None else []
        if states:
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
        raise NumericalFaultError(kind, str(name), epoch, batch, _describe(counts, size), hint)
