"""A preprocessed spike data set on disk, as a folder of `.npy` arrays that are memory-mapped.

`.npz` (the first format) cannot be mapped: every process read every spike. The folder holds
`times.npy`, `ids.npy` (one flat array each: the examples' spikes one after the other), `offsets.npy`
and `labels.npy` (small, one entry per example, read whole) and `format.json` (the format version and
the sizes), written last. `open_cache` maps the spikes, so a process reads from disk only the examples
it takes (an MPI rank: its share of each epoch; `SpikeDataset` checks them as they are read).

A folder that is missing a file, has a truncated array, the wrong types or sizes, or another format
version (an old `.npz` at the same key included) is rebuilt. Building is serialised by an OS lock
(`fcntl.flock` on `<folder>.lock`, dropped by the kernel however the holder ends): of several
processes (MPI ranks, or two runs) needing a missing cache, one builds it and the others wait, then
map what it wrote. The folder is written under a temporary name and renamed into place, so a reader
never sees a half-written cache.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from snnc.runtime.datasets.spikes import SpikeDataset
from snnc.runtime.datasets.validate import offsets_problem

try:
    import fcntl
except ImportError:  # pragma: no cover - Windows: caches are not locked
    fcntl = None  # type: ignore[assignment]

#: bump when the folder's layout changes: older folders are rebuilt
FORMAT = 2
ARRAYS = {"times": np.float64, "ids": np.int64, "offsets": np.int64, "labels": None}
#: the spikes are mapped; offsets and labels (one entry per example) are read whole
MAPPED = {"times": "r", "ids": "r"}


def folders(path: Path, options: str) -> list[Path]:
    """Where the cache of data file `path` read with `options` may live: beside the file, else in
    the snnc cache (a read-only data folder); keyed by the file's content and the options."""
    from snnc.cache import cache_dir

    key = hashlib.sha256(f"{file_hash(path)}|{options}".encode()).hexdigest()[:16]
    name = f".{path.stem}.snnc-{key}"
    return [path.parent / name, cache_dir() / "datasets" / name]


def file_hash(path: Path) -> str:
    """The file's content hash, remembered beside it (`.NAME.snnc-sha256`, with the file's size,
    modification time and inode): every MPI rank of every run would otherwise read the whole file
    just to find its cache. A file that changed in any of these is hashed again."""
    st = path.stat()
    stamp = [st.st_size, st.st_mtime_ns, st.st_ino]
    memo = path.with_name(f".{path.name}.snnc-sha256")
    try:
        doc = json.loads(memo.read_text(encoding="utf-8"))
        if doc["stamp"] == stamp and isinstance(doc["sha256"], str):
            return doc["sha256"]
    except (OSError, ValueError, KeyError, TypeError):
        pass  # none yet, unreadable or damaged: hash the file
    digest = _digest(path)
    tmp = memo.with_name(f"{memo.name}.{os.getpid()}.tmp")
    try:
        tmp.write_text(json.dumps({"stamp": stamp, "sha256": digest}), encoding="utf-8")
        os.replace(tmp, memo)
    except OSError:  # a read-only data folder: hash again next time
        tmp.unlink(missing_ok=True)
    return digest


def _digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()[:16]


def cached(
    places: list[Path], build: Callable[[], SpikeDataset], num_neurons: int | None, source: str
) -> SpikeDataset:
    """The data set cached in the first usable folder of `places`, built (by `build`, once, under
    the folder's lock) when none holds a valid copy. If no folder can be written, `build()`'s result
    is returned in memory. `num_neurons` None: whatever the cache was built with (a file that
    declares it itself)."""
    for folder in places:
        found = open_cache(folder, num_neurons, source)
        if found is not None:
            return found
    built = None
    for folder in places:
        with _locked(folder) as held:
            if not held:
                continue
            found = open_cache(folder, num_neurons, source)  # another process built it meanwhile
            if found is not None:
                return found
            built = build() if built is None else built
            if write_cache(folder, built):
                found = open_cache(folder, num_neurons, source)
                if found is not None:
                    return found
    return build() if built is None else built


def open_cache(folder: Path, num_neurons: int | None, source: str) -> SpikeDataset | None:
    """The cached set with its spikes memory-mapped, or None when `folder` holds no valid cache."""
    try:
        meta = json.loads((folder / "format.json").read_text(encoding="utf-8"))
        if not isinstance(meta, dict) or meta.get("format") != FORMAT:
            return None
        arrays = {name: _load(folder / f"{name}.npy", MAPPED.get(name)) for name in ARRAYS}
    except (OSError, ValueError, UnicodeDecodeError):  # missing, truncated or not an array
        return None
    times, ids, offsets, labels = (arrays[k] for k in ARRAYS)
    if any(dt is not None and arrays[k].dtype != dt for k, dt in ARRAYS.items()):
        return None
    if times.ndim != 1 or ids.shape != times.shape or offsets_problem(offsets, times.size) is not None:
        return None
    if labels.ndim < 1 or len(labels) != offsets.size - 1:
        return None
    if num_neurons is None:
        num_neurons = meta.get("num_neurons")
        if not isinstance(num_neurons, int) or num_neurons < 0:
            return None
    if meta.get("spikes") != times.size or meta.get("num_neurons") != num_neurons:
        return None
    origin = f"'{folder}' (the cache of '{source}'; delete it to have it rebuilt)"
    return SpikeDataset(times, ids, offsets, labels, num_neurons, origin)


def _load(path: Path, mode: str | None) -> np.ndarray:
    return np.load(path, mmap_mode=mode, allow_pickle=False)


def write_cache(folder: Path, data: SpikeDataset) -> bool:
    """Write `data` into `folder` atomically, replacing whatever is there; False if it cannot."""
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=f"{folder.name}.", suffix=".tmp", dir=folder.parent))
    except OSError:
        return False
    try:
        arrays = {"times": data.times, "ids": data.ids, "offsets": data.offsets, "labels": data.labels}
        for name, a in arrays.items():
            _write(tmp / f"{name}.npy", lambda f, a=a: np.save(f, np.ascontiguousarray(a)))
        meta = {"format": FORMAT, "spikes": int(data.times.size), "num_neurons": int(data.num_neurons)}
        _write(tmp / "format.json", lambda f: f.write(json.dumps(meta).encode()))
        _discard(folder)
        _discard(folder.with_name(folder.name + ".npz"))  # the first format's file at this key
        os.rename(tmp, folder)
        return True
    except OSError:
        shutil.rmtree(tmp, ignore_errors=True)
        return False


def _write(path: Path, fill: Callable) -> None:
    with open(path, "wb") as f:
        fill(f)
        f.flush()
        os.fsync(f.fileno())


def _discard(path: Path) -> None:
    """Remove a damaged cache (folder or file); renamed first, so that no reader sees it half gone."""
    if not os.path.lexists(path):
        return
    if path.is_dir() and not path.is_symlink():
        aside = Path(tempfile.mkdtemp(prefix=f"{path.name}.", suffix=".old", dir=path.parent))
        os.rename(path, aside / "x")
        shutil.rmtree(aside, ignore_errors=True)
    else:
        path.unlink()


@contextmanager
def _locked(folder: Path) -> Iterator[bool]:
    """Hold `<folder>.lock` exclusively, waiting for another holder; yields False when the lock file
    cannot be created (a read-only data folder: the next folder is tried)."""
    if fcntl is None:
        yield True
        return
    try:
        folder.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(folder.with_name(folder.name + ".lock"), os.O_RDWR | os.O_CREAT, 0o644)
    except OSError:
        yield False
        return
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield True
    finally:
        os.close(fd)
