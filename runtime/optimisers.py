"""Optimisers that update the artefact's weight arrays in place (numpy, float32).

The backend owns the weights as numpy arrays; an optimiser step writes into them without copying, so
the next forward pass sees the new weights. State (moments, step count) is exported as plain arrays
so a checkpoint can hold it in an `.npz` file with no pickle.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
from snnc.runtime.errors import RuntimeConfigError, check_args, unknown_name

REDUCTIONS = ("mean", "sum")


def _in_range(
    name: str,
    value: float,
    low: float,
    high: float | None,
    *,
    lower_open: bool = False,
    upper_open: bool = False,
) -> float:
    """`value` as a float, or a ValueError saying the range it must lie in."""
    v = float(value)
    ok = (v > low if lower_open else v >= low) and (high is None or (v < high if upper_open else v <= high))
    if not ok:
        left = "(" if lower_open else "["
        right = ")" if upper_open else "]"
        where = f"{left}{low:g}, {'inf)' if high is None else f'{high:g}{right}'}"
        raise ValueError(f"{name} must lie in {where}, not {value}")
    return v


class Optimiser:
    """Base class: learning rate, optional per-projection clamps, batch reduction of gradients.

    `reduction` says how the trainer combines per-example gradients: "mean" (the gradient of the
    batch-mean loss) or "sum" (the mean multiplied by the number of real examples in the batch).
    `clamp` maps a projection name to (min, max); either bound may be None.
    `lr_scale` maps a key to a factor on the learning rate.
    """

    name = "optimiser"
    hyper: tuple[str, ...] = ("lr",)
    #: the update rule of the kernel's step phase that is this optimiser (passes/schedule_learning.py)
    kernel_rule: str | None = None

    def __init__(
        self,
        lr: float,
        clamp: Mapping[str, tuple[float | None, float | None]] | None = None,
        reduction: str = "mean",
    ):
        if reduction not in REDUCTIONS:
            raise RuntimeConfigError(
                "E-OPTIMISER-ARG", f"reduction must be one of {REDUCTIONS}, not '{reduction}'"
            )
        self.lr = _in_range("lr", lr, 0.0, None)
        self.clamp = dict(clamp or {})
        #: key -> factor on the learning rate (a trainable param's `Trainable(..., lr = 0.1)`)
        self.lr_scale: dict[str, float] = {}
        self.reduction = reduction
        self.step_count = 0
        #: hyperparameter values before any schedule touched them (schedules decay from these)
        self.initial_hyper: dict[str, float] = {}

    def step(self, params: Mapping[str, np.ndarray], grads: Mapping[str, np.ndarray]) -> None:
        """One update of every parameter that has a gradient, in place."""
        self.step_count += 1
        for key, grad in grads.items():
            if key not in params:
                raise KeyError(f"gradient for unknown projection '{key}'")
            w = params[key]
            if w.shape != np.shape(grad):
                raise ValueError(f"gradient for '{key}' has shape {np.shape(grad)}, weights {w.shape}")
            self._update(key, w, np.asarray(grad, dtype=np.float64))
            bounds = self.clamp.get(key)
            if bounds is not None:
                np.clip(w, bounds[0], bounds[1], out=w)

    def _update(self, key: str, w: np.ndarray, grad: np.ndarray) -> None:
        raise NotImplementedError

    # the kernel's step phase (the artefact steps the weights; the state stays here) ---------------
    def kernel_step(self) -> dict[str, float]:
        """Count a step the artefact's kernel takes; the hyperparameters it reads for it."""
        raise NotImplementedError

    def kernel_buffer(self, moment: str, key: str, shape: tuple[int, ...]) -> np.ndarray:
        """The float64 buffer that holds `moment` of `key` (created as zeros), which the kernel's
        step reads and writes in place: the same state `step` would keep."""
        raise NotImplementedError

    def kernel_bounds(self, key: str) -> tuple[float, float, float]:
        """(learning-rate factor, lower bound, upper bound) of `key`, ±inf where it has none."""
        lo, hi = self.clamp.get(key, (None, None))
        return (
            self.lr_scale.get(key, 1.0),
            -np.inf if lo is None else float(lo),
            np.inf if hi is None else float(hi),
        )

    # state for checkpoints ------------------------------------------------------------------------
    def state_dict(self) -> dict[str, np.ndarray]:
        """Plain arrays: hyperparameters, the step count and per-projection buffers."""
        out = {f"hyper/{h}": np.asarray(getattr(self, h), dtype=np.float64) for h in self.hyper}
        out["step_count"] = np.asarray(self.step_count, dtype=np.int64)
        for h, value in self.initial_hyper.items():
            out[f"initial/{h}"] = np.asarray(value, dtype=np.float64)
        for buf, arrays in self._buffers().items():
            for key, arr in arrays.items():
                out[f"{buf}/{key}"] = arr.copy()
        return out

    def load_state_dict(self, state: Mapping[str, np.ndarray]) -> None:
        for h in self.hyper:
            if f"hyper/{h}" in state:
                setattr(self, h, float(state[f"hyper/{h}"]))
        self.step_count = int(state["step_count"])
        self.initial_hyper = {
            k[len("initial/") :]: float(v) for k, v in state.items() if k.startswith("initial/")
        }
        buffers = self._buffers()
        for buf in buffers.values():
            buf.clear()
        for full, arr in state.items():
            head, _, key = full.partition("/")
            if head in buffers:
                buffers[head][key] = np.array(arr, dtype=np.float64)

    def _buffers(self) -> dict[str, dict[str, np.ndarray]]:
        return {}

    def reset_moments(self, key: str, where: np.ndarray) -> None:
        """Zero every per-element state of `key` (Adam's moments, SGD's velocity) where `where` is
        true: a rewired synapse starts its optimiser state anew (runtime/rewiring.py)."""
        for arrays in self._buffers().values():
            if key in arrays:
                arrays[key][where] = 0.0

    def __repr__(self) -> str:
        args = ", ".join(f"{h}={getattr(self, h)!r}" for h in self.hyper)
        return f"{type(self).__name__}({args}, reduction={self.reduction!r})"


