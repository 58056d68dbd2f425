"""`net.train` and the train-block session (`runtime/session.py`) driven by a differentiable fake.

The fake (trainer_fakes.FakeArtefact) is a small tanh network; `SpikeFake` feeds it the spike times
of each example's input neurons, so a real Yin-Yang data set from the registry trains it. This
tests the wiring (train block -> loss/optimiser/schedule, data, checkpoints, metrics.json, resume,
evaluate) independently of the C backend's gradient pass.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from snnc.ir.diagnostics import DiagnosticError
from snnc.runtime.checkpoint import CheckpointError, latest_checkpoint
from snnc.runtime.compiled import CompiledNetwork
from snnc.runtime.optimisers import Adam
from snnc.runtime.schedules import StepDecay
from trainer_fakes import FakeArtefact

from snnc import train as session
from snnc.api import lower

SOURCE = """
use std.{SpikeInput, LIF, LeakyIntegrate, Exponential}

network yy {
    input  x   = SpikeInput(4)
    hidden h   = LIF(8, tau_mem = 20 ms)
    output out = LeakyIntegrate(3, tau_mem = 20 ms, readout = avg_var_exp_weight)
    x -> h   : Dense(weight = Normal(mean = 1.5, sd = 0.78)), Exponential(tau = 5 ms)
    h -> out : Dense(weight = Normal(mean = 0.93, sd = 0.1)), Exponential(tau = 5 ms)
}

train yy {
    algorithm  = eventprop(max_spikes = 50)
    loss       = sparse_categorical_crossentropy
    optimizer  = adam(lr = 0.05)
    data       = yinyang(train = 120, test = 60, t_min = 0 ms, t_max = 1 ms)
    dt         = 1 ms
    duration   = 10 ms
    batch_size = 8
    epochs     = 3
    seed       = 3
    EXTRA
}
"""


class SpikeFake(FakeArtefact):
    """The fake network on spike data: neuron i's input is its (first) spike time."""

    manifest = {"populations": {"out": {"role": "output", "readout": {"kind": "avg_var_exp_weight"}}}}

    def run(self, inputs, record=None, **kw):
        data = inputs["x"]
        feats = np.zeros((len(data), 4))
        for row in range(len(data)):
            t, i = data.example(row)
            feats[row, i] = t
        return super().run({"x": 3.0 * (feats - 0.5)}, record, **kw)


@pytest.fixture(scope="module")
def network():
    return lower(SOURCE.replace("EXTRA", ""))


def fake_net(network, batch_size=8):
    return CompiledNetwork(SpikeFake(batch_size=batch_size, n_hidden=16), network=network)


def data_xy(network, split="train"):
    data = session.load_data(network)
    return session.xy(network, getattr(data, split))


def test_train_takes_loss_optimiser_and_batch_size_from_the_train_block(network):
    net = fake_net(network)
    x, y = data_xy(network)
    metrics, _ = net.train(x, y, num_epochs=4, callbacks=[])
    tr = net.trainer
    assert isinstance(tr.optimiser, Adam) and tr.optimiser.lr == pytest.approx(0.05)
    assert tr.batch_size == 8 and tr.seed == 3
    losses = [h["train"]["loss"] for h in tr.history]
    assert losses[-1] < losses[0]
    assert metrics["out"].result > 0.6  # chance is 1/3


def test_state_persists_across_calls_like_one_long_call(network):
    """mlGeNN's manual loop (one `train` call per epoch with start_epoch) equals a 3-epoch call."""
    x, y = data_xy(network)
    a, b = fake_net(network), fake_net(network)
    a.train(x, y, num_epochs=3, callbacks=[])
    for epoch in range(3):
        b.train(x, y, num_epochs=1, start_epoch=epoch, callbacks=[])
    assert b.trainer.optimiser.step_count == a.trainer.optimiser.step_count > 0
    for name, w in a.artefact.weights.items():
        np.testing.assert_allclose(b.artefact.weights[name], w, rtol=1e-6)
    assert [h["epoch"] for h in b.trainer.history] == [0, 1, 2]


