"""The training loop, independent of the backend: forward, loss, backward, optimiser step.

Per batch the artefact runs forward, the loss and dL/dy are computed here in numpy, the artefact's
backward pass turns dL/dy into weight gradients and the optimiser updates the artefact's weights in
place, all before the next batch (no one-batch lag). The shape follows mlGeNN's `compiled_net.train`:
calling `train` once per epoch with `start_epoch=e, num_epochs=1` is the same as one long call, because
shuffling is seeded by (seed, epoch) and the optimiser and its schedules keep their state.

The artefact protocol is `runtime/artefact.py` (`allocate`, `run -> RunResult`, `backward`, weights);
`runtime/driver.py` is the one adapter to it. Regularised hidden populations send their dL/d(count)
to `backward` under the key `"<pop>.spike_count"` next to the output populations' dL/dy.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from snnc.runtime import distributed, driver, kernel_loop
from snnc.runtime.callbacks import Callback, CallbackList, LoopContext, as_callbacks
from snnc.runtime.driver import count_key
from snnc.runtime.losses import Loss, SpikeCountRegulariser, get_loss
from snnc.runtime.metrics import Metric, get_metric
from snnc.runtime.numerics import check_finite, is_whole, locate_fault
from snnc.runtime.optimisers import Optimiser, apply_trainable_params, get_optimiser
from snnc.runtime.rewiring import DeepR


# data helpers -------------------------------------------------------------------------------------
def num_examples(data: Mapping[str, Any]) -> int:
    sizes = {k: len(v) for k, v in data.items()}
    if len(set(sizes.values())) > 1:
        raise ValueError(f"populations hold different numbers of examples: {sizes}")
    if not sizes:
        raise ValueError("no data given")
    return next(iter(sizes.values()))


def take(data: Any, idx: np.ndarray) -> Any:
    """Examples `idx` of one population's data: arrays, dataset objects with `subset`, or sequences."""
    if isinstance(data, np.ndarray):
        return data[idx]
    if hasattr(data, "rows"):  # a batch's view of a spike data set, copied only where it must be
        return data.rows(idx)
    if hasattr(data, "subset"):
        return data.subset(idx)
    return [data[int(i)] for i in idx]


def split_validation(x, y, fraction: float):
    """Keras' rule: the last `fraction` of the examples (before any shuffling) is for validation."""
    if not 0.0 <= fraction < 1.0:
        raise ValueError("validation_split must lie in [0, 1)")
    n = num_examples(x)
    n_train = int(n * (1.0 - fraction))
    train_idx, val_idx = np.arange(n_train), np.arange(n_train, n)
    split = lambda d, i: {k: take(v, i) for k, v in d.items()}  # noqa: E731
    return split(x, train_idx), split(y, train_idx), split(x, val_idx), split(y, val_idx)


def resident(x: Mapping[str, Any], y: Mapping[str, Any], shares: Sequence[np.ndarray]):
    """(x, y, starts): under MPI, when any data are lazy (memory-mapped, or held in part), the rank's
    examples of the whole epoch (`shares`, one per batch) read once into memory, in order; batch b
    is then rows starts[b]… of them. Otherwise (x, y, None): in-memory data are indexed as they are.
    """
    if not any(getattr(v, "lazy", False) for v in (*x.values(), *y.values())):
        return x, y, None
    mine = np.concatenate(shares) if shares else np.zeros(0, np.int64)
    starts = np.concatenate([[0], np.cumsum([len(s) for s in shares])])
    held = lambda v: v.subset(mine) if hasattr(v, "subset") else take(v, mine)  # noqa: E731
    return {k: held(v) for k, v in x.items()}, {k: held(v) for k, v in y.items()}, starts


def batches(n: int, batch_size: int, order: np.ndarray | None = None):
    order = np.arange(n) if order is None else order
    for start in range(0, n, batch_size):
        yield order[start : start + batch_size]


