"""SHD/SSC HDF5 files, tonic event arrays and per-epoch augmentation, down to a forward simulation."""

from __future__ import annotations

import numpy as np
import pytest
from snnc.ir.model import Call
from snnc.runtime.datasets import load_dataset
from snnc.runtime.datasets.augment import Augmenter, blend, from_calls, shift
from snnc.runtime.datasets.registry import DatasetError
from snnc.runtime.datasets.spikes import SpikeDataset
from snnc.runtime.datasets.tonic_events import from_tonic

h5py = pytest.importorskip("h5py")


def write_shd(path, n=6, seed=0, classes=3):
    """A small file in the real SHD layout: vlen float times (s), vlen int units, labels."""
    rng = np.random.default_rng(seed)
    times, units = [], []
    labels = np.arange(n) % classes
    for _ in range(n):
        k = rng.integers(5, 30)
        times.append(np.sort(rng.uniform(0, 0.05, k)).astype(np.float32))
        units.append(rng.integers(0, 700, k).astype(np.uint16))
    with h5py.File(path, "w") as f:
        t = f.create_dataset("spikes/times", (n,), dtype=h5py.vlen_dtype(np.float32))
        u = f.create_dataset("spikes/units", (n,), dtype=h5py.vlen_dtype(np.uint16))
        for i in range(n):
            t[i], u[i] = times[i], units[i]
        f.create_dataset("labels", data=labels.astype(np.uint8))
    return times, units, labels


