import numpy as np
import pytest
from snnc.ir.diagnostics import DiagnosticError
from snnc.runtime.datasets import (
    DatasetError,
    SpikeDataset,
    load_dataset,
    save_npz,
    yinyang,
    yinyang_points,
)
from snnc.runtime.encoding import PreprocessedSpikes


def test_yinyang_matches_the_published_reference_set():
    # first example and labels of publication_data/train_samples.npy (lkriener/yin_yang_data_set, seed 42)
    f, labels = yinyang_points(8, 42)
    np.testing.assert_allclose(f[0], [0.68030754, 0.45049925, 0.31969246, 0.54950075], atol=1e-8)
    assert labels.tolist() == [2, 1, 2, 1, 1, 1, 0, 2]
    test_f, test_labels = yinyang_points(8, 40)  # publication test set
    np.testing.assert_allclose(test_f[0], [0.23409665, 0.40172498, 0.76590335, 0.59827502], atol=1e-8)
    assert test_labels.tolist() == [2, 2, 1, 1, 1, 2, 2, 0]


def test_yinyang_points_are_in_range_and_in_their_class_region():
    f, labels = yinyang_points(3000, 7)
    x, y = f[:, 0], f[:, 1]
    assert np.all((f >= 0) & (f <= 1))
    np.testing.assert_allclose(f[:, 2], 1 - x)
    np.testing.assert_allclose(f[:, 3], 1 - y)
    assert np.all(np.hypot(x - 0.5, y - 0.5) <= 0.5)
    dots = np.minimum(np.hypot(x - 0.75, y - 0.5), np.hypot(x - 0.25, y - 0.5)) < 0.1
    assert np.array_equal(dots, labels == 2)
    counts = np.bincount(labels, minlength=3)
    assert np.all(np.abs(counts / 3000 - 1 / 3) < 0.03)  # balanced by rejection sampling


def test_yinyang_is_seeded():
    a, la = yinyang_points(50, 1)
    b, lb = yinyang_points(50, 1)
    c, _ = yinyang_points(50, 2)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(la, lb)
    assert not np.allclose(a, c)


def test_yinyang_latency_encoding():
    d = yinyang(train=40, test=10, t_min=2.0, t_max=27.0, seed=3)
    assert (len(d.train), len(d.test), d.num_inputs, d.num_classes) == (40, 10, 4, 3)
    feats = d.meta["train_features"]
    ex = d.train[5]
    assert isinstance(ex, PreprocessedSpikes)
    assert ex.end_spikes.tolist() == [1, 2, 3, 4]  # one spike per input neuron
    np.testing.assert_allclose(ex.spike_times, 2.0 + feats[5] * 25.0)
    assert np.all((d.train.times >= 2.0) & (d.train.times <= 27.0))
    biased = yinyang(train=5, test=1, t_min=1.0, t_max=11.0, bias=True)
    assert biased.num_inputs == 5 and biased.train[0].spike_times[0] == 1.0
    assert not np.array_equal(d.meta["test_features"], feats[:10])


def test_spike_dataset_subset_and_validation():
    ds = SpikeDataset.from_examples([([1.0, 2.0], [0, 1]), ([], []), ([3.0], [2])], [0, 1, 2], 3)
    sub = ds.subset([2, 0])
    assert len(sub) == 2 and sub.labels.tolist() == [2, 0]
    assert sub.example(0)[0].tolist() == [3.0] and sub.example(1)[1].tolist() == [0, 1]
    assert ds[1].spike_times.size == 0
    with pytest.raises(ValueError, match="ids"):
        SpikeDataset([1.0], [5], [0, 1], [0], 3)
    with pytest.raises(ValueError, match="offsets"):
        SpikeDataset([1.0], [0], [0, 2], [0], 3)


def test_npz_round_trip_and_split(tmp_path):
    d = yinyang(train=30, test=6, seed=5)
    path = tmp_path / "yy.npz"
    save_npz(path, d.train, d.test)
    back = load_dataset("npz", {"path": "yy.npz"}, base_dir=str(tmp_path))
    np.testing.assert_array_equal(back.train.times, d.train.times)
    np.testing.assert_array_equal(back.test.labels, d.test.labels)
    save_npz(path, d.train)
    split = load_dataset("npz", {"path": str(path), "test_fraction": 0.2, "seed": 1})
    assert (len(split.train), len(split.test)) == (24, 6)
    assert sorted(np.concatenate([split.train.labels, split.test.labels])) == sorted(d.train.labels)


