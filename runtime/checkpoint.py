"""Checkpoints: weights, optimiser state and metadata in one `.npz` file, written atomically.

One file holds everything so that a checkpoint is never half-updated: arrays under `weights/<proj>`
and `optimiser/<key>`, and a JSON document (epoch, seed, RNG state, model hash, optimiser type and
hyperparameters) stored as UTF-8 bytes under `meta.json`. Writing goes to a temporary file in the same
folder, is fsynced and then renamed over the target, so a crash leaves the previous checkpoint intact.
Loading uses `allow_pickle=False`; a truncated or corrupt file gives a `CheckpointError` and is left
untouched.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
import zipfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from snnc.runtime.callbacks import Callback, LoopContext
from snnc.runtime.driver import commit_weights, live_weights, model_hash
from snnc.runtime.errors import RuntimeConfigError

FORMAT = "snnc-checkpoint"
VERSION = 1
_NAME = re.compile(r"^epoch-(\d+)\.npz$")


class CheckpointError(RuntimeConfigError):
    def __init__(self, message: str, hint: str | None = None):
        super().__init__("E-CHECKPOINT", message, hint)


@dataclass
class CheckpointData:
    weights: dict[str, np.ndarray]
    optimiser: dict[str, np.ndarray] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def epoch(self) -> int:
        return int(self.meta["epoch"])


def save_checkpoint(
    path: str | os.PathLike,
    weights: Mapping[str, np.ndarray],
    optimiser_state: Mapping[str, np.ndarray] | None = None,
    meta: Mapping[str, Any] | None = None,
) -> Path:
    """Write a checkpoint atomically (temp file, fsync, rename) and return its path."""
    path = Path(path)
    doc = {"format": FORMAT, "version": VERSION, **dict(meta or {})}
    arrays: dict[str, np.ndarray] = {}
    for name, w in weights.items():
        arrays[f"weights/{name}"] = np.asarray(w)
    for name, a in (optimiser_state or {}).items():
        arrays[f"optimiser/{name}"] = np.asarray(a)
    for key, a in arrays.items():
        if a.dtype == object:
            raise CheckpointError(f"checkpoint entry '{key}' is not a numeric array")
    arrays["meta.json"] = np.frombuffer(json.dumps(doc, sort_keys=True).encode("utf-8"), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, **arrays)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)
    return path


def _fsync_dir(folder: Path) -> None:
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def load_checkpoint(path: str | os.PathLike, model_hash: str | None = None) -> CheckpointData:
    """Read a checkpoint; a damaged file or one from another model raises `CheckpointError`."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no checkpoint at '{path}'")
    try:
        with np.load(path, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError, KeyError) as e:
        raise CheckpointError(
            f"checkpoint '{path}' is truncated or corrupt ({e})",
            "delete it or resume from an earlier epoch's checkpoint",
        ) from None
    if "meta.json" not in arrays:
        raise CheckpointError(f"'{path}' is not an snnc checkpoint (no metadata)")
    try:
        meta = json.loads(arrays.pop("meta.json").tobytes().decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"checkpoint '{path}' has corrupt metadata ({e})") from None
    if meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise CheckpointError(f"'{path}' is not an snnc checkpoint of version {VERSION}")
    if model_hash is not None and meta.get("model_hash") not in (None, model_hash):
        raise CheckpointError(
            f"checkpoint '{path}' belongs to another model (hash {meta.get('model_hash')}, this model {model_hash})",
            "resume only with the same .snn network and training block",
        )
    weights = {k[len("weights/") :]: v for k, v in arrays.items() if k.startswith("weights/")}
    opt = {k[len("optimiser/") :]: v for k, v in arrays.items() if k.startswith("optimiser/")}
    return CheckpointData(weights, opt, meta)


def checkpoint_path(folder: str | os.PathLike, epoch: int) -> Path:
    return Path(folder) / f"epoch-{epoch:04d}.npz"


def latest_checkpoint(folder: str | os.PathLike) -> Path | None:
    """The checkpoint of the highest epoch in `folder`, or None."""
    folder = Path(folder)
    if not folder.is_dir():
        return None
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _NAME.match(p.name))]
    return max(found)[1] if found else None


