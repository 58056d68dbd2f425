"""The C artefact's own loss and optimiser step (`manifest["learning"]`, passes/schedule_learning.py).

A training batch is then: `snnc_run` (forward), `snnc_loss` (loss, correctness and dL/dy per
trial), `snnc_backward`, `snnc_gather` (the trials' gradients summed per weight), the runtime's
NaN/Inf check of those sums, and `snnc_step` (Adam or SGD, then the bounds), with no numpy work per
batch beyond writing the labels and the hyperparameters. Where the kernel chains the first four
(`batch_entry`, `snnc_train`: no spike-count regulariser sums over the batch in between) they are
one call, handed to the threads once: each thread runs its trials start to end. e-prop's batch has no
backward pass: its forward entry (`snnc_eprop_run`) reads the labels, written before it runs, and accumulates the
trials' gradients itself; its loss phase writes no dL/dy. The optimiser's moments live in the
runtime optimiser's own buffers, bound here by address, so checkpoints hold them as before.
"""

from __future__ import annotations

import ctypes
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from snnc.runtime.numerics import first_rows_sum


@dataclass
class BatchOutcome:
    """One learning batch: the summed loss and correct count per output population over its real
    trials, and the summed gradients (float64 views of the artefact's arrays, shaped like the
    weights; valid until the next batch)."""

    rows: int
    loss: dict[str, float]
    correct: dict[str, int]
    grads: dict[str, np.ndarray]


