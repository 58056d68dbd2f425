"""Spiking Heidelberg Digits and Spiking Speech Commands (Cramer et al. 2020) from their HDF5 files.

Layout: `spikes/times` (variable-length float arrays, seconds), `spikes/units` (variable-length ints,
0..699) and `labels`. Files: `shd_train.h5`, `shd_test.h5` (SSC adds `ssc_valid.h5`). Optional
preprocessing as in the published EventProp SHD set-ups: `bin` (ms) snaps spike times to a grid and
drops duplicate (bin, channel) pairs; `channels` merges neighbouring channels (700 -> channels). The
result is cached next to the data (or in the snnc cache if that folder is not writable), keyed by the
file's hash and the options, as a folder of `.npy` arrays that are memory-mapped (`spike_cache.py`):
an MPI rank reads only the examples it trains on.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from snnc.runtime.datasets import spike_cache
from snnc.runtime.datasets.spikes import Dataset, SpikeDataset
from snnc.runtime.errors import RuntimeConfigError

NUM_CHANNELS = 700
LAYOUT = "spikes/times (vlen float, s), spikes/units (vlen int), labels"


def _error(message: str, hint: str | None = None) -> RuntimeConfigError:
    return RuntimeConfigError("E-DATASET-FILE", message, hint)


def _resolve(path: str, data_dir: str | None, base_dir: str | None) -> Path:
    p = Path(path)
    if p.is_absolute():
        return p
    for root in (data_dir, base_dir):
        if root is not None and (Path(root) / p).exists():
            return Path(root) / p
    return Path(data_dir or base_dir or ".") / p


def read_h5(path: Path) -> tuple[list[np.ndarray], list[np.ndarray], np.ndarray]:
    """(times in ms per example, units per example, labels); layout errors name the file."""
    try:
        import h5py
    except ImportError:
        raise _error("reading SHD/SSC needs h5py", "pip install 'snnc[data]'") from None
    if not path.is_file():
        raise _error(f"no data file '{path}'", f"expected an HDF5 file with {LAYOUT}")
    try:
        with h5py.File(path, "r") as f:
            missing = [k for k in ("spikes/times", "spikes/units", "labels") if k not in f]
            if missing:
                raise _error(f"'{path}' lacks {', '.join(missing)}", f"an SHD/SSC file holds {LAYOUT}")
            times = [np.asarray(t, np.float64) * 1000.0 for t in f["spikes/times"][()]]
            units = [np.asarray(u, np.int64) for u in f["spikes/units"][()]]
            raw = np.asarray(f["labels"][()])
            labels = np.asarray(raw, np.int64)
            if raw.dtype.kind == "f" and raw.size and not np.array_equal(raw, labels):
                i = int(np.flatnonzero(raw != labels)[0])
                raise _error(f"'{path}': example {i} has label {raw[i]}, not a whole number (a class index)")
    except RuntimeConfigError:
        raise
    except (OSError, ValueError, TypeError, KeyError) as e:
        raise _error(f"cannot read '{path}' as an SHD/SSC HDF5 file ({e})", f"expected {LAYOUT}") from None
    if not len(times) == len(units) == len(labels):
        raise _error(
            f"'{path}': {len(times)} spike time lists, {len(units)} unit lists, {len(labels)} labels"
        )
    for i, (t, u) in enumerate(zip(times, units, strict=True)):
        if t.shape != u.shape:
            raise _error(f"'{path}': example {i} has {t.size} times but {u.size} units")
        if u.size and (u.min() < 0 or u.max() >= NUM_CHANNELS):
            raise _error(f"'{path}': example {i} has units outside [0, {NUM_CHANNELS})")
    return times, units, labels


def preprocess(
    times: list[np.ndarray], units: list[np.ndarray], labels: np.ndarray, bin_ms: float | None, channels: int
) -> SpikeDataset:
    """Merge channels (unit * channels // 700) and snap times to `bin_ms`, removing duplicates."""
    if not 1 <= channels <= NUM_CHANNELS:
        raise RuntimeConfigError("E-DATASET-ARG", f"shd: channels must lie in [1, {NUM_CHANNELS}]")
    examples = []
    for t, u in zip(times, units, strict=True):
        u = (u * channels) // NUM_CHANNELS
        if bin_ms:
            b = np.floor(t / bin_ms).astype(np.int64)
            key = np.unique(b * channels + u)
            t, u = (key // channels) * bin_ms, key % channels
        examples.append((t, u))
    return SpikeDataset.from_examples(examples, labels, channels)


def load_split(
    path: Path, bin_ms: float | None = None, channels: int = NUM_CHANNELS, max_time: float | None = None
) -> SpikeDataset:
    """One file, preprocessed and cached (`spike_cache.py`); the spikes come memory-mapped."""
    if not path.is_file():
        raise _error(f"no data file '{path}'", f"expected an HDF5 file with {LAYOUT}")

    def build() -> SpikeDataset:
        times, units, labels = read_h5(path)
        if max_time is not None:
            keep = [t < max_time for t in times]
            times = [t[k] for t, k in zip(times, keep, strict=True)]
            units = [u[k] for u, k in zip(units, keep, strict=True)]
        return preprocess(times, units, labels, bin_ms, channels)

    return spike_cache.cached(
        spike_cache.folders(path, f"{bin_ms}|{channels}|{max_time}"), build, channels, str(path)
    )


def _load(prefix: str, path: str, bin: float | None, channels: int, max_time, data_dir, base_dir) -> Dataset:
    folder = _resolve(path, data_dir, base_dir)
    if folder.is_file():
        folder = folder.parent
    if data_dir is not None and not (folder / f"{prefix}_train.h5").exists():
        # `--data-dir DIR` holding shd_train.h5 itself wins over the file's relative `path`
        if (Path(data_dir) / f"{prefix}_train.h5").exists():
            folder = Path(data_dir)
    train = load_split(folder / f"{prefix}_train.h5", bin, channels, max_time)
    test = load_split(folder / f"{prefix}_test.h5", bin, channels, max_time)
    classes = int(max(train.labels.max(initial=-1), test.labels.max(initial=-1))) + 1
    meta = {"path": str(folder), "bin": bin, "channels": channels}
    ds = Dataset(prefix, train, test, channels, classes, meta)
    if prefix == "ssc" and (folder / "ssc_valid.h5").is_file():
        ds.meta["validation"] = load_split(folder / "ssc_valid.h5", bin, channels, max_time)
    return ds


def shd(
    path: str = ".",
    bin: float | None = None,  # noqa: A002
    channels: int = NUM_CHANNELS,
    max_time: float | None = None,
    data_dir: str | None = None,
    base_dir: str | None = None,
) -> Dataset:
    """SHD from `path/shd_{train,test}.h5`; relative paths against `data_dir`, then `base_dir`."""
    return _load("shd", path, bin, channels, max_time, data_dir, base_dir)


def ssc(
    path: str = ".",
    bin: float | None = None,  # noqa: A002
    channels: int = NUM_CHANNELS,
    max_time: float | None = None,
    data_dir: str | None = None,
    base_dir: str | None = None,
) -> Dataset:
    """SSC from `path/ssc_{train,test}.h5`, with `ssc_valid.h5` in `meta["validation"]` if present."""
    return _load("ssc", path, bin, channels, max_time, data_dir, base_dir)
