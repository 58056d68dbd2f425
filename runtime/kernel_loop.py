"""Training batches whose loss and optimiser step run inside the artefact (its kernel's learning
phases, passes/schedule_learning.py), with the trainer's own loop as the reference they match.

At batch 1 the numpy loss, its gradient, the Adam step and the metric cost several times the
simulation of a small network. An artefact compiled with learning phases (`artefact.learning`)
computes them itself; the trainer then only hands over the batch, the labels and this step's
hyperparameters, checks the summed gradients for NaN/Inf before the weights move, and adds the
loss and correct counts up. Under MPI each rank runs its share of the batch and the summed
gradients are allreduced between the gather and the step, as in the trainer's loop. Whenever the trainer was given something the kernel does not compute
(another loss or temperature, a metric other than accuracy, a regulariser, a callback that reads
the forward pass, an optimiser of another kind, an artefact whose `run` or `backward` was
wrapped by the caller), `kernel_learning` says no and the trainer's
loop runs instead, with the same results up to rounding.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from snnc.runtime.callbacks import Callback, CallbackList
from snnc.runtime.losses import TIME_READOUT, Loss, SparseCategoricalCrossentropy
from snnc.runtime.metrics import Metric, SparseCategoricalAccuracy
from snnc.runtime.numerics import FEW_VALUES, check_finite, locate_fault


def kernel_learning(
    trainer: Any, losses: Mapping[str, Loss], metrics: Mapping[str, Metric], cbs: CallbackList
):
    """The artefact's learning driver when it can run this training exactly as `trainer` would,
    else None."""
    art = trainer.artefact
    learning = getattr(art, "learning", None)
    if learning is None or trainer.regularisers or getattr(trainer, "rewiring", None) is not None:
        return None
    if any(hook in vars(art) for hook in ("run", "backward", "forward")):  # wrapped: a caller watches
        return None
    spec = learning.spec
    optimiser = trainer.optimiser
    if optimiser is None or optimiser.kernel_rule != spec["optimiser"]:
        return None
    if set(losses) != set(spec["outputs"]) or set(metrics) != set(spec["outputs"]):
        return None
    for pop, loss in losses.items():
        if type(loss) is not SparseCategoricalCrossentropy or loss.temperature != spec["temperature"]:
            return None
        metric = metrics[pop]
        if type(metric) is not SparseCategoricalAccuracy or metric.readout == TIME_READOUT:
            return None
    if cbs.records() or any(type(c).on_forward is not Callback.on_forward for c in cbs.callbacks):
        return None
    return learning


def run_batch(
    trainer: Any,
    learning: Any,
    x_batch: Mapping[str, Any],
    y_batch: Mapping[str, Any],
    idx: Sequence[int],
    metrics: Mapping[str, Metric],
    b: int,
    n_batch: int | None = None,
) -> float:
    """One learning batch through the artefact; returns the batch-mean loss, as `_run_batch` does.
    Under MPI `idx` is this rank's share of a batch of `n_batch` examples."""
    optimiser, art = trainer.optimiser, trainer.artefact
    rows = len(idx)
    n_all = rows if n_batch is None else n_batch
    summed = optimiser.reduction == "sum"
    outputs = learning.spec["outputs"]
    labels = {pop: _labels(y_batch[pop], rows, int(out["size"]), pop) for pop, out in outputs.items()}
    # dL/dy of a mean is divided by the real rows; a "sum" optimiser takes the rows' sum instead
    outcome = learning.forward_backward(x_batch, labels, idx, 1.0 if summed else float(max(n_all, 1)))
    total = 0.0
    for pop, metric in metrics.items():
        metric.correct += outcome.correct[pop]
        metric.total += outcome.rows
        total += outcome.loss[pop] / max(n_all, 1)  # Σ -log p / rows: the loss's own `_mean`
    grads = outcome.grads
    if n_batch is not None:  # every rank's sums added up, in place: the step reads these arrays
        for key, summed_grad in trainer._reduced.reduce(trainer.world, grads).items():
            grads[key][...] = summed_grad
    if not learning.gradients_finite():  # one pass; then name it
        check_finite(
            "gradient",
            {k: g.reshape(learning.shapes[k]) for k, g in grads.items()},
            epoch=getattr(trainer, "_current_epoch", None),
            batch=b,
            artefact=art,
            locate=lambda: locate_fault(art, x_batch, idx),
        )
    learning.prepare_step(optimiser)
    learning.step(optimiser.kernel_step())
    weights = learning.weights()
    if not all(math.isfinite(float(w.sum())) for w in weights.values()):  # the step overflowed?
        check_finite(
            "weights", weights, epoch=getattr(trainer, "_current_epoch", None), batch=b, artefact=art
        )
    return total


def _labels(y: Any, rows: int, n: int, pop: str) -> np.ndarray:
    """Integer class labels of the batch's real rows, checked as the loss checks them (the kernel
    reads the readout of the label's neuron: a label out of range must never reach it)."""
    raw = np.asarray(y).reshape(-1)
    if raw.shape[0] != rows:
        raise ValueError(f"{rows} predictions but {raw.shape[0]} labels for '{pop}'")
    if raw.dtype.kind not in "iu":
        with np.errstate(invalid="ignore"):
            labels = raw.astype(np.int64)
        if not np.array_equal(raw, labels):
            raise ValueError(f"labels must be whole numbers (class indices); got {raw[raw != labels][0]}")
        raw = labels
    if rows:
        low, high = (min(raw.tolist()), max(raw.tolist())) if rows < FEW_VALUES else (raw.min(), raw.max())
        if low < 0 or high >= n:
            raise ValueError(f"labels must lie in [0, {n}); got {low}..{high}")
    return raw
