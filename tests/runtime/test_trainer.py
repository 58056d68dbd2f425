import json

import numpy as np
import pytest
from snnc.runtime.callbacks import Callback
from snnc.runtime.losses import SpikeCountRegulariser
from snnc.runtime.optimisers import SGD, Adam
from snnc.runtime.schedules import ExponentialDecay, OptimiserParamSchedule, StepDecay
from snnc.runtime.trainer import Trainer, evaluate, train, write_metrics_json
from trainer_fakes import FakeArtefact, blobs


class Log(Callback):
    key = "log"

    def __init__(self):
        self.events = []

    def on_epoch_begin(self, epoch):
        self.events.append(("epoch", epoch))

    def on_batch_end(self, batch, metrics):
        self.events.append(("batch", batch))

    def get_data(self):
        return self.events


def make(batch_size=5, lr=0.05, **kw):
    art = FakeArtefact(batch_size=batch_size)
    return art, Trainer(art, "sparse_categorical_crossentropy", Adam(lr=lr), **kw)


def test_training_lowers_the_loss_and_raises_accuracy():
    x, labels = blobs(60)
    art, tr = make()
    before, _ = evaluate(art, {"x": x}, {"out": labels}, callbacks=[])
    acc0 = before["out"].result
    metrics, data = tr.train({"x": x}, {"out": labels}, num_epochs=15, callbacks=[Log()])
    losses = [h["train"]["loss"] for h in tr.history]
    assert losses[-1] < 0.5 * losses[0]
    assert metrics["out"].result > max(acc0, 0.9)
    assert data["log"][0] == ("epoch", 0) and ("batch", 11) in data["log"]


def test_shuffle_is_deterministic_per_seed_and_epoch():
    x, labels = blobs(20)
    runs = []
    for seed in (7, 7, 8):
        art, tr = make()
        tr.train({"x": x}, {"out": labels}, num_epochs=2, callbacks=[], seed=seed)
        runs.append(np.concatenate(art.seen_rows[:8]))
    np.testing.assert_array_equal(runs[0], runs[1])
    assert not np.array_equal(runs[0], runs[2])
    assert not np.array_equal(runs[0][:20], x)  # shuffled
    assert sorted(map(tuple, runs[0][:20])) == sorted(map(tuple, x))  # a permutation of the data
    assert not np.array_equal(runs[0][:20], runs[0][20:40])  # a new order each epoch


def test_no_shuffle_keeps_order():
    x, labels = blobs(10)
    art, tr = make()
    tr.train({"x": x}, {"out": labels}, num_epochs=1, shuffle=False, callbacks=[])
    np.testing.assert_array_equal(np.concatenate(art.seen_rows), x)


def test_validation_split_takes_the_tail_and_does_not_train_on_it():
    x, labels = blobs(20)
    art, tr = make()
    w_before = {k: v.copy() for k, v in art.weights.items()}
    tr.train({"x": x}, {"out": labels}, num_epochs=1, validation_split=0.25, callbacks=[])
    # 15 training examples: 3 training batches, then 1 validation batch of the last 5
    assert art.forward_calls == 4
    trained_on = np.concatenate(art.seen_rows[:3])
    assert sorted(map(tuple, trained_on)) == sorted(map(tuple, x[:15]))
    np.testing.assert_array_equal(art.seen_rows[3], x[15:])
    assert set(tr.history[0]) == {"epoch", "train", "validation"}
    assert set(tr.history[0]["validation"]) == {"loss", "accuracy"}
    assert tr.last_validation["out"].total == 5
    assert any(not np.array_equal(w_before[k], art.weights[k]) for k in w_before)


def test_explicit_validation_data():
    x, labels = blobs(20)
    art, tr = make()
    tr.train(
        {"x": x[:10]},
        {"out": labels[:10]},
        1,
        validation_x={"x": x[10:]},
        validation_y={"out": labels[10:]},
        callbacks=[],
    )
    assert tr.last_validation["out"].total == 10
    with pytest.raises(ValueError, match="not both"):
        tr.train(
            {"x": x},
            {"out": labels},
            1,
            validation_split=0.5,
            validation_x={"x": x},
            validation_y={"out": labels},
        )


