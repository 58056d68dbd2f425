"""Callbacks: hooks the training and evaluation loops call, as in mlGeNN and Keras.

A callback may also ask the artefact to record something during the forward pass (`record`) and
receives the forward pass's outputs (`on_forward`), which is all a spike or variable recorder needs.
`get_data()` returns what the callback collected; `train` returns these keyed by `key`.

The concrete callbacks live next to what they use: `Checkpoint` in `checkpoint.py`,
`BatchProgressBar` in `progress.py`, `OptimiserParamSchedule` in `schedules.py`; they are importable
from here too.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any


@dataclass
class LoopContext:
    """What a callback may look at: the artefact, the trainer (None in evaluation) and loop sizes."""

    artefact: Any
    trainer: Any = None
    batch_size: int = 0
    num_examples: int = 0
    num_batches: int = 0
    num_epochs: int = 0
    start_epoch: int = 0
    mode: str = "train"  # "train" | "evaluate"
    extra: dict[str, Any] = field(default_factory=dict)


class Callback:
    """Base class; every hook does nothing unless overridden."""

    #: key under which `get_data()` is returned by `train`/`evaluate` (None: the class name)
    key: Any = None
    #: what the forward pass should record for this callback: population names (spike rasters),
    #: (population, state) pairs, or `RecordRequest`s
    record: tuple[Any, ...] = ()

    def set_params(self, context: LoopContext) -> None:
        self.context = context

    def on_train_begin(self) -> None: ...
    def on_train_end(self, metrics: Mapping[str, Any]) -> None: ...
    def on_test_begin(self) -> None: ...
    def on_test_end(self, metrics: Mapping[str, Any]) -> None: ...
    def on_epoch_begin(self, epoch: int) -> None: ...
    def on_epoch_end(self, epoch: int, metrics: Mapping[str, Any]) -> None: ...
    def on_batch_begin(self, batch: int) -> None: ...
    def on_batch_end(self, batch: int, metrics: Mapping[str, Any]) -> None: ...

    def on_forward(self, batch: int, result: Any, example_indices: Sequence[int]) -> None:
        """After each forward pass: the artefact's `RunResult` and the data set indices of its real
        rows (rows past `len(example_indices)` are padding)."""

    def get_data(self) -> Any:
        return None


class BatchObserver(Callback):
    """Adapts an object with `request() -> (spikes, vars)` and `on_batch(result, example_indices,
    num_examples)` (the recorders of `runtime/recording.py`) to the callback hooks."""

    def __init__(self, inner: Any):
        self.inner = inner
        spikes, vars_ = inner.request()
        self.record = (*spikes, *vars_)
        pop = getattr(inner, "pop", None)
        self.key = getattr(inner, "key", None) or (type(inner).__name__ + (f":{pop}" if pop else ""))

    def on_forward(self, batch, result, example_indices) -> None:
        self.inner.on_batch(result, list(example_indices), self.context.num_examples)

    def get_data(self) -> Any:
        """The inner object's `get_data()`, else the recorder itself (its attributes hold the data)."""
        get = getattr(self.inner, "get_data", None)
        return get() if get is not None else self.inner


class CallbackList:
    """Dispatches each hook to every callback in order."""

    def __init__(self, callbacks: Iterable[Any] = ()):
        self.callbacks: list[Callback] = []
        for c in callbacks:
            if not isinstance(c, Callback):
                if hasattr(c, "request") and hasattr(c, "on_batch"):
                    c = BatchObserver(c)
                else:
                    raise TypeError(f"{c!r} is not a snnc Callback")
            self.callbacks.append(c)

    def set_params(self, context: LoopContext) -> None:
        for c in self.callbacks:
            c.set_params(context)

    def records(self) -> list[Any]:
        return [r for c in self.callbacks for r in c.record]

    def __getattr__(self, hook: str):
        if not hook.startswith("on_"):
            raise AttributeError(hook)

        def call(*args):
            for c in self.callbacks:
                getattr(c, hook)(*args)

        return call

    def get_data(self) -> dict[Any, Any]:
        data = {}
        for c in self.callbacks:
            value = c.get_data()
            if value is not None:
                data[c.key if c.key is not None else type(c).__name__] = value
        return data


def as_callbacks(callbacks: Sequence[Callback | str] | None) -> list[Callback]:
    """Accept mlGeNN's string shorthands ("batch_progress_bar") as well as callback objects."""
    out: list[Callback] = []
    for c in callbacks or ():
        if c == "batch_progress_bar":
            from snnc.runtime.progress import BatchProgressBar

            out.append(BatchProgressBar())
        elif isinstance(c, str):
            from snnc.runtime.errors import unknown_name

            raise unknown_name("callback", c, ["batch_progress_bar"])
        else:
            out.append(c)
    return out


def __getattr__(name: str):  # lazy re-exports, avoiding import cycles
    if name == "Checkpoint":
        from snnc.runtime.checkpoint import Checkpoint

        return Checkpoint
    if name == "BatchProgressBar":
        from snnc.runtime.progress import BatchProgressBar

        return BatchProgressBar
    if name == "OptimiserParamSchedule":
        from snnc.runtime.schedules import OptimiserParamSchedule

        return OptimiserParamSchedule
    raise AttributeError(name)
