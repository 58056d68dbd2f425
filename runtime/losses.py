"""Losses on readouts, computed in numpy: a batch-mean value and its gradient dL/dy.

The backend runs the network forward, the runtime turns the readout `y` into a loss and `dL/dy`, and
the backend's backward pass turns `dL/dy` into weight gradients. Every loss here is a mean over the
examples of the batch, so the gradient of row b is already divided by the number of real examples:
padding rows are simply never given to the loss. Under MPI a rank gives a loss its share of a batch
and `batch=` the whole batch's size, which then divides instead (runtime/distributed.py), so each
row's dL/dy is the single-process one, bit for bit.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from snnc.runtime.errors import RuntimeConfigError, check_args, unknown_name

TIME_READOUT = "first_spike_time"


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - np.max(z, axis=-1, keepdims=True)
    e = np.exp(z)
    return e / np.sum(e, axis=-1, keepdims=True)


def _labels(y_true: np.ndarray, batch: int, n: int) -> np.ndarray:
    raw = np.asarray(y_true).reshape(-1)
    if raw.dtype.kind in "iu":  # the usual case: nothing to convert or to check for fractions
        labels = raw.astype(np.int64, copy=False)
    else:
        with np.errstate(invalid="ignore"):
            labels = raw.astype(np.int64)
    if raw.dtype.kind == "f" and not np.array_equal(raw, labels):
        bad = raw[raw != labels][0]
        raise ValueError(f"labels must be whole numbers (class indices); got {bad}")
    if labels.shape[0] != batch:
        raise ValueError(f"{batch} predictions but {labels.shape[0]} labels")
    if labels.size and (labels.min() < 0 or labels.max() >= n):
        raise ValueError(f"labels must lie in [0, {n}); got {labels.min()}..{labels.max()}")
    return labels


def _mean(values: np.ndarray, batch: int | None) -> float:
    """The batch mean of per-example values; with `batch`, their sum divided by it (a rank's part)."""
    if batch is None:  # sum / count is np.mean's own arithmetic, without its per-call cost
        return float(values.sum()) / len(values) if len(values) else 0.0
    return float(np.sum(values) / batch)


def _rows(b: int, batch: int | None) -> int:
    """What a per-example gradient is divided by: the given rows, or the whole (shared) batch."""
    return max(b, 1) if batch is None else batch


class Loss:
    """A loss on one output population's readout.

    `readout` names the readout kind the loss expects (None: any value readout). Subclasses implement
    `__call__(y, y_true, batch=None) -> (value, dl_dy)` with `dl_dy` shaped like `y`; `batch`, when
    given, is the number of examples the mean is over (rows of `y` are a share of them).
    """

    name = "loss"
    readout: str | None = None
    #: the metric reported by default next to this loss
    default_metric = "sparse_categorical_accuracy"

    def __call__(
        self, y: np.ndarray, y_true: np.ndarray, batch: int | None = None
    ) -> tuple[float, np.ndarray]:
        raise NotImplementedError

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items())
        return f"{self.name}({args})"


class SparseCategoricalCrossentropy(Loss):
    """Softmax cross-entropy of `y / temperature` [batch, n] against integer labels [batch].

    With `per_timestep`, the per-timestep loss of mlGeNN's EventProp (`per_timestep_loss`, loss
    shaping in Nowotny et al. 2025): y is the read variable at every step [batch, steps, n] (the
    trainer records it), and the loss is each step's cross-entropy against the label, averaged over
    the steps. The readout itself (avg_var, sum_var) still gives the prediction.
    """

    name = "sparse_categorical_crossentropy"

    def __init__(self, temperature: float = 1.0, per_timestep: bool = False):
        if temperature <= 0:
            raise ValueError("temperature must be positive")
        self.temperature = float(temperature)
        self.per_timestep = bool(per_timestep)

    def __call__(self, y, y_true, batch=None):
        y = np.asarray(y, dtype=np.float64)
        if self.per_timestep:
            return self._per_step(y, y_true, batch)
        if y.ndim != 2:
            raise ValueError(f"{self.name} needs y of shape [batch, n], got {y.shape}")
        b, n = y.shape
        labels = _labels(y_true, b, n)
        p = _softmax(y / self.temperature)
        rows = np.arange(b)
        value = -_mean(np.log(np.maximum(p[rows, labels], 1e-300)), batch)
        grad = p.copy()
        grad[rows, labels] -= 1.0
        return value, grad / (self.temperature * _rows(b, batch))

    def _per_step(self, y: np.ndarray, y_true, batch: int | None) -> tuple[float, np.ndarray]:
        if y.ndim != 3:
            raise ValueError(f"{self.name}(per_timestep) needs y of shape [batch, steps, n], got {y.shape}")
        b, steps, n = y.shape
        labels = _labels(y_true, b, n)
        p = _softmax(y / self.temperature)
        rows = np.arange(b)
        picked = p[rows, :, labels]  # [batch, steps]: every step's probability of the label
        value = -_mean(np.log(np.maximum(picked, 1e-300)).mean(axis=1), batch)
        grad = p.copy()
        grad[rows, :, labels] -= 1.0
        return value, grad / (self.temperature * steps * _rows(b, batch))


