"""`snnc train` and `snnc evaluate`: compile a `.snn` file with a train block and run it end to end.

The train block names everything (data, loss, optimiser, schedule, augmentation, epochs); the runtime
turns those `Call`s into objects (`runtime/session.py`). This module reads the command line's
overrides (`RunOptions`), compiles through `snnc.api`, trains one epoch at a time so that each epoch
gets its own augmented copy of the training data, and leaves in the output folder a checkpoint per
epoch (`epoch-NNNN.npz`) and `metrics.json` (per-epoch train/validation loss and metric, then `test`).
Progress bars go to stderr, one summary line per epoch to stdout (to stderr when `--log-json -`
claims stdout for JSON Lines records). A killed run leaves the last complete epoch's checkpoint;
`--resume` continues from it with the same result as an uninterrupted run, because everything random
is a function of (seed, epoch) and the optimiser state, schedule base values and history are in the
checkpoint. One run at a time may train into a folder (`outlock.py`).

Under `mpirun -n N` every rank runs this with its share of each batch (`runtime/distributed.py`);
rank 0 alone compiles (the others then load its cache entry), holds the folder's lock and writes
checkpoints, `metrics.json` (with `"ranks": N`), the JSON log, plots and the printed lines.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Mapping
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from snnc.api import build_compiled, lower_cached
from snnc.backends import get_backend
from snnc.ir.diagnostics import Diagnostic, DiagnosticError
from snnc.outlock import output_folder_lock
from snnc.paths import output_error, refuse_overwriting_inputs
from snnc.runtime import distributed, driver
from snnc.runtime.callbacks import Callback
from snnc.runtime.checkpoint import Checkpoint, CheckpointError, latest_checkpoint, restore
from snnc.runtime.progress import BatchProgressBar, JsonLinesLog, NullLog, open_log
from snnc.runtime.session import default_metric, load_data, load_weights, xy
from snnc.runtime.trainer import Trainer, split_validation, write_metrics_json

#: the train-block helpers are re-exported: this is where `snnc train` gets them
__all__ = [
    "RunOptions",
    "build_for_training",
    "default_metric",
    "find_checkpoint",
    "load_data",
    "load_weights",
    "lower_for_training",
    "run_evaluate",
    "run_train",
    "xy",
]


def _error(code: str, message: str, span: Any = None, hint: str | None = None) -> DiagnosticError:
    return DiagnosticError(Diagnostic(code, message, span, hint=hint))


@dataclass
class RunOptions:
    """What the command line may override; None means "as the train block says"."""

    epochs: int | None = None
    batch_size: int | None = None
    seed: int | None = None
    out: str | None = None
    data_dir: str | None = None
    quiet: bool = False
    resume: bool = False
    validation_split: float | None = None
    checkpoint: str | None = None
    backend: str = "c"
    log_json: str | None = None  # a JSON Lines file, "-" for stdout (progress.JsonLinesLog)
    plot: bool = False  # `snnc train --plot`: PNGs of the curves (runtime/plot.py) at the end
    threads: int | None = None  # threads of the C backend (None: one per core, at most one per trial)
    #: `snnc evaluate --no-checkpoint`: the weights the .snn file itself gives (a converted network)
    no_checkpoint: bool = False


def lower_for_training(path: str, opts: RunOptions) -> Any:
    """The lowered network (with its gradient pass) of a `.snn` file with a train block."""
    get_backend(opts.backend).require()
    for name, least in (("epochs", 1), ("batch_size", 1), ("threads", 1), ("seed", 0)):
        value = getattr(opts, name)
        if value is not None and value < least:
            raise _error("E-OPTION", f"--{name.replace('_', '-')} must be at least {least} (got {value})")
    split = opts.validation_split
    if split is not None and not 0.0 <= split < 1.0:  # before compiling, as the other options
        raise _error("E-OPTION", f"--validation-split must be a fraction in [0, 1) (got {split})")
    # a Path: the command line names a file, whatever its suffix (a bare string not ending in .snn
    # would be read as source text)
    network = lower_cached(Path(path), backend=opts.backend, seed=opts.seed)
    if network.train is None:
        raise _error(
            "E-NO-TRAIN",
            f"network '{network.name}' has no train block",
            network.span,
            "add `train <name> { … }`",
        )
    return network


def build_for_training(network: Any, opts: RunOptions) -> Any:
    """The backend's `CompiledNetwork` (compiling is the slow step, so it comes after every check)."""
    net = build_compiled(network, backend=opts.backend, batch_size=opts.batch_size, seed=opts.seed)
    if opts.threads is not None:
        net.set_threads(opts.threads)
    return net


