"""`CompiledNetwork`: the user-facing handle on a loaded artefact (mlGeNN-shaped API).

    with snnc.compile("m.snn") as net:
        outputs = net.predict({"x": spikes})
        metrics = net.evaluate({"x": spikes}, {"out": labels})
        metrics, cb_data = net.train({"x": spikes}, {"out": labels}, num_epochs=5)

`train` takes the loss, optimiser, schedule, regularisation, batch size and seed from the network's
`train` block unless they are passed in; the trainer (optimiser moments, schedules, history) lives
on the network, so calling `train` once per epoch with `start_epoch=e` (mlGeNN's manual
augmentation loop) continues one run.

Examples are split into batches of the artefact's batch size; the last batch is padded with empty
examples, whose rows are dropped from every result.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .artefact import Artefact, RecordRequest, RunResult
from .losses import _labels as class_labels  # the loss's rule for class indices, for evaluate too
from .session import default_metric, trainer_for


class CompiledNetwork:
    def __init__(
        self, artefact: Artefact, manifest: dict[str, Any] | None = None, network: Any = None
    ) -> None:
        self.artefact = artefact
        self.manifest = manifest or artefact.manifest
        self.network = network  # the compiled `ir.model.Network` (its train block drives `train`)
        self._trainer: Any = None
        self._schedule: Any = None

    # context manager: mlGeNN's `with compiled_net:`; arrays live as long as the artefact
    def __enter__(self) -> CompiledNetwork:
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    @property
    def batch_size(self) -> int:
        return self.artefact.batch_size

    def set_threads(self, n: int) -> None:
        """Threads for each batch (the C backend; others run as they are built). By default
        one per core, and never more than the batch has trials."""
        if n < 1:
            raise ValueError(f"threads must be at least 1, not {n}")
        setter = getattr(self.artefact, "set_threads", None)
        if setter is not None:
            setter(n)

    @property
    def weights(self) -> dict[str, np.ndarray]:
        return self.artefact.get_weights()

    def set_weights(self, weights: Mapping[str, np.ndarray]) -> None:
        if not isinstance(weights, Mapping):  # a list reached the backend as an AttributeError
            raise TypeError(f"weights are a dict of projection -> array, not {type(weights).__name__}")
        self.artefact.set_weights(weights)

    @property
    def state(self) -> dict[str, np.ndarray]:
        return self.artefact.state

    @property
    def outputs(self) -> list[str]:
        return [k for k, p in self.manifest["populations"].items() if p["role"] == "output"]

    def _check_outputs(self, y: Mapping[str, Any]) -> None:
        """Labels only for output populations (a RuntimeError of the forward pass before)."""
        if not isinstance(y, Mapping):
            raise TypeError(f"labels are a dict of output population -> labels, not {type(y).__name__}")
        for pop in y:
            if pop not in self.outputs:
                raise KeyError(f"'{pop}' is not an output population; outputs are {self.outputs}")

    # ---------------------------------------------------------------- batching
    def _num_examples(self, x: Mapping[str, Any]) -> int:
        counts = {len(v) for v in x.values()}
        if len(counts) != 1:
            raise ValueError(f"inputs disagree on the number of examples: {sorted(counts)}")
        return counts.pop()

    def run_batches(self, x: Mapping[str, Any], callbacks: Sequence[Any] = (), num_steps: int | None = None):  # noqa: ANN201
        """Yield `(example_indices, RunResult)` per batch; padded rows are in the result but not
        in `example_indices`."""
        n = self._num_examples(x)
        bs = self.artefact.batch_size
        spikes: set[str] = set()
        vars_: set[tuple[str, str]] = set()
        for cb in callbacks:
            if hasattr(cb, "request"):
                s, v = cb.request()
                spikes |= s
                vars_ |= v
        record = RecordRequest(frozenset(spikes), frozenset(vars_))
        for start in range(0, n, bs):
            idx = list(range(start, min(start + bs, n)))
            batch = {k: _take(v, idx) for k, v in x.items()}
            res = self.artefact.run(batch, record, num_steps=num_steps, example_ids=idx)
            for cb in callbacks:
                if hasattr(cb, "on_batch"):
                    cb.on_batch(res, idx, n)
            yield idx, res

    def predict(
        self, x: Mapping[str, Any], callbacks: Sequence[Any] = (), num_steps: int | None = None
    ) -> dict[str, np.ndarray]:
        """Readouts of every output population, [examples, *shape]."""
        out: dict[str, list[np.ndarray]] = {}
        for idx, res in self.run_batches(x, callbacks, num_steps):
            for pop, r in res.readouts.items():
                out.setdefault(pop, []).append(r[: len(idx)])
        return {k: np.concatenate(v) for k, v in out.items()}

    def evaluate(
        self,
        x: Mapping[str, Any],
        y: Mapping[str, Any],
        callbacks: Sequence[Any] = (),
        num_steps: int | None = None,
    ) -> dict[str, dict[str, float]]:
        """Classification accuracy per output population (argmax; argmin for first_spike_time)."""
        self._check_outputs(y)
        preds = self.predict(x, callbacks, num_steps)
        metrics = {}
        for pop, labels in y.items():
            r = preds[pop].reshape(len(preds[pop]), -1)
            kind = (self.manifest["populations"][pop].get("readout") or {}).get("kind")
            guess = np.argmin(r, axis=1) if kind == "first_spike_time" else np.argmax(r, axis=1)
            try:  # class indices, one per example: label 9 of 3 classes used to count as wrong
                labels = class_labels(labels, len(r), r.shape[1])
            except ValueError as e:
                raise ValueError(f"population '{pop}': {e}") from None
            metrics[pop] = {
                "accuracy": float(np.mean(guess == labels)),
                "correct": int(np.sum(guess == labels)),
                "total": int(labels.size),
            }
        return metrics

    # ---------------------------------------------------------------- training
    @property
    def trainer(self) -> Any:
        """The persistent `Trainer` (None before the first `train` call or `make_trainer`)."""
        return self._trainer

    def make_trainer(
        self,
        *,
        loss: Any = None,
        optimiser: Any = None,
        batch_size: int | None = None,
        seed: int | None = None,
        regularisers: Mapping[str, Any] | None = None,
    ) -> Any:
        """Build (or rebuild) the trainer; unset options come from the network's train block."""
        self._trainer, self._schedule = trainer_for(
            self.artefact,
            self.network,
            loss=loss,
            optimiser=optimiser,
            batch_size=batch_size,
            seed=seed,
            regularisers=regularisers,
        )
        return self._trainer

    def train(
        self,
        x: Mapping[str, Any],
        y: Mapping[str, Any],
        num_epochs: int,
        start_epoch: int = 0,
        shuffle: bool = True,
        validation_split: float = 0.0,
        validation_x: Mapping[str, Any] | None = None,
        validation_y: Mapping[str, Any] | None = None,
        metrics: str | Mapping[str, str] | None = None,
        callbacks: Sequence[Any] = ("batch_progress_bar",),
        **trainer_options: Any,
    ) -> tuple[dict[str, Any], dict[Any, Any]]:
        """mlGeNN's `compiled_net.train`: returns (metrics of the last epoch, callback data).

        `trainer_options` (loss, optimiser, batch_size, seed, regularisers) override the train block
        when the trainer is first made; passing them later rebuilds it (fresh optimiser state).
        """
        self._check_outputs(y)
        if validation_y is not None:
            self._check_outputs(validation_y)
        if self._trainer is None or trainer_options:
            self.make_trainer(**trainer_options)
        callbacks = list(callbacks)
        if self._schedule is not None and self._schedule not in callbacks:
            callbacks.append(self._schedule)
        return self._trainer.train(
            x,
            y,
            num_epochs,
            start_epoch=start_epoch,
            shuffle=shuffle,
            validation_split=validation_split,
            validation_x=validation_x,
            validation_y=validation_y,
            metrics=metrics or self.default_metric(),
            callbacks=callbacks,
        )

    def default_metric(self) -> str:
        """Accuracy for classification losses, mean squared error for `mse` losses."""
        return default_metric(self.network)

    def run(self, x: Mapping[str, Any], record: RecordRequest | None = None, **kw: Any) -> RunResult:
        """One raw batch (no batching or padding logic)."""
        return self.artefact.run(x, record, **kw)


def _take(data: Any, idx: list[int]) -> Any:
    if isinstance(data, np.ndarray):
        return data[idx]
    return [data[i] for i in idx]
