"""NaN/Inf in gradients or weights stops training with a diagnostic; the last good checkpoint stays."""

from __future__ import annotations

import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "runtime"))

from snnc.ir.diagnostics import DiagnosticError  # noqa: E402
from snnc.runtime.checkpoint import Checkpoint, latest_checkpoint, load_checkpoint  # noqa: E402
from snnc.runtime.numerics import NumericalFaultError, check_finite, count_non_finite  # noqa: E402
from snnc.runtime.optimisers import Adam  # noqa: E402
from snnc.runtime.trainer import Trainer  # noqa: E402
from trainer_fakes import FakeArtefact, blobs  # noqa: E402

from snnc.cli import print_diagnostics  # noqa: E402


class FaultyArtefact(FakeArtefact):
    """Returns a NaN (or Inf) in one projection's gradient on the `fault_at`-th backward call (0-based)."""

    def __init__(self, fault_at: int, projection: str = "h_to_out", value: float = np.nan, state=False):
        super().__init__(batch_size=5)
        self.fault_at, self.projection, self.value = fault_at, projection, value
        self.backward_calls = 0
        self._with_state = state

    @property
    def state(self):
        if not self._with_state:
            return {}
        h = self._h.copy()
        if self.backward_calls >= self.fault_at:
            h[0, 0] = np.inf
        return {"h.v": h, "out.v": np.zeros((self.allocated, 3))}

    def backward(self, dl_dy):
        grads = super().backward(dl_dy)
        if self.backward_calls == self.fault_at:
            grads[self.projection] = grads[self.projection].copy()
            grads[self.projection][1, 2] = self.value
        self.backward_calls += 1
        return grads


def _train(art, tmp_path, epochs=3):
    x, labels = blobs(20)  # 4 batches of 5 per epoch
    tr = Trainer(art, "sparse_categorical_crossentropy", Adam(lr=0.01))
    ck = Checkpoint(tmp_path / "ckpt")
    tr.train({"x": x}, {"out": labels}, num_epochs=epochs, callbacks=[ck], shuffle=False)
    return tr


def test_nan_gradient_stops_training_naming_projection_epoch_and_batch(tmp_path):
    art = FaultyArtefact(fault_at=4 * 1 + 2)  # epoch 1, batch 2
    with pytest.raises(NumericalFaultError) as info:
        _train(art, tmp_path)
    err = info.value
    assert isinstance(err, DiagnosticError)
    assert (err.kind, err.projection, err.epoch, err.batch) == ("gradient", "h_to_out", 1, 2)
    msg = err.diagnostics[0].message
    assert "h_to_out" in msg and "epoch 1" in msg and "batch 2" in msg and "NaN" in msg
    assert err.diagnostics[0].code == "E-NUMERICS"
    # the weights in memory never saw the NaN: the check runs before the optimiser step
    assert all(np.isfinite(w).all() for w in art.weights.values())
    # no further batch ran after the fault
    assert art.backward_calls == 7


def test_last_good_checkpoint_stays(tmp_path):
    art = FaultyArtefact(fault_at=4 * 2 + 0)  # first batch of epoch 2
    with pytest.raises(NumericalFaultError):
        _train(art, tmp_path, epochs=4)
    last = latest_checkpoint(tmp_path / "ckpt")
    assert last is not None and last.name == "epoch-0001.npz"
    data = load_checkpoint(last)
    assert data.epoch == 1
    assert all(np.isfinite(w).all() for w in data.weights.values())
    assert not (tmp_path / "ckpt" / "epoch-0002.npz").exists()


def test_inf_gradient_and_state_detail(tmp_path):
    art = FaultyArtefact(fault_at=1, projection="x_to_h", value=-np.inf, state=True)
    with pytest.raises(NumericalFaultError) as info:
        _train(art, tmp_path)
    d = info.value.diagnostics[0]
    assert "x_to_h" in d.message and "-Inf" in d.message and "epoch 0, batch 1" in d.message
    assert "h.v" in d.hint and "out.v" not in d.hint


