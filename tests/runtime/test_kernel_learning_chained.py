"""A training batch as one call (`snnc_train`: each trial's forward pass, loss and backward pass,
then the gather) against the same batch as four calls (`run`, `loss`, `backward`, `gather`).

The chained entry exists so that a batch is handed to the threads once instead of three times; it must
change nothing else. Each trial's gradient lands in its own row and the gather sums the rows in
trial order, so weights, moments, losses and accuracies are bit-identical, also with two threads,
a short last batch (padding rows), spike lists that outgrow their first capacity (the batch runs
again) and in single precision.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from kernel_learning_check import SRC
from kernel_learning_check import data as _data
from snnc.backends.c import loader as c_loader
from snnc.ir.kernel import Entry, verify_kernel
from snnc.passes.schedule import schedule
from snnc.runtime.optimisers import Adam
from snnc.runtime.trainer import Trainer

from snnc.api import compile_network, load_network, lower

#: the hidden population with the spike-count regulariser: a sum over the batch before `backward`
REGULARISED = SRC.replace(
    "    dt         = 0.1 ms",
    "    regularisation = spike_count(strength = 1e-3, nu = 2)\n    dt         = 0.1 ms",
)
BATCH = 3  # 10 examples: three batches of 3 and a short last batch of 1 (two padding rows)


@pytest.fixture(scope="module")
def source(tmp_path_factory):
    path = tmp_path_factory.mktemp("chain") / "k.snn"
    path.write_text(SRC)
    return str(path)


def _train(source: str, chained: bool, precision: str = "float", threads: int = 2) -> dict[str, Any]:
    """Two epochs of `_data()` on the kernel path; what they left, and how many chained calls ran."""
    net = compile_network(source, precision=precision, batch_size=BATCH, threads=threads)
    art = net.artefact
    assert art.learning is not None and art.learning.batch_entry == "train"
    if not chained:
        art.learning.batch_entry = None
    calls = {"batches": 0}
    learn_batch = art.learn_batch

    def counted(*args: Any) -> None:
        calls["batches"] += 1
        return learn_batch(*args)

    art.learn_batch = counted
    trainer = Trainer(art, "sparse_categorical_crossentropy", Adam(lr=0.05), BATCH)
    x, y = _data()
    trainer.train(x, y, 2, callbacks=())
    return {
        "weights": art.get_weights(),
        "state": trainer.optimiser.state_dict(),
        "history": [(h["train"]["loss"], h["train"]["accuracy"]) for h in trainer.history],
        "calls": calls,
        "capacity": dict(art._log_cap),
    }


def _assert_identical(a: dict[str, Any], b: dict[str, Any]) -> None:
    assert set(a["weights"]) == set(b["weights"])
    for key, w in a["weights"].items():
        np.testing.assert_array_equal(b["weights"][key], w, err_msg=key)
    assert set(a["state"]) == set(b["state"])
    for key, s in a["state"].items():
        np.testing.assert_array_equal(b["state"][key], s, err_msg=key)
    assert a["history"] == b["history"]


@pytest.mark.parametrize("precision", ["float", "double"])
def test_one_call_per_batch_is_bit_identical_to_four(source, precision):
    four = _train(source, chained=False, precision=precision)
    one = _train(source, chained=True, precision=precision)
    assert four["calls"]["batches"] == 0 and one["calls"]["batches"] == 8  # 2 epochs of 4 batches
    assert np.abs(one["weights"]["x_to_h"]).sum() > 0
    _assert_identical(four, one)


def test_learnable_delays_prepared_once_per_batch_are_the_four_calls(tmp_path):
    """With learnable delays the run and backward entries first compute the delays' ring offsets, once
    per batch (a `prepare` phase); the chained call must run it before its trials as the four do."""
    delayed = tmp_path / "delayed.snn"
    delayed.write_text(
        SRC.replace(
            "Dense(weight = Normal(mean = 2.5, sd = 1.0))",
            "Dense(weight = Normal(mean = 2.5, sd = 1.0), delay = Trainable(Uniform(0 ms, 3 ms), max = 5 ms, lr = 1))",
        )
    )
    kernel = schedule(lower(load_network(str(delayed))))
    entries = {e.name: e for e in kernel.entries}
    assert entries["run"].prepare == entries["backward"].prepare == ("prepare",)
    four = _train(str(delayed), chained=False)
    one = _train(str(delayed), chained=True)
    assert np.abs(one["weights"]["delay_x_to_h"] - four["weights"]["delay_x_to_h"]).max() == 0
    assert len(np.unique(np.round(one["weights"]["delay_x_to_h"] / 0.1))) > 5, "delays of many steps"
    _assert_identical(four, one)


def test_spike_lists_that_outgrow_their_room_run_the_batch_again(source, monkeypatch):
    """With room for one spike per neuron at first, the first batches overflow their spike lists: the
    chained call's backward pass then read a truncated list, and the batch must run again, whole."""
    four = _train(source, chained=False)
    monkeypatch.setattr(c_loader, "INITIAL_LOG_SPIKES", 1)
    reruns = []
    grow = c_loader.NativeArtefact._grow_spike_lists

    def watched(self, rows=None):  # noqa: ANN001, ANN202
        grown = grow(self, rows)
        reruns.append(grown)
        return grown

    monkeypatch.setattr(c_loader.NativeArtefact, "_grow_spike_lists", watched)
    one = _train(source, chained=True)
    assert any(reruns), "the first capacity must be too small for this test to mean anything"
    assert one["capacity"]["h"] > 12
    _assert_identical(four, one)