class MeanSquareError(Loss):
    """Mean over all elements of (y − target)², e.g. y [batch, T, n] against per-timestep targets."""

    name = "mean_square_error"
    default_metric = "mean_square_error"

    def __call__(self, y, y_true, batch=None):
        y = np.asarray(y, dtype=np.float64)
        target = np.asarray(y_true, dtype=np.float64)
        if target.shape != y.shape:
            raise ValueError(f"{self.name}: target shape {target.shape} differs from output {y.shape}")
        diff = y - target
        size = max(diff.size, 1) if batch is None else batch * int(np.prod(diff.shape[1:]))
        return float(np.sum(diff**2) / size), 2.0 * diff / size


class _SpikeTimeLoss(Loss):
    """Losses on first spike times [batch, n]; +inf (never spiked) is handled, never propagated.

    A neuron that never spiked has no spike time to move, so its gradient is zero; for the value its
    time is taken as `t_nospike` (the trial duration when the trainer knows it, else the latest finite
    time in the batch).
    """

    readout = TIME_READOUT

    def __init__(self, t_nospike: float | None = None):
        self.t_nospike = t_nospike

    def _times(self, y) -> tuple[np.ndarray, np.ndarray]:
        t = np.asarray(y, dtype=np.float64)
        if t.ndim != 2:
            raise ValueError(f"{self.name} needs spike times of shape [batch, n], got {t.shape}")
        spiked = np.isfinite(t)
        fill = self.t_nospike
        if fill is None:
            fill = float(np.max(t[spiked])) if spiked.any() else 0.0
        return np.where(spiked, t, fill), spiked


class TimeToFirstSpikeCrossentropy(_SpikeTimeLoss):
    """Göltz / Wunderlich & Pehle: −log softmax(−t/τ0)[label] + α(exp(t_label/τ1) − 1)."""

    name = "ttfs_crossentropy"

    def __init__(self, tau0: float = 0.5, tau1: float = 6.4, alpha: float = 0.0, t_nospike=None):
        super().__init__(t_nospike)
        if tau0 <= 0 or tau1 <= 0:
            raise ValueError("tau0 and tau1 must be positive")
        self.tau0, self.tau1, self.alpha = float(tau0), float(tau1), float(alpha)

    def __call__(self, y, y_true, batch=None):
        t, spiked = self._times(y)
        b, n = t.shape
        labels = _labels(y_true, b, n)
        rows = np.arange(b)
        p = _softmax(-t / self.tau0)
        t_l = t[rows, labels]
        reg = np.exp(t_l / self.tau1) - 1.0
        value = _mean(-np.log(np.maximum(p[rows, labels], 1e-300)) + self.alpha * reg, batch)
        grad = -p / self.tau0
        grad[rows, labels] += 1.0 / self.tau0 + self.alpha / self.tau1 * np.exp(t_l / self.tau1)
        grad = np.where(spiked, grad, 0.0)
        return value, grad / _rows(b, batch)


class RelativeMeanSquareError(_SpikeTimeLoss):
    """W&P / Göltz Yin-Yang loss: ½ Σ_{i≠label} (t_i − t_label − δ)², mean over the batch.

    It asks every wrong neuron to fire `delta` later than the correct one.
    """

    name = "relative_mse"

    def __init__(self, delta: float = 1.0, t_nospike=None):
        super().__init__(t_nospike)
        self.delta = float(delta)

    def __call__(self, y, y_true, batch=None):
        t, spiked = self._times(y)
        b, n = t.shape
        labels = _labels(y_true, b, n)
        rows = np.arange(b)
        r = t - t[rows, labels][:, None] - self.delta  # residual per neuron
        r[rows, labels] = 0.0
        value = _mean(0.5 * np.sum(r**2, axis=1), batch)
        grad = r.copy()
        grad[rows, labels] = -np.sum(r, axis=1)
        grad = np.where(spiked, grad, 0.0)
        return value, grad / _rows(b, batch)


