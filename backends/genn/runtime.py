"""Drive a generated pygenn module through the runtime's `Artefact` protocol (runtime/artefact.py).

Untested against a real GeNN in this repository's CI (pygenn is an optional extra and needs a
compiler toolchain of its own); tests marked `genn` exercise it where pygenn imports. Per batch:

    Reset group -> inputs pushed -> NUM_STEPS x step_time -> readouts / recordings pulled
    `backward` (a kernel's reverse-time entry): dL/dy, dL/d(count), the real rows' spike counts
                          pushed -> NUM_STEPS more steps (reverse time) -> GradientReduce -> dg_sum pulled
    online learning (a module with ONLINE; `set_targets` then `run`): Reset -> inputs and targets
                          (TARGETS) pushed -> NUM_STEPS + EXTRA_STEPS x (step_time, the
                          STEP_UPDATES whose kernel step s - lag is one of the trial's) -> readouts
                          pulled after NUM_STEPS -> GradientReduce -> dg_sum and the trained
                          params' gradients (BIASES) pulled; `backward` returns them

GeNN's single-threaded CPU backend only builds models of batch size 1, so there a batch of B runs as
B consecutive trials of a batch-1 model ("sequential" mode): results are stacked, and `backward`
reruns each trial's forward pass before its reverse pass (the last trial's state is still live) and
sums the per-trial gradients, which is what GeNN's batch reduction computes on CUDA.
"""

from __future__ import annotations

import contextlib
import importlib.util
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
from snnc.ir import names
from snnc.runtime.artefact import RecordRequest, RunResult
from snnc.runtime.distributed import summed_counts
from snnc.runtime.driver import checked_targets