def trainer_checkpoint(trainer: Any, epoch: int, seed: int) -> tuple[dict, dict, dict]:
    """What a checkpoint of `trainer` after `epoch` holds: weights, optimiser state, metadata."""
    artefact = trainer.artefact
    opt = trainer.optimiser
    meta: dict[str, Any] = {
        "epoch": int(epoch),
        "next_epoch": int(epoch) + 1,
        "seed": int(seed),
        "model_hash": model_hash(artefact),
        "optimiser": {"type": opt.name, "reduction": opt.reduction} if opt is not None else None,
        "history": list(getattr(trainer, "history", [])),
    }
    rng = getattr(artefact, "rng", None)
    if isinstance(rng, np.random.Generator):
        meta["rng_state"] = rng.bit_generator.state
    state = opt.state_dict() if opt is not None else {}
    rewiring = getattr(trainer, "rewiring", None)
    if rewiring is not None:  # Deep R's masks and signs travel with the optimiser's state
        state.update(rewiring.state_dict())
    weights, _ = live_weights(artefact)
    return weights, state, meta


def restore(trainer: Any, path: str | os.PathLike) -> int:
    """Load a checkpoint into `trainer` (weights in place, optimiser state); return the next epoch."""
    data = load_checkpoint(path, model_hash(trainer.artefact))
    weights, live = live_weights(trainer.artefact)
    if set(data.weights) != set(weights):
        raise CheckpointError(
            f"checkpoint '{path}' holds projections {sorted(data.weights)}, the model has {sorted(weights)}"
        )
    for name, w in data.weights.items():
        if weights[name].shape != w.shape:
            raise CheckpointError(
                f"checkpoint '{path}': projection '{name}' has shape {w.shape}, model {weights[name].shape}"
            )
    opt_meta = data.meta.get("optimiser")
    if trainer.optimiser is not None and opt_meta and opt_meta.get("type") != trainer.optimiser.name:
        raise CheckpointError(f"checkpoint '{path}' was written by optimiser '{opt_meta.get('type')}'")
    for name, w in data.weights.items():
        weights[name][...] = w
    commit_weights(trainer.artefact, weights, live)
    try:
        if trainer.optimiser is not None and data.optimiser:
            trainer.optimiser.load_state_dict(data.optimiser)
        if getattr(trainer, "rewiring", None) is not None:
            trainer.rewiring.load_state_dict(data.optimiser)
    except (TypeError, ValueError, KeyError, IndexError) as e:  # arrays of the wrong kind or shape
        raise CheckpointError(
            f"checkpoint '{path}' holds a damaged optimiser state ({type(e).__name__}: {e})"
        ) from None
    rng = getattr(trainer.artefact, "rng", None)
    if isinstance(rng, np.random.Generator) and "rng_state" in data.meta:
        rng.bit_generator.state = data.meta["rng_state"]
    if hasattr(trainer, "history"):
        trainer.history = list(data.meta.get("history", []))
    return int(data.meta["next_epoch"])


class Checkpoint(Callback):
    """Writes `epoch-NNNN.npz` into `folder` at the end of every `every`-th epoch, keeping the last `keep`."""

    def __init__(self, folder: str | os.PathLike, every: int = 1, keep: int | None = None):
        self.folder = Path(folder)
        self.every = max(1, int(every))
        self.keep = keep
        self.written: list[Path] = []

    def set_params(self, context: LoopContext) -> None:
        super().set_params(context)
        self.seed = int(context.extra.get("seed", 0))

    def on_epoch_end(self, epoch: int, metrics) -> None:
        if self.context.trainer is None or (epoch + 1) % self.every:
            return
        weights, state, meta = trainer_checkpoint(self.context.trainer, epoch, self.seed)
        self.written.append(save_checkpoint(checkpoint_path(self.folder, epoch), weights, state, meta))
        if self.keep is not None and len(self.written) > self.keep:
            old = self.written.pop(0)
            if old.exists():
                old.unlink()