class SGD(Optimiser):
    """w ← w − lr·(g + momentum·previous step) (plain gradient descent when momentum is 0)."""

    name = "sgd"
    hyper = ("lr", "momentum")

    def __init__(self, lr: float = 0.01, momentum: float = 0.0, clamp=None, reduction: str = "mean"):
        super().__init__(lr, clamp, reduction)
        self.momentum = _in_range("momentum", momentum, 0.0, 1.0, upper_open=True)
        self.velocity: dict[str, np.ndarray] = {}
        self._scratch: dict[str, np.ndarray] = {}  # the kernel's velocity when momentum is 0

    def _update(self, key, w, grad):
        if self.momentum:
            v = self.velocity.setdefault(key, np.zeros(w.shape))
            v *= self.momentum
            v += grad
            grad = v
        w -= (self.lr * self.lr_scale.get(key, 1.0) * grad).astype(w.dtype)

    def _buffers(self):
        return {"velocity": self.velocity}

    kernel_rule = "sgd"

    def kernel_step(self) -> dict[str, float]:
        self.step_count += 1
        return {"lr": self.lr, "momentum": self.momentum}

    def kernel_buffer(self, moment, key, shape):
        if moment != "velocity":
            raise KeyError(moment)
        if not self.momentum:  # no state to keep: the kernel's velocity is this step's gradient
            buf = self._scratch.get(key)
            if buf is None or buf.shape != shape:
                buf = self._scratch[key] = np.zeros(shape)
            return buf
        v = self.velocity.get(key)
        if v is None:
            v = self.velocity[key] = np.zeros(shape)
        return v