# the loop -----------------------------------------------------------------------------------------
class Trainer:
    """Owns what persists between `train` calls: losses, optimiser, metric history."""

    def __init__(
        self,
        artefact: Any,
        loss: Loss | str | Mapping[str, Loss | str],
        optimiser: Optimiser | str = "adam",
        batch_size: int | None = None,
        regularisers: Mapping[str, SpikeCountRegulariser] | None = None,
        readouts: Mapping[str, str] | None = None,
        seed: int = 0,
        world: distributed.World | None = None,
        rewiring: DeepR | None = None,
    ):
        self.artefact = artefact
        self.batch_size = int(batch_size or getattr(artefact, "batch_size", 0) or 32)
        #: under MPI each rank runs its share of every batch (runtime/distributed.py)
        self.world = distributed.world() if world is None else world
        self._reduced = distributed.GradientBuffer()
        if hasattr(artefact, "allocate"):
            artefact.allocate(self.world.capacity(self.batch_size))
        if self.world.distributed:
            distributed.check_supported(artefact)
            distributed.share_counts(self.world, artefact)
        self.loss = loss
        self.optimiser = get_optimiser(optimiser)
        apply_trainable_params(self.optimiser, getattr(artefact, "manifest", None))
        self.regularisers = dict(regularisers or {})
        #: Deep R on some projections (runtime/rewiring.py): masks the gradients, rewires after a step
        self.rewiring = rewiring
        self.readouts = dict(readouts if readouts is not None else driver.readout_kinds(artefact))
        self.seed = int(seed)
        self.history: list[dict[str, Any]] = []
        self.last_validation: dict[str, Metric] | None = None

    # losses are resolved per output population once labels name them
    def _losses(self, pops: Sequence[str]) -> dict[str, Loss]:
        if isinstance(self.loss, Mapping):
            missing = set(pops) - set(self.loss)
            if missing:
                raise ValueError(f"no loss given for output population(s) {sorted(missing)}")
            losses = {p: get_loss(self.loss[p]) for p in pops}
        else:
            losses = {p: get_loss(self.loss) for p in pops}
        duration = driver.duration(self.artefact)
        for loss in losses.values():
            if hasattr(loss, "t_nospike") and loss.t_nospike is None and duration is not None:
                loss.t_nospike = float(duration)
        return losses

    def _readout(self, pop: str, loss: Loss | None) -> str | None:
        return self.readouts.get(pop) or (loss.readout if loss is not None else None)

    def _metrics(self, spec, pops, losses) -> dict[str, Metric]:
        out = {}
        for p in pops:
            s = spec[p] if isinstance(spec, Mapping) else spec
            out[p] = get_metric(s, self._readout(p, losses.get(p)))
            out[p].reset()
        return out

    def _forward(self, x_batch, cbs: CallbackList, idx: np.ndarray, steps: Mapping[str, str] | None = None):
        record = driver.record_request([*cbs.records(), *self.regularisers, *(steps or {}).items()])
        result = driver.run_batch(self.artefact, x_batch, record, idx)
        missing = [k for k in self._expected if k not in result.readouts]
        if missing:
            raise RuntimeError(f"the artefact's forward pass returned no readout of {missing}")
        return result

    def _run_batch(
        self, x_batch, y_batch, idx, losses, metrics, learn: bool, cbs, b: int, n_batch: int | None = None
    ) -> float:
        """One batch; returns the batch-mean loss (sum over output populations and regularisers).

        Under MPI `idx` is this rank's share of a batch of `n_batch` examples: losses divide by
        `n_batch`, so the ranks' gradients (and losses) add up to the whole batch's.
        """
        n_real = len(idx)
        shared = n_batch is not None
        n_all = n_batch if shared else n_real
        if learn:  # online rules (e-prop) need the targets during the forward pass
            driver.set_targets(self.artefact, y_batch)
        # a per-timestep loss reads its population's variable at every step (recorded), not the readout
        steps = {
            pop: driver.readout_vars(self.artefact)[pop]
            for pop, loss in losses.items()
            if getattr(loss, "per_timestep", False)
        }
        result = self._forward(x_batch, cbs, idx, steps)
        cbs.on_forward(b, result, idx)
        total = 0.0
        dl: dict[str, np.ndarray] = {}
        summed = learn and self.optimiser is not None and self.optimiser.reduction == "sum"
        scale = float(n_all) if summed else 1.0
        for pop, metric in metrics.items():
            y_full = np.asarray(result.readouts[pop])
            y_pred = y_full[:n_real]
            metric.update(y_pred, y_batch[pop])
            if pop in losses:
                if pop in steps:
                    y_full = np.asarray(result.vars[(pop, steps[pop])])
                    y_pred = y_full[:n_real]
                value, grad = (
                    losses[pop](y_pred, y_batch[pop], batch=n_all)
                    if shared
                    else losses[pop](y_pred, y_batch[pop])
                )
                total += value
                dl[pop] = _pad(grad * scale, y_full.shape)
        for pop, reg in self.regularisers.items():
            counts = driver.spike_counts(result, pop)
            if shared:  # the regulariser needs the whole batch's mean count: a second allreduce
                count_sum = counts[:n_real].sum(axis=0, dtype=np.float64)
                self.world.allreduce(count_sum)
                value, grad = reg(counts[:n_real], total=count_sum, batch=n_all)
                value /= self.world.size  # every rank adds the same value; the sum is the batch's
            else:
                value, grad = reg(counts[:n_real])
            total += value
            dl[count_key(pop)] = _pad(grad * scale, counts.shape)
        if learn:
            grads = self.artefact.backward(dl)
            # stop at the first NaN/Inf, before it reaches the weights (numerics.py)
            epoch = getattr(self, "_current_epoch", None)
            check_finite(
                "gradient",
                grads,
                epoch=epoch,
                batch=b,
                artefact=self.artefact,
                locate=lambda: locate_fault(self.artefact, x_batch, idx),
            )
            if shared:
                grads = self._reduced.reduce(self.world, grads)
            weights, live = driver.live_weights(self.artefact)
            if self.rewiring is not None:
                grads = self.rewiring.gradients(grads)
            self.optimiser.step(weights, grads)
            if self.rewiring is not None:
                self.rewiring.rewire(weights, self.optimiser, self.optimiser.step_count)
            driver.commit_weights(self.artefact, weights, live)
            check_finite("weights", weights, epoch=epoch, batch=b, artefact=self.artefact)
        return total

    def epoch_order(self, n: int, epoch: int, shuffle: bool = True, seed: int | None = None) -> np.ndarray:
        """The order in which an epoch of `n` examples is trained: seeded by (seed, epoch), so the
        same on every rank and on resume."""
        seed = self.seed if seed is None else int(seed)
        return np.random.default_rng([seed, epoch]).permutation(n) if shuffle else np.arange(n)

    def epoch_share(self, n: int, epoch: int, shuffle: bool = True, seed: int | None = None) -> np.ndarray:
        """The examples this rank trains on in `epoch` (its share of every batch): all of them in one
        process. Per-epoch data work (augmentation) need only cover these."""
        order = self.epoch_order(n, epoch, shuffle, seed)
        if not self.world.distributed:
            return order
        parts = []
        for whole in batches(n, self.batch_size, order):
            lo, hi = self.world.share(len(whole))
            parts.append(whole[lo:hi])
        return np.concatenate(parts) if parts else order[:0]

    def _epoch(self, x, y, order, losses, metrics, learn, cbs) -> float:
        loss_sum, count, shown = 0.0, 0, 0
        shared = self.world.distributed
        # the artefact's own loss and optimiser step, when it computes exactly this training
        learning = kernel_loop.kernel_learning(self, losses, metrics, cbs) if learn else None
        wholes = list(batches(len(order), self.batch_size, order))
        # this rank's rows of each batch; every rank runs every batch, even with no rows
        shares = [whole[slice(*self.world.share(len(whole)))] for whole in wholes] if shared else wholes
        x, y, at = resident(x, y, shares) if shared else (x, y, None)
        for b, (whole, idx) in enumerate(zip(wholes, shares, strict=True)):
            cbs.on_batch_begin(b)
            rows = idx if at is None else np.arange(at[b], at[b] + len(idx))
            xb = {k: take(v, rows) for k, v in x.items()}
            yb = {k: take(v, rows) for k, v in y.items()}
            n_batch = len(whole) if shared else None
            if learning is not None:
                batch_loss = kernel_loop.run_batch(self, learning, xb, yb, idx, metrics, b, n_batch)
            else:
                batch_loss = self._run_batch(xb, yb, idx, losses, metrics, learn, cbs, b, n_batch)
            loss_sum += batch_loss * len(whole)
            count += len(whole)
            shown += len(idx)  # a rank's progress shows the mean over its own examples
            running = loss_sum / shown if shown else float("nan")
            cbs.on_batch_end(b, {"loss": running, **{p: m.result for p, m in metrics.items()}})
        loss_sum = distributed.reduce_epoch(self.world, loss_sum, metrics)
        return loss_sum / count if count else float("nan")

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
        metrics: str | Mapping[str, str] = "sparse_categorical_accuracy",
        callbacks: Sequence[Callback | str] = ("batch_progress_bar",),
        seed: int | None = None,
    ) -> tuple[dict[str, Metric], dict[Any, Any]]:
        """Train for `num_epochs` epochs numbered from `start_epoch`; returns (metrics, callback data).

        Metrics are those of the last training epoch; validation metrics of the last epoch are in
        `self.last_validation`, and every epoch's summary is appended to `self.history`.
        """
        seed = self.seed if seed is None else int(seed)
        for name, value in (("num_epochs", num_epochs), ("start_epoch", start_epoch)):
            if not is_whole(value, 0):
                raise ValueError(f"{name} must be a whole number, 0 or more; got {value!r}")
        num_epochs, start_epoch = int(num_epochs), int(start_epoch)
        wanted = self.artefact.input_names() if hasattr(self.artefact, "input_names") else []
        if not x and wanted:  # no input at all: every example would be silence
            raise ValueError(f"no input data: give x for the input population(s) {wanted}")
        if validation_split and validation_x is not None:
            raise ValueError("give either validation_split or validation_x/validation_y, not both")
        if validation_split:
            x, y, validation_x, validation_y = split_validation(x, y, validation_split)
        if (validation_x is None) != (validation_y is None):
            raise ValueError("validation_x and validation_y go together")
        n = num_examples({**x, **y})
        pops = list(y)
        losses = self._losses(pops)
        self._expected = list(pops)
        cbs = CallbackList(as_callbacks(callbacks))
        cbs.set_params(
            LoopContext(
                self.artefact,
                self,
                self.batch_size,
                n,
                math.ceil(n / self.batch_size),
                num_epochs,
                start_epoch,
                "train",
                {"seed": seed},
            )
        )
        train_metrics = self._metrics(metrics, pops, losses)
        cbs.on_train_begin()
        # after on_train_begin, which may restore a checkpoint: training must start from finite weights
        check_finite("weights", driver.live_weights(self.artefact)[0], epoch=start_epoch)
        if self.rewiring is not None:  # the active synapses, unless a checkpoint restored them
            weights, live = driver.live_weights(self.artefact)
            self.rewiring.start(weights, driver.live_structure(self.artefact, self.rewiring.sparse))
            driver.commit_weights(self.artefact, weights, live)
        for epoch in range(start_epoch, start_epoch + num_epochs):
            for m in train_metrics.values():
                m.reset()
            cbs.on_epoch_begin(epoch)
            self._current_epoch = epoch
            order = self.epoch_order(n, epoch, shuffle, seed)
            train_loss = self._epoch(x, y, order, losses, train_metrics, True, cbs)
            record = {"epoch": epoch, "train": _summary(train_loss, train_metrics)}
            if validation_x is not None:
                val_metrics = self._metrics(metrics, pops, losses)
                nv = num_examples({**validation_x, **validation_y})
                val_loss = self._epoch(
                    validation_x, validation_y, np.arange(nv), losses, val_metrics, False, CallbackList()
                )
                self.last_validation = val_metrics
                record["validation"] = _summary(val_loss, val_metrics)
            self.history.append(record)
            cbs.on_epoch_end(epoch, {**train_metrics, "loss": train_loss, "record": record})
        cbs.on_train_end(train_metrics)
        return train_metrics, cbs.get_data()

    def evaluate(
        self,
        x: Mapping[str, Any],
        y: Mapping[str, Any],
        metrics: str | Mapping[str, str] = "sparse_categorical_accuracy",
        callbacks: Sequence[Callback | str] = ("batch_progress_bar",),
    ) -> tuple[dict[str, Metric], dict[Any, Any]]:
        """Forward passes only; returns (metrics, callback data). `self.last_test` gets the summary."""
        pops = list(y)
        losses = self._losses(pops)
        self._expected = list(pops)
        saved, self.regularisers = self.regularisers, {}
        try:
            result = _evaluate(self, x, y, metrics, callbacks, losses)
        finally:
            self.regularisers = saved
        return result


