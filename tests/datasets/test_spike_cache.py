"""The SHD cache as memory-mapped `.npy` folders: damaged or outdated caches are rebuilt, concurrent
builders do not collide, and a bad example inside a cache is reported with its index, never as a
traceback (issue 18)."""

from __future__ import annotations

import json
import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from snnc.runtime.datasets import spike_cache
from snnc.runtime.datasets.shd import load_split
from snnc.runtime.datasets.spikes import SpikeDataset
from snnc.runtime.errors import RuntimeConfigError

from tests.datasets.test_shd_tonic_augment import write_shd

pytest.importorskip("h5py")
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def h5(tmp_path) -> Path:
    write_shd(tmp_path / "shd_train.h5", n=12, classes=4)
    return tmp_path / "shd_train.h5"


def the_cache(h5: Path) -> Path:
    (folder,) = [p for p in h5.parent.glob(".shd_train.snnc-*") if p.is_dir()]
    return folder


def same(a: SpikeDataset, b: SpikeDataset) -> None:
    for key in ("times", "ids", "offsets", "labels"):
        np.testing.assert_array_equal(getattr(a, key), getattr(b, key), err_msg=key)


def in_memory(ds: SpikeDataset) -> SpikeDataset:
    return SpikeDataset(np.array(ds.times), np.array(ds.ids), ds.offsets, ds.labels, ds.num_neurons)


def test_the_cache_is_mapped_and_read_example_by_example(h5):
    fresh = load_split(h5, bin_ms=1.0, channels=70)
    folder = the_cache(h5)
    assert sorted(p.name for p in folder.iterdir()) == [
        "format.json",
        "ids.npy",
        "labels.npy",
        "offsets.npy",
        "times.npy",
    ]
    again = load_split(h5, bin_ms=1.0, channels=70)
    assert isinstance(again.times, np.memmap) and isinstance(again.ids, np.memmap) and again.lazy
    same(fresh, again)
    part = again.subset([7, 2])  # read into memory, in the order asked for
    assert not part.lazy and not isinstance(part.times, np.memmap)
    for k, i in enumerate((7, 2)):
        for got, want in zip(part.example(k), fresh.example(i), strict=True):
            np.testing.assert_array_equal(got, want)


