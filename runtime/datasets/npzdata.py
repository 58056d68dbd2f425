"""A generic spike data set stored as `.npz`: arrays `times`, `ids`, `labels`, `offsets`.

`offsets[i]:offsets[i+1]` selects example i's spikes. A file may hold its own test split as
`test_times`, `test_ids`, `test_labels`, `test_offsets`; otherwise `test_fraction` of the examples
is split off after a seeded shuffle. `num_neurons` is read from the file when present, else taken as
one more than the largest id. Files are read with `allow_pickle=False`, and checked once, here: a
file that is not an .npz, a NaN or negative spike time, an id out of range or a non-finite label is a
diagnostic naming the file, the example and the value (`validate.py`). The checked splits are cached
next to the file (or in the snnc cache), keyed by its content, the split and the seed, as folders of
memory-mapped `.npy` arrays (`spike_cache.py`): a later run does not read the file again, and an MPI
rank reads only the examples it trains on. Two spikes of one neuron in
one time step reach the network as one spike (an input neuron spikes at most once per step).
"""

from __future__ import annotations

import os
import zipfile
from pathlib import Path

import numpy as np
from snnc.runtime.datasets import spike_cache
from snnc.runtime.datasets.spikes import Dataset, SpikeDataset
from snnc.runtime.datasets.validate import shape_problem, spikes_problem
from snnc.runtime.errors import RuntimeConfigError

FIELDS = ("times", "ids", "labels", "offsets")
FORMAT_HINT = (
    "a spike .npz holds times (ms, finite, >= 0), ids (0 to num_neurons - 1), labels and offsets "
    "(example i is times[offsets[i]:offsets[i+1]]); write one with numpy.savez or snnc's save_npz"
)


def _error(message: str, hint: str | None = None) -> RuntimeConfigError:
    return RuntimeConfigError("E-DATASET-FILE", message, hint)


def data_file(path: str | os.PathLike, base_dir: str | None) -> Path:
    """A data file named in a `.snn`: relative paths are relative to the file's folder."""
    p = Path(path)
    return Path(base_dir) / p if base_dir is not None and not p.is_absolute() else p


def check_test_fraction(test_fraction: float, name: str) -> None:
    if not 0.0 <= test_fraction < 1.0:
        raise RuntimeConfigError("E-DATASET-ARG", f"{name}: test_fraction must lie in [0, 1)")


