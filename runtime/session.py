"""A `.snn` train block as runtime objects: its loss, optimiser, schedule and regularisers become a
`Trainer` (`trainer_for`), its data set is loaded through the registry (`load_data`, relative paths
from the `.snn` file's folder) and split into inputs and labels (`xy`), and a checkpoint's weights go
into an artefact (`load_weights`). Every user mistake is a diagnostic.

What `snnc train` and `snnc evaluate` do with these (options, output folders, logs, the epoch loop)
is `snnc/train.py`: the runtime knows the artefact protocol, not the compiler that makes artefacts.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
from snnc.ir.diagnostics import Diagnostic, DiagnosticError
from snnc.runtime import driver
from snnc.runtime.checkpoint import CheckpointError, load_checkpoint
from snnc.runtime.datasets.validate import class_labels_problem
from snnc.runtime.losses import SpikeCountRegulariser, get_loss
from snnc.runtime.optimisers import get_optimiser
from snnc.runtime.rewiring import rewired_columns
from snnc.runtime.trainer import Trainer

MSE_LOSSES = ("mse", "mean_square_error")


# --------------------------------------------------------------------------------------------------
# train block -> runtime objects
# --------------------------------------------------------------------------------------------------
def _spec(network: Any) -> Any:
    return getattr(network, "train", None)


def default_metric(network: Any) -> str:
    """Mean squared error for regression losses, classification accuracy otherwise."""
    spec = _spec(network)
    loss = spec.loss.name if spec is not None and spec.loss is not None else None
    return "mse" if loss in MSE_LOSSES else "sparse_categorical_accuracy"


def make_regularisers(network: Any) -> dict[str, SpikeCountRegulariser]:
    """Trainer-side spike-count regularisers from `regularisation = spike_count(strength, target)`.

    When the gradient pass already folded the regulariser into the backward pass (EventProp does),
    the artefact applies it and the trainer must not add it a second time.
    """
    spec = _spec(network)
    if spec is None or spec.regularisation is None:
        return {}
    training = getattr(network, "training", None)
    pops = getattr(training, "populations", None) or {}
    if any(getattr(pg, "regularisation", None) is not None for pg in pops.values()):
        return {}
    call = spec.regularisation
    if call.name != "spike_count":
        raise DiagnosticError(
            Diagnostic(
                "E-REGULARISER",
                f"unknown regulariser '{call.name}'",
                call.span,
                hint="the runtime knows spike_count(strength = …, target = …)",
            )
        )
    strength = float(call.args.get("strength", 0.0))
    target = float(call.args.get("target", 0.0))
    reg = SpikeCountRegulariser(upper=strength, lower=strength, nu_upper=target, nu_lower=target)
    return {p.name: reg for p in network.populations.values() if p.role == "hidden"}


def trainer_for(
    artefact: Any,
    network: Any,
    *,
    loss: Any = None,
    optimiser: Any = None,
    batch_size: int | None = None,
    seed: int | None = None,
    regularisers: Mapping[str, Any] | None = None,
) -> tuple[Trainer, Any]:
    """A `Trainer` for `artefact` and the train block's schedule callback (or None)."""
    spec = _spec(network)
    if loss is None:
        if spec is None or spec.loss is None:
            raise ValueError("train needs a loss: pass loss=… or give the network a train block with `loss`")
        loss = get_loss(spec.loss.name, spec.loss.args, spec.loss.span)
    if optimiser is None:
        optimiser = (
            get_optimiser(spec.optimizer.name, spec.optimizer.args, spec.optimizer.span)
            if spec is not None and spec.optimizer is not None
            else "adam"
        )
    if batch_size is None:
        batch_size = spec.batch_size if spec is not None else None
    if seed is None:
        seed = spec.seed if spec is not None else 0
    if regularisers is None:
        regularisers = make_regularisers(network) if network is not None else {}
    schedule = None
    if spec is not None and spec.schedule is not None:
        from snnc.runtime.schedules import get_schedule

        schedule = get_schedule(spec.schedule.name, spec.schedule.args, spec.schedule.span)
    from snnc.runtime import distributed

    if distributed.world().distributed:  # before the Trainer's own check: this one knows the span
        distributed.check_supported(artefact, network)
    rewiring = None
    if spec is not None and spec.rewiring is not None:
        from snnc.runtime.rewiring import from_call

        rewiring = from_call(spec.rewiring, network, seed)
    trainer = Trainer(
        artefact, loss, optimiser, batch_size, regularisers=regularisers, seed=seed, rewiring=rewiring
    )
    return trainer, schedule