class SpikeCountRegulariser:
    """Keeps hidden activity in a band: ½λ_u Σ relu(c̄ − ν_u)² + ½λ_l Σ relu(ν_l − c̄)².

    c̄ is each neuron's spike count per trial averaged over the batch; ν_u, ν_l are target counts per
    neuron per trial. The gradient is with respect to each example's counts [batch, n].
    """

    def __init__(
        self, upper: float = 0.0, lower: float = 0.0, nu_upper: float = np.inf, nu_lower: float = 0.0
    ):
        self.upper, self.lower = float(upper), float(lower)
        self.nu_upper, self.nu_lower = float(nu_upper), float(nu_lower)
        # a negative strength pushes counts away from the band, a band upside down pushes both ways
        for name, value in (("upper", self.upper), ("lower", self.lower), ("nu_lower", self.nu_lower)):
            if not value >= 0:
                raise ValueError(f"SpikeCountRegulariser: {name} must be at least 0, not {value}")
        if not self.nu_upper >= self.nu_lower:
            raise ValueError(
                f"SpikeCountRegulariser: nu_upper ({self.nu_upper}) must be at least nu_lower ({self.nu_lower})"
            )

    def __call__(
        self, counts: np.ndarray, total: np.ndarray | None = None, batch: int | None = None
    ) -> tuple[float, np.ndarray]:
        """`counts` [rows, n]; under MPI `total` [n] and `batch` are the whole batch's count sums and size."""
        c = np.asarray(counts, dtype=np.float64)
        if total is not None and batch is not None:
            b = max(int(batch), 1)
            mean = np.asarray(total, dtype=np.float64) / b
        else:
            b = max(c.shape[0], 1)
            mean = c.mean(axis=0) if c.shape[0] else np.zeros(c.shape[1:])
        over = np.maximum(mean - self.nu_upper, 0.0)
        under = np.maximum(self.nu_lower - mean, 0.0)
        value = 0.5 * self.upper * np.sum(over**2) + 0.5 * self.lower * np.sum(under**2)
        per_neuron = (self.upper * over - self.lower * under) / b
        return float(value), np.broadcast_to(per_neuron, c.shape).copy()

    def __repr__(self) -> str:
        return (
            f"SpikeCountRegulariser(upper={self.upper}, lower={self.lower}, "
            f"nu_upper={self.nu_upper}, nu_lower={self.nu_lower})"
        )


LOSSES: dict[str, type[Loss]] = {
    "sparse_categorical_crossentropy": SparseCategoricalCrossentropy,
    "mean_square_error": MeanSquareError,
    "mse": MeanSquareError,
    "ttfs_crossentropy": TimeToFirstSpikeCrossentropy,
    "time_to_first_spike_crossentropy": TimeToFirstSpikeCrossentropy,
    "relative_mse": RelativeMeanSquareError,
    "relative_mean_square_error": RelativeMeanSquareError,
}

_ARGS = {
    SparseCategoricalCrossentropy: ("temperature", "per_timestep"),
    MeanSquareError: (),
    TimeToFirstSpikeCrossentropy: ("tau0", "tau1", "alpha", "t_nospike"),
    RelativeMeanSquareError: ("delta", "t_nospike"),
}


def get_loss(spec: str | Loss, args: Mapping[str, Any] | None = None, span=None) -> Loss:
    """A loss from its `.snn` name and keyword arguments (or a Loss object, returned as is)."""
    if isinstance(spec, Loss):
        return spec
    cls = LOSSES.get(spec)
    if cls is None:
        raise unknown_name("loss", spec, LOSSES, span)
    args = dict(args or {})
    check_args("loss", spec, args, _ARGS[cls], span)
    try:
        return cls(**args)
    except (TypeError, ValueError) as e:  # a value out of range or of the wrong kind
        raise RuntimeConfigError("E-LOSS-ARG", f"loss '{spec}': {e}", span=span) from None