class EpochTimer(Callback):
    """Adds each epoch's wall time (training and validation) to its history record as "seconds",
    before the checkpoint callback stores the history, so resumed runs keep earlier epochs' times."""

    def on_epoch_begin(self, epoch: int) -> None:
        self.begin = time.perf_counter()

    def on_epoch_end(self, epoch: int, metrics: Mapping[str, Any]) -> None:
        record = metrics.get("record")
        if isinstance(record, dict):
            record["seconds"] = round(time.perf_counter() - self.begin, 3)


def _out_dir(network: Any, opts: RunOptions) -> Path:
    return Path(opts.out) if opts.out else Path("runs") / network.name


def _fmt(record: Mapping[str, Any]) -> str:
    return " ".join(f"{k} {v:.4f}" for k, v in record.items() if isinstance(v, float))


def _open_log(path: str, opts: RunOptions, append: bool = False) -> JsonLinesLog | NullLog:
    if opts.log_json is not None:
        refuse_overwriting_inputs("the --log-json file", opts.log_json, (path, opts.checkpoint))
    try:
        return open_log(opts.log_json, append)
    except OSError as e:
        raise output_error("the --log-json file", str(opts.log_json), e) from None


def _logged(log: JsonLinesLog | NullLog, run: Any) -> dict[str, Any]:
    """Run `run()`; a diagnostic or an interrupt also ends the JSON log, with an "error" record."""
    try:
        return run()
    except DiagnosticError as exc:
        for d in exc.diagnostics:
            log.write("error", code=d.code, message=d.message, hint=d.hint)
        raise
    except KeyboardInterrupt:
        log.write("interrupted")
        raise
    finally:
        log.close()


def _remove_partial_files(out: Path) -> None:
    """Temporary files a killed run may have left (checkpoint.save_checkpoint, write_metrics_json)."""
    for partial in [*out.glob(".epoch-*.npz.*.tmp"), *out.glob("metrics.json.tmp*")]:
        try:
            partial.unlink()
        except OSError:
            pass


def run_train(path: str, opts: RunOptions, stream: TextIO | None = None) -> dict[str, Any]:
    """Train the file's network as its train block says; returns the metrics.json document.

    With `opts.log_json` every epoch, the test result and the end are also JSON Lines records
    (`progress.JsonLinesLog`); with "-" they go to stdout and the human-readable lines to stderr.
    """
    world = distributed.world()
    with ExitStack() as held:  # the output folder's lock, taken once the folder is known
        if world.rank != 0:  # rank 0 speaks for every rank
            opts = _silent(opts)
            stream = held.enter_context(open(os.devnull, "w", encoding="utf-8"))
        log = _open_log(path, opts, append=opts.resume)
        if stream is None:
            stream = sys.stderr if log.to_stdout else sys.stdout
        return _logged(log, lambda: _train(path, opts, stream, log, held))


def _silent(opts: RunOptions) -> RunOptions:
    """A non-zero rank's options: no log, no progress bars, no plots."""
    import dataclasses

    return dataclasses.replace(opts, log_json=None, quiet=True, plot=False)


def trained_params_summary(artefact: Any) -> str:
    """`tau_mem_h 16.2 [12, 16], v_thresh_h 0.989`: each trainable param's mean (and range when per
    neuron) as training left it, beside the weights it is filed with."""
    keys = ((getattr(artefact, "manifest", None) or {}).get("trainable_params")) or {}
    if not keys:
        return ""
    weights = driver.live_weights(artefact)[0]
    parts = []
    for key in keys:
        v = np.asarray(weights[key], dtype=np.float64)
        spread = f" [{v.min():.4g}, {v.max():.4g}]" if v.size > 1 else ""
        parts.append(f"{key} {v.mean():.4g}{spread}")
    return ", ".join(parts)


def _lr(trainer: Trainer) -> float | None:
    lr = getattr(trainer.optimiser, "lr", None)
    return float(lr) if isinstance(lr, (int, float)) else None


