"""`EpropArtefact`: a C network whose kernel carries e-prop (`passes/schedule_eprop.py`).

e-prop is online: the weight updates are accumulated during the forward pass, so the targets must be
known before `run`. The protocol extension is one method::

    art.set_targets({"out": labels})   # class index per example (sparse CE), or values for mse
    res = art.run(inputs)              # forward + eligibility traces + ΔW accumulation, per step
    grads = art.backward(dl_dy)        # the accumulated ΔW (dl_dy is not used), summed over the batch

`set_targets` applies to the next `run` only: a `run` with targets calls the kernel's entry
`eprop_run`, one without its entry `run`, a plain forward pass (with the trained output bias). The
trainer calls `driver.set_targets` before each training forward pass. Gradients are keyed like weights: the
projection names, plus `bias_<pop>` for each trained output bias and `<param>_<pop>` for each trained
neuron param (`tau_mem_h`; "weights" of the artefact).

e-prop's mse is a per-step loss (½ Σ_t ‖v_t − y*_t‖²), so an mse output with a `var` readout returns
its state at every step, [batch, steps, n], as the readout: what the trainer's loss and metric score
against per-step targets (and what `snnc train` reports as the test "mse").
"""

from __future__ import annotations

import ctypes
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from snnc.runtime.artefact import RecordRequest, RunResult
from snnc.runtime.driver import checked_targets

from .loader import NativeArtefact, aligned_zeros

#: manifest kinds the kernel accumulates per trial (its `reset__eprop` phase zeroes them per trial)
_PER_BATCH = ("eligibility", "gradient")


class EpropArtefact(NativeArtefact):
    def __init__(
        self, library: Path, manifest: dict[str, Any], static: Mapping[str, np.ndarray], batch_size: int = 1
    ):
        if "eprop" not in manifest:
            raise ValueError("manifest has no e-prop section: compile with algorithm = eprop")
        self._targets: dict[str, np.ndarray] | None = None
        self._learned = False
        self._learn = False
        super().__init__(library, manifest, static, batch_size)
        self._lib.snnc_eprop_run.argtypes = [ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint64]
        self._lib.snnc_eprop_run.restype = ctypes.c_int

    @property
    def eprop(self) -> dict[str, Any]:
        return self.manifest["eprop"]

    def allocate(self, batch_size: int) -> None:
        self._batch = int(batch_size)
        for a in self._specs:
            if a["kind"] in _PER_BATCH or (a["kind"] == "target" and "steps" not in a["shape"]):
                self._arrays[a["name"]] = aligned_zeros(self._shape(a), self._dtype(a))
        super().allocate(batch_size)

    @property
    def feedback(self) -> dict[str, np.ndarray]:
        """Live views of the fixed random feedback matrices, by hidden -> output projection."""
        return {a["owner"]: self._arrays[a["name"]] for a in self._specs if a["kind"] == "feedback"}

    # ------------------------------------------------------------------ targets
    def set_targets(self, targets: Mapping[str, Any]) -> None:
        """Targets of the next `run`'s real rows: labels [n] (sparse CE) or values [n, N] / [n, steps, N] (mse)."""
        self._targets = checked_targets(targets, self.eprop["outputs"])

    def _load_targets(self, steps: int) -> bool:
        pops = self.manifest["populations"]
        targets, self._targets = self._targets, None
        for pop, info in self.eprop["outputs"].items():
            label = np.full(self._batch, -1, np.int32)
            value = None
            if targets is not None:
                t = targets[pop]
                n_real = min(len(t), self._batch)
                if info["loss"] == "sparse_categorical_crossentropy":
                    label[:n_real] = np.asarray(t[:n_real]).reshape(n_real).astype(np.int32)
                else:
                    n = int(pops[pop]["size"])
                    value = np.zeros((self._batch, steps, n), self._scalar)
                    v = np.asarray(t[:n_real], dtype=np.float64)
                    value[:n_real] = v.reshape(n_real, steps, n) if v.ndim == 3 else v.reshape(n_real, 1, n)
                    label[:n_real] = 1
            self._arrays[self._named("target", pop, "label")] = label
            if info["loss"] != "sparse_categorical_crossentropy":
                # None (NULL) when not learning: never read
                self._arrays[self._named("target", pop, "value")] = value
        return targets is not None

    # ------------------------------------------------------------------ running
    def run(
        self,
        inputs: Mapping[str, Any],
        record: RecordRequest | None = None,
        *,
        num_steps: int | None = None,
        example_ids: Sequence[int] | None = None,
        seed: int | None = None,
    ) -> RunResult:
        steps = self.num_steps if num_steps is None else int(num_steps)
        self._learn = self._load_targets(steps)
        asked = record if record is not None else RecordRequest()
        per_step = self._per_step_outputs()
        wanted = RecordRequest(asked.spikes, asked.vars | frozenset(per_step.items()))
        result = super().run(
            inputs, wanted if wanted else None, num_steps=steps, example_ids=example_ids, seed=seed
        )
        for pop, var in per_step.items():
            # e-prop's mse is a per-step loss, so the readout the trainer scores is the whole trace
            trace = result.vars[(pop, var)]
            result.readouts[pop] = trace.reshape(self._batch, steps, -1)
            if (pop, var) not in asked.vars:
                del result.vars[(pop, var)]
        self._learned = self._learn
        return result

    def _per_step_outputs(self) -> dict[str, str]:
        """mse outputs with a `var` readout: population -> the state whose every step is the output."""
        return {
            pop: info["var"]
            for pop, info in self.eprop["outputs"].items()
            if info["loss"] != "sparse_categorical_crossentropy"
            and info.get("readout") == "var"
            and info.get("var")
        }

    def forward(
        self, inputs: Mapping[str, Any], *, example_ids: Sequence[int] | None = None, seed: int | None = None
    ) -> None:
        """A batch of the kernel's own loss and optimiser step (`learning.py`): `eprop_run` with the
        labels its driver wrote into the label arrays, without recordings or a `RunResult`."""
        self._learn = True
        super().forward(inputs, example_ids=example_ids, seed=seed)
        self._learned = True

    def _entry(self, struct: ctypes.Structure, steps: int, seed: int) -> int:
        entry = self._lib.snnc_eprop_run if self._learn else self._lib.snnc_run
        return entry(ctypes.byref(struct), self._batch, steps, seed)

    def backward(self, dl_dy: Mapping[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
        """ΔW accumulated online by the last `run` (summed over the batch); `dl_dy` is ignored."""
        if not self._learned:
            raise RuntimeError("e-prop backward needs a run with targets: call set_targets() before run()")
        shapes = self.weight_shapes()
        out = {}
        for a in self._specs:
            if a["kind"] == "gradient":
                g = self._arrays[a["name"]].sum(axis=0, dtype=np.float64)
                if shapes[a["owner"]] == (1,):  # a shared param: per neuron in the kernel, summed here
                    g = np.asarray([g.sum()])
                out[a["owner"]] = g.reshape(shapes[a["owner"]])
        return out


__all__ = ["EpropArtefact"]