# --------------------------------------------------------------------------------------------------
# data
# --------------------------------------------------------------------------------------------------
def _error(code: str, message: str, span: Any = None, hint: str | None = None) -> DiagnosticError:
    return DiagnosticError(Diagnostic(code, message, span, hint=hint))


def load_data(network: Any, data_dir: str | None = None) -> Any:
    """The train block's data set, with relative paths taken from the `.snn` file's folder."""
    from snnc.runtime.datasets.registry import load_dataset

    spec = _spec(network)
    if spec is None or spec.data is None:
        span = spec.span if spec is not None else network.span
        raise _error(
            "E-NO-DATA",
            f"network '{network.name}' names no data set",
            span,
            "add `data = …` to its train block",
        )
    source = getattr(network, "source_path", None)
    base_dir = os.path.dirname(os.path.abspath(source)) if source and not source.startswith("<") else None
    data = load_dataset(spec.data.name, spec.data.args, spec.data.span, base_dir=base_dir, data_dir=data_dir)
    check_labels(network, data)
    return data


def check_labels(network: Any, data: Any) -> None:
    """A classification loss needs each label to be a neuron of the output population; checked on
    load for both splits, so a bad test label stops the run before training, not after it."""
    outputs = network.outputs()
    size = getattr(outputs[0], "size", None) if len(outputs) == 1 else None
    if size is None or default_metric(network) == "mse":
        return
    for split in ("train", "test"):
        found = class_labels_problem(np.asarray(getattr(data, split).labels), int(size))
        if found is None:
            continue
        bad, what = found
        qualifier, index = data.meta.get("examples", {}).get(split, (f"{split} ", None))
        where = f"'{data.meta['path']}'" if "path" in data.meta else f"data set '{data.name}'"
        if bad is not None:
            example = int(index[bad]) if index is not None else bad
            where += f": {qualifier}example {example} has"
        else:
            where += f" ({split} split) has"
        loss = _spec(network).loss
        raise _error(
            "E-DATA-LABELS",
            f"{where} {what}, but {loss.name if loss else 'the loss'} needs class indices of output population "
            f"'{outputs[0].name}': whole numbers from 0 to {size - 1}",
            _spec(network).data.span,
            "relabel the data, or give the output population one neuron per class",
        )


def xy(network: Any, split: Any) -> tuple[dict[str, Any], dict[str, Any]]:
    """({input population: spikes}, {output population: labels}) of one data split."""
    inputs, outputs = network.inputs(), network.outputs()
    if len(inputs) != 1 or len(outputs) != 1:
        raise _error(
            "E-DATA-SHAPE",
            f"a train block's data set feeds one input and one output population; '{network.name}' has "
            f"{len(inputs)} inputs and {len(outputs)} outputs",
            network.span,
            "train such networks from Python with net.train({...}, {...})",
        )
    x, out = inputs[0], outputs[0]
    size = getattr(x, "size", None)
    if size is not None and getattr(split, "num_neurons", size) != size:
        raise _error(
            "E-DATA-SHAPE",
            f"the data set has {split.num_neurons} input channels but population '{x.name}' has {size} neurons",
            _spec(network).data.span,
        )
    return {x.name: split}, {out.name: split.labels}


def load_weights(net: Any, path: Path) -> dict[str, Any]:
    """Put a checkpoint's weights into `net`; another model's checkpoint is a `CheckpointError`."""
    data = load_checkpoint(path, driver.model_hash(net.artefact))
    weights, live = driver.live_weights(net.artefact)
    shapes = {k: v.shape for k, v in weights.items()}
    if set(data.weights) != set(shapes):
        raise CheckpointError(
            f"checkpoint '{path}' holds projections {sorted(data.weights)}, the model has {sorted(shapes)}",
            "evaluate with the .snn file the checkpoint was trained from",
        )
    for name, w in data.weights.items():
        if tuple(w.shape) != tuple(shapes[name]):
            raise CheckpointError(
                f"checkpoint '{path}': projection '{name}' has shape {w.shape}, the model {tuple(shapes[name])}",
                "evaluate with the .snn file the checkpoint was trained from",
            )
    for name, w in data.weights.items():
        weights[name][...] = w
    driver.commit_weights(net.artefact, weights, live)
    columns = rewired_columns(data.optimiser)  # Deep R moved these sparse synapses
    for name, structure in driver.live_structure(net.artefact, columns).items():
        structure["col_idx"][...] = columns[name]
    return data.meta
