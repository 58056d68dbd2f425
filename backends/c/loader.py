"""The C backend's loader: a shared library driven through the runtime's `Artefact` protocol.

Arrays are found through the manifest by (`role`, `owner`, `var`), the kernel IR's vocabulary
(`ir/kernel.py` `Role`), never by spelling the C backend's names. The library exports `snnc_run(const snnc_arrays*, int64 batch, int64 steps, uint64 seed)`; the
struct holds one pointer per array in manifest order. Every array lives in numpy and is owned here;
optional recordings are NULL unless requested. Artefacts compiled with EventProp (manifest key
`eventprop`) also export `snnc_backward(const snnc_arrays*, int64 batch, int64 steps, uint64 seed)`,
which `backward` calls after the forward pass of the same batch. A training batch of an artefact
with its own loss may instead be one call of its chained entry (`learn_batch`): forward pass, loss
and backward pass of each real row, then the gradient sums.
"""

from __future__ import annotations

import ctypes
import warnings
import weakref
from collections.abc import Callable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from snnc.runtime.artefact import RecordRequest, RunResult
from snnc.runtime.distributed import summed_counts
from snnc.runtime.encoding import batch_spikes
from snnc.runtime.numerics import first_rows_max, first_rows_sum, is_whole

from .learning import KernelLearning

_NP = {
    "int32": np.int32,
    "uint32": np.uint32,
    "int64": np.int64,
    "double": np.float64,
    "ptr_double": np.uintp,  # one address per batch row
    "ptr_int32": np.uintp,
}


#: spikes per neuron an EventProp spike list has room for before it first grows (see `run`)
INITIAL_LOG_SPIKES = 8

#: byte alignment of every array the C code touches: one cache line, so that rows of 16 floats never
#: straddle two lines and the vector loads of the delivery loops stay aligned (numpy only promises 16)
ALIGNMENT = 64


def _whole_steps(num_steps: Any) -> int:
    """`num_steps` of a run, checked: a whole number of at least one step (-1 ran nothing and
    returned empty records, 2.5 was cut to 2)."""
    if not is_whole(num_steps, 1):
        raise ValueError(f"num_steps must be a whole number of steps, at least 1; got {num_steps!r}")
    return int(num_steps)


def aligned_zeros(shape: tuple[int, ...], dtype: type) -> np.ndarray:
    """`np.zeros(shape, dtype)` whose data starts on an `ALIGNMENT`-byte boundary."""
    dt = np.dtype(dtype)
    nbytes = int(np.prod(shape, dtype=np.int64)) * dt.itemsize
    raw = np.zeros(nbytes + ALIGNMENT, np.uint8)
    start = -raw.ctypes.data % ALIGNMENT
    return raw[start : start + nbytes].view(dt).reshape(shape)


def aligned_copy(arr: np.ndarray, dtype: type) -> np.ndarray:
    out = aligned_zeros(np.shape(arr), dtype)
    out[...] = arr
    return out


class EventsView(Mapping):
    """`RunResult.events` of a C artefact: (times, counts) per population, copied out of the
    artefact's buffers when first read, or just before the next run overwrites them. A result that
    nobody reads (the trainer's) costs no copy: the buffers hold batch x neurons x max_spikes times."""

    def __init__(self, sources: dict[str, tuple[np.ndarray, np.ndarray]]) -> None:
        self._sources = sources
        self._copies: dict[str, tuple[np.ndarray, np.ndarray]] = {}

    def __getitem__(self, pop: str) -> tuple[np.ndarray, np.ndarray]:
        if pop not in self._copies:
            times, counts = self._sources[pop]
            self._copies[pop] = (times.copy(), counts.copy())
        return self._copies[pop]

    def __iter__(self) -> Iterator[str]:
        return iter(self._sources)

    def __len__(self) -> int:
        return len(self._sources)

    def detach(self) -> None:
        """Copy what was not read yet: the buffers are about to change."""
        for pop in self._sources:
            self[pop]


