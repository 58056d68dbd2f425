"""The C EventProp artefact under the backend-independent trainer: the yinyang example learns."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from snnc.runtime.datasets.yinyang import encode_yinyang, yinyang_points
from snnc.runtime.optimisers import get_optimiser
from snnc.runtime.trainer import Trainer

from snnc.api import compile_network

EXAMPLE = Path(__file__).resolve().parents[2] / "examples" / "yinyang_eventprop.snn"


def test_yinyang_example_trains_with_the_c_backward_pass() -> None:
    art = compile_network(EXAMPLE).artefact  # float32, dt = 0.1 ms, 300 steps, batch 32
    art.set_threads(1)  # tiny batches: threads only add synchronisation on 2 shared cores
    features, labels = yinyang_points(2048, 42)
    x = {"x": encode_yinyang(features, 2.0, 27.0)}
    y = {"out": labels}
    trainer = Trainer(
        art, "sparse_categorical_crossentropy", get_optimiser("adam", {"lr": 0.003}), batch_size=32
    )
    first, _ = trainer.train(x, y, 1, callbacks=())
    acc0 = float(first["out"].result)
    trainer.train(x, y, 7, start_epoch=1, callbacks=())
    losses = [h["train"]["loss"] for h in trainer.history]
    last = trainer.history[-1]["train"]
    print("yinyang losses", [round(v, 4) for v in losses], "accuracy", acc0, "->", last["accuracy"])
    assert all(b < a for a, b in zip(losses, losses[1:], strict=False)), losses
    assert last["accuracy"] > max(acc0, 0.36) + 0.14, (acc0, last)  # chance is 1/3
    assert np.isfinite(list(art.get_weights().values())[0]).all()
