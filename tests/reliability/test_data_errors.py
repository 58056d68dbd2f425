"""Bad `.npz` training data stop `snnc train` on load: exit 1, a sentence naming the file, the example
and the offending value, before anything is compiled or trained (issue 19)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from snnc.cli import main

NET = """use std.{SpikeInput, LIF, LeakyIntegrate, Exponential}
network dnet {
    input  x   = SpikeInput(4)
    hidden h   = LIF(10, tau_mem = 20 ms)
    output out = LeakyIntegrate(3, readout = avg_var_exp_weight)
    x -> h   : Dense(weight = Normal(mean = 1.5, sd = 0.78)), Exponential(tau = 5 ms)
    h -> out : Dense(weight = Normal(mean = 0.93, sd = 0.1)), Exponential(tau = 5 ms)
}
train dnet {
    algorithm  = eventprop(max_spikes = 100)
    loss       = sparse_categorical_crossentropy
    optimizer  = adam(lr = 0.01)
    data       = npz(path = "data.npz")
    dt         = 1 ms
    duration   = 20 ms
    batch_size = 4
    epochs     = 1
}
"""


def arrays(n: int = 8, k: int = 4, prefix: str = "") -> dict[str, np.ndarray]:
    """A valid data set of `n` examples with `k` spikes each (4 inputs, 3 classes)."""
    rng = np.random.default_rng(n + len(prefix))
    data = {
        "times": np.sort(rng.uniform(0, 15, (n, k)), axis=1).ravel(),
        "ids": rng.integers(0, 4, n * k),
        "offsets": np.arange(n + 1) * k,
        "labels": rng.integers(0, 3, n),
    }
    return {prefix + key: value for key, value in data.items()}


def train(tmp_path: Path, capsys) -> tuple[int, str]:
    src = tmp_path / "net.snn"
    src.write_text(NET, encoding="utf-8")
    rc = main(["train", str(src), "--out", str(tmp_path / "run"), "--quiet"])
    return rc, capsys.readouterr().err


def assert_data_error(tmp_path: Path, capsys, *words: str) -> str:
    rc, err = train(tmp_path, capsys)
    assert rc == 1, err
    assert "internal error" not in err and "Traceback" not in err
    assert f"'{tmp_path / 'data.npz'}'" in err and "net.snn:13:18: error:" in err
    for w in words:
        assert w in err, err
    assert not (tmp_path / "run").exists()  # refused on load: nothing compiled, trained or written
    return err


def edit(key: str, index: int, value, dtype=None):
    def change(a: dict[str, np.ndarray]) -> None:
        if dtype is not None:
            a[key] = a[key].astype(dtype)
        a[key][index] = value

    return change


@pytest.mark.parametrize(
    "change, words",
    [
        # spike 9 is example 2's (4 spikes per example)
        (edit("times", 9, np.nan), ["example 2: spike time nan ms", "finite and at least 0 ms"]),
        (edit("times", 9, -1.0), ["example 2: spike time -1.0 ms"]),
        (edit("times", 9, np.inf), ["example 2: spike time inf ms"]),
        (edit("ids", 13, -2), ["example 3: spike id -2", "ids count neurons from 0"]),
        (edit("ids", 13, 2.5, float), ["example 3: spike id 2.5 is not a whole number"]),
        (edit("offsets", 3, 2), ["example 2 ends before it starts (offsets 8 then 2)"]),
        (edit("labels", 1, np.nan, float), ["example 1: label nan is not finite"]),
    ],
)
def test_bad_spikes_name_the_example_and_value(tmp_path, capsys, change, words):
    a = arrays()
    change(a)
    np.savez(tmp_path / "data.npz", **a, num_neurons=np.asarray(4))
    assert_data_error(tmp_path, capsys, *words)


def test_negative_ids_without_num_neurons_do_not_say_an_empty_range(tmp_path, capsys):
    a = arrays()
    a["ids"][:] = -1  # all negative: "one more than the largest id" would be 0
    np.savez(tmp_path / "data.npz", **a)
    err = assert_data_error(tmp_path, capsys, "example 0: spike id -1")
    assert "[0, 0)" not in err


def test_ids_beyond_num_neurons(tmp_path, capsys):
    a = arrays()
    a["ids"][21] = 4
    np.savez(tmp_path / "data.npz", **a, num_neurons=np.asarray(4))
    assert_data_error(tmp_path, capsys, "example 5: spike id 4, but the data have 4 neurons (ids 0 to 3)")


def test_label_beyond_the_output_names_the_file_example(tmp_path, capsys):
    """The file is split by a seeded shuffle; the message still names the example's index in the file."""
    a = arrays()
    a["labels"][5] = 5
    np.savez(tmp_path / "data.npz", **a)
    assert_data_error(
        tmp_path,
        capsys,
        "example 5 has label 5",
        "output population 'out': whole numbers from 0 to 2",
        "sparse_categorical_crossentropy",
    )


def test_fractional_label(tmp_path, capsys):
    a = arrays()
    a["labels"] = a["labels"].astype(float)
    a["labels"][6] = 1.5
    np.savez(tmp_path / "data.npz", **a)
    assert_data_error(tmp_path, capsys, "example 6 has label 1.5")


def test_bad_test_label_stops_before_training(tmp_path, capsys):
    a, t = arrays(), arrays(4, prefix="test_")
    t["test_labels"][2] = 3
    np.savez(tmp_path / "data.npz", **a, **t)
    assert_data_error(tmp_path, capsys, "test example 2 has label 3")


def test_whole_number_float_labels_are_class_indices(tmp_path, capsys):
    a = arrays()
    a["labels"] = a["labels"].astype(float)
    np.savez(tmp_path / "data.npz", **a)
    rc, err = train(tmp_path, capsys)
    assert rc == 0, err


@pytest.mark.parametrize(
    "write, words",
    [
        (
            lambda p: p.write_text("times,ids\n1.0,0\n" * 20),
            ["cannot read", "as .npz: it is not a zip archive of numpy arrays"],
        ),
        (
            lambda p: np.save(p.with_suffix(".npy"), np.zeros(3)) or p.with_suffix(".npy").rename(p),
            ["as .npz: it is a .npy file"],
        ),
        (
            lambda p: np.savez(p, **{**arrays(), "labels": np.array([{}] * 8, dtype=object)}),
            ["array 'labels' holds Python objects", "never unpickles"],
        ),
    ],
    ids=["text", "npy", "pickle"],
)
def test_a_file_that_is_not_an_npz(tmp_path, capsys, write, words):
    write(tmp_path / "data.npz")
    err = assert_data_error(tmp_path, capsys, *words)
    assert "allow_pickle" not in err  # numpy's advice to load pickles is not ours