def load_module(path: str | Path) -> ModuleType:
    path = Path(path)
    spec = importlib.util.spec_from_file_location(f"snnc_genn_{path.stem}", path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot import generated module {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


class GeNNArtefact:
    """A generated network built and loaded by GeNN; arrays are pulled into numpy on demand."""

    def __init__(
        self, module: ModuleType, *, batch_size: int | None = None, backend: str | None = None
    ) -> None:
        self.module = module
        self._backend = backend
        self._weights = module.load_weights()
        self._batch = 0  # the batch the runtime sees
        self._device_batch = 0  # the batch GeNN was built with (1 on the CPU backend)
        self._model = None
        self._last: tuple[list[dict[str, Any]], int] | None = None  # sequential: rows, steps of the last run
        self._live_row: int | None = None  # sequential: the row whose forward state the model holds
        self._targets: dict[str, np.ndarray] | None = None  # e-prop: targets of the next run
        self._trial_grads: dict[str, np.ndarray] = {}  # e-prop: gradients of the last device trial
        self._eprop_grads: dict[str, np.ndarray] | None = None  # e-prop: of the last learning run
        self._real_rows = 0  # rows of the last run that are examples (the rest pads a short batch)
        self._counts: dict[str, np.ndarray] = {}  # spikes per [row, neuron] of the last run
        #: sums a float64 buffer over the ranks in place (data-parallel training sets it): a compiled
        #: spike-count regulariser needs the counts and trials of the whole global batch
        self.count_reduce: Callable[[np.ndarray], None] | None = None
        self.manifest: dict[str, Any] = {
            "backend": "genn",
            "name": module.NAME,
            "dt": module.DT,
            "num_steps": module.NUM_STEPS,
            "precision": module.PRECISION,
            "populations": module.POPULATIONS,
            "projections": module.PROJECTIONS,
            "training": module.TRAINING,
            # bounds and learning-rate scales of the trained params (`Trainable(...)`), for the optimiser
            "trainable_params": {
                k: m["trainable"]
                for k, m in {**getattr(module, "BIASES", {}), **getattr(module, "DELAYS", {})}.items()
                if "trainable" in m
            },
        }
        self.allocate(batch_size or module.BATCH_SIZE)

    @classmethod
    def from_module(
        cls, path: str | Path, *, backend: str | None = None, batch_size: int | None = None
    ) -> GeNNArtefact:
        return cls(load_module(path), batch_size=batch_size, backend=backend)

    # ------------------------------------------------------------------ protocol properties
    @property
    def dt(self) -> float:
        return float(self.module.DT)

    @property
    def num_steps(self) -> int:
        return int(self.module.NUM_STEPS)

    @property
    def batch_size(self) -> int:
        return self._batch

    # ------------------------------------------------------------------ building
    @property
    def sequential(self) -> bool:
        """True where GeNN's backend only simulates one trial at a time (its CPU backend)."""
        return self.module.choose_backend(self._backend) == "single_threaded_cpu"

    def allocate(self, batch_size: int) -> None:
        if batch_size < 1:
            raise ValueError(f"batch size must be at least 1 (got {batch_size})")
        device_batch = 1 if self.sequential else batch_size
        self._batch = batch_size
        if device_batch == self._device_batch and self._model is not None:
            return
        if self._model is not None:
            self._weights.update(self.get_weights_flat())
            self._model.unload()
        model, self.pops, self.syns, self.updates = self.module.build_model(
            backend=self._backend, batch_size=device_batch, weights=self._weights
        )
        # one build folder per backend and device batch: a model built for another batch (a rank's
        # share under MPI, a CUDA batch) never overwrites this one, and ranks that build the same one
        # at the same time take turns (the later ones find it up to date)
        chosen = self.module.choose_backend(self._backend)
        build_dir = Path(self.module.__file__).parent / f"{chosen}-batch{device_batch}"
        build_dir.mkdir(exist_ok=True)
        with _exclusive(build_dir.with_suffix(".lock")):
            model.build(str(build_dir))
            model.load(num_recording_timesteps=self.num_steps)
        self._model = model
        self._device_batch = device_batch
        # trained biases are vars initialised from the module's literal: restore what training set
        self.set_weights({k: v for k, v in self._weights.items() if k in self._biases})

    # ------------------------------------------------------------------ weights
    def _kernel_fixed(self, name: str) -> bool:
        """conv2d on the CPU backend: SPARSE rows initialised from the kernel (no kernel var)."""
        meta = self.module.PROJECTIONS.get(name)
        return self.sequential and meta is not None and meta["kind"] == "conv2d"

    @property
    def _biases(self) -> dict[str, dict[str, Any]]:
        """Params held per neuron (trained ones, an e-prop output bias, per-neuron values), read and
        set like weights; those with a gradient var are trained."""
        return getattr(self.module, "BIASES", {})

    @property
    def _delays(self) -> dict[str, dict[str, Any]]:
        """Trainable per-connection delays (ms), synapse vars read and set like weights."""
        return getattr(self.module, "DELAYS", {})

    def _bias_var(self, name: str) -> Any:
        meta = self._biases[name]
        return self.pops[meta["population"]].vars[meta["var"]]

    def _var(self, name: str) -> Any:
        """The GeNN var that holds the weights (or bias, or delays) filed under `name`."""
        if name in self._biases:
            return self._bias_var(name)
        if name in self._delays:
            return self.syns[self._delays[name]["projection"]].vars[self._delays[name]["var"]]
        return self.syns[name].vars["g"]

    def weight_shapes(self) -> dict[str, tuple[int, ...]]:
        out = {}
        for name, meta in self.module.PROJECTIONS.items():
            if meta["kind"] == "avg_pool2d":
                continue
            shape = tuple(meta["weight_shape"])
            out[name] = (int(self._weights[name].size),) if -1 in shape else shape
        for name, meta in self._biases.items():
            out[name] = (
                (1,) if meta.get("shared") else (int(self.module.POPULATIONS[meta["population"]]["size"]),)
            )
        for name, meta in self._delays.items():  # one per connection, shaped like the weights
            out[name] = out[meta["projection"]]
        return out

    def get_weights_flat(self) -> dict[str, np.ndarray]:
        out = {}
        for name in self.weight_shapes():
            if self._kernel_fixed(name):  # per-synapse copies of the kernel: report the kernel
                out[name] = np.asarray(self._weights[name], dtype=np.float64).ravel().copy()
                continue
            var = self._var(name)
            var.pull_from_device()
            # a param that delayed synapse code reads is queued by GeNN (every slot alike): one slot
            values = var.current_values if name in self._biases else var.values
            out[name] = np.asarray(values, dtype=np.float64).ravel().copy()
            if self._biases.get(name, {}).get("shared"):  # every neuron holds the one value
                out[name] = out[name][:1]
        return out

    def get_weights(self) -> dict[str, np.ndarray]:
        shapes = self.weight_shapes()
        return {k: v.reshape(shapes[k]) for k, v in self.get_weights_flat().items()}

    def set_weights(self, weights: Mapping[str, np.ndarray]) -> None:
        shapes = self.weight_shapes()
        for name, value in weights.items():
            if name not in shapes:
                raise KeyError(f"no trainable or fixed weights named '{name}'")
            arr = np.asarray(value, dtype=np.float64)
            if arr.size != int(np.prod(shapes[name])):
                raise ValueError(f"weights for '{name}' have shape {arr.shape}, expected {shapes[name]}")
            if self._kernel_fixed(name):
                if not np.allclose(arr.ravel(), self._weights[name]):
                    raise NotImplementedError(
                        f"'{name}': conv2d kernels on GeNN's CPU backend are expanded at build time; "
                        "pass them to build_model(weights=...) instead"
                    )
                continue
            var = self._var(name)
            if self._biases.get(name, {}).get("shared"):  # the one value, into every neuron's var
                var.values = np.full(
                    int(self.module.POPULATIONS[self._biases[name]["population"]]["size"]), arr[0]
                )
            else:
                var.values = arr.ravel()
            var.push_to_device()
            self._weights[name] = arr.ravel()

    # ------------------------------------------------------------------ state
    @property
    def state(self) -> dict[str, np.ndarray]:
        out = {}
        for pop, meta in self.module.POPULATIONS.items():
            for state, var in meta["record_vars"].items():
                v = self.pops[pop].vars[var]
                v.pull_from_device()
                out[f"{pop}.{state}"] = v.view.reshape(self._device_batch, meta["size"])
        return out

    def reset(self) -> None:
        if any(cu.startswith("reset_") for cu in self.updates):
            self._model.custom_update("Reset")
        self._model.timestep = 0

    # ------------------------------------------------------------------ running
    def _set_inputs(self, inputs: Mapping[str, Any]) -> None:
        """Push one device batch of inputs: spike lists (spike sources) or rates (Poisson)."""
        from snnc.runtime.encoding import as_preprocessed

        nb = self._device_batch
        for pop, meta in self.module.POPULATIONS.items():
            if meta["generator"] is None:
                continue
            data = inputs.get(pop)
            group = self.pops[pop]
            n = meta["size"]
            if meta["generator"] == "poisson":
                rates = np.zeros((nb, n)) if data is None else np.asarray(data, dtype=np.float64)
                group.vars["in_rate"].view[:] = rates.reshape(group.vars["in_rate"].view.shape)
                group.vars["in_rate"].push_to_device()
                continue
            start = np.zeros((nb, n), np.uint32)
            end = np.zeros((nb, n), np.uint32)
            chunks, offset = [], 0
            for b, ex in enumerate(_examples(data)[:nb]):
                times, ids = as_preprocessed(ex, n).by_time
                order = np.lexsort((times, ids))
                times, ids = times[order], ids[order]
                counts = np.bincount(ids, minlength=n)
                ends = offset + np.cumsum(counts)
                start[b], end[b] = ends - counts, ends
                chunks.append(times)
                offset += times.size
            egp = group.extra_global_params["in_times"]
            if offset > egp.view.size:
                raise ValueError(
                    f"{offset} input spikes exceed the module's max_input_spikes ({egp.view.size})"
                )
            if chunks:
                egp.view[:offset] = np.concatenate(chunks)
            egp.push_to_device()
            for var, arr in (("q_start", start), ("q_end", end)):
                group.vars[var].view[:] = arr.reshape(group.vars[var].view.shape)
                group.vars[var].push_to_device()

    def _rows(self, inputs: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Sequential mode: the batch's inputs split into one-example batches (padding rows empty)."""
        rows: list[dict[str, Any]] = [{} for _ in range(self._batch)]
        for pop, meta in self.module.POPULATIONS.items():
            data = inputs.get(pop)
            if meta["generator"] is None or data is None:
                continue
            if meta["generator"] == "poisson":
                rates = np.asarray(data, dtype=np.float64).reshape(-1, meta["size"])
                for b in range(min(self._batch, len(rates))):
                    rows[b][pop] = rates[b : b + 1]
                continue
            for b, ex in enumerate(_examples(data)[: self._batch]):
                rows[b][pop] = [ex]
        return rows

    def run(
        self,
        inputs: Mapping[str, Any],
        record: RecordRequest | None = None,
        *,
        num_steps: int | None = None,
        example_ids: Sequence[int] | None = None,
    ) -> RunResult:
        # GeNN draws Poisson spikes from its own seeded generator; the ids say how many rows are real
        # (the rest of a short last batch is padding, which the backward pass leaves out)
        self._real_rows = self._batch if example_ids is None else min(len(example_ids), self._batch)
        steps = self.num_steps if num_steps is None else int(num_steps)
        targets, self._targets = self._targets, None
        per_step = self._per_step_outputs()
        asked = record or RecordRequest()
        wanted = RecordRequest(asked.spikes, asked.vars | frozenset(per_step.items()))
        if targets is not None:  # e-prop learns in this pass; `backward` hands out the gradients
            res, self._eprop_grads = self._learn(inputs, wanted, steps, targets)
        elif not self.sequential or self._batch == 1:
            self._last, self._live_row = None, None
            res = self._run_device(inputs, wanted, steps)
        else:
            rows = self._rows(inputs)
            res = _stack([self._run_device(row, wanted, steps) for row in rows], steps, self.dt)
            self._last, self._live_row = (rows, steps), len(rows) - 1
        self._counts = {pop: counts for pop, (_, counts) in res.events.items()}  # spikes per neuron
        for pop, var in per_step.items():  # e-prop's mse is per step: the whole trace is the output
            res.readouts[pop] = res.vars[(pop, var)].reshape(self._batch, steps, -1)
            if (pop, var) not in asked.vars:
                del res.vars[(pop, var)]
        return res

    def _per_step_outputs(self) -> dict[str, str]:
        """Outputs learnt against a target per step and read out as `var`: population -> the state
        whose every step is the output (as the C artefact reports them, learning or not)."""
        return {
            pop: info["per_step_var"]
            for pop, info in getattr(self.module, "TARGETS", {}).items()
            if info["per_step_var"] is not None
        }

    def _run_device(
        self,
        inputs: Mapping[str, Any],
        record: RecordRequest | None,
        steps: int,
        targets: Mapping[str, np.ndarray] | None = None,
        real_rows: int | None = None,
    ) -> RunResult:
        """One trial of the model as GeNN built it (device batch rows); see the module docstring.

        With `targets` (online learning, per output the first `real_rows` rows' labels or values)
        the step updates run after every step and EXTRA_STEPS more steps complete the gradients
        (`_trial_grads`)."""
        nb = self._device_batch
        self.reset()
        self._set_inputs(inputs)
        if targets is not None:
            self._push_targets(targets, real_rows if real_rows is not None else nb, steps)
        record = record or RecordRequest()
        res = RunResult(num_steps=steps, dt=self.dt)
        traces: dict[tuple[str, str], list[np.ndarray]] = {key: [] for key in record.vars}
        for s in range(steps):
            self._model.step_time()
            if targets is not None:
                self._step_updates(s)
            for pop, state in record.vars:
                var = self.pops[pop].vars[self.module.POPULATIONS[pop]["record_vars"][state]]
                var.pull_from_device()
                traces[(pop, state)].append(var.view.reshape(nb, -1).copy())
        for key, values in traces.items():
            res.vars[key] = np.stack(values, axis=1).astype(np.float64)
        for pop, meta in self.module.POPULATIONS.items():
            if meta["readout"] is None:
                continue
            var = self.pops[pop].vars["r_value"]
            var.pull_from_device()
            value = var.view.reshape(nb, *meta["shape"]).astype(np.float64)
            first = meta["readout"]["kind"] == "first_spike_time"
            if first and "q_first" in self.pops[pop].vars:  # no spike: inf, as in the C backend
                flag = self.pops[pop].vars["q_first"]
                flag.pull_from_device()
                value[flag.view.reshape(value.shape) == 0] = np.inf
            res.readouts[pop] = value
        if record.spikes:
            self._model.pull_recording_buffers_from_device()
            for pop in record.spikes:
                n = self.module.POPULATIONS[pop]["size"]
                raster = np.zeros((nb, steps, n), bool)
                data = self.pops[pop].spike_recording_data
                for b in range(nb):
                    times, ids = data[b] if nb > 1 else data[0]
                    k = np.rint(np.asarray(times) / self.dt).astype(int)
                    ok = k < steps
                    raster[b, k[ok], np.asarray(ids)[ok]] = True
                res.spikes[pop] = raster
        if self.module.MAX_SPIKES:  # spikes kept for a backward entry
            for pop, meta in self.module.POPULATIONS.items():
                group = self.pops[pop]
                spike_times = names.local("ev", names.SPIKE_TIME)  # backward_printer.SPIKE_TIMES
                if spike_times not in group.extra_global_params:
                    continue
                group.vars["q_ns"].pull_from_device()
                egp = group.extra_global_params[spike_times]
                egp.pull_from_device()
                counts = group.vars["q_ns"].view.reshape(nb, meta["size"]).copy()
                times = egp.view.reshape(-1)[: nb * meta["size"] * self.module.MAX_SPIKES]
                res.events[pop] = (times.reshape(nb, meta["size"], -1).copy(), counts)
        if targets is not None:  # after the readouts and recordings: these steps are not the trial's
            for s in range(steps, steps + self.module.EXTRA_STEPS):
                self._model.step_time()
                self._step_updates(s)
            self._trial_grads = self._pull_gradients(real_rows)
        return res

    def _pull_gradients(self, real_rows: int | None = None) -> dict[str, np.ndarray]:
        """dg summed over the batch by GradientReduce; the trained params' gradients summed over the
        first `real_rows` rows (padding rows of a last batch learn nothing)."""
        self._model.custom_update("GradientReduce")
        shapes = self.weight_shapes()
        grads = {}
        for name, cu in self.updates.items():
            if not name.startswith("reduce_") or name.removeprefix("reduce_") not in shapes:
                continue
            proj = name.removeprefix("reduce_")
            var = cu.vars["dg_sum"]
            var.pull_from_device()
            grads[proj] = np.asarray(var.values, dtype=np.float64).reshape(shapes[proj]).copy()
        for name, meta in self._biases.items():
            if "gradient" not in meta:  # a per-neuron param that is not trained
                continue
            grads[name] = self._take_bias_gradient(meta)[:real_rows].sum(axis=0)
            if meta.get("shared"):  # per neuron in the kernel, summed here
                grads[name] = np.asarray([grads[name].sum()])
        return grads

    def _take_bias_gradient(self, meta: Mapping[str, Any]) -> np.ndarray:
        """A bias gradient var [device batch, neurons], which is then zeroed (as GradientReduce does dg)."""
        var = self.pops[meta["population"]].vars[meta["gradient"]]
        var.pull_from_device()
        value = np.asarray(var.current_view, dtype=np.float64).reshape(self._device_batch, -1).copy()
        var.view[:] = 0.0
        var.push_to_device()
        return value

    def backward(self, dl_dy: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """EventProp: continue the same batch for NUM_STEPS reverse-time steps, then reduce `dg`.

        Sequential mode: per trial (the live one first), rerun its forward pass, then its reverse
        pass; the per-trial gradients are summed.
        """
        if getattr(self.module, "ONLINE", False):  # learnt during the run: dl_dy is not used
            grads, self._eprop_grads = self._eprop_grads, None
            if grads is None:
                raise RuntimeError(
                    "e-prop backward needs a run with targets: call set_targets() before run()"
                )
            return grads
        if not self.module.MAX_SPIKES:
            raise NotImplementedError("backward() needs a module with a backward pass or online learning")
        # the batch's spike counts, summed over every rank's rows: once per batch, on every rank (a
        # rank whose share is empty too), so that the collective matches across ranks
        counts = self._count_sums(self._real_rows)
        if self._last is None:
            return self._backward_device(dl_dy, counts)
        rows, steps = self._last
        live, self._last, self._live_row = self._live_row, None, None
        real = range(self._real_rows)  # padding rows of a short last batch are not differentiated
        order = [b for b in [live, *(b for b in range(len(rows)) if b != live)] if b in real]
        if not order:  # an MPI rank whose share of the batch is empty: zero gradients, every key
            return self._pull_gradients(0)
        total: dict[str, np.ndarray] = {}
        for b in order:
            if b != live:
                self._run_device(rows[b], None, steps)
            grads = self._backward_device({k: np.asarray(v)[b : b + 1] for k, v in dl_dy.items()}, counts)
            for name, g in grads.items():
                total[name] = total[name] + g if name in total else g
        return total

    def _count_sums(self, rows: int) -> tuple[dict[str, np.ndarray], float]:
        """Spike counts of the batch's real rows summed per population, and the number of trials
        they span; under data-parallel training (`count_reduce`), summed over every rank's rows."""
        pops = sorted(p for p, g in self.pops.items() if "t_spike_count_sum" in g.vars)
        if not pops:
            return {}, float(rows)
        # the same buffer on every rank: a rank whose share was empty adds zeros
        parts = [
            self._counts[p][:rows].sum(axis=0, dtype=np.float64)
            if rows and p in self._counts
            else np.zeros(int(self.module.POPULATIONS[p]["size"]))
            for p in pops
        ]
        sums, trials = summed_counts(parts, rows, self.count_reduce)
        return dict(zip(pops, sums, strict=True)), trials

    def _backward_device(
        self, dl_dy: Mapping[str, np.ndarray], counts: tuple[dict[str, np.ndarray], float]
    ) -> dict[str, np.ndarray]:
        """Push what the backward steps read (the kernel's TARGET arrays, GeNN vars `t_<var>`), run
        them, reduce dg. dL/dy of outputs and the trainer's `"<pop>.spike_count"` dL/d(count) are per
        row; spike counts summed over the batch's real rows and their number `q_B` are shared."""
        sums, trials = counts
        for pop, group in self.pops.items():
            size = int(self.module.POPULATIONS[pop]["size"])
            values = {
                "t_dL_dy": dl_dy.get(pop),
                "t_dL_dcount": dl_dy.get(f"{pop}.spike_count"),
                "t_spike_count_sum": sums.get(pop),
            }
            for var, value in values.items():
                if var not in group.vars:
                    continue
                target = group.vars[var]
                shaped = target.view.reshape(-1, size)
                shaped[:] = 0.0 if value is None else np.asarray(value, dtype=np.float64).reshape(-1, size)
                target.push_to_device()
            if "q_B" in group.extra_global_params:
                egp = group.extra_global_params["q_B"]
                egp.view[:] = trials
                egp.push_to_device()
        for _ in range(self.num_steps):
            self._model.step_time()
        return self._pull_gradients()

    # ------------------------------------------------------------------ online learning
    def set_targets(self, targets: Mapping[str, Any]) -> None:
        """A module that learns online learns during the forward pass, so the next `run` learns
        against these targets (the trainer calls this through runtime/driver.set_targets): per output
        population, labels [n] or values [n, N] / [n, steps, N]. `backward` then returns the
        gradients. Other modules ignore it (they learn in `backward`)."""
        if not getattr(self.module, "ONLINE", False):
            return
        self._targets = checked_targets(targets, self.module.TARGETS)

    def _push_targets(self, targets: Mapping[str, np.ndarray], real_rows: int, steps: int) -> None:
        """The device batch's targets: per output a label per row (-1: a row that does not learn;
        1 for an output learnt against values) in the var TARGETS[pop]["label"] of every neuron, and
        values per step in the extra global param TARGETS[pop]["value"]."""
        nb, k = self._device_batch, self.num_steps
        for pop, info in self.module.TARGETS.items():
            group, n = self.pops[pop], int(self.module.POPULATIONS[pop]["size"])
            t = np.asarray(targets[pop])
            label = np.full(nb, -1, np.int32)
            if info["value"] is None:
                label[:real_rows] = t[:real_rows].reshape(real_rows).astype(np.int32)
            else:
                label[:real_rows] = 1
                v = np.asarray(t[:real_rows], dtype=np.float64)
                values = np.zeros((nb, k, n))
                values[:real_rows, :steps] = (
                    v.reshape(real_rows, steps, n) if v.ndim == 3 else v.reshape(real_rows, 1, n)
                )
                egp = group.extra_global_params[info["value"]]
                egp.view[:] = values.reshape(-1)
                egp.push_to_device()
            var = group.vars[info["label"]]
            var.view[:] = np.repeat(label[:, None], n, axis=1).reshape(var.view.shape)
            var.push_to_device()

    def _step_updates(self, s: int) -> None:
        """After GeNN step s: the custom updates of kernel step s - lag, for the trial's steps."""
        for group, lag in self.module.STEP_UPDATES:
            if lag <= s < self.num_steps + lag:
                self._model.custom_update(group)

    def eprop_batch(
        self, inputs: Mapping[str, Any], targets: Mapping[str, np.ndarray]
    ) -> dict[str, np.ndarray]:
        """Learning on per-step targets y_true [batch, steps, neurons] given directly; an output
        learnt against labels takes the label of each row's first step. Returns the gradients
        summed over the batch."""
        if not getattr(self.module, "ONLINE", False):
            raise NotImplementedError("eprop_batch() needs a module that learns online")
        steps = self.num_steps
        given = {}
        for pop, info in self.module.TARGETS.items():
            y = np.asarray(targets[pop], dtype=np.float64)
            y = y.reshape(-1, steps, int(self.module.POPULATIONS[pop]["size"]))
            given[pop] = y.argmax(axis=2)[:, 0] if info["value"] is None else y
        return self._learn(inputs, None, steps, given)[1]

    def _learn(
        self,
        inputs: Mapping[str, Any],
        record: RecordRequest | None,
        steps: int,
        targets: Mapping[str, np.ndarray],
    ) -> tuple[RunResult, dict[str, np.ndarray]]:
        """One learning batch against the targets of its n real rows: the forward results and the
        gradients summed over the real rows. Rows past them (a padded last batch) do not learn: in
        sequential mode they run without targets, on a device batch with label -1."""
        self._last, self._live_row = None, None
        n_real = min(self._batch, min(len(v) for v in targets.values()))
        if not self.sequential or self._batch == 1:
            res = self._run_device(inputs, record, steps, targets, n_real)
            return res, self._trial_grads
        parts, grads = [], {}
        for b, row in enumerate(self._rows(inputs)):
            if b >= n_real:
                parts.append(self._run_device(row, record, steps))
                continue
            parts.append(
                self._run_device(row, record, steps, {k: v[b : b + 1] for k, v in targets.items()}, 1)
            )
            for name, g in self._trial_grads.items():
                grads[name] = grads[name] + g if name in grads else g
        return _stack(parts, steps, self.dt), grads

    def close(self) -> None:
        if self._model is not None:
            self._model.unload()
            self._model = None


@contextlib.contextmanager
def _exclusive(path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `path` (fcntl; released when the process ends, however it ends)."""
    try:
        import fcntl
    except ImportError:  # no fcntl (Windows): one process at a time is the user's to ensure
        yield
        return
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _examples(data: Any) -> list[Any]:
    """A batch's examples for one spike-source population (a SpikeDataset slice or a list)."""
    return [] if data is None else list(data)


def _stack(parts: Sequence[RunResult], steps: int, dt: float) -> RunResult:
    """Sequential mode: one-trial results stacked along the batch axis."""
    res = RunResult(num_steps=steps, dt=dt)
    first = parts[0]
    for key in first.readouts:
        res.readouts[key] = np.concatenate([p.readouts[key] for p in parts])
    for key in first.spikes:
        res.spikes[key] = np.concatenate([p.spikes[key] for p in parts])
    for key in first.vars:
        res.vars[key] = np.concatenate([p.vars[key] for p in parts])
    for key in first.events:
        res.events[key] = (
            np.concatenate([p.events[key][0] for p in parts]),
            np.concatenate([p.events[key][1] for p in parts]),
        )
    return res