def test_weights_check_catches_an_optimiser_overflow(tmp_path):
    art = FakeArtefact(batch_size=5)
    x, labels = blobs(10)
    tr = Trainer(art, "sparse_categorical_crossentropy", Adam(lr=0.01))
    art.weights["x_to_h"][0, 0] = np.float32(3e38)

    class Blow:  # an optimiser whose step overflows float32
        name, reduction = "blow", "mean"

        def step(self, weights, grads):
            weights["x_to_h"][...] *= np.float32(10.0)

    tr.optimiser = Blow()
    with np.errstate(over="ignore"), pytest.raises(NumericalFaultError) as info:
        tr.train({"x": x}, {"out": labels}, num_epochs=1, callbacks=[])
    assert info.value.kind == "weights" and info.value.projection == "x_to_h"
    assert info.value.batch == 0 and info.value.epoch == 0


def test_cli_prints_the_fault_as_a_diagnostic(tmp_path):
    art = FaultyArtefact(fault_at=0)
    with pytest.raises(NumericalFaultError) as info:
        _train(art, tmp_path)
    import io

    stream = io.StringIO()
    assert print_diagnostics(info.value.diagnostics, stream) == 1
    text = stream.getvalue()
    assert text.startswith(
        "error: 1 NaN (of 24 values) in the gradient of projection 'h_to_out' in epoch 0, batch 0"
    )
    assert "  hint: " in text and "checkpoint" in text


def test_clean_training_is_untouched(tmp_path):
    art = FaultyArtefact(fault_at=10**9)
    tr = _train(art, tmp_path, epochs=2)
    assert len(tr.history) == 2


def test_count_non_finite_ignores_integer_arrays():
    assert count_non_finite(np.array([1, 2, 3])) == (0, 0, 0)
    assert count_non_finite(np.array([np.nan, np.inf, -np.inf, np.inf])) == (1, 2, 1)
    check_finite("gradient", {"a": np.ones(3), "b": np.arange(3)})  # no raise


def test_non_finite_weights_before_training_are_reported_as_such(tmp_path):
    art = FakeArtefact(batch_size=5)
    art.weights["h_to_out"][3, 1] = np.nan
    x, labels = blobs(10)
    tr = Trainer(art, "sparse_categorical_crossentropy", Adam(lr=0.01))
    with pytest.raises(NumericalFaultError) as info:
        tr.train({"x": x}, {"out": labels}, num_epochs=1, callbacks=[])
    d = info.value.diagnostics[0]
    assert "weights of projection 'h_to_out' before training" in d.message
    assert "initialiser" in d.hint and "optimiser step" not in d.hint
    assert art.forward_calls == 0


def test_real_c_artefact_with_a_nan_weight_stops_before_the_first_batch():
    from snnc.runtime.encoding import latency_encode

    from snnc.api import compile_network

    source = """
    use std.{SpikeInput, LIF, LeakyIntegrate, Exponential}
    network nanet {
        input  x   = SpikeInput(4)
        hidden h   = LIF(10, tau_mem = 20 ms)
        output out = LeakyIntegrate(3, readout = avg_var_exp_weight)
        x -> h   : Dense(weight = Normal(mean = 1.5, sd = 0.78)), Exponential(tau = 5 ms)
        h -> out : Dense(weight = Normal(mean = 0.93, sd = 0.1)), Exponential(tau = 5 ms)
    }
    """
    net = compile_network(source, batch_size=4, dt=1.0, duration=20.0, seed=1)
    art = net.artefact
    w = art.get_weights()
    w["h_to_out"][2, 1] = np.inf
    art.set_weights(w)
    x = latency_encode(np.random.default_rng(0).random((8, 4)), 2.0, 17.0)
    tr = Trainer(art, "sparse_categorical_crossentropy", Adam(lr=0.01), 4)
    with pytest.raises(NumericalFaultError) as info:
        tr.train({"x": x}, {"out": np.zeros(8, int)}, num_epochs=1, callbacks=[])
    assert info.value.projection == "h_to_out" and "+Inf" in info.value.diagnostics[0].message


CLI_NET = """use std.{SpikeInput, LIF, LeakyIntegrate, Exponential}
network nanet {
    input  x   = SpikeInput(4)
    hidden h   = LIF(10, tau_mem = 20 ms)
    output out = LeakyIntegrate(3, readout = avg_var_exp_weight)
    x -> h   : Dense(weight = Normal(mean = 1.5, sd = 0.78)), Exponential(tau = 5 ms)
    h -> out : Dense(weight = WEIGHT), Exponential(tau = 5 ms)
}
train nanet {
    algorithm  = eventprop(max_spikes = 100)
    loss       = sparse_categorical_crossentropy
    optimizer  = adam(lr = LR)
    data       = npz(path = "data.npz")
    dt         = 1 ms
    duration   = 20 ms
    batch_size = 4
    epochs     = 2
}
"""