def _require_matplotlib() -> None:
    """`--plot` without matplotlib fails before training, not after an hour of it."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise _error(
            "E-PLOT-MATPLOTLIB",
            "--plot needs matplotlib, which is not installed",
            hint="pip install 'snnc[plot]' (or pip install matplotlib), or train without --plot",
        ) from None


def _train(
    path: str, opts: RunOptions, stream: TextIO, log: JsonLinesLog | NullLog, held: ExitStack
) -> dict[str, Any]:
    begin = time.perf_counter()
    if opts.plot:
        _require_matplotlib()
    network = lower_for_training(path, opts)
    spec = network.train
    if network.training is None:
        raise _error(
            "E-NO-GRADIENT",
            f"the train block of '{network.name}' names no learning rule ({spec.algorithm.name})",
            spec.algorithm.span,
            "use algorithm = eventprop(...) or eprop(...)",
        )
    data = load_data(network, opts.data_dir)
    out = _out_dir(network, opts)
    try:
        out.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise _error("E-OUTPUT", f"cannot create output folder '{out}': {e.strerror}") from None
    world = distributed.world()
    writer = world.rank == 0
    if writer:
        held.enter_context(output_folder_lock(out))  # before compiling: a refusal should come at once
    net = build_for_training(network, opts)  # rank 0 compiles, the others load its cache entry
    epochs = spec.epochs if opts.epochs is None else opts.epochs
    trainer = net.make_trainer(batch_size=opts.batch_size, seed=opts.seed)
    seed = trainer.seed
    metric = net.default_metric()
    x, y = xy(network, data.train)
    fraction = spec.validation_split if opts.validation_split is None else opts.validation_split
    val_x = val_y = None
    if fraction:
        if not 0.0 < fraction < 1.0:
            raise _error("E-OPTION", f"validation split must lie in (0, 1), got {fraction}")
        x, y, val_x, val_y = split_validation(x, y, fraction)
    examples = len(next(iter(y.values())))
    if examples == 0:
        total = len(next(iter(y.values()))) + (len(next(iter(val_y.values()))) if val_y else 0)
        why = f"validation split {fraction} leaves none of its {total}" if total else "the data set has no"
        raise _error(
            "E-DATA",
            f"nothing to train on: {why} training examples",
            spec.data.span if spec.data is not None else spec.span,
        )
    augment = None
    if spec.augment:
        from snnc.runtime.datasets.augment import from_calls

        augment = from_calls(spec.augment, seed)
    # only now, after every check of the data and the options: a mistake there keeps the old run
    if writer:
        _remove_partial_files(out)
    start = 0
    found = None
    if opts.resume:
        found = latest_checkpoint(out)
        if found is None:
            raise CheckpointError(f"--resume: no checkpoint in '{out}'", "train without --resume first")
        start = restore(trainer, found)
        stream.write(f"resuming from {found} at epoch {start}\n")
    elif writer:
        for stale in out.glob("epoch-*.npz"):
            stale.unlink()
    checkpoints = Checkpoint(out)
    callbacks: list[Any] = [BatchProgressBar(quiet=opts.quiet), EpochTimer()]
    if writer:
        callbacks.append(checkpoints)
    if net._schedule is not None:
        callbacks.append(net._schedule)

    metrics_path = out / "metrics.json"
    log.write(
        "start",
        file=path,
        network=network.name,
        out=out,
        epochs=epochs,
        start_epoch=start,
        seed=seed,
        ranks=world.size,
        resumed_from=found,
        train_examples=len(next(iter(y.values()))),
        validation_examples=len(next(iter(val_y.values()))) if val_y is not None else 0,
    )
    for epoch in range(start, epochs):
        if augment is not None:  # under MPI a rank augments only the examples it trains on
            mine = trainer.epoch_share(len(next(iter(y.values()))), epoch)
            xe = {k: augment(v, epoch, only=mine) for k, v in x.items()}
        else:
            xe = x
        try:
            trainer.train(
                xe,
                y,
                1,
                start_epoch=epoch,
                validation_x=val_x,
                validation_y=val_y,
                metrics=metric,
                callbacks=callbacks,
            )
        except KeyboardInterrupt:
            done = f"epoch {epoch}" if epoch else "no epoch"
            sys.stderr.write(
                f"\nstopped during epoch {epoch + 1}; {done} saved in {out}: continue with --resume\n"
            )
            raise
        record = trainer.history[-1]
        line = f"epoch {epoch + 1}/{epochs}  train: {_fmt(record['train'])}"
        if "validation" in record:
            line += f"  validation: {_fmt(record['validation'])}"
        stream.write(f"{line}  ({record.get('seconds', 0.0):.1f} s)\n")
        summary = trained_params_summary(trainer.artefact)
        if summary:
            stream.write(f"  params: {summary}\n")
        stream.flush()
        if writer:
            write_metrics_json(metrics_path, trainer.history, None, ranks=world.size)
        log.write(
            "epoch",
            epoch=epoch,
            epochs=epochs,
            train=record["train"],
            validation=record.get("validation"),
            seconds=record.get("seconds"),
            lr=_lr(trainer),
            checkpoint=checkpoints.written[-1] if checkpoints.written else None,
        )

    test = None
    if len(data.test):
        tx, ty = xy(network, data.test)
        trainer.evaluate(tx, ty, metric, callbacks=[BatchProgressBar(quiet=opts.quiet)])
        test = dict(trainer.last_test)
        test["examples"] = len(data.test)
        stream.write(f"test: {_fmt(test)}\n")
        log.write("test", test=test)
    if writer:
        write_metrics_json(metrics_path, trainer.history, test, ranks=world.size)
    stream.write(f"wrote {metrics_path} and checkpoints in {out}\n")
    plots: list[Path] = []
    if opts.plot:
        from snnc.runtime.plot import plot_run

        plots = plot_run(out)
        stream.write("".join(f"wrote {p}\n" for p in plots))
    log.write(
        "done",
        out=out,
        metrics=metrics_path,
        checkpoint=latest_checkpoint(out),
        plots=plots,
        seconds=round(time.perf_counter() - begin, 3),
    )
    return {"epochs": trainer.history, "test": test, "out": str(out)}


def find_checkpoint(network: Any, opts: RunOptions) -> Path:
    """`--checkpoint` (a file, or a folder: its latest epoch), else the latest in the output folder."""
    where = Path(opts.checkpoint) if opts.checkpoint else _out_dir(network, opts)
    if where.is_dir():
        found = latest_checkpoint(where)
        if found is None:
            raise CheckpointError(f"no checkpoint (epoch-NNNN.npz) in '{where}'", "pass --checkpoint FILE")
        return found
    if not where.exists():
        hint = None if opts.checkpoint else f"train first (snnc train … --out {where}) or pass --checkpoint"
        raise CheckpointError(f"no checkpoint at '{where}'", hint)
    return where


def run_evaluate(path: str, opts: RunOptions, stream: TextIO | None = None) -> dict[str, Any]:
    """Test-set loss and metric of a checkpoint; returns {"loss", "accuracy"|"mse", "examples", …}.

    `opts.log_json` gets one "test" record (and "done"), as `run_train` writes them.
    """
    with ExitStack() as held:
        if distributed.world().rank != 0:  # rank 0 speaks for every rank
            opts = _silent(opts)
            stream = held.enter_context(open(os.devnull, "w", encoding="utf-8"))
        log = _open_log(path, opts)
        if stream is None:
            stream = sys.stderr if log.to_stdout else sys.stdout
        return _logged(log, lambda: _evaluate(path, opts, stream, log))


def _evaluate(path: str, opts: RunOptions, stream: TextIO, log: JsonLinesLog | NullLog) -> dict[str, Any]:
    network = lower_for_training(path, opts)
    if opts.no_checkpoint and opts.checkpoint:
        raise _error("E-CHECKPOINT", "--no-checkpoint and --checkpoint exclude each other")
    found = None if opts.no_checkpoint else find_checkpoint(network, opts)
    data = load_data(network, opts.data_dir)
    if not len(data.test):
        raise _error("E-NO-DATA", "the data set has no test split to evaluate on", network.train.data.span)
    net = build_for_training(network, opts)
    meta = load_weights(net, found) if found is not None else {}
    found = found if found is not None else Path(path)  # named in the summary: the file's own weights
    trainer = net.make_trainer(batch_size=opts.batch_size, seed=opts.seed)
    tx, ty = xy(network, data.test)
    trainer.evaluate(tx, ty, net.default_metric(), callbacks=[BatchProgressBar(quiet=opts.quiet)])
    result = dict(trainer.last_test)
    result["examples"] = len(data.test)
    result["checkpoint"] = str(found)
    result["epoch"] = meta.get("epoch")
    which = f"epoch {meta.get('epoch')}" if not opts.no_checkpoint else "its own weights, no checkpoint"
    stream.write(f"{found} ({which}): test {_fmt(trainer.last_test)} on {len(data.test)} examples\n")
    test = {k: v for k, v in result.items() if k not in ("checkpoint", "epoch")}
    log.write("test", test=test, checkpoint=found, epoch=meta.get("epoch"))
    log.write("done", checkpoint=found)
    return result
