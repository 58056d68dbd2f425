import io

import numpy as np
import pytest
from snnc.runtime import callbacks as cb_module
from snnc.runtime.callbacks import Callback, CallbackList
from snnc.runtime.errors import RuntimeConfigError
from snnc.runtime.progress import BatchProgressBar
from snnc.runtime.schedules import OptimiserParamSchedule, get_schedule
from snnc.runtime.trainer import Trainer
from trainer_fakes import FakeArtefact, blobs


class Order(Callback):
    key = "order"

    def __init__(self):
        self.calls = []

    def set_params(self, context):
        super().set_params(context)
        self.calls.append(("set_params", context.mode, context.num_batches))

    def on_train_begin(self):
        self.calls.append("train_begin")

    def on_epoch_begin(self, epoch):
        self.calls.append(("epoch_begin", epoch))

    def on_batch_begin(self, batch):
        self.calls.append(("batch_begin", batch))

    def on_batch_end(self, batch, metrics):
        self.calls.append(("batch_end", batch))

    def on_epoch_end(self, epoch, metrics):
        self.calls.append(("epoch_end", epoch, round(metrics["out"].result, 6)))

    def on_train_end(self, metrics):
        self.calls.append("train_end")

    def get_data(self):
        return self.calls


class Recorder(Callback):
    """What a spike recorder would do: ask for a recording and keep the real rows."""

    key = "rec"
    record = ("h",)

    def __init__(self):
        self.rows = []

    def on_forward(self, batch, result, example_indices):
        self.rows.append(result.spikes["h"][: len(example_indices)])

    def get_data(self):
        return np.concatenate(self.rows)


def test_hook_order_and_callback_data():
    x, labels = blobs(7)
    tr = Trainer(FakeArtefact(batch_size=5), "sparse_categorical_crossentropy")
    _, data = tr.train({"x": x}, {"out": labels}, 2, start_epoch=3, callbacks=[Order(), Recorder()])
    calls = data["order"]
    assert calls[:3] == [("set_params", "train", 2), "train_begin", ("epoch_begin", 3)]
    assert calls[3:7] == [("batch_begin", 0), ("batch_end", 0), ("batch_begin", 1), ("batch_end", 1)]
    assert calls[7][:2] == ("epoch_end", 3) and calls[8] == ("epoch_begin", 4) and calls[-1] == "train_end"
    assert data["rec"].shape == (14, 1, 8)  # 2 epochs × 7 real examples, padding dropped


def test_evaluate_calls_test_hooks():
    class T(Callback):
        def __init__(self):
            self.seen = []

        def on_test_begin(self):
            self.seen.append("begin")

        def on_test_end(self, metrics):
            self.seen.append(("end", metrics["out"].total))

    x, labels = blobs(7)
    t = T()
    tr = Trainer(FakeArtefact(batch_size=5), "sparse_categorical_crossentropy")
    tr.evaluate({"x": x}, {"out": labels}, callbacks=[t])
    assert t.seen == ["begin", ("end", 7)]


def test_progress_bar_is_silent_off_a_terminal_and_shows_when_forced():
    x, labels = blobs(12)
    quiet = io.StringIO()
    tr = Trainer(FakeArtefact(batch_size=5), "sparse_categorical_crossentropy")
    tr.train({"x": x}, {"out": labels}, 1, callbacks=[BatchProgressBar(stream=quiet)])
    assert quiet.getvalue() == ""
    loud = io.StringIO()
    tr.train({"x": x}, {"out": labels}, 1, callbacks=[BatchProgressBar(stream=loud, force=True)])
    assert "3/3" in loud.getvalue() and "loss=" in loud.getvalue()
    muted = io.StringIO()
    tr.train({"x": x}, {"out": labels}, 1, callbacks=[BatchProgressBar(stream=muted, force=True, quiet=True)])
    assert muted.getvalue() == ""


def test_progress_bar_fallback_without_tqdm(monkeypatch):
    import builtins

    real_import = builtins.__import__

    def no_tqdm(name, *a, **k):
        if name == "tqdm":
            raise ImportError("no tqdm")
        return real_import(name, *a, **k)

    monkeypatch.setattr(builtins, "__import__", no_tqdm)
    out = io.StringIO()
    x, labels = blobs(12)
    tr = Trainer(FakeArtefact(batch_size=5), "sparse_categorical_crossentropy")
    tr.train({"x": x}, {"out": labels}, 1, callbacks=[BatchProgressBar(stream=out, force=True)])
    assert "epoch 0 3/3" in out.getvalue()


def test_string_shorthand_and_unknown_callback():
    x, labels = blobs(5)
    tr = Trainer(FakeArtefact(batch_size=5), "sparse_categorical_crossentropy")
    tr.train({"x": x}, {"out": labels}, 1, callbacks=["batch_progress_bar"])
    with pytest.raises(RuntimeConfigError, match="unknown callback"):
        tr.train({"x": x}, {"out": labels}, 1, callbacks=["batch_progres_bar"])
    with pytest.raises(TypeError):
        CallbackList([object()])


def test_schedule_on_unknown_parameter_and_registry():
    x, labels = blobs(5)
    tr = Trainer(FakeArtefact(batch_size=5), "sparse_categorical_crossentropy")
    with pytest.raises(RuntimeConfigError, match="no parameter 'beta3'"):
        tr.train({"x": x}, {"out": labels}, 1, callbacks=[OptimiserParamSchedule("beta3", lambda e, v: v)])
    assert get_schedule("step_decay", {"step_size": 3}).step_size == 3
    with pytest.raises(RuntimeConfigError, match="unknown schedule") as e:
        get_schedule("step_decy")
    assert e.value.diagnostics[0].hint == "did you mean 'step_decay'?"


def test_lazy_reexports():
    assert cb_module.Checkpoint.__name__ == "Checkpoint"
    assert cb_module.BatchProgressBar is BatchProgressBar
    assert cb_module.OptimiserParamSchedule is OptimiserParamSchedule


def test_recording_module_recorders_plug_in():
    from snnc.runtime.recording import SpikeRecorder

    x, labels = blobs(7)
    art = FakeArtefact(batch_size=5)
    rec = SpikeRecorder("h", example_filter=[1, 6])
    tr = Trainer(art, "sparse_categorical_crossentropy")
    _, data = tr.train({"x": x}, {"out": labels}, 1, shuffle=False, callbacks=[rec])
    assert "h" in art.last_record.spikes
    assert art.example_ids == [5, 6]  # data set indices of the last batch's real rows
    assert data["SpikeRecorder:h"] is rec
    assert rec.examples == [1, 6] and len(rec.spikes) == 2
