"""A generic spike data set stored as `.npz`: arrays `times`, `ids`, `labels`, `offsets`.

`offsets[i]:offsets[i+1]` selects example i's spikes. A file may hold its own test split as
`test_times`, `test_ids`, `test_labels`, `test_offsets`; otherwise `test_fraction` of the examples
is split off after a seeded shuffle. `num_neurons` is read from the file when present, else taken as
one more than the largest id. Files are read with `allow_pickle=False`.
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np
from snnc.runtime.datasets.spikes import Dataset, SpikeDataset
from snnc.runtime.errors import RuntimeConfigError

FIELDS = ("times", "ids", "labels", "offsets")


def _error(message: str, hint: str | None = None) -> RuntimeConfigError:
    return RuntimeConfigError("E-DATASET-FILE", message, hint)


def _split(arrays, prefix: str, num_neurons: int | None, path) -> SpikeDataset:
    missing = [f for f in FIELDS if prefix + f not in arrays]
    if missing:
        raise _error(
            f"'{path}' lacks the array(s) {', '.join(prefix + m for m in missing)}",
            f"a spike .npz holds {', '.join(FIELDS)}",
        )
    ids = arrays[prefix + "ids"]
    n = num_neurons if num_neurons is not None else (int(ids.max()) + 1 if ids.size else 0)
    try:
        return SpikeDataset(
            arrays[prefix + "times"], ids, arrays[prefix + "offsets"], arrays[prefix + "labels"], n
        )
    except ValueError as e:
        raise _error(f"'{path}': {e}") from None


def npz(
    path: str | os.PathLike, test_fraction: float = 0.25, seed: int = 0, base_dir: str | None = None
) -> Dataset:
    p = Path(path)
    if base_dir is not None and not p.is_absolute():
        p = Path(base_dir) / p
    if not p.is_file():
        raise _error(f"no data file '{p}'")
    try:
        with np.load(p, allow_pickle=False) as f:
            arrays = {k: f[k] for k in f.files}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as e:
        raise _error(f"cannot read '{p}' as .npz ({e})") from None
    num_neurons = int(arrays["num_neurons"]) if "num_neurons" in arrays else None
    if "test_times" in arrays:
        train, test = _split(arrays, "", num_neurons, p), _split(arrays, "test_", num_neurons, p)
    else:
        if not 0.0 <= test_fraction < 1.0:
            raise RuntimeConfigError("E-DATASET-ARG", "npz: test_fraction must lie in [0, 1)")
        full = _split(arrays, "", num_neurons, p)
        order = np.random.default_rng(seed).permutation(len(full))
        n_test = int(round(len(full) * test_fraction))
        train, test = full.subset(order[n_test:]), full.subset(order[:n_test])
    n = max(train.num_neurons, test.num_neurons)
    train = SpikeDataset(train.times, train.ids, train.offsets, train.labels, n)
    test = SpikeDataset(test.times, test.ids, test.offsets, test.labels, n)
    labels = np.concatenate([train.labels, test.labels])
    classes = int(labels.max()) + 1 if labels.size and np.issubdtype(labels.dtype, np.integer) else None
    return Dataset(p.stem, train, test, n, classes, {"path": str(p)})


def save_npz(path: str | os.PathLike, train: SpikeDataset, test: SpikeDataset | None = None) -> None:
    """Write the format `npz` reads (with an explicit test split when given)."""
    arrays = {f: getattr(train, f) for f in FIELDS}
    arrays["num_neurons"] = np.asarray(train.num_neurons)
    if test is not None:
        arrays.update({"test_" + f: getattr(test, f) for f in FIELDS})
    np.savez(path, **arrays)