def test_overrides_rebuild_the_trainer(network):
    net = fake_net(network)
    x, y = data_xy(network)
    net.train(x, y, 1, callbacks=[], optimiser=Adam(lr=0.5), batch_size=4)
    assert net.trainer.optimiser.lr == 0.5 and net.trainer.batch_size == 4


def test_schedule_from_the_train_block_is_applied():
    network = lower(SOURCE.replace("EXTRA", "schedule = step_decay(step_size = 1, gamma = 0.5)"))
    net = fake_net(network)
    x, y = data_xy(network)
    net.train(x, y, num_epochs=3, callbacks=[])
    assert isinstance(net._schedule, StepDecay)
    assert net.trainer.optimiser.lr == pytest.approx(0.05 * 0.25)


def test_mse_loss_gets_the_mse_metric():
    src = SOURCE.replace("EXTRA", "").replace("sparse_categorical_crossentropy", "mse")
    network = lower(src.replace("avg_var_exp_weight", "var"))
    assert session.default_metric(network) == "mse"
    assert session.default_metric(lower(SOURCE.replace("EXTRA", ""))) == "sparse_categorical_accuracy"


def test_missing_loss_without_train_block_is_a_clear_error():
    net = CompiledNetwork(SpikeFake(), network=None)
    with pytest.raises(ValueError, match="needs a loss"):
        net.train({"x": np.zeros((2, 4))}, {"out": np.zeros(2, int)}, 1, callbacks=[])


def test_xy_checks_the_input_width(network):
    data = session.load_data(network)
    narrow = data.train.subset(np.arange(3))
    object.__setattr__(narrow, "num_neurons", 5)
    with pytest.raises(DiagnosticError) as e:
        session.xy(network, narrow)
    assert e.value.diagnostics[0].code == "E-DATA-SHAPE"


# -------------------------------------------------------------------------------------- session
@pytest.fixture
def fake_compile(monkeypatch, network):
    """`run_train`/`run_evaluate` on the fake instead of the C backend."""

    monkeypatch.setattr(session, "lower_for_training", lambda path, opts: network)
    monkeypatch.setattr(
        session, "build_for_training", lambda net, opts: fake_net(network, opts.batch_size or 8)
    )


def test_run_train_writes_metrics_and_checkpoints(tmp_path, fake_compile, capsys):
    out = tmp_path / "run"
    doc = session.run_train("yy.snn", session.RunOptions(epochs=3, out=str(out), quiet=True))
    saved = json.loads((out / "metrics.json").read_text())
    assert [e["epoch"] for e in saved["epochs"]] == [0, 1, 2]
    for e in saved["epochs"]:
        assert set(e["train"]) >= {"loss", "accuracy"} and e["seconds"] >= 0
    assert 0.0 <= saved["test"]["accuracy"] <= 1.0 and saved["test"]["examples"] == 60
    assert saved["test"] == doc["test"]
    assert sorted(p.name for p in out.glob("epoch-*.npz")) == [
        "epoch-0000.npz",
        "epoch-0001.npz",
        "epoch-0002.npz",
    ]
    printed = capsys.readouterr().out.splitlines()
    assert printed[0].startswith("epoch 1/3  train: loss ") and "accuracy" in printed[0]
    assert any(line.startswith("test: ") for line in printed)


def test_validation_split_reports_validation_metrics(tmp_path, fake_compile):
    out = tmp_path / "run"
    session.run_train("yy.snn", session.RunOptions(epochs=1, out=str(out), quiet=True, validation_split=0.25))
    saved = json.loads((out / "metrics.json").read_text())
    assert set(saved["epochs"][0]["validation"]) >= {"loss", "accuracy"}


def test_resume_continues_where_the_checkpoints_end(tmp_path, fake_compile):
    out = tmp_path / "run"
    full = tmp_path / "full"
    session.run_train("yy.snn", session.RunOptions(epochs=3, out=str(full), quiet=True))
    session.run_train("yy.snn", session.RunOptions(epochs=2, out=str(out), quiet=True))
    session.run_train("yy.snn", session.RunOptions(epochs=3, out=str(out), quiet=True, resume=True))
    a = json.loads((full / "metrics.json").read_text())
    b = json.loads((out / "metrics.json").read_text())
    assert [e["epoch"] for e in b["epochs"]] == [0, 1, 2]
    assert all(e["seconds"] >= 0 for e in b["epochs"])  # earlier epochs' times survive the resume
    assert b["epochs"][2]["train"]["loss"] == pytest.approx(a["epochs"][2]["train"]["loss"], rel=1e-6)
    assert b["test"]["accuracy"] == pytest.approx(a["test"]["accuracy"])