def _evaluate(trainer: Trainer, x, y, metrics, callbacks, losses):
    pops = list(y)
    n = num_examples({**x, **y})
    cbs = CallbackList(as_callbacks(callbacks))
    cbs.set_params(
        LoopContext(
            trainer.artefact,
            None,
            trainer.batch_size,
            n,
            math.ceil(n / trainer.batch_size),
            1,
            0,
            "evaluate",
        )
    )
    ms = trainer._metrics(metrics, pops, losses)
    trainer._expected = list(pops)
    cbs.on_test_begin()
    cbs.on_epoch_begin(0)
    loss = trainer._epoch(x, y, np.arange(n), losses, ms, False, cbs)
    trainer.last_test = _summary(loss if losses else None, ms)
    cbs.on_epoch_end(0, {**ms, "loss": loss})
    cbs.on_test_end(ms)
    return ms, cbs.get_data()


def _pad(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    full = np.zeros(shape, dtype=np.float64)
    full[: grad.shape[0]] = grad
    return full


def _summary(loss: float | None, metrics: Mapping[str, Metric]) -> dict[str, float]:
    """{"loss": …, "accuracy": …} for one output population; metric names get "/pop" for several."""
    out: dict[str, float] = {}
    if loss is not None:
        out["loss"] = float(loss)
    for pop, m in metrics.items():
        name = getattr(m, "short", m.name)
        out[name if len(metrics) == 1 else f"{name}/{pop}"] = float(m.result)
    return out


# module-level API ---------------------------------------------------------------------------------
def train(
    artefact: Any,
    x: Mapping[str, Any],
    y: Mapping[str, Any],
    num_epochs: int,
    *,
    loss: Loss | str | Mapping[str, Loss | str] | None = None,
    optimiser: Optimiser | str | None = None,
    trainer: Trainer | None = None,
    batch_size: int | None = None,
    **kwargs: Any,
) -> tuple[dict[str, Metric], dict[Any, Any]]:
    """mlGeNN's `compiled_net.train` as a function.

    Pass a `Trainer` to continue optimiser state across calls (the augmentation loop); otherwise one
    is created from `loss` and `optimiser` and kept on the artefact as `artefact.trainer`, so repeated
    calls with `start_epoch` continue it.
    """
    if trainer is None:
        trainer = getattr(artefact, "trainer", None)
        if trainer is None:
            if loss is None:
                raise ValueError("train needs a loss (or a Trainer)")
            trainer = Trainer(artefact, loss, optimiser or "adam", batch_size)
            try:
                artefact.trainer = trainer
            except AttributeError:
                pass
    return trainer.train(x, y, num_epochs, **kwargs)


def evaluate(
    artefact: Any,
    x: Mapping[str, Any],
    y: Mapping[str, Any],
    metrics: str | Mapping[str, str] = "sparse_categorical_accuracy",
    callbacks: Sequence[Callback | str] = ("batch_progress_bar",),
    batch_size: int | None = None,
    readouts: Mapping[str, str] | None = None,
) -> tuple[dict[str, Metric], dict[Any, Any]]:
    """Metrics of the artefact on (x, y) without training; needs no loss or optimiser."""
    trainer = getattr(artefact, "trainer", None)
    if trainer is None:
        trainer = Trainer.__new__(Trainer)
        trainer.artefact = artefact
        trainer.batch_size = int(batch_size or getattr(artefact, "batch_size", 0) or 32)
        trainer.world = distributed.world()
        if hasattr(artefact, "allocate"):
            artefact.allocate(trainer.world.capacity(trainer.batch_size))
        trainer.readouts = dict(
            readouts if readouts is not None else getattr(artefact, "readouts", None) or {}
        )
        trainer.regularisers = {}
        trainer.optimiser = None
        return _evaluate(trainer, x, y, metrics, callbacks, {})
    return trainer.evaluate(x, y, metrics, callbacks)


def write_metrics_json(
    path: str | os.PathLike,
    history: Sequence[Mapping[str, Any]],
    test: Mapping[str, Any] | None,
    ranks: int | None = None,
) -> None:
    """`metrics.json`: per epoch train (and validation) loss and metrics, then a `"test"` object, and
    `"ranks"` (how many MPI processes trained) when given.

    Non-finite numbers are written as null so that the file stays strict JSON. Written atomically.
    """

    def clean(v):
        if isinstance(v, Mapping):
            return {str(k): clean(u) for k, u in v.items()}
        if isinstance(v, (list, tuple)):
            return [clean(u) for u in v]
        if isinstance(v, (float, np.floating)):
            return float(v) if math.isfinite(v) else None
        if isinstance(v, np.integer):
            return int(v)
        return v

    doc: dict[str, Any] = {"epochs": clean(list(history))}
    if test is not None:
        doc["test"] = clean(dict(test))
    if ranks is not None:
        doc["ranks"] = int(ranks)
    path = os.fspath(path)
    tmp = f"{path}.tmp{os.getpid()}"
    with open(tmp, "w", encoding="utf-8") as f:
        json.dump(doc, f, indent=2, allow_nan=False)
        f.write("\n")
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