class Adam(Optimiser):
    """Adam (Kingma & Ba) with bias correction and mlGeNN's defaults.

    m ← β1 m + (1−β1) g;  v ← β2 v + (1−β2) g²;  w ← w − lr · (m / (1−β1^t)) / (sqrt(v / (1−β2^t)) + ε).
    Moments are kept in float64 so that float32 weights do not lose small steps to rounding twice.
    """

    name = "adam"
    hyper = ("lr", "beta1", "beta2", "epsilon")

    def __init__(
        self,
        lr: float = 0.001,
        beta1: float = 0.9,
        beta2: float = 0.999,
        epsilon: float = 1e-8,
        clamp=None,
        reduction: str = "mean",
    ):
        super().__init__(lr, clamp, reduction)
        # beta = 1 divides by 1 - beta^t = 0, beta > 1 takes the root of a negative v, epsilon = 0
        # divides 0 by 0 where a weight never had a gradient: NaN weights after the first step
        self.beta1 = _in_range("beta1", beta1, 0.0, 1.0, upper_open=True)
        self.beta2 = _in_range("beta2", beta2, 0.0, 1.0, upper_open=True)
        self.epsilon = _in_range("epsilon", epsilon, 0.0, None, lower_open=True)
        self.m: dict[str, np.ndarray] = {}
        self.v: dict[str, np.ndarray] = {}
        self._tmp: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._tmp_w: dict[str, np.ndarray] = {}

    def _update(self, key, w, grad):
        m = self.m.get(key)
        if m is None:
            m = self.m[key] = np.zeros(w.shape)
            self.v[key] = np.zeros(w.shape)
        v = self.v[key]
        # the textbook formula term by term, in two scratch arrays instead of ten temporaries
        # (at batch 1 numpy's per-call cost is most of a step); same operations, same bits
        a, b = self._scratch(key, w.shape)
        m *= self.beta1
        np.multiply(1.0 - self.beta1, grad, out=a)
        m += a
        v *= self.beta2
        np.multiply(1.0 - self.beta2, grad, out=a)
        a *= grad
        v += a
        t = self.step_count
        np.divide(m, 1.0 - self.beta1**t, out=a)  # m_hat
        np.divide(v, 1.0 - self.beta2**t, out=b)  # v_hat
        np.sqrt(b, out=b)
        b += self.epsilon
        np.multiply(self.lr * self.lr_scale.get(key, 1.0), a, out=a)  # lr_scale: a Trainable's lr
        a /= b
        if w.dtype == a.dtype:
            w -= a
        else:  # the step rounded to w's precision first, as `w -= step.astype(w.dtype)` does
            c = self._scratch_like(key, w)
            np.copyto(c, a, casting="unsafe")
            w -= c

    def _scratch(self, key: str, shape: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
        pair = self._tmp.get(key)
        if pair is None or pair[0].shape != shape:
            pair = self._tmp[key] = (np.empty(shape), np.empty(shape))
        return pair

    def _scratch_like(self, key: str, w: np.ndarray) -> np.ndarray:
        c = self._tmp_w.get(key)
        if c is None or c.shape != w.shape or c.dtype != w.dtype:
            c = self._tmp_w[key] = np.empty_like(w)
        return c

    def _buffers(self):
        return {"m": self.m, "v": self.v}

    kernel_rule = "adam"

    def kernel_step(self) -> dict[str, float]:
        self.step_count += 1
        t = self.step_count
        return {
            "lr": self.lr,
            "beta1": self.beta1,
            "beta2": self.beta2,
            "epsilon": self.epsilon,
            "correction1": 1.0 - self.beta1**t,
            "correction2": 1.0 - self.beta2**t,
        }

    def kernel_buffer(self, moment, key, shape):
        buffers = {"m": self.m, "v": self.v}[moment]
        buf = buffers.get(key)
        if buf is None:
            self.m[key], self.v[key] = np.zeros(shape), np.zeros(shape)
            buf = buffers[key]
        return buf


OPTIMISERS: dict[str, type[Optimiser]] = {"adam": Adam, "sgd": SGD}
_COMMON = ("lr", "clamp", "reduction")


def apply_trainable_params(optimiser: Optimiser, manifest: Mapping[str, Any] | None) -> None:
    """The bounds (clipped after every step) and learning-rate scales of an artefact's trainable
    params (`manifest["trainable_params"]`: key -> {min, max, lr_scale})."""
    for key, spec in ((manifest or {}).get("trainable_params") or {}).items():
        if spec.get("min") is not None or spec.get("max") is not None:
            optimiser.clamp.setdefault(key, (spec.get("min"), spec.get("max")))
        if spec.get("lr_scale", 1.0) != 1.0:
            optimiser.lr_scale.setdefault(key, float(spec["lr_scale"]))


def get_optimiser(spec: str | Optimiser, args: Mapping[str, Any] | None = None, span=None) -> Optimiser:
    """An optimiser from its `.snn` name and keyword arguments (or an Optimiser, returned as is).

    `alpha` is accepted as mlGeNN's name for the learning rate.
    """
    if isinstance(spec, Optimiser):
        return spec
    cls = OPTIMISERS.get(spec)
    if cls is None:
        raise unknown_name("optimiser", spec, OPTIMISERS, span)
    args = dict(args or {})
    if "alpha" in args and "lr" not in args:
        args["lr"] = args.pop("alpha")
    check_args("optimiser", spec, args, set(cls.hyper) | set(_COMMON), span)
    try:
        return cls(**args)
    except (TypeError, ValueError) as e:  # lr = "fast", a value out of range
        raise RuntimeConfigError("E-OPTIMISER-ARG", f"optimiser '{spec}': {e}", span=span) from None
