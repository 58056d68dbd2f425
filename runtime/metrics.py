"""Metrics accumulated over batches: sparse categorical accuracy and mean squared error.

A metric object is reset at the start of an epoch, updated with each batch's real (unpadded) examples
and read through `result`, as in mlGeNN. For first-spike-time readouts the prediction is the neuron
that fired first (argmin of t, a neuron that never fired counts as +inf).
"""

from __future__ import annotations

import numpy as np
from snnc.runtime.errors import unknown_name
from snnc.runtime.losses import TIME_READOUT


class Metric:
    name = "metric"

    def __init__(self, readout: str | None = None):
        self.readout = readout
        self.reset()

    def reset(self) -> None:
        raise NotImplementedError

    def update(self, y_pred: np.ndarray, y_true: np.ndarray) -> None:
        raise NotImplementedError

    @property
    def result(self) -> float:
        raise NotImplementedError


class SparseCategoricalAccuracy(Metric):
    """Fraction of examples whose predicted class equals the integer label."""

    name = "sparse_categorical_accuracy"
    short = "accuracy"

    def reset(self) -> None:
        self.correct = 0
        self.total = 0

    def predict(self, y_pred: np.ndarray) -> np.ndarray:
        y = np.asarray(y_pred, dtype=np.float64)
        if self.readout == TIME_READOUT:
            return np.argmin(np.where(np.isnan(y), np.inf, y), axis=-1)
        return np.argmax(y, axis=-1)

    def update(self, y_pred, y_true) -> None:
        pred = self.predict(y_pred)
        labels = np.asarray(y_true).reshape(pred.shape)
        self.correct += int(np.sum(pred == labels))
        self.total += int(pred.shape[0])

    @property
    def result(self) -> float:
        return self.correct / self.total if self.total else float("nan")


class MeanSquaredError(Metric):
    """Mean over all elements of (y − target)²."""

    name = "mean_square_error"
    short = "mse"

    def reset(self) -> None:
        self.sum = 0.0
        self.count = 0

    def update(self, y_pred, y_true) -> None:
        diff = np.asarray(y_pred, dtype=np.float64) - np.asarray(y_true, dtype=np.float64)
        self.sum += float(np.sum(diff**2))
        self.count += int(diff.size)

    @property
    def result(self) -> float:
        return self.sum / self.count if self.count else float("nan")


METRICS: dict[str, type[Metric]] = {
    "sparse_categorical_accuracy": SparseCategoricalAccuracy,
    "accuracy": SparseCategoricalAccuracy,
    "mean_square_error": MeanSquaredError,
    "mse": MeanSquaredError,
}


def get_metric(spec: str | Metric, readout: str | None = None) -> Metric:
    """A fresh metric from its name (or a Metric object, returned as is)."""
    if isinstance(spec, Metric):
        return spec
    cls = METRICS.get(spec)
    if cls is None:
        raise unknown_name("metric", spec, METRICS)
    return cls(readout)