def held_out(
    n: int, test_fraction: float, rng: np.random.Generator, name: str
) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) example indices: `test_fraction` of `n` split off after a seeded shuffle."""
    check_test_fraction(test_fraction, name)
    order = rng.permutation(n)
    n_test = int(round(n * test_fraction))
    return order[n_test:], order[:n_test]


def num_classes(labels: np.ndarray) -> int | None:
    """One more than the largest integer label (None for regression targets or no labels)."""
    return int(labels.max()) + 1 if labels.size and np.issubdtype(labels.dtype, np.integer) else None


def _split(arrays, prefix: str, num_neurons: int | None, path) -> SpikeDataset:
    missing = [f for f in FIELDS if prefix + f not in arrays]
    if missing:
        raise _error(
            f"'{path}' lacks the array(s) {', '.join(prefix + m for m in missing)}",
            f"a spike .npz holds {', '.join(FIELDS)}",
        )
    times, ids, labels, offsets = (arrays[prefix + f] for f in FIELDS)
    which = "test " if prefix else ""
    problem = shape_problem(times, ids, offsets, labels)
    if problem is None:
        problem = spikes_problem(times, ids, offsets, num_neurons)
    if problem is None and np.issubdtype(labels.dtype, np.floating):
        bad = np.flatnonzero(~np.all(np.isfinite(labels.reshape(len(labels), -1)), axis=1))
        if bad.size:
            problem = f"example {bad[0]}: label {labels[bad[0]]} is not finite"
    if problem is not None:
        raise _error(f"'{path}': {which}{problem}", FORMAT_HINT)
    n = num_neurons if num_neurons is not None else (int(ids.max()) + 1 if ids.size else 0)
    return SpikeDataset(times, ids, offsets, labels, n)


def _read(path: Path) -> dict[str, np.ndarray]:
    """Every array of the .npz at `path`; anything else (a .npy, a text file, pickles) is refused."""
    if not zipfile.is_zipfile(path):
        with open(path, "rb") as f:
            npy = f.read(6) == b"\x93NUMPY"
        what = "a .npy file, which holds a single array" if npy else "not a zip archive of numpy arrays"
        raise _error(f"cannot read '{path}' as .npz: it is {what}", FORMAT_HINT)
    arrays = {}
    try:
        with np.load(path, allow_pickle=False) as f:
            for key in f.files:
                try:
                    arrays[key] = f[key]
                except ValueError as e:
                    if "allow_pickle" not in str(e):
                        raise
                    raise _error(
                        f"'{path}': array '{key}' holds Python objects, which snnc does not load",
                        "store numbers only (times float, ids, labels and offsets integers); "
                        "snnc never unpickles data",
                    ) from None
    except RuntimeConfigError:
        raise
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as e:
        raise _error(f"cannot read '{path}' as .npz ({e})") from None
    return arrays


def _num_neurons(arrays, path: Path) -> int | None:
    if "num_neurons" not in arrays:
        return None
    value = arrays["num_neurons"]
    if value.size != 1 or not np.issubdtype(value.dtype, np.integer) or int(value.flat[0]) < 1:
        raise _error(f"'{path}': num_neurons must be one positive integer (got {value!r})", FORMAT_HINT)
    return int(value.flat[0])


def npz(
    path: str | os.PathLike, test_fraction: float = 0.25, seed: int = 0, base_dir: str | None = None
) -> Dataset:
    p = data_file(path, base_dir)
    if not p.is_file():
        raise _error(f"no data file '{p}'")
    own_test = _has_test_split(p)
    if not own_test:
        check_test_fraction(test_fraction, "npz")  # before reading the examples, as always
    options = "npz|own test split" if own_test else f"npz|{float(test_fraction)!r}|{int(seed)}"
    places = spike_cache.folders(p, options)
    read: dict[str, SpikeDataset] = {}

    def split(which: str):  # noqa: ANN202
        def build() -> SpikeDataset:
            if not read:  # the file is read and checked once, for both splits
                read.update(_splits(p, own_test, test_fraction, seed))
            return read[which]

        return build

    cached = {
        which: spike_cache.cached(
            [f.with_name(f"{f.name}-{which}") for f in places], split(which), None, str(p)
        )
        for which in ("train", "test")
    }
    train, test = cached["train"], cached["test"]
    if train.num_neurons != test.num_neurons:  # caches of two builds (one was rebuilt): rebuild both
        train, test = _splits(p, own_test, test_fraction, seed).values()
    meta: dict = {"path": str(p)}
    if own_test:
        meta["examples"] = {"train": ("", None), "test": ("test ", None)}
    else:  # the split's example i is the file's example index[i]: errors found later name the file's
        train_idx, test_idx = held_out(
            len(train) + len(test), test_fraction, np.random.default_rng(seed), "npz"
        )
        meta["examples"] = {"train": ("", train_idx), "test": ("", test_idx)}
    n = train.num_neurons
    return Dataset(p.stem, train, test, n, num_classes(np.concatenate([train.labels, test.labels])), meta)


def _has_test_split(path: Path) -> bool:
    """Whether the .npz holds its own test split (`test_times`), from its table of contents only."""
    try:
        with zipfile.ZipFile(path) as z:
            return "test_times.npy" in z.namelist()
    except (zipfile.BadZipFile, OSError):
        return False  # not an .npz: `_read` says so when the examples are read


def _splits(path: Path, own_test: bool, test_fraction: float, seed: int) -> dict[str, SpikeDataset]:
    """The file's train and test splits, read and checked whole, with one neuron count."""
    arrays = _read(path)
    num_neurons = _num_neurons(arrays, path)
    if own_test:
        train, test = _split(arrays, "", num_neurons, path), _split(arrays, "test_", num_neurons, path)
    else:
        full = _split(arrays, "", num_neurons, path)
        train_idx, test_idx = held_out(len(full), test_fraction, np.random.default_rng(seed), "npz")
        train, test = full.subset(train_idx), full.subset(test_idx)
    n = max(train.num_neurons, test.num_neurons)
    return {
        "train": SpikeDataset(train.times, train.ids, train.offsets, train.labels, n),
        "test": SpikeDataset(test.times, test.ids, test.offsets, test.labels, n),
    }


def save_npz(path: str | os.PathLike, train: SpikeDataset, test: SpikeDataset | None = None) -> None:
    """Write the format `npz` reads (with an explicit test split when given)."""
    arrays = {f: getattr(train, f) for f in FIELDS}
    arrays["num_neurons"] = np.asarray(train.num_neurons)
    if test is not None:
        arrays.update({"test_" + f: getattr(test, f) for f in FIELDS})
    np.savez(path, **arrays)