def test_a_short_batch_runs_only_its_real_rows(source):
    """The last batch of 10 examples at batch 3 has one real row: the chained call runs that one
    (padding rows have label -1 and no gradient); its loss and gradient are the four calls'."""
    net = compile_network(source, batch_size=BATCH, threads=2)
    learning = net.artefact.learning
    x, y = _data()
    inputs = {"x": x["x"].subset([9]) if hasattr(x["x"], "subset") else [x["x"][9]]}
    labels = {"out": y["out"][9:10]}
    outcomes = []
    for entry in ("train", None):
        learning.batch_entry = entry
        out = learning.forward_backward(inputs, labels, [9], 1.0)
        outcomes.append((out.rows, dict(out.loss), {k: g.copy() for k, g in out.grads.items()}))
    assert outcomes[0][0] == outcomes[1][0] == 1
    assert outcomes[0][1] == outcomes[1][1]
    for key, g in outcomes[1][2].items():
        assert np.abs(g).sum() > 0
        np.testing.assert_array_equal(outcomes[0][2][key], g, err_msg=key)


def test_a_regulariser_keeps_the_four_calls(tmp_path):
    """The regulariser's backward pass reads spike counts summed over the batch (and over the ranks):
    there is no point in a trial where its backward pass could start, so no chained entry."""
    plain = tmp_path / "plain.snn"
    plain.write_text(SRC)
    regularised = tmp_path / "reg.snn"
    regularised.write_text(REGULARISED)
    names = {
        str(p): {e.name for e in schedule(lower(load_network(str(p)))).entries} for p in (plain, regularised)
    }
    assert "train" in names[str(plain)]
    assert "train" not in names[str(regularised)] and {"run", "loss", "backward"} <= names[str(regularised)]
    art = compile_network(str(regularised), batch_size=BATCH).artefact
    assert art.learning is not None and art.learning.batch_entry is None
    trainer = Trainer(art, "sparse_categorical_crossentropy", Adam(lr=0.05), BATCH)
    trainer.train(*_data(), 1, callbacks=())
    assert np.isfinite(trainer.history[-1]["train"]["loss"])


def test_the_verifier_names_a_broken_chain(source):
    kernel = schedule(lower(load_network(source)))
    assert not verify_kernel(kernel)
    import dataclasses

    def with_entry(entry: Entry) -> list[str]:
        return verify_kernel(dataclasses.replace(kernel, entries=(*kernel.entries, entry)))

    assert with_entry(Entry("t2", chain=("run", "gone"))) == ["entry 't2': chains unknown entry 'gone'"]
    assert with_entry(Entry("t2", chain=("run", "gather"))) == [
        "entry 't2': chains entry 'gather', which runs once per batch"
    ]
    assert with_entry(Entry("t2", chain=("train",))) == [
        "entry 't2': chains entry 'train', which runs a chain"
    ]
    assert with_entry(Entry("t2", before=("reset",), chain=("run",))) == [
        "entry 't2': chains entries and has per-trial phases of its own"
    ]
    assert with_entry(Entry("t2", prepare=("reset",), chain=("run",))) == [
        "entry 't2': chains entries and has prepare phases of its own (its entries' run first)",
        "entry 't2': runs reset phase 'reset' in its 'prepare' slot",
    ]