class KernelLearning:
    """Drives the learning entry points of one `NativeArtefact` (`artefact.learning`)."""

    def __init__(self, artefact: Any, spec: Mapping[str, Any]) -> None:
        self.artefact = artefact
        self.spec = spec
        lib = artefact._lib
        batch_entry = (f"snnc_{spec['batch_entry']}",) if spec.get("batch_entry") else ()
        for entry in ("snnc_loss", "snnc_gather", "snnc_step", *batch_entry):
            fn = getattr(lib, entry)
            fn.argtypes = [ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint64]
            fn.restype = ctypes.c_int
        arrays = artefact._arrays
        self.hyper = arrays[spec["hyper"]] = np.zeros(len(spec["hyper_slots"]), np.float64)
        self._slot = {name: i for i, name in enumerate(spec["hyper_slots"])}
        self.bounds: dict[str, np.ndarray] = {}
        self._written_bounds: dict[str, tuple[float, float, float]] = {}  # what `bounds` holds (prepare_step)
        self.shapes = artefact.weight_shapes()
        # every key's summed gradient is a view of one block, so that one sum checks them all for NaN/Inf
        sizes = [int(np.prod(self.shapes[key], dtype=np.int64)) for key in spec["keys"]]
        self._gsum_block = np.zeros(sum(sizes), np.float64)
        ends = np.cumsum([0, *sizes]).tolist()
        for (key, names), lo, hi in zip(spec["keys"].items(), ends[:-1], ends[1:], strict=True):
            shape = self.shapes[key]
            self.bounds[key] = arrays[names["bounds"]] = np.array([1.0, -np.inf, np.inf])
            arrays[names["gsum"]] = self._gsum_block[lo:hi].reshape(shape)
            for name in names["moments"].values():  # until the runtime binds its optimiser's buffers
                arrays[name] = np.zeros(shape, np.float64)
        self._grads = {key: arrays[names["gsum"]] for key, names in spec["keys"].items()}
        #: a backward pass turns the loss phase's dL/dy into gradients (EventProp); without one the
        #: forward pass accumulated them (e-prop)
        self._backward = any(out.get("dly") for out in spec["outputs"].values())
        #: the entry that runs run, loss, backward and gather in one call, if the kernel has one;
        #: None makes every batch take the four calls (the reference the chained entry must match)
        self.batch_entry: str | None = spec.get("batch_entry")

    # ------------------------------------------------------------------ per run
    def allocate(self, batch: int) -> None:
        """Per-trial arrays of the learning phases, at the artefact's batch size."""
        arrays = self.artefact._arrays
        for out in self.spec["outputs"].values():
            arrays[out["label"]] = np.zeros(batch, np.int32)
            arrays[out["loss"]] = np.zeros(batch, np.float64)
            arrays[out["correct"]] = np.zeros(batch, np.int32)

    def bind(self, key: str, moment: str, buffer: np.ndarray) -> None:
        """Let the kernel's `moment` array of `key` be the runtime optimiser's `buffer` (float64,
        shaped like the weights), so that both see one state."""
        name = self.spec["keys"][key]["moments"][moment]
        arrays = self.artefact._arrays
        if arrays.get(name) is buffer:
            return
        if buffer.dtype != np.float64 or buffer.shape != self.shapes[key] or not buffer.flags.c_contiguous:
            raise ValueError(f"optimiser buffer '{moment}' of '{key}' is not float64 {self.shapes[key]}")
        arrays[name] = buffer

    def gradients_finite(self) -> bool:
        """Whether every summed gradient of the batch is finite (one sum over the block)."""
        return math.isfinite(self._gsum_block.sum())

    def prepare_step(self, optimiser: Any) -> None:
        """Before `step`: each key's learning-rate factor and bounds, and its moments bound to the
        optimiser's own buffers. Written only when they changed (a schedule, a loaded checkpoint, a
        new buffer): at batch 1 rewriting them every step cost microseconds per example."""
        for key, bounds in self.bounds.items():
            want = optimiser.kernel_bounds(key)
            if self._written_bounds.get(key) != want:
                bounds[:] = want
                self._written_bounds[key] = want
            for moment in self.moments(key):
                self.bind(key, moment, optimiser.kernel_buffer(moment, key, self.shapes[key]))

    def weights(self) -> dict[str, np.ndarray]:
        """The arrays the step writes (live, shaped as the artefact holds them), by key."""
        arrays = self.artefact._arrays
        return {key: arrays[names["weight"]] for key, names in self.spec["keys"].items()}

    def moments(self, key: str) -> tuple[str, ...]:
        return tuple(self.spec["keys"][key]["moments"])

    # ------------------------------------------------------------------ one batch
    def forward_backward(
        self,
        inputs: Mapping[str, Any],
        labels: Mapping[str, np.ndarray],
        example_ids: Sequence[int],
        divisor: float,
    ) -> BatchOutcome:
        """Forward, loss, backward and the summed gradients of one batch; nothing moves yet."""
        art = self.artefact
        rows = min(len(example_ids), art.batch_size)
        arrays = art._arrays
        for pop, out in self.spec["outputs"].items():  # before the forward pass, which e-prop's reads
            lab = arrays[out["label"]]
            lab[:rows] = labels[pop][:rows]
            lab[rows:] = -1  # padding: no error, no gradient
        self.hyper[self._slot["dly_divisor"]] = divisor
        if self.batch_entry is not None and rows:  # forward, loss, backward and gather in one call
            art.learn_batch(inputs, example_ids, self.batch_entry)
            return self._outcome(rows)
        art.forward(inputs, example_ids=example_ids)
        struct = art._struct()
        steps = art._last_steps
        if rows:
            self._call("snnc_loss", struct, rows, steps)
        if self._backward:
            art.backward_from_kernel_loss()
        if rows:
            self._call("snnc_gather", art._struct(), rows, steps)
        else:
            for g in self._grads.values():
                g.fill(0.0)
        return self._outcome(rows)

    def _outcome(self, rows: int) -> BatchOutcome:
        arrays = self.artefact._arrays
        outputs = self.spec["outputs"].items()
        loss = {pop: float(first_rows_sum(arrays[o["loss"]], rows)) for pop, o in outputs}
        correct = {pop: int(first_rows_sum(arrays[o["correct"]], rows)) for pop, o in outputs}
        return BatchOutcome(rows, loss, correct, self._grads)

    def step(self, hyper: Mapping[str, float]) -> None:
        """The optimiser step over the gathered gradients, with `hyper` (see HYPER) for this step."""
        h = self.hyper
        for name, value in hyper.items():
            h[self._slot[name]] = value
        self._call("snnc_step", self.artefact._struct(), 1, self.artefact._last_steps or 0)

    def _call(self, entry: str, struct: ctypes.Structure, rows: int, steps: int) -> None:
        rc = getattr(self.artefact._lib, entry)(ctypes.byref(struct), rows, steps, 0)
        if rc != 0:
            raise RuntimeError(f"{entry} returned {rc}")