class _ArrayTable(dict):
    """Name -> array, remembering which names were (re)bound since `_struct` last wrote their
    addresses: at batch 1 scanning every array per call cost more than the C code's backward pass."""

    def __init__(self) -> None:
        super().__init__()
        self.changed: set[str] = set()

    def __setitem__(self, name: str, arr: np.ndarray | None) -> None:
        super().__setitem__(name, arr)
        self.changed.add(name)

    def clear(self) -> None:
        super().clear()
        self.changed.clear()


class NativeArtefact:
    """A compiled C network. `static` holds weights and connectivity drawn at compile time."""

    def __init__(
        self, library: Path, manifest: dict[str, Any], static: Mapping[str, np.ndarray], batch_size: int = 1
    ):
        self.manifest = manifest
        self.library = Path(library)
        self._lib = ctypes.CDLL(str(self.library))
        if self._lib.snnc_abi_version() != manifest["abi"]:
            raise RuntimeError(f"{library}: ABI {self._lib.snnc_abi_version()} != manifest {manifest['abi']}")
        self._lib.snnc_run.argtypes = [ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint64]
        self._lib.snnc_run.restype = ctypes.c_int
        self._lib.snnc_set_threads.argtypes = [ctypes.c_int]
        self._lib.snnc_set_spin_ns.argtypes = [ctypes.c_int64]
        self._ep = manifest.get("eventprop")
        if self._ep:
            self._lib.snnc_backward.argtypes = [
                ctypes.c_void_p,
                ctypes.c_int64,
                ctypes.c_int64,
                ctypes.c_uint64,
            ]
            self._lib.snnc_backward.restype = ctypes.c_int
        #: what a forward pass that dropped spikes (past max_spikes) does at `backward`
        self.on_overflow = "warn"  # "warn" | "error" | "ignore"
        self._last_steps: int | None = None
        self._rows = 0  # the real rows of the last run (the rest of the batch is padding)
        #: sums a float64 buffer over the ranks in place (data-parallel training sets it): a compiled
        #: spike-count regulariser needs the counts and trials of the whole global batch
        self.count_reduce: Callable[[np.ndarray], None] | None = None
        self._scalar = np.float32 if manifest["precision"] == "float" else np.float64
        self._specs = manifest["arrays"]
        self._names: dict[tuple[str, str, str | None], list[str]] = {}
        for a in self._specs:
            self._names.setdefault((a["role"], a["owner"], a["var"]), []).append(a["name"])
        self._struct_t = type(
            "snnc_arrays",
            (ctypes.Structure,),
            {"_fields_": [(a["name"], ctypes.c_void_p) for a in self._specs]},
        )
        self._arrays = _ArrayTable()
        self._bound_struct = self._struct_t()  # the addresses the library reads (`_struct`)
        #: the last result's events (copied before the next run) and, per event buffer, how far
        #: along its last axis the last run wrote (`reset` refills only that much)
        self._pending_events: weakref.ref[EventsView] | None = None
        self._events_used: dict[str, int] = {}
        self._records = [a for a in self._specs if a["kind"] == "record"]
        #: records that only the backward pass reads (an Euler step's or a param gradient's
        #: trajectory): kept from batch to batch, since the forward pass writes every element
        #: ([batch, steps, n] arrays of up to 100 MB, whose fresh pages cost more than the batch's
        #: delivery did); never one a caller asked for, which its result owns
        self._own_records: set[str] = set()
        resettable = ("state", "synapse_state", "internal", "readout", "ring", "events", "grad_state")
        self._resets = [(a["name"], a["init"]) for a in self._specs if a["kind"] in resettable]
        #: what `forward` refills: not what the kernel's own reset phases (or every step) write, nor
        #: the forward spike times (`events` of var times), which nothing reads in a `forward` batch
        #: and a reader reads only up to their counts, which it does refill: at batch 32 the times'
        #: batch x neurons x max_spikes buffer cost more to fill than the rest of the batch's Python
        covered = set((manifest.get("learning") or {}).get("kernel_resets", ()))
        covered |= {a["name"] for a in self._specs if a["kind"] == "events" and a["var"] == "times"}
        self._light_resets = [(n, init) for n, init in self._resets if n not in covered]
        self._input_refs: dict[str, Any] = {}
        nnz = {}
        for name, arr in static.items():
            self._arrays[name] = aligned_copy(arr, self._dtype(self._spec(name)))
        for a in self._specs:
            if a["kind"] == "connectivity" and a["var"] == "col_idx":
                nnz[a["owner"]] = self._arrays[a["name"]].size
        for a in self._specs:  # a trained per-connection param (delays) is filed under its own key,
            if a["shape"] == ["nnz"] and a["name"] in self._arrays:  # and its gradient with it
                nnz.setdefault(a["owner"], self._arrays[a["name"]].size)
        self._nnz = nnz
        for a in self._specs:
            if a["kind"] == "weight" and a["name"] not in self._arrays:
                raise ValueError(f"no initial weights for '{a['owner']}'")
        #: per-row capacity of each EventProp spike list: starts small, grows with the data (`run`)
        self._log_cap: dict[str, int] = {
            pop: int(self.manifest["populations"][pop]["size"])
            * min(int(self._ep["max_spikes"]), INITIAL_LOG_SPIKES)
            for pop in (self._ep or {}).get("lists", {})
        }
        self._batch = 0
        #: the kernel's own loss and optimiser step, when it was compiled with them (learning.py)
        self.learning: KernelLearning | None = None
        if manifest.get("learning"):
            self.learning = KernelLearning(self, manifest["learning"])
        self.allocate(batch_size)

    # ------------------------------------------------------------------ arrays
    def _named(self, role: str, owner: str, var: str | None = None) -> str:
        """The name of the one array with this role, owner and var in the manifest."""
        found = self._names.get((role, owner, var), [])
        if len(found) != 1:
            raise KeyError(
                f"the manifest has {len(found)} arrays of role {role}, owner {owner!r}, var {var!r}"
            )
        return found[0]

    def _spec(self, name: str) -> dict[str, Any]:
        return next(a for a in self._specs if a["name"] == name)

    def _dtype(self, spec: dict[str, Any]) -> type:
        return self._scalar if spec["dtype"] == "scalar" else _NP[spec["dtype"]]

    def _shape(self, spec: dict[str, Any], steps: int = 0) -> tuple[int, ...]:
        sizes = {
            "batch": self._batch,
            "steps": steps,
            "nnz": self._nnz.get(spec["owner"], 0),
            "events": self._log_cap.get(spec["owner"], 0),
        }
        return tuple(sizes[d] if isinstance(d, str) else int(d) for d in spec["shape"])

    @property
    def dt(self) -> float:
        return float(self.manifest["dt"])

    @property
    def num_steps(self) -> int:
        return int(self.manifest["num_steps"])

    @property
    def batch_size(self) -> int:
        return self._batch

    def allocate(self, batch_size: int) -> None:
        if batch_size < 1:
            raise ValueError("batch_size must be at least 1")
        self._batch = int(batch_size)
        self._events_used.clear()  # new buffers: `reset` fills them whole
        for a in self._specs:
            if a["kind"] in (
                "state",
                "synapse_state",
                "internal",
                "readout",
                "ring",
                "events",
                "grad_state",
                "grad_buf",
                "log_size",
                "gradient",
            ) or (a["kind"] == "input" and "batch" in a["shape"]):
                self._arrays[a["name"]] = self._new_array(a)
        if self.learning is not None:
            self.learning.allocate(self._batch)
            pops = self.manifest["populations"]
            for pop, info in (self._ep or {}).get("outputs", {}).items():  # the loss phase writes them
                self._zeroed(info["dly"], (self._batch, int(pops[pop]["size"])), self._scalar)
            for pop, arr in (self._ep or {}).get("count_grads", {}).items():  # the trainer's: none here
                self._zeroed(arr, (self._batch, int(pops[pop]["size"])), self._scalar)
        self.reset()

    def _new_array(self, spec: dict[str, Any]) -> np.ndarray:
        """A fresh array for `spec` at the current sizes (a spike list's capacity: its value)."""
        if spec["kind"] == "log_size":
            return np.array([self._log_cap[spec["owner"]]], np.int64)
        return aligned_zeros(self._shape(spec), self._dtype(spec))

    def _grow_spike_lists(self, rows: int | None = None) -> bool:
        """After a forward run (of the first `rows` rows; default all): give every spike list that
        some row overflowed the room that row needed (plus a margin), so the batch can be run again.
        False if every list was big enough."""
        grown = {}
        for pop, names in (self._ep or {}).get("lists", {}).items():
            need = int(first_rows_max(self._arrays[names["ln"]], rows, 0))
            if need > self._log_cap[pop]:
                grown[pop] = need + need // 4 + 16
        if not grown:
            return False
        self._log_cap.update(grown)
        for a in self._specs:
            if a["owner"] in grown and ("events" in a["shape"] or a["kind"] == "log_size"):
                self._arrays[a["name"]] = self._new_array(a)
        return True

    def weight_shapes(self) -> dict[str, tuple[int, ...]]:
        return {a["owner"]: self._arrays[a["name"]].shape for a in self._specs if a["kind"] == "weight"}

    def get_weights(self) -> dict[str, np.ndarray]:
        return {
            a["owner"]: self._arrays[a["name"]].astype(np.float64)
            for a in self._specs
            if a["kind"] == "weight"
        }

    @property
    def weights(self) -> dict[str, np.ndarray]:
        """Live views of the weights (in-place edits take effect at the next run)."""
        return {a["owner"]: self._arrays[a["name"]] for a in self._specs if a["kind"] == "weight"}

    def connectivity(self, projection: str) -> dict[str, np.ndarray]:
        return {
            a["var"]: self._arrays[a["name"]]
            for a in self._specs
            if a["kind"] == "connectivity" and a["owner"] == projection
        }

    def set_weights(self, weights: Mapping[str, np.ndarray]) -> None:
        live = self.weights
        for name, value in weights.items():
            if name not in live:
                raise KeyError(f"no projection with weights named '{name}'; have {sorted(live)}")
            value = np.asarray(value)
            if value.size != live[name].size:
                raise ValueError(
                    f"weights for '{name}' have shape {value.shape}, expected {live[name].shape}"
                )
            live[name][...] = value.reshape(live[name].shape)

    @property
    def state(self) -> dict[str, np.ndarray]:
        return {
            f"{a['owner']}.{a['var']}": self._arrays[a["name"]]
            for a in self._specs
            if a["kind"] in ("state", "synapse_state")
        }

    def reset(self) -> None:
        self._reset(self._resets)

    def _reset(self, arrays: list[tuple[str, float]]) -> None:
        pending = self._pending_events() if self._pending_events is not None else None
        if pending is not None:
            pending.detach()
        self._pending_events = None
        for name, init in arrays:
            if name in self._events_used:
                self._arrays[name][..., : self._events_used.pop(name)].fill(init)
            else:
                self._arrays[name].fill(init)
        self._last_steps = None

    def _zeroed(self, name: str, shape: tuple[int, ...], dtype: type) -> np.ndarray:
        """Array `name` filled with zeros: last batch's when its shape fits, so that a batch neither
        allocates nor changes the addresses the library reads (`_struct`)."""
        arr = self._arrays.get(name)
        if arr is None or arr.shape != shape or arr.dtype != np.dtype(dtype):
            arr = self._arrays[name] = aligned_zeros(shape, dtype)
        else:
            arr.fill(0)
        return arr

    def set_threads(self, n: int) -> None:
        self._lib.snnc_set_threads(int(n))

    def last_team(self) -> int:
        """Threads the last batch ran on: at most the threads set and the batch's trials; where
        nobody set the threads, 1 while the library's tuning finds the team slower."""
        return int(self._lib.snnc_last_team())

    def set_spin_ns(self, ns: int) -> None:
        """How long a thread of the team that waits spins (yielding its core) before it sleeps; 0
        sleeps at once (templates/team.c.j2). The default suits back-to-back batches."""
        self._lib.snnc_set_spin_ns(int(ns))

    # ------------------------------------------------------------------ running
    def _set_inputs(self, inputs: Mapping[str, Any], example_ids: Sequence[int] | None) -> None:
        pops = self.manifest["populations"]
        for name in inputs:
            if name not in pops or pops[name]["generator"] is None:
                raise KeyError(f"'{name}' is not an input population; inputs are {self.input_names()}")
        ids = np.arange(self._batch) if example_ids is None else np.asarray(example_ids)
        ex = self._zeroed(self._named("input", self.manifest["network"], "example"), (self._batch,), np.int64)
        ex[: min(len(ids), self._batch)] = ids[: self._batch]
        for name, pop in pops.items():
            n = pop["size"]
            if pop["generator"] == "spike_source":
                given = inputs.get(name, [])
                keep = hasattr(given, "batch_tables") or hasattr(given, "by_time")  # data sets stay whole
                tables = self._input_tables(name)
                spikes = batch_spikes(given if keep else list(given), self._batch, n, tables)
                self._input_refs[name] = spikes  # the tables point into these arrays
                self._zeroed(self._named("counter", name, "cursor"), (self._batch,), np.int64)
            elif pop["generator"] == "poisson":
                rates = self._zeroed(self._named("input", name, "rate"), (self._batch, n), self._scalar)
                if name in inputs:
                    r = np.asarray(inputs[name], dtype=np.float64).reshape(-1, n)
                    rates[: r.shape[0]] = r

    def _input_tables(self, pop: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Population `pop`'s pointer tables (end, times, ids), filled in place batch after batch:
        their addresses stay those the library was given, so a batch allocates none and rebinds none."""
        names = [self._named("input", pop, var) for var in ("end", "times", "ids")]
        tables = [self._arrays.get(name) for name in names]
        for i, (name, dtype) in enumerate(zip(names, (np.int64, np.uintp, np.uintp), strict=True)):
            if tables[i] is None or tables[i].shape != (self._batch,) or tables[i].dtype != dtype:
                tables[i] = self._arrays[name] = aligned_zeros((self._batch,), dtype)
        return tables[0], tables[1], tables[2]

    def input_names(self) -> list[str]:
        return [k for k, p in self.manifest["populations"].items() if p["generator"] is not None]

    def run(
        self,
        inputs: Mapping[str, Any],
        record: RecordRequest | None = None,
        *,
        num_steps: int | None = None,
        example_ids: Sequence[int] | None = None,
        seed: int | None = None,
    ) -> RunResult:
        steps = self.num_steps if num_steps is None else _whole_steps(num_steps)
        record = record or RecordRequest()
        recs: dict[str, np.ndarray] = {}
        pops = self.manifest["populations"]
        for pop in record.spikes:
            if pop not in pops:
                raise KeyError(f"cannot record spikes of unknown population '{pop}'")
            recs[self._named("record", pop)] = None  # type: ignore[assignment]
        for pop, var in record.vars:
            if pop not in pops or var not in pops[pop]["states"]:
                raise KeyError(f"cannot record '{pop}.{var}': no such state")
            recs[self._named("record", pop, var)] = None  # type: ignore[assignment]
        self._forward(inputs, recs, steps, example_ids, seed)
        return self._result(record, steps)

    def forward(
        self, inputs: Mapping[str, Any], *, example_ids: Sequence[int] | None = None, seed: int | None = None
    ) -> None:
        """`run` without recordings or a `RunResult`: the learning loop reads what it needs itself."""
        self._forward(inputs, {}, self.num_steps, example_ids, seed, self._light_resets)
        self._events_used.clear()  # spike times were written past any earlier count: refill them whole

    def _forward(
        self,
        inputs: Mapping[str, Any],
        recs: dict[str, Any],
        steps: int,
        example_ids: Sequence[int] | None,
        seed: int | None,
        resets: list[tuple[str, float]] | None = None,
        entry: Callable[[ctypes.Structure, int, int], int] | None = None,
        rows: int | None = None,
    ) -> None:
        """Run the batch (again, after a spike list grew); `resets`: the arrays to refill first
        (default: every per-trial array); `entry`: what to call instead of `_entry`, on the first
        `rows` rows only (default: every row)."""
        own = set()
        if self._ep:  # the Euler fallback reads the trajectory of these states every step
            own = {n for names in self._ep["trajectory"].values() for n in names if n not in recs}
            recs.update(dict.fromkeys(own))
        while True:  # once, or again after an EventProp spike list grew (same seed: same run)
            self.reset() if resets is None else self._reset(resets)  # a subclass may add to reset
            self._set_inputs(inputs, example_ids)
            for a in self._records:
                self._bind_record(a, a["name"] in recs, a["name"] in own, steps)
            struct = self._struct()
            call = self._entry if entry is None else entry
            rc = call(struct, steps, int(self.manifest["seed"] if seed is None else seed))
            if rc != 0:
                raise RuntimeError(f"snnc_run returned {rc}")
            if not self._grow_spike_lists(rows):
                break
        self._last_steps = steps
        # the batch's real rows (the rest is padding): the backward pass differentiates only these
        rows = self._batch if example_ids is None else min(len(example_ids), self._batch)
        self._rows = int(rows)

    def _bind_record(self, spec: dict[str, Any], want: bool, own: bool, steps: int) -> None:
        """A record array for this run: none unless wanted; the last one when it is the loader's
        own and of the same shape (see `_own_records`), else a fresh one."""
        name = spec["name"]
        last = self._arrays.get(name)
        if not want:
            if last is not None:
                self._arrays[name] = None
            self._own_records.discard(name)
            return
        shape, dtype = self._shape(spec, steps), self._dtype(spec)
        if own and name in self._own_records and last.shape == shape and last.dtype == np.dtype(dtype):
            return
        self._arrays[name] = aligned_zeros(shape, dtype)
        if own:
            self._own_records.add(name)
        else:
            self._own_records.discard(name)

    def learn_batch(self, inputs: Mapping[str, Any], example_ids: Sequence[int], entry: str) -> None:
        """A training batch in one call of the chained entry `entry` (`learning`): each real row's
        forward pass, loss (labels and hyperparameters written before) and backward pass, then the
        rows' gradients summed. Padding rows are not run: nothing reads them. A row whose spike list
        ran out of room makes the whole batch run again with room for it, as `forward` does (its
        loss and gradients are then rewritten: each row's are its own)."""
        rows = min(len(example_ids), self._batch)
        fn = getattr(self._lib, f"snnc_{entry}")  # typed by KernelLearning

        def call(struct: ctypes.Structure, steps: int, seed: int) -> int:
            rc = fn(ctypes.byref(struct), rows, steps, seed)
            if rc != 0:
                raise RuntimeError(f"snnc_{entry} returned {rc}")
            return rc

        self._forward(inputs, {}, self.num_steps, example_ids, None, self._light_resets, call, rows)
        self._events_used.clear()  # spike times were written past any earlier count: refill them whole
        self._check_overflow(rows)

    def _entry(self, struct: ctypes.Structure, steps: int, seed: int) -> int:
        """Call the library's time loop (a hook: gradient artefacts call their own entry point)."""
        return self._lib.snnc_run(ctypes.byref(struct), self._batch, steps, seed)

    def _struct(self) -> ctypes.Structure:
        """The struct of array addresses the entry points read, kept between calls: only the fields
        of arrays replaced since the last call (inputs, records, grown lists) are written again."""
        struct, changed = self._bound_struct, self._arrays.changed
        for name in changed:
            setattr(struct, name, self._ptr(name))
        changed.clear()
        return struct

    def _ptr(self, name: str) -> int | None:
        arr = self._arrays.get(name)
        if arr is None:
            return None
        assert arr.flags.c_contiguous
        return arr.ctypes.data if arr.size else None

    def _result(self, record: RecordRequest, steps: int) -> RunResult:
        res = RunResult(num_steps=steps, dt=self.dt)
        pops = self.manifest["populations"]
        for a in self._specs:
            if a["kind"] == "readout":
                res.readouts[a["owner"]] = (
                    self._arrays[a["name"]]
                    .astype(np.float64)
                    .reshape((self._batch, *pops[a["owner"]]["shape"]))
                )
        for pop in record.spikes:
            n = pops[pop]["size"]
            bits = self._arrays[self._named("record", pop)]
            unpacked = np.unpackbits(bits.view(np.uint8), axis=-1, bitorder="little")
            res.spikes[pop] = unpacked[..., :n].astype(bool)
        for pop, var in record.vars:
            res.vars[(pop, var)] = self._arrays[self._named("record", pop, var)].astype(np.float64)
        sources = {}
        for a in self._specs:
            if a["kind"] == "events" and a["var"] == "times":
                pop = a["owner"]
                count = self._arrays[self._named("spike_list", pop, "count")]
                times = self._arrays[a["name"]]
                sources[pop] = (times, count)
                self._events_used[a["name"]] = min(int(count.max(initial=0)), times.shape[-1])
        if sources:
            res.events = EventsView(sources)  # type: ignore[assignment]
            self._pending_events = weakref.ref(res.events)
        return res

    # ------------------------------------------------------------------ gradients
    @property
    def max_spikes(self) -> int | None:
        return int(self._ep["max_spikes"]) if self._ep else None

    def spike_overflow(self) -> dict[str, np.ndarray]:
        """Population -> spikes per batch row the last forward pass dropped (past `max_spikes`)."""
        if not self._ep:
            return {}
        return {p: self._arrays[v["over"]].copy() for p, v in self._ep["lists"].items()}

    def record_bytes(self) -> int:
        """Bytes of the forward record EventProp keeps (spike lists and their per-spike values)."""
        return int(
            sum(
                self._arrays[a["name"]].nbytes
                for a in self._specs
                if "events" in a["shape"] and self._arrays.get(a["name"]) is not None
            )
        )

    def backward(self, dl_dy: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """EventProp: gradients (float64, shaped like the weights) of every trainable projection.

        `dl_dy[pop]` is [batch, *shape] for each output population (for a `var` readout also
        [batch, steps, n]: one dL/dy per step; [batch, n] drives the last step only). Keys
        `"<pop>.spike_count"` [batch, n] are the trainer's dL/d(spike count) of hidden populations:
        each spike of neuron j in row b then adds r = value[b, j] as mlGeNN's regulariser does
        (∂l_p/∂t_s = -(∇θ·f⁻)·r). A regulariser declared in the `.snn` training block is the
        TrainingIR's and is applied in C from the batch's spike counts, independently of these keys.
        """
        if not self._ep:
            raise NotImplementedError(
                "this artefact was compiled without a gradient pass (train with algorithm = eventprop)"
            )
        if self._last_steps is None:
            raise RuntimeError("backward needs the forward pass of the same batch: call run() first")
        steps = self._last_steps
        outputs = self._ep["outputs"]
        for key in dl_dy:
            if key not in outputs and not key.endswith(".spike_count"):
                raise KeyError(f"'{key}' is not an output population with a gradient; have {sorted(outputs)}")
        self._check_overflow()
        pops = self.manifest["populations"]
        for pop, info in outputs.items():
            n = int(pops[pop]["size"])
            shape = (self._batch, steps, n) if info["per_step"] else (self._batch, n)
            buf = self._zeroed(info["dly"], shape, self._scalar)
            if pop in dl_dy:
                g = np.asarray(dl_dy[pop], dtype=np.float64)
                if info["per_step"] and g.ndim == 2:
                    g = g.reshape(-1, n)
                    buf[: g.shape[0], -1] = g
                elif info["per_step"]:
                    g = g.reshape(g.shape[0], steps, n)
                    buf[: g.shape[0]] = g
                else:
                    g = g.reshape(-1, n)
                    buf[: g.shape[0]] = g
        counts = self._ep.get("count_grads", {})
        for key in dl_dy:
            if key.endswith(".spike_count") and key[: -len(".spike_count")] not in counts:
                raise KeyError(f"'{key}': no hidden spiking population on the gradient path has that name")
        for pop, arr in counts.items():
            n = int(pops[pop]["size"])
            buf = self._zeroed(arr, (self._batch, n), self._scalar)
            g = dl_dy.get(f"{pop}.spike_count")
            if g is not None:
                g = np.asarray(g, dtype=np.float64).reshape(-1, n)
                buf[: g.shape[0]] = g
        rows = self._run_backward(steps)
        shapes = self.weight_shapes()
        out = {}
        for key, arr in self._ep["gradients"].items():
            g = self._arrays[arr][:rows].sum(axis=0, dtype=np.float64)
            if shapes[key] == (1,):  # a shared param: per neuron in the kernel, summed here
                g = np.asarray([g.sum()])
            out[key] = g.reshape(shapes[key])
        return out

    def backward_from_kernel_loss(self) -> None:
        """The backward pass of the last forward pass, from the dL/dy the kernel's loss phase wrote
        (`learning`); the per-trial gradients stay in the artefact for its gather phase."""
        if self._last_steps is None:
            raise RuntimeError("backward needs the forward pass of the same batch: call run() first")
        self._check_overflow()
        self._run_backward(self._last_steps)

    def _run_backward(self, steps: int) -> int:
        """`snnc_backward` over the real rows of the last batch; returns their number."""
        # only the real rows of a short last batch (run's example_ids) count: the regulariser's
        # batch mean divides by them, and padded rows are neither differentiated nor summed
        rows = self._rows
        regularised = self._ep.get("regularised", {})
        if regularised:  # N: spike counts over the batch, and the trials they span
            parts = [
                self._arrays[a["cnt"]][:rows].sum(axis=0, dtype=np.float64) for a in regularised.values()
            ]
            sums, trials = summed_counts(parts, rows, self.count_reduce)
            for total, arrays in zip(sums, regularised.values(), strict=True):
                self._arrays[arrays["nsum"]] = aligned_copy(total, np.float64)
                self._arrays[arrays["ntrials"]] = aligned_copy(np.array([trials]), np.float64)
        if rows > 0:
            struct = self._struct()
            rc = self._lib.snnc_backward(ctypes.byref(struct), rows, steps, 0)
            if rc != 0:
                raise RuntimeError(f"snnc_backward returned {rc}")
        return rows

    def _check_overflow(self, rows: int | None = None) -> None:
        """Warn (or raise) when the last forward pass (of its first `rows` rows) dropped spikes."""
        over = {}
        for pop, names in (self._ep or {}).get("lists", {}).items():  # once per batch: no copies
            dropped = int(first_rows_sum(self._arrays[names["over"]], rows))
            if dropped:
                over[pop] = dropped
        if not over or self.on_overflow == "ignore":
            return
        msg = (
            f"spikes past max_spikes = {self.max_spikes} were dropped from the gradient: "
            + ", ".join(f"{p}: {c}" for p, c in sorted(over.items()))
            + " (raise eventprop(max_spikes = ...))"
        )
        if self.on_overflow == "error":
            raise RuntimeError(msg)
        warnings.warn(msg, RuntimeWarning, stacklevel=3)

    def close(self) -> None:
        self._arrays.clear()
        self._input_refs.clear()