@pytest.mark.parametrize("reduction", ["mean", "sum"])
def test_padded_last_batch_equals_unpadded_run(reduction):
    """7 examples in batches of 5: the last batch has 3 real rows and 2 padding rows."""
    x, labels = blobs(7)
    art_a = FakeArtefact(batch_size=5)
    tr_a = Trainer(art_a, "sparse_categorical_crossentropy", SGD(lr=0.1, reduction=reduction))
    tr_a.train({"x": x}, {"out": labels}, 1, shuffle=False, callbacks=[])
    # the same examples, but every batch exactly full: 5 with batch size 5, then 3 with batch size 3
    art_b = FakeArtefact(batch_size=5)
    tr_b = Trainer(art_b, "sparse_categorical_crossentropy", SGD(lr=0.1, reduction=reduction))
    tr_b.train({"x": x[:5]}, {"out": labels[:5]}, 1, shuffle=False, callbacks=[])
    tr_b.batch_size = 3
    art_b.allocate(3)
    tr_b.train({"x": x[5:]}, {"out": labels[5:]}, 1, shuffle=False, callbacks=[])
    for k in art_a.weights:
        np.testing.assert_allclose(art_a.weights[k], art_b.weights[k], rtol=1e-6)
    assert art_a.allocated == 5


def test_padding_rows_never_reach_the_loss_even_with_regulariser():
    """With a regulariser on hidden counts, 7 examples in batches of 5 equal batches of 5 then 2."""
    x, labels = blobs(7)

    def fresh():
        art = FakeArtefact(batch_size=5)
        reg = {"h": SpikeCountRegulariser(upper=1.0, lower=1.0, nu_upper=0.1, nu_lower=0.05)}
        return art, Trainer(art, "sparse_categorical_crossentropy", SGD(lr=0.1), regularisers=reg)

    art_a, tr_a = fresh()
    tr_a.train({"x": x}, {"out": labels}, 1, shuffle=False, callbacks=[])
    art_b, tr_b = fresh()
    tr_b.train({"x": x[:5]}, {"out": labels[:5]}, 1, shuffle=False, callbacks=[])
    tr_b.batch_size = 2
    art_b.allocate(2)
    tr_b.train({"x": x[5:]}, {"out": labels[5:]}, 1, shuffle=False, callbacks=[])
    for k in art_a.weights:
        np.testing.assert_allclose(art_a.weights[k], art_b.weights[k], rtol=1e-6)


def test_regulariser_gradient_reaches_backward():
    x, labels = blobs(10)
    plain, tr_plain = make()
    reg, tr_reg = make(regularisers={"h": SpikeCountRegulariser(upper=10.0, nu_upper=0.0)})
    tr_plain.train({"x": x}, {"out": labels}, 1, callbacks=[])
    tr_reg.train({"x": x}, {"out": labels}, 1, callbacks=[])
    assert not np.allclose(plain.weights["x_to_h"], reg.weights["x_to_h"])
    # a strong push towards silence shrinks the hidden activity
    h_reg = np.tanh(x @ reg.weights["x_to_h"]) ** 2
    h_plain = np.tanh(x @ plain.weights["x_to_h"]) ** 2
    assert h_reg.mean() < h_plain.mean()


@pytest.mark.parametrize(
    "factory",
    [
        lambda: StepDecay(step_size=2, gamma=0.5),
        lambda: ExponentialDecay(gamma=0.8),
        lambda: OptimiserParamSchedule("alpha", lambda epoch, lr: lr * 0.7 if epoch > 0 else lr),
    ],
)
def test_start_epoch_continuation_equals_uninterrupted_run(factory):
    x, labels = blobs(23)

    def fresh():
        art = FakeArtefact(batch_size=5)
        return art, Trainer(art, "sparse_categorical_crossentropy", Adam(lr=0.05), seed=3)

    art_a, tr_a = fresh()
    sched = factory()
    tr_a.train({"x": x}, {"out": labels}, num_epochs=4, callbacks=[sched])
    art_b, tr_b = fresh()
    for e in range(4):
        tr_b.train({"x": x}, {"out": labels}, start_epoch=e, num_epochs=1, callbacks=[factory()])
    for k in art_a.weights:
        np.testing.assert_array_equal(art_a.weights[k], art_b.weights[k])
    assert tr_a.optimiser.lr == pytest.approx(tr_b.optimiser.lr)
    assert tr_a.optimiser.lr < 0.05
    assert [h["epoch"] for h in tr_b.history] == [0, 1, 2, 3]
    assert [h["train"] for h in tr_a.history] == [h["train"] for h in tr_b.history]