def _truncate(folder: Path) -> None:
    data = (folder / "times.npy").read_bytes()
    (folder / "times.npy").write_bytes(data[: len(data) // 2])


def _old_version(folder: Path) -> None:
    meta = json.loads((folder / "format.json").read_text())
    (folder / "format.json").write_text(json.dumps({**meta, "format": 1}))


def _an_npz_in_its_place(folder: Path) -> None:
    """The first format wrote one `.npz` file: here one sits where the folder belongs."""
    for p in folder.iterdir():
        p.unlink()
    folder.rmdir()
    np.savez(open(folder, "wb"), times=np.zeros(3), ids=np.zeros(3, np.int64))


@pytest.mark.parametrize(
    "damage",
    [
        _truncate,
        lambda f: (f / "ids.npy").unlink(),
        lambda f: (f / "format.json").unlink(),
        lambda f: (f / "offsets.npy").write_bytes(b"\x93NUMPY junk"),
        lambda f: np.save(f / "labels.npy", np.zeros(5, np.int64)),  # the wrong number of labels
        _old_version,
        _an_npz_in_its_place,
    ],
    ids=["truncated", "missing-array", "missing-format", "not-an-array", "wrong-size", "old-version", "npz"],
)
def test_a_damaged_or_outdated_cache_is_rebuilt(h5, damage):
    want = in_memory(load_split(h5, bin_ms=1.0, channels=70))  # the test damages the mapped files
    folder = the_cache(h5)
    damage(folder)
    got = load_split(h5, bin_ms=1.0, channels=70)
    same(want, got)
    assert got.lazy and folder.is_dir()  # rebuilt in place, and mapped again
    assert json.loads((folder / "format.json").read_text())["format"] == spike_cache.FORMAT
    assert not [p for p in h5.parent.iterdir() if p.name.endswith((".tmp", ".old"))]  # no leftovers


def test_an_old_npz_cache_beside_the_data_is_replaced(h5):
    want = in_memory(load_split(h5, bin_ms=1.0, channels=70))
    folder = the_cache(h5)
    for p in folder.iterdir():
        p.unlink()
    folder.rmdir()
    old = folder.with_name(folder.name + ".npz")  # the name the first format used
    np.savez(old, times=want.times, ids=want.ids, offsets=want.offsets, labels=want.labels)
    got = load_split(h5, bin_ms=1.0, channels=70)
    same(want, got)
    assert got.lazy and not old.exists()


def _build_in_child(folder: str, log: str, queue) -> None:  # noqa: ANN001
    def build() -> SpikeDataset:
        with open(log, "a") as f:
            f.write(f"{os.getpid()}\n")
        time.sleep(0.5)  # long enough for the others to find the cache missing and wait
        ex = [(np.arange(k, dtype=float), np.arange(k) % 5) for k in range(1, 9)]
        return SpikeDataset.from_examples(ex, np.arange(8) % 3, 5)

    ds = spike_cache.cached([Path(folder)], build, 5, "test")
    queue.put((bool(ds.lazy), ds.times.tolist(), ds.ids.tolist()))


def test_processes_that_need_a_missing_cache_build_it_once(tmp_path):
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    log = tmp_path / "builds.log"
    args = (str(tmp_path / "cache"), str(log), queue)
    procs = [ctx.Process(target=_build_in_child, args=args) for _ in range(3)]
    for p in procs:
        p.start()
    results = [queue.get(timeout=60) for _ in procs]
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    assert len(log.read_text().split()) == 1  # one process built; the others waited, then mapped it
    assert all(r == results[0] for r in results) and results[0][0]


def _bad_id_in_example(folder: Path, example: int, value: int) -> None:
    offsets = np.load(folder / "offsets.npy")
    ids = np.load(folder / "ids.npy")
    ids[offsets[example]] = value
    np.save(folder / "ids.npy", ids)


def test_a_bad_example_in_the_cache_names_the_cache_and_the_example(h5):
    load_split(h5, bin_ms=1.0, channels=70)
    folder = the_cache(h5)
    _bad_id_in_example(folder, 5, 900)
    ds = load_split(h5, bin_ms=1.0, channels=70)  # the cache looks whole: no spike is read yet
    assert ds.lazy
    ds.subset([0, 1, 2, 3])  # examples that are fine
    msg = r"\.shd_train\.snnc-.*example 5: spike id 900, but the data have 70 neurons"
    with pytest.raises(RuntimeConfigError, match=msg) as e:
        ds.subset([3, 5])
    assert "delete it to have it rebuilt" in str(e.value) and e.value.code == "E-DATASET-FILE"
    with pytest.raises(RuntimeConfigError, match=msg):
        ds.example(5)
    with pytest.raises(RuntimeConfigError, match=msg):
        _ = ds.by_time  # one process needs every example: all are checked


NET = """
use std.{SpikeInput, LIF, LI, Exponential}
network tiny {
    input  x   = SpikeInput(70)
    hidden h   = LIF(8, tau_mem = 20 ms)
    output out = LI(4, tau_mem = 20 ms, readout = avg_var_exp_weight)
    x -> h   : Dense(weight = Normal(mean = 0.1, sd = 0.05)), Exponential(tau = 5 ms)
    h -> out : Dense(weight = Normal(mean = 0.0, sd = 0.3)), Exponential(tau = 5 ms)
}
train tiny {
    algorithm  = eventprop(max_spikes = 50)
    loss       = sparse_categorical_crossentropy
    optimizer  = adam(lr = 0.01)
    data       = shd(path = ".", bin = 1.0, channels = 70)
    dt         = 1 ms
    duration   = 60 ms
    batch_size = 4
    epochs     = 1
}
"""


def test_snnc_train_reports_a_bad_cached_example_with_its_index(h5, tmp_path):
    write_shd(tmp_path / "shd_test.h5", n=4, seed=1, classes=4)
    load_split(h5, bin_ms=1.0, channels=70)
    _bad_id_in_example(the_cache(h5), 9, -3)
    (tmp_path / "net.snn").write_text(NET)
    cmd = [sys.executable, "-m", "snnc", "train", str(tmp_path / "net.snn"), "--out", str(tmp_path / "run")]
    run = subprocess.run([*cmd, "--quiet"], capture_output=True, text=True, cwd=ROOT, timeout=300)
    assert run.returncode == 1, run.stderr
    assert "Traceback" not in run.stderr
    assert "example 9: spike id -3 (ids count neurons from 0)" in run.stderr
    assert ".shd_train.snnc-" in run.stderr and "delete it to have it rebuilt" in run.stderr


def test_a_cache_cut_short_while_mapped_is_reported_not_a_crash(h5):
    """Reads go through the file, not the mapping, so a file truncated under a running process is
    an error naming the cache (touching the mapping there would kill the process with SIGBUS)."""
    ds = load_split(h5, bin_ms=1.0, channels=70)
    times = the_cache(h5) / "times.npy"
    os.truncate(times, times.stat().st_size - 8 * 5)
    ds.subset([0])  # the first examples are still whole
    with pytest.raises(RuntimeConfigError, match=r"\.shd_train\.snnc-.*cannot read its spikes .*shorter"):
        ds.subset([len(ds) - 1])


def test_the_data_file_is_hashed_once_until_it_changes(h5, monkeypatch):
    """Finding the cache needs the file's hash; reading a whole SHD file for it on every rank of
    every run would defeat reading only a share, so it is remembered with the file's stamp."""
    from snnc.runtime.datasets import spike_cache

    hashed = []
    digest = spike_cache._digest
    monkeypatch.setattr(spike_cache, "_digest", lambda p: hashed.append(p) or digest(p))
    first = in_memory(load_split(h5, bin_ms=1.0, channels=70))
    same(first, load_split(h5, bin_ms=1.0, channels=70))
    assert len(hashed) == 1 and (h5.parent / ".shd_train.h5.snnc-sha256").is_file()
    write_shd(h5, n=7, seed=4, classes=4)  # new content: hashed again, and a new cache
    changed = load_split(h5, bin_ms=1.0, channels=70)
    assert len(hashed) == 2 and len(changed) == 7
    (h5.parent / ".shd_train.h5.snnc-sha256").write_text("{damaged")
    same(in_memory(changed), load_split(h5, bin_ms=1.0, channels=70))
    assert len(hashed) == 3