def test_resume_without_checkpoints_is_an_error(tmp_path, fake_compile):
    with pytest.raises(CheckpointError, match="no checkpoint"):
        session.run_train("yy.snn", session.RunOptions(epochs=1, out=str(tmp_path), quiet=True, resume=True))


def test_evaluate_reproduces_the_final_test_accuracy(tmp_path, fake_compile):
    out = tmp_path / "run"
    doc = session.run_train("yy.snn", session.RunOptions(epochs=2, out=str(out), quiet=True))
    res = session.run_evaluate("yy.snn", session.RunOptions(checkpoint=str(out), quiet=True))
    assert res["checkpoint"] == str(latest_checkpoint(out)) and res["epoch"] == 1
    assert res["accuracy"] == pytest.approx(doc["test"]["accuracy"])


def test_evaluate_rejects_a_corrupt_or_foreign_checkpoint(tmp_path, fake_compile):
    bad = tmp_path / "bad.npz"
    bad.write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(CheckpointError, match="corrupt"):
        session.run_evaluate("yy.snn", session.RunOptions(checkpoint=str(bad), quiet=True))
    from snnc.runtime.checkpoint import save_checkpoint

    other = save_checkpoint(tmp_path / "other.npz", {"a_to_b": np.zeros((2, 2))}, meta={"epoch": 0})
    with pytest.raises(CheckpointError, match="projections"):
        session.run_evaluate("yy.snn", session.RunOptions(checkpoint=str(other), quiet=True))
    with pytest.raises(CheckpointError, match="no checkpoint"):
        session.run_evaluate("yy.snn", session.RunOptions(checkpoint=str(tmp_path / "nope"), quiet=True))


def test_augmentation_gives_each_epoch_new_training_spikes(tmp_path, monkeypatch):
    """`augment = (shift(max = 1))` on an .npz set: each epoch trains on a re-shifted copy."""
    rng = np.random.default_rng(0)
    n = 24
    ids = np.tile(np.arange(4), n)
    times = rng.uniform(0, 1, 4 * n)
    np.savez(
        tmp_path / "spikes.npz",
        times=times,
        ids=ids,
        offsets=np.arange(0, 4 * n + 1, 4),
        labels=rng.integers(0, 3, n),
        num_neurons=4,
    )
    extra = "augment = shift(max = 1)"
    src = SOURCE.replace("EXTRA", extra).replace(
        "yinyang(train = 120, test = 60, t_min = 0 ms, t_max = 1 ms)", 'npz(path = "spikes.npz")'
    )
    (tmp_path / "aug.snn").write_text(src)
    network = lower(tmp_path / "aug.snn")
    seen = []

    class Recording(SpikeFake):
        def run(self, inputs, record=None, **kw):
            if self.training:
                seen.append(sum(len(inputs["x"].example(r)[1]) for r in range(len(inputs["x"]))))
            return super().run(inputs, record, **kw)

    art = Recording(batch_size=8, n_hidden=16)
    art.training = True
    monkeypatch.setattr(session, "lower_for_training", lambda p, o: network)
    monkeypatch.setattr(session, "build_for_training", lambda n, o: CompiledNetwork(art, network=network))
    session.run_train(
        str(tmp_path / "aug.snn"), session.RunOptions(epochs=3, out=str(tmp_path / "run"), quiet=True)
    )
    per_epoch = [sum(seen[i : i + 3]) for i in range(0, 9, 3)]  # 18 training examples: 3 batches
    assert all(c < 4 * 18 for c in per_epoch)  # shifted spikes leave the 4 channels and are dropped
    assert len(set(per_epoch)) > 1  # a different shift each epoch