def test_step_decay_values():
    x, labels = blobs(5)
    art, tr = make(lr=0.1)
    seen = []

    class Spy(Callback):
        def on_epoch_begin(self, epoch):
            seen.append(round(tr.optimiser.lr, 12))

    tr.train({"x": x}, {"out": labels}, 5, callbacks=[StepDecay(step_size=2, gamma=0.5), Spy()])
    assert seen == [0.1, 0.1, 0.05, 0.05, 0.025]


def test_module_level_train_keeps_the_trainer_for_continuation():
    x, labels = blobs(10)
    art = FakeArtefact(batch_size=5)
    train(
        art,
        {"x": x},
        {"out": labels},
        1,
        loss="sparse_categorical_crossentropy",
        optimiser="adam",
        callbacks=[],
    )
    steps = art.trainer.optimiser.step_count
    train(art, {"x": x}, {"out": labels}, 1, start_epoch=1, callbacks=[])
    assert art.trainer.optimiser.step_count == 2 * steps == 4


def test_time_readout_accuracy_uses_argmin():
    x, labels = blobs(30)
    art = FakeArtefact(batch_size=5, time_readout=True)
    tr = Trainer(art, "ttfs_crossentropy", Adam(lr=0.05))
    first, _ = evaluate(art, {"x": x}, {"out": labels}, callbacks=[])
    t = np.concatenate([art.run({"x": x[i : i + 5]}).readouts["out"][:5] for i in range(0, 30, 5)])
    assert first["out"].result == pytest.approx(np.mean(np.argmin(t, axis=1) == labels))
    tr.train({"x": x}, {"out": labels}, 10, callbacks=[])
    assert tr.history[-1]["train"]["loss"] < tr.history[0]["train"]["loss"]


def test_write_metrics_json(tmp_path):
    x, labels = blobs(20)
    art, tr = make()
    tr.train({"x": x}, {"out": labels}, 2, validation_split=0.2, callbacks=[])
    tr.evaluate({"x": x}, {"out": labels}, callbacks=[])
    path = tmp_path / "metrics.json"
    write_metrics_json(path, tr.history, tr.last_test)
    doc = json.loads(path.read_text())
    assert [e["epoch"] for e in doc["epochs"]] == [0, 1]
    assert {"loss", "accuracy"} <= set(doc["epochs"][1]["train"]) and "validation" in doc["epochs"][1]
    assert 0.0 <= doc["test"]["accuracy"] <= 1.0
    write_metrics_json(path, [], {"mse": float("nan")})
    assert json.loads(path.read_text())["test"] == {"mse": None}


class CopyOnlyArtefact(FakeArtefact):
    """Offers weights only as copies (get_weights/set_weights) and describes itself by a manifest."""

    def __init__(self, **kw):
        super().__init__(**kw)
        self.manifest = {"ir_hash": "abc123", "populations": {"out": {"readout": {"kind": "avg_var"}}}}
        self.dt, self.num_steps = 0.5, 60

    @property
    def weights(self):  # forward/backward of the fake read them; the trainer must not write here
        return {k: v.copy() for k, v in self._w.items()}

    @weights.setter
    def weights(self, value):
        self._w = value

    def get_weights(self):
        return {k: v.astype(np.float64) for k, v in self._w.items()}

    def set_weights(self, weights):
        for k, v in weights.items():
            self._w[k][...] = v


def test_copy_only_weights_are_committed_back(monkeypatch):
    from snnc.runtime import driver

    orig = driver.live_weights
    monkeypatch.setattr(
        driver,
        "live_weights",
        lambda art: (art.get_weights(), False) if isinstance(art, CopyOnlyArtefact) else orig(art),
    )
    x, labels = blobs(20)
    art_live = FakeArtefact(batch_size=5)
    art_copy = CopyOnlyArtefact(batch_size=5)
    for art in (art_live, art_copy):
        Trainer(art, "sparse_categorical_crossentropy", SGD(lr=0.1)).train(
            {"x": x}, {"out": labels}, 2, callbacks=[]
        )
    for k in art_live.weights:
        np.testing.assert_allclose(art_copy._w[k], art_live.weights[k], rtol=1e-5)
    assert driver.model_hash(art_copy) == "abc123"
    assert driver.readout_kinds(art_copy) == {"out": "avg_var"}
    assert driver.duration(art_copy) == 30.0
