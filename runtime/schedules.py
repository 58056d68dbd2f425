"""Schedules for optimiser hyperparameters, applied at the start of every epoch.

`StepDecay` and `ExponentialDecay` compute the value from the epoch number and the value before any
schedule ran (kept on the optimiser, and in its checkpointed state), so calling `train` once per
epoch with `start_epoch=e` gives the same values as one uninterrupted run. `OptimiserParamSchedule`
is mlGeNN's: `fn(epoch, current_value) -> new_value`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from snnc.runtime.callbacks import Callback, LoopContext
from snnc.runtime.errors import RuntimeConfigError, check_args, unknown_name


def _optimiser(context: LoopContext):
    trainer = context.trainer
    opt = getattr(trainer, "optimiser", None)
    if opt is None:
        raise RuntimeError("an optimiser schedule needs a trainer with an optimiser")
    return opt


class OptimiserParamSchedule(Callback):
    """Sets optimiser hyperparameter `param` to `fn(epoch, value)` at the start of each epoch."""

    def __init__(self, param: str, fn: Callable[[int, float], float], verbose: bool = False):
        self.param = "lr" if param == "alpha" else param  # mlGeNN calls the learning rate alpha
        self.fn = fn
        self.verbose = verbose

    def set_params(self, context: LoopContext) -> None:
        super().set_params(context)
        self.optimiser = None if context.mode != "train" else _optimiser(context)
        if self.optimiser is not None and not hasattr(self.optimiser, self.param):
            raise RuntimeConfigError(
                "E-SCHEDULE-ARG", f"optimiser '{self.optimiser.name}' has no parameter '{self.param}'"
            )

    def on_epoch_begin(self, epoch: int) -> None:
        if self.optimiser is None:
            return
        value = float(self.fn(epoch, getattr(self.optimiser, self.param)))
        setattr(self.optimiser, self.param, value)
        if self.verbose:
            print(f"epoch {epoch}: {self.param} = {value:g}")


class _DecaySchedule(OptimiserParamSchedule):
    def __init__(self, param: str = "lr", initial: float | None = None):
        super().__init__(param, self._value)
        self.initial = initial

    def set_params(self, context: LoopContext) -> None:
        super().set_params(context)
        if self.optimiser is not None:
            start = self.initial if self.initial is not None else getattr(self.optimiser, self.param)
            self.optimiser.initial_hyper.setdefault(self.param, float(start))

    def _value(self, epoch: int, _current: float) -> float:
        return self.decay(epoch, self.optimiser.initial_hyper[self.param])

    def decay(self, epoch: int, initial: float) -> float:
        raise NotImplementedError


class StepDecay(_DecaySchedule):
    """value = initial · gamma^(epoch // step_size)."""

    def __init__(self, step_size: int, gamma: float = 0.1, param: str = "lr", initial: float | None = None):
        super().__init__(param, initial)
        if int(step_size) < 1:
            raise RuntimeConfigError("E-SCHEDULE-ARG", "step_size must be at least 1")
        self.step_size, self.gamma = int(step_size), float(gamma)

    def decay(self, epoch, initial):
        return initial * self.gamma ** (epoch // self.step_size)


class ExponentialDecay(_DecaySchedule):
    """value = initial · gamma^epoch."""

    def __init__(self, gamma: float, param: str = "lr", initial: float | None = None):
        super().__init__(param, initial)
        self.gamma = float(gamma)

    def decay(self, epoch, initial):
        return initial * self.gamma**epoch


SCHEDULES = {"step_decay": StepDecay, "exponential_decay": ExponentialDecay}
_ARGS = {
    StepDecay: ("step_size", "gamma", "param", "initial"),
    ExponentialDecay: ("gamma", "param", "initial"),
}


def get_schedule(name: str, args: Mapping[str, Any] | None = None, span=None) -> OptimiserParamSchedule:
    """A schedule from the `.snn` training block (`schedule = step_decay(step_size = 10, gamma = 0.5)`)."""
    cls = SCHEDULES.get(name)
    if cls is None:
        raise unknown_name("schedule", name, SCHEDULES, span)
    args = dict(args or {})
    check_args("schedule", name, args, _ARGS[cls], span)
    try:
        return cls(**args)
    except (TypeError, ValueError) as e:
        raise RuntimeConfigError("E-SCHEDULE-ARG", f"schedule '{name}': {e}", span=span) from None
