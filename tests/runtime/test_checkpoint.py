import numpy as np
import pytest
from snnc.runtime import checkpoint as ckpt
from snnc.runtime.checkpoint import (
    Checkpoint,
    CheckpointError,
    latest_checkpoint,
    load_checkpoint,
    restore,
    save_checkpoint,
)
from snnc.runtime.optimisers import Adam
from snnc.runtime.schedules import ExponentialDecay
from snnc.runtime.trainer import Trainer
from trainer_fakes import FakeArtefact, blobs


def test_round_trip(tmp_path):
    w = {"a": np.arange(6, dtype=np.float32).reshape(2, 3), "b": np.ones(4, np.float32)}
    opt = {"m/a": np.full((2, 3), 0.5), "step_count": np.asarray(3)}
    path = save_checkpoint(tmp_path / "c.npz", w, opt, {"epoch": 4, "model_hash": "abc", "seed": 1})
    data = load_checkpoint(path, model_hash="abc")
    assert data.epoch == 4 and data.meta["seed"] == 1
    for k in w:
        np.testing.assert_array_equal(data.weights[k], w[k])
        assert data.weights[k].dtype == np.float32
    np.testing.assert_array_equal(data.optimiser["m/a"], opt["m/a"])
    assert list(tmp_path.iterdir()) == [path]  # no temporary file left behind


@pytest.mark.parametrize("damage", ["truncate", "garbage", "flip"])
def test_corrupt_checkpoint_is_a_clear_error_and_left_alone(tmp_path, damage):
    path = save_checkpoint(
        tmp_path / "c.npz", {"a": np.random.default_rng(0).normal(size=(50, 50))}, {}, {"epoch": 0}
    )
    raw = path.read_bytes()
    if damage == "truncate":
        bad = raw[: len(raw) // 2]
    elif damage == "garbage":
        bad = b"not a zip file at all" * 10
    else:  # one flipped byte inside the array data: the zip CRC catches it
        bad = bytearray(raw)
        bad[len(raw) // 3] ^= 0xFF
        bad = bytes(bad)
    path.write_bytes(bad)
    with pytest.raises(CheckpointError, match="truncated or corrupt|not an snnc") as e:
        load_checkpoint(path)
    assert e.value.diagnostics[0].code == "E-CHECKPOINT"
    assert path.read_bytes() == bad


def test_model_hash_mismatch(tmp_path):
    path = save_checkpoint(tmp_path / "c.npz", {"a": np.zeros(2)}, {}, {"epoch": 0, "model_hash": "one"})
    with pytest.raises(CheckpointError, match="another model"):
        load_checkpoint(path, model_hash="two")


def test_failed_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = save_checkpoint(tmp_path / "c.npz", {"a": np.zeros(3)}, {}, {"epoch": 0})
    before = path.read_bytes()

    def crash(f, **arrays):
        f.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(ckpt.np, "savez", crash)
    with pytest.raises(OSError, match="disk full"):
        save_checkpoint(path, {"a": np.ones(3)}, {}, {"epoch": 1})
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == ["c.npz"]


def test_no_pickle_possible(tmp_path):
    with pytest.raises(CheckpointError, match="not a numeric array"):
        save_checkpoint(tmp_path / "c.npz", {"a": np.array([{"x": 1}], dtype=object)}, {}, {"epoch": 0})


def test_checkpoint_callback_and_resume_equals_uninterrupted(tmp_path):
    x, labels = blobs(23)

    def fresh():
        art = FakeArtefact(batch_size=5)
        art.model_hash = "h1"
        return art, Trainer(art, "sparse_categorical_crossentropy", Adam(lr=0.05), seed=2)

    art_a, tr_a = fresh()
    tr_a.train({"x": x}, {"out": labels}, 4, callbacks=[ExponentialDecay(0.7)])

    art_b, tr_b = fresh()
    tr_b.train({"x": x}, {"out": labels}, 2, callbacks=[Checkpoint(tmp_path, keep=1), ExponentialDecay(0.7)])
    latest = latest_checkpoint(tmp_path)
    assert latest.name == "epoch-0001.npz" and len(list(tmp_path.glob("*.npz"))) == 1

    art_c, tr_c = fresh()  # a new process: fresh weights, fresh optimiser
    next_epoch = restore(tr_c, latest)
    assert next_epoch == 2 and len(tr_c.history) == 2
    tr_c.train({"x": x}, {"out": labels}, 2, start_epoch=next_epoch, callbacks=[ExponentialDecay(0.7)])
    for k in art_a.weights:
        np.testing.assert_array_equal(art_a.weights[k], art_c.weights[k])
    assert tr_c.optimiser.lr == pytest.approx(tr_a.optimiser.lr)
    assert tr_c.history == tr_a.history


def test_restore_rejects_other_shapes(tmp_path):
    art = FakeArtefact(batch_size=5)
    tr = Trainer(art, "sparse_categorical_crossentropy")
    w = {k: np.zeros((1, 1)) for k in art.weights}
    path = save_checkpoint(tmp_path / "c.npz", w, {}, {"epoch": 0, "next_epoch": 1})
    with pytest.raises(CheckpointError, match="shape"):
        restore(tr, path)