def test_shd_reads_bins_and_merges_channels(tmp_path):
    times, units, labels = write_shd(tmp_path / "shd_train.h5")
    write_shd(tmp_path / "shd_test.h5", n=3, seed=1)
    ds = load_dataset("shd", {"path": ".", "bin": 1.0, "channels": 350}, data_dir=str(tmp_path))
    assert ds.num_inputs == 350 and len(ds.train) == 6 and len(ds.test) == 3
    np.testing.assert_array_equal(ds.train.labels, labels)
    t, u = ds.train.example(2)
    want = {
        (int(np.floor(a * 1000.0)), int(b) // 2)
        for a, b in zip(times[2].astype(float), units[2], strict=False)
    }
    assert {(int(round(a)), int(b)) for a, b in zip(t, u, strict=False)} == want
    # cached next to the data as a folder of arrays, mapped rather than read; the cache gives the same
    assert [c.name for c in tmp_path.glob(".shd_train.snnc-*/format.json")] == ["format.json"]
    assert ds.train.lazy and ds.test.lazy
    again = load_dataset("shd", {"path": ".", "bin": 1.0, "channels": 350}, data_dir=str(tmp_path))
    np.testing.assert_array_equal(again.train.times, ds.train.times)
    raw = load_dataset("shd", {"path": str(tmp_path)})
    np.testing.assert_allclose(raw.train.example(0)[0], times[0].astype(np.float64) * 1000.0, rtol=1e-6)


def test_shd_relative_path_against_snn_folder(tmp_path):
    (tmp_path / "data").mkdir()
    write_shd(tmp_path / "data" / "shd_train.h5")
    write_shd(tmp_path / "data" / "shd_test.h5")
    ds = load_dataset("shd", {"path": "data"}, base_dir=str(tmp_path))
    assert ds.num_classes == 3


def test_missing_and_malformed_files_name_the_file(tmp_path):
    with pytest.raises(DatasetError, match=r"no data file '.*shd_train.h5'"):
        load_dataset("shd", {"path": str(tmp_path)})
    with h5py.File(tmp_path / "shd_train.h5", "w") as f:
        f.create_dataset("labels", data=np.zeros(2, np.uint8))
    with pytest.raises(DatasetError, match=r"shd_train.h5' lacks spikes/times, spikes/units") as e:
        load_dataset("shd", {"path": str(tmp_path)})
    assert "spikes/times (vlen float, s)" in e.value.hint
    (tmp_path / "shd_train.h5").write_bytes(b"not hdf5")
    with pytest.raises(DatasetError, match="cannot read .* as an SHD/SSC HDF5 file"):
        load_dataset("shd", {"path": str(tmp_path)})
    with pytest.raises(DatasetError, match="has no argument 'bins'"):
        load_dataset("shd", {"bins": 1.0})


def test_fractional_labels_are_refused_not_truncated(tmp_path):
    write_shd(tmp_path / "shd_test.h5")
    write_shd(tmp_path / "shd_train.h5")
    with h5py.File(tmp_path / "shd_train.h5", "r+") as f:
        del f["labels"]
        f.create_dataset("labels", data=np.array([0.0, 1.0, 2.5, 0.0, 1.0, 2.0]))
    with pytest.raises(DatasetError, match=r"shd_train.h5': example 2 has label 2.5, not a whole number"):
        load_dataset("shd", {"path": str(tmp_path)})


def tonic_events(n, seed=0):
    rng = np.random.default_rng(seed)
    dtype = np.dtype([("x", np.int16), ("y", np.int16), ("t", np.int64), ("p", bool)])
    out = []
    for _ in range(n):
        k = rng.integers(3, 20)
        e = np.zeros(k, dtype)
        e["x"], e["y"] = rng.integers(0, 4, k), rng.integers(0, 3, k)
        e["t"], e["p"] = np.sort(rng.integers(0, 20000, k)), rng.integers(0, 2, k)
        out.append(e)
    return out


def test_tonic_arrays_flatten_x_y_p_and_scale_time():
    events = tonic_events(4)
    ds = from_tonic(events, [0, 1, 0, 1], sensor_size=(4, 3, 2))
    assert ds.num_neurons == 24
    t, ids = ds.example(1)
    e = events[1]
    np.testing.assert_allclose(t, e["t"] / 1000.0)
    np.testing.assert_array_equal(ids, (e["x"] * 3 + e["y"]) * 2 + e["p"])
    one_d = np.zeros(2, [("t", np.int64), ("x", np.int64), ("p", np.int64)])
    one_d["x"], one_d["p"] = [5, 6], [0, 1]
    np.testing.assert_array_equal(from_tonic([one_d], [0], (700, 2)).ids, [10, 13])
    with pytest.raises(ValueError, match="field x outside"):
        from_tonic(events, [0] * 4, sensor_size=(2, 3, 2))


def test_shift_moves_whole_examples_and_drops_out_of_range():
    ds = SpikeDataset.from_examples([([1.0, 2.0, 3.0], [0, 5, 9]), ([4.0], [3])], [0, 1], 10)
    out = shift(ds, np.random.default_rng(3), max=4)
    for i in range(2):
        t, u = ds.example(i)
        t2, u2 = out.example(i)
        deltas = {int(b) - int(a) for a, b in zip(u[np.isin(t, t2)], u2, strict=False)}
        assert len(deltas) <= 1 and all(abs(d) <= 4 for d in deltas)
        assert np.all((u2 >= 0) & (u2 < 10))


def test_blend_keeps_class_and_aligns_centre_of_mass():
    rng = np.random.default_rng(0)
    ex = [(rng.uniform(0, 10, 400), rng.integers(100, 120, 400)) for _ in range(2)]
    ex += [(rng.uniform(0, 10, 400), rng.integers(300, 320, 400)) for _ in range(2)]
    ds = SpikeDataset.from_examples(ex, [0, 0, 1, 1], 700)
    out = blend(ds, np.random.default_rng(1), n=2, p=1.0)
    for i in range(4):
        _, u = out.example(i)
        assert abs(u.mean() - ds.example(i)[1].mean()) < 2.0
        assert 250 < u.size < 550  # each of 2 examples kept with probability 1/2


def test_declarative_augment_is_seeded_per_epoch_and_checks_names():
    ds = SpikeDataset.from_examples([(np.arange(50.0), np.arange(50) + 300)] * 4, [0, 0, 1, 1], 700)
    aug = from_calls([Call("shift", {"max": 40}), Call("blend", {"n": 2, "p": 0.5})], seed=7)
    a, b, c = aug(ds, 0), aug(ds, 0), aug(ds, 1)
    np.testing.assert_array_equal(a.ids, b.ids)
    assert not np.array_equal(a.ids, c.ids) or a.ids.size != c.ids.size
    with pytest.raises(ValueError, match="unknown augmentation 'shfit'") as e:
        from_calls([Call("shfit", {})])
    assert "shift" in e.value.hint
    with pytest.raises(ValueError, match="has no argument 'maximum'"):
        from_calls([Call("shift", {"maximum": 3})])
    assert isinstance(aug, Augmenter)


def test_augmenting_some_examples_gives_them_what_augmenting_all_gives_them():
    """Each example draws from its own (seed, epoch, step, index) stream, and a blended example reads
    its partners as the earlier steps left them: one MPI rank augments only its share, identically."""
    rng = np.random.default_rng(0)
    ex = [(np.sort(rng.uniform(0, 10, 50)), rng.integers(0, 30, 50)) for _ in range(40)]
    ds = SpikeDataset.from_examples(ex, rng.integers(0, 3, 40), 30)
    aug = Augmenter([("shift", {"max": 3}), ("blend", {"n": 2, "p": 0.7})], seed=5)
    full, mine = aug(ds, 2), [3, 7, 11, 39]
    part = aug(ds, 2, only=mine)
    changed = 0
    for i in range(len(ds)):
        changed += not np.array_equal(full.example(i)[1], ds.example(i)[1])
        if i not in mine:  # the rank holds its share alone
            with pytest.raises(LookupError, match=f"example {i} is not held"):
                part.subset([i])
            continue
        for got, ref in zip(part.example(i), full.example(i), strict=True):
            np.testing.assert_array_equal(got, ref, err_msg=str(i))
    assert changed > len(ds) // 2  # the steps did act
    assert len(part) == len(ds) and part.lazy
    batch = part.subset([39, 3])  # in the order asked for
    np.testing.assert_array_equal(batch.example(0)[1], full.example(39)[1])
    np.testing.assert_array_equal(batch.labels, ds.labels[[39, 3]])
    again = aug(ds, 3, only=mine)
    assert any(not np.array_equal(again.example(i)[1], part.example(i)[1]) for i in mine)  # per epoch


def test_the_ranks_epoch_shares_cover_the_single_process_epoch():
    from types import SimpleNamespace

    from snnc.runtime.distributed import SINGLE, World
    from snnc.runtime.trainer import Trainer

    def trainer(world: World) -> Trainer:
        return Trainer(SimpleNamespace(), "sparse_categorical_crossentropy", batch_size=10, world=world)

    def rank(r: int) -> World:
        w = World()
        w.rank, w.size = r, 3
        return w

    single, shares = trainer(SINGLE), [trainer(rank(r)) for r in range(3)]
    for epoch in (0, 5):
        order = single.epoch_order(64, epoch)
        parts = [t.epoch_share(64, epoch) for t in shares]
        assert sorted(np.concatenate(parts).tolist()) == list(range(64))
        assert [len(p) for p in parts] == [26, 19, 19]  # 6 batches of 10 split 4/3/3, the last 4 as 2/1/1
        np.testing.assert_array_equal(single.epoch_share(64, epoch), order)


NET = """
use std.{LIF, LI, SpikeInput, Exponential}
network tiny {
    input  x   = SpikeInput(%d)
    hidden h   = LIF(16, tau_mem = 10 ms)
    output out = LI(3, tau_mem = 10 ms, readout = avg_var_exp_weight)
    x -> h   : Dense(weight = Normal(mean = 0.5, sd = 0.2)), Exponential(tau = 5 ms)
    h -> out : Dense(weight = Normal(mean = 0.0, sd = 0.3)), Exponential(tau = 5 ms)
}
"""


@pytest.mark.parametrize("source", ["shd", "tonic"])
def test_forward_simulation_from_files(tmp_path, source):
    pytest.importorskip("snnc.passes.pipeline")
    from snnc.api import compile_network

    if source == "shd":
        write_shd(tmp_path / "shd_train.h5")
        write_shd(tmp_path / "shd_test.h5")
        data = load_dataset("shd", {"path": str(tmp_path), "bin": 1.0, "channels": 70}).train
    else:
        data = from_tonic(tonic_events(6), np.arange(6) % 3, (4, 3, 2))
    data = Augmenter([("shift", {"max": 2})], seed=1)(data, epoch=0)
    net = compile_network(NET % data.num_neurons, batch_size=4, dt=1.0, duration=60.0, seed=1)
    out = net.predict({"x": data})["out"]
    assert out.shape == (len(data), 3) and np.all(np.isfinite(out))
    metrics = net.evaluate({"x": data}, {"out": data.labels})
    assert metrics["out"]["total"] == len(data)


def test_train_one_epoch_per_call_with_augmentation(tmp_path):
    from snnc.runtime.trainer import Trainer

    from snnc.api import compile_network

    write_shd(tmp_path / "shd_train.h5")
    write_shd(tmp_path / "shd_test.h5")
    data = load_dataset("shd", {"path": str(tmp_path), "bin": 1.0, "channels": 70}).train
    src = (
        NET % 70
        + "\ntrain tiny { algorithm = eventprop(max_spikes = 200)\n loss = sparse_categorical_crossentropy\n dt = 1 ms\n duration = 60 ms }\n"
    )
    net = compile_network(src, batch_size=4, seed=1)
    trainer = Trainer(net.artefact, "sparse_categorical_crossentropy", "adam", 4)
    aug = Augmenter([("shift", {"max": 5})], seed=1)
    before = net.artefact.get_weights()["x_to_h"].copy()
    for epoch in range(2):
        trainer.train({"x": aug(data, epoch)}, {"out": data.labels}, 1, start_epoch=epoch, callbacks=())
    assert len(trainer.history) == 2
    assert not np.allclose(before, net.artefact.get_weights()["x_to_h"])


def test_shd_example_trains_from_a_data_dir(tmp_path):
    """Issue 7: `snnc train examples/shd_eventprop.snn --data-dir DIR` with DIR holding the two files."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    write_shd(tmp_path / "shd_train.h5", n=8, classes=4)
    write_shd(tmp_path / "shd_test.h5", n=4, seed=1, classes=4)
    out = tmp_path / "run"
    cmd = [sys.executable, "-m", "snnc", "train", str(root / "examples" / "shd_eventprop.snn")]
    cmd += ["--data-dir", str(tmp_path), "--epochs", "1", "--batch-size", "4", "--out", str(out), "--quiet"]
    result = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test"]["examples"] == 4 and 0.0 <= metrics["test"]["accuracy"] <= 1.0