@pytest.mark.parametrize(
    "weight, lr, words",
    [
        # a NaN in a weight file is the file's mistake, reported by the frontend where File() is written
        # (the runtime's guard before training, for weights set from Python, is checked above)
        (
            'File("wnan.npy")',
            "0.01",
            ("net.snn:", "error: weight file 'wnan.npy' holds values that are not finite"),
        ),
        (
            "Normal(mean = 0.93, sd = 0.1)",
            "1e39",
            ("weights of projection 'h_to_out' in epoch 0, batch 0", "training stopped"),
        ),
    ],
)
def test_snnc_train_stops_with_a_diagnostic(tmp_path, capsys, weight, lr, words):
    from snnc.runtime.datasets.npzdata import save_npz
    from snnc.runtime.datasets.spikes import SpikeDataset

    from snnc.cli import main

    rng = np.random.default_rng(0)

    def ds(n, k=8):
        times = np.sort(rng.uniform(0, 15, (n, k)), axis=1).ravel()
        offsets = np.arange(n + 1) * k
        return SpikeDataset(times, rng.integers(0, 4, n * k), offsets, rng.integers(0, 3, n), 4)

    save_npz(tmp_path / "data.npz", ds(16), ds(8))
    w = rng.normal(0.9, 0.1, (10, 3))
    w[2, 1] = np.nan
    np.save(tmp_path / "wnan.npy", w)
    src = tmp_path / "net.snn"
    src.write_text(CLI_NET.replace("WEIGHT", weight).replace("LR", lr), encoding="utf-8")
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        rc = main(["train", str(src), "--out", str(tmp_path / "run"), "--quiet"])
    err = capsys.readouterr().err
    assert rc == 1, err
    assert all(w in err for w in words) and "internal error" not in err, err
    assert not list((tmp_path / "run").glob("epoch-*.npz"))  # no checkpoint of a poisoned epoch


BLOWUP_NET = """
use std.{SpikeInput, LIF, Exponential}
# an output neuron whose drive 1/(t - t_bad) is infinite in the step starting at t_bad
neuron Blowup {
    param tau_mem = 20 ms
    param t_bad = 5 ms
    state v = 0.0
    input i_syn
    dv/dt = (i_syn - v) / tau_mem + 1 / (t - t_bad)
}
network nanet {
    input  x   = SpikeInput(4)
    hidden h   = LIF(10, tau_mem = 20 ms)
    output out = Blowup(3, t_bad = 7 ms, readout = avg_var)
    x -> h   : Dense(weight = Normal(mean = 1.5, sd = 0.78)), Exponential(tau = 5 ms)
    h -> out : Dense(weight = Normal(mean = 0.93, sd = 0.1)), Exponential(tau = 5 ms)
}
train nanet {
    algorithm  = eventprop(max_spikes = 100)
    loss       = sparse_categorical_crossentropy
    optimizer  = adam(lr = 0.01)
    dt         = 1 ms
    duration   = 20 ms
    batch_size = 4
}
"""


def test_a_forward_fault_is_located_by_population_state_step_and_example():
    """The gradient check reruns the faulty batch with every state recorded and names where the
    forward pass first went non-finite: here `out.v` in step 7 (dt 1 ms), in every example."""
    from snnc.runtime.encoding import latency_encode

    from snnc.api import compile_network

    net = compile_network(BLOWUP_NET, seed=1)
    x = latency_encode(np.random.default_rng(0).random((8, 4)), 2.0, 17.0)
    tr = Trainer(net.artefact, "sparse_categorical_crossentropy", Adam(lr=0.01), 4)
    with pytest.raises(NumericalFaultError) as info, np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        tr.train({"x": x}, {"out": np.zeros(8, int)}, num_epochs=1, callbacks=[], shuffle=False)
    site = info.value.site
    assert (site.population, site.var, site.step, site.row, site.example, site.neuron) == (
        "out",
        "v",
        7,
        0,
        0,
        0,
    )
    message = info.value.diagnostics[0].message
    assert "population 'out' (state 'v', neuron 0) at step 7 (t = 7 to 8 ms), example 0" in message
    assert "gradient of projection" in message and "training stopped" in message