def test_npz_errors(tmp_path):
    np.savez(tmp_path / "bad.npz", times=np.zeros(2), ids=np.zeros(2, int))
    with pytest.raises(DatasetError, match="lacks the array"):
        load_dataset("npz", {"path": str(tmp_path / "bad.npz")})
    (tmp_path / "junk.npz").write_bytes(b"junk")
    with pytest.raises(DatasetError, match="cannot read"):
        load_dataset("npz", {"path": str(tmp_path / "junk.npz")})
    with pytest.raises(DatasetError, match="no data file"):
        load_dataset("npz", {"path": str(tmp_path / "missing.npz")})


def test_registry_errors_are_diagnostics_and_value_errors():
    with pytest.raises(DatasetError) as e:
        load_dataset("yinyan", {})
    assert isinstance(e.value, DiagnosticError) and isinstance(e.value, ValueError)
    assert e.value.diagnostics[0].code == "E-UNKNOWN-DATASET"
    assert e.value.diagnostics[0].hint == "did you mean 'yinyang'?"
    with pytest.raises(DatasetError, match="no argument 'trian'") as e:
        load_dataset("yinyang", {"trian": 10})
    assert "train" in e.value.diagnostics[0].hint
    with pytest.raises(DatasetError, match="t_max must be later"):
        load_dataset("yinyang", {"train": 5, "t_min": 5.0, "t_max": 1.0})


def test_digits_latency_and_rate():
    pytest.importorskip("sklearn")
    d = load_dataset("digits", {"seed": 1, "t_min": 0.0, "t_max": 20.0})
    assert (len(d.train), len(d.test), d.num_inputs, d.num_classes) == (1347, 450, 64, 10)
    assert np.all((d.train.times >= 0) & (d.train.times < 20.0))  # zero pixels never spike
    assert np.bincount(d.train.labels).min() > 100
    again = load_dataset("digits", {"seed": 1})
    np.testing.assert_array_equal(again.train.labels, d.train.labels)
    other = load_dataset("digits", {"seed": 2})
    assert not np.array_equal(other.train.labels, d.train.labels)
    r = load_dataset("digits", {"encoding": "rate", "seed": 1, "train": 20, "test": 5, "duration": 50.0})
    assert (len(r.train), len(r.test)) == (20, 5)
    assert np.all((r.train.times >= 0) & (r.train.times < 50.0)) and r.train.times.size > 0
    with pytest.raises(DatasetError, match="unknown encoding"):
        load_dataset("digits", {"encoding": "phase"})


def test_digits_without_scikit_learn_is_a_clear_error(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_sklearn(name, *a, **k):
        if name.startswith("sklearn"):
            raise ImportError("no sklearn")
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_sklearn)
    with pytest.raises(DatasetError, match="needs scikit-learn") as e:
        load_dataset("digits", {})
    assert "snnc[data]" in e.value.diagnostics[0].hint


def test_a_data_set_sorts_by_time_as_its_examples_do():
    """`SpikeDataset.by_time` (one sort per set, inherited by batches) is each example's `by_time`,
    ties included, and a batch's pointer tables point at those runs."""
    import ctypes

    from snnc.runtime.datasets.spikes import SpikeDataset
    from snnc.runtime.encoding import batch_spikes

    rng = np.random.default_rng(5)
    examples = [(rng.integers(0, 6, k).astype(float), rng.integers(0, 4, k)) for k in (7, 0, 12, 3)]
    data = SpikeDataset.from_examples(examples, np.zeros(4, int), 4)
    times, ids = data.by_time
    for i in range(len(data)):
        a, b = data.offsets[i], data.offsets[i + 1]
        want_t, want_i = data[i].by_time
        np.testing.assert_array_equal(times[a:b], want_t)
        np.testing.assert_array_equal(ids[a:b], want_i)
    batch = data.subset([2, 0, 1])
    assert "by_time" in batch.__dict__  # gathered from the parent, not sorted again
    tables = batch_spikes(batch, 5, 4)
    np.testing.assert_array_equal(tables.end, [12, 7, 0, 0, 0])
    for row, example in enumerate([2, 0]):
        n = int(tables.end[row])
        got_t = np.ctypeslib.as_array(
            ctypes.cast(int(tables.times_ptr[row]), ctypes.POINTER(ctypes.c_double)), (n,)
        )
        got_i = np.ctypeslib.as_array(
            ctypes.cast(int(tables.ids_ptr[row]), ctypes.POINTER(ctypes.c_int32)), (n,)
        )
        np.testing.assert_array_equal(got_t, data[example].by_time[0])
        np.testing.assert_array_equal(got_i, data[example].by_time[1])
